"""tests/warmdispatcher.py: the event dispatcher forked from a warm gunicorn
master is what a new interpreter (`python -m app.events dispatch`, started
by subprocess.Popen) is: the same command line, parent, session, process
group, signal dispositions, priority and working directory, none of the
master's sockets or pipes, it delivers, and it ends with its master, leaving
the port free. A dispatcher killed is started again as a new interpreter
(from the supervisor's thread, where a fork is unsafe). Each is compared
with a server whose master is a new interpreter (not forked from the
zygote), whose dispatcher is therefore Popen'd."""
from __future__ import annotations

import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest

import cliprocess
from helpers import PATIENCE, Client, child_pids, command_line, dispatcher_of, wait_until

C = "/tmf-api/customerManagement/v4/customer"
C_HUB = "/tmf-api/customerManagement/v4/hub"
FAST = {"RECO_EVENT_TIMEOUT_SECONDS": "1", "RECO_EVENT_POLL_SECONDS": "0.2"}
COMMAND = [sys.executable, "-m", "app.events", "dispatch"]


def forked(pid: int) -> bool:
    """A new interpreter's /proc environ is the one Popen gave it, with the
    wake socket; a forked one's is the zygote's (the kernel's copy at exec)."""
    return b"\0RECO_EVENT_WAKE_SOCKET=" not in b"\0" + Path(f"/proc/{pid}/environ").read_bytes()


def status(pid: int) -> dict:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def shared_files(pid: int, master: int) -> set[str]:
    """Sockets and pipes both processes hold."""
    def links(p):
        found = set()
        for fd in Path(f"/proc/{p}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(("socket:", "pipe:")):
                found.add(target)
        return found
    return links(pid) & links(master)


def facts(server, dispatcher: int) -> dict:
    master = server.process.pid
    # proc(5) stat fields from the 3rd: state, ppid, pgrp, session, ... nice (19th)
    def stat():
        return Path(f"/proc/{dispatcher}/stat").read_text().rsplit(")", 1)[1].split()
    # once its start is over: it has set its priority (RECO_EVENT_DISPATCHER_NICE)
    assert wait_until(lambda: stat()[16] == "10", PATIENCE)
    fields, signals = stat(), status(dispatcher)
    return {"command": command_line(dispatcher), "parent": int(fields[1]),
            "group": int(fields[2]) == os.getpgid(master), "session": int(fields[3]) == os.getsid(master),
            "ignored": signals["SigIgn"], "caught": signals["SigCgt"], "blocked": signals["SigBlk"],
            "nice": fields[16],
            "cwd": os.readlink(f"/proc/{dispatcher}/cwd") == os.readlink(f"/proc/{master}/cwd"),
            "shared": shared_files(dispatcher, master), "master": master}


def create(api: Client) -> str:
    response = api.post(C, json={"name": "Ada", "engagedParty": {
        "id": uuid.uuid4().hex, "@referredType": "Individual"}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def delivers(server, listener) -> bool:
    created = create(Client(server.url))
    return bool(listener.wait_for(lambda e: e["event"]["customer"]["id"] == created,
                                  timeout=PATIENCE))


def start(make_server, monkeypatch, way: str):
    """A server whose master is forked from the zygote ("forked") or a new
    interpreter ("new")."""
    with monkeypatch.context() as patch:
        if way == "new":
            patch.setattr(cliprocess, "_zygote_for", lambda command, env: None)
        server = make_server(workers=1, env=FAST)
    assert isinstance(server.process, cliprocess.Forked) == (way == "forked")
    return server


def test_the_forked_dispatcher_is_what_a_new_interpreter_is_and_a_restart_is_new(
        make_server, listener, monkeypatch):
    seen = {}
    for way in ("forked", "new"):
        server = start(make_server, monkeypatch, way)
        assert Client(server.url).post(C_HUB, json={"callback": listener.url}).status_code == 201
        first = dispatcher_of(server.process.pid, command=COMMAND)
        assert forked(first) == (way == "forked")
        # read once it has delivered: its start is over (the signal handlers
        # it sets after its priority were missing from one reading or the
        # other, depending on the moment)
        assert delivers(server, listener)
        seen[way] = facts(server, first)
        os.kill(first, signal.SIGKILL)
        second = dispatcher_of(server.process.pid, other_than=first, command=COMMAND)
        assert not forked(second), "a restart, from the supervisor's thread, is a new interpreter"
        assert delivers(server, listener)
    for fact in seen.values():
        assert fact.pop("parent") == fact.pop("master")
        assert fact["shared"] == set(), "the dispatcher holds a socket or pipe of its master"
    assert seen["forked"] == seen["new"]
    assert seen["forked"]["command"] == COMMAND


@pytest.mark.parametrize("way", ["forked", "new"])
def test_a_killed_masters_dispatcher_ends_and_leaves_the_port_free(make_server, monkeypatch, way):
    server = start(make_server, monkeypatch, way)
    master = server.process.pid
    dispatcher = dispatcher_of(master, command=COMMAND)
    assert forked(dispatcher) == (way == "forked")
    workers = [pid for pid in child_pids(master) if pid != dispatcher]
    os.kill(master, signal.SIGKILL)
    server.process.wait(30)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)        # only the dispatcher might still hold the port
    try:
        assert wait_until(lambda: not Path(f"/proc/{dispatcher}").exists()
                          or status(dispatcher)["State"].startswith("Z"), PATIENCE), \
            "the dispatcher outlived its master"

        def port_free():
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", server.port))
                except OSError:
                    return False
                return True
        assert wait_until(port_free, PATIENCE)
    finally:
        try:
            os.killpg(master, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.backends("tinydb", reason="which interpreter starts does not depend on the store")
def test_a_server_whose_environment_changes_the_interpreters_start_gets_new_interpreters(
        make_server, listener):
    """TZ (one of cliprocess.STARTUP_VARIABLES) other than the zygote's: the
    master is a new interpreter, and so is its dispatcher (Popen'd)."""
    zone = "UTC" if os.environ.get("TZ") != "UTC" else "Europe/Paris"
    server = make_server(workers=1, env={**FAST, "TZ": zone})
    assert not isinstance(server.process, cliprocess.Forked)
    dispatcher = dispatcher_of(server.process.pid, command=COMMAND)
    assert not forked(dispatcher)
    assert Client(server.url).post(C_HUB, json={"callback": listener.url}).status_code == 201
    assert delivers(server, listener)
