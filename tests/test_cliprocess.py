"""tests/cliprocess.py: a `python -m flask` forked from the warm zygote gives
what a new interpreter gives (exit status, stdout, stderr, environment,
working directory, stdin, tracebacks, atexit), and a run it cannot fork
faithfully gets a new interpreter."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import cliprocess
from helpers import ROOT

PROBE = '''
import atexit, json, os, sys, threading, time
import click
from flask import Flask

app = Flask(__name__)

@app.cli.command("probe")
@click.argument("what")
@click.argument("arg", required=False)
def probe(what, arg):
    if what == "env":
        click.echo(json.dumps({"value": os.environ.get(arg), "cwd": os.getcwd(),
                               "path0": sys.path[0], "argv0": os.path.basename(sys.argv[0]),
                               "pid": os.getpid(), "sid": os.getsid(0),
                               "preloaded": "app.api.rules_admin" in sys.modules}))
        click.echo("to stderr", err=True)
    elif what == "exit":
        sys.exit(int(arg))
    elif what == "message":
        sys.exit("a message for stderr")
    elif what == "crash":
        raise ValueError("boom")
    elif what == "stdin":
        click.echo(sys.stdin.read().upper())
    elif what == "atexit":
        atexit.register(lambda: print("atexit ran", flush=True))
        threading.Thread(target=lambda: (time.sleep(0.5), print("thread ran", flush=True))).start()
    elif what == "newlines":
        sys.stdout.buffer.write("a\\r\\nb\\rc\\u00e9\\n".encode())
    elif what == "sleep":
        open(arg, "w").write(str(os.getpid()))
        time.sleep(600)
'''


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)

    def both(*args, env=None, **kwargs):
        command = [sys.executable, "-m", "flask", "--app", "probe", "probe", *args]
        env = {**os.environ, **(env or {})}
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 300)
        forked = cliprocess.run(command, cwd=tmp_path, env=env, **kwargs)
        fresh = subprocess.run(command, cwd=tmp_path, env=env, **kwargs)
        return forked, fresh

    return both


def same(forked, fresh):
    assert (forked.returncode, forked.stdout, forked.stderr) == \
           (fresh.returncode, fresh.stdout, fresh.stderr)


def test_environment_working_directory_and_streams_are_the_requested_ones(probe, tmp_path):
    forked, fresh = probe("env", "RECO_PROBE", env={"RECO_PROBE": "set for this run"})
    seen, real = json.loads(forked.stdout), json.loads(fresh.stdout)
    assert seen["value"] == real["value"] == "set for this run"
    assert seen["cwd"] == real["cwd"] == str(tmp_path) and seen["path0"] == real["path0"]
    assert seen["argv0"] == real["argv0"] and forked.stderr == fresh.stderr == "to stderr\n"
    assert seen["pid"] != os.getpid() and seen["sid"] == seen["pid"]   # a process of its own
    assert seen["preloaded"] and not real["preloaded"]                 # and a warm one
    forked, _ = probe("env", "RECO_PROBE")                             # nothing stays behind
    assert json.loads(forked.stdout)["value"] is None


@pytest.mark.parametrize("args", [("exit", "0"), ("exit", "3"), ("exit", "300"), ("message",),
                                  ("nosuch",)])
def test_exit_statuses_are_the_interpreters(probe, args):
    forked, fresh = probe(*args)
    same(forked, fresh)


def test_an_uncaught_exception_prints_its_traceback_and_exits_1(probe):
    forked, fresh = probe("crash")
    assert forked.returncode == fresh.returncode == 1
    assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "ValueError: boom"
    assert forked.stderr.startswith("Traceback (most recent call last):")


def test_stdin_threads_atexit_and_newlines_as_a_new_interpreter(probe):
    same(*probe("stdin", input="from the test"))
    same(*probe("atexit"))
    same(*probe("newlines"))
    forked, fresh = probe("newlines", text=False)
    same(forked, fresh)
    assert forked.stdout == "a\r\nb\rc\u00e9\n".encode()


def test_a_run_over_its_timeout_is_killed(probe, tmp_path):
    started = tmp_path / "pid"
    command = [sys.executable, "-m", "flask", "--app", "probe", "probe", "sleep", str(started)]
    with pytest.raises(subprocess.TimeoutExpired):
        cliprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=5)
    pid = int(started.read_text())
    deadline = time.time() + 60
    while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")


def test_what_the_interpreter_reads_at_start_gets_a_new_one(probe):
    forked, _ = probe("env", "PYTHONPATH", env={"PYTHONPATH": str(ROOT / "tests" / "faults")})
    assert not json.loads(forked.stdout)["preloaded"]
    forked, _ = probe("env", "X", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      capture_output=False)
    assert not json.loads(forked.stdout)["preloaded"]


@pytest.mark.parametrize("args", [
    ("experiments", "list"), ("rules", "versions"), ("sales", "conversion"),
    ("decisions", "export"), ("store", "check"), ("store", "load", "customer", "missing.jsonl"),
    ("rules", "nosuch")], ids=lambda args: "-".join(args[:2]))
def test_each_command_group_answers_as_from_a_new_interpreter(args, tmp_path):
    """One command of each `flask` group in a new interpreter (the real entry
    point: `python -m flask --app wsgi`) and forked: the same answer."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    env = {**os.environ, "RECO_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
    forked = cliprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    fresh = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    same(forked, fresh)
    assert forked.stdout + forked.stderr


def test_a_forked_server_process_is_polled_waited_and_killed_as_a_popen(tmp_path):
    """cliprocess.popen (ServiceProcess's gunicorn master): output appended
    to the log with stderr, its own session, poll() None while it runs, the
    signal's negative status once killed, as subprocess.Popen reports it."""
    (tmp_path / "probe.py").write_text(PROBE)
    log = tmp_path / "server.log"
    log.write_text("before\n")
    started = tmp_path / "pid"
    command = [sys.executable, "-m", "flask", "--app", "probe", "probe", "sleep", str(started)]
    process = cliprocess.popen(command, cwd=tmp_path, env=dict(os.environ), log_path=log)
    assert isinstance(process, cliprocess.Forked)
    deadline = time.time() + 60
    while time.time() < deadline and not started.exists():
        time.sleep(0.1)
    assert int(started.read_text()) == process.pid and os.getsid(process.pid) == process.pid
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(60) == -signal.SIGTERM and process.poll() == -signal.SIGTERM
    assert log.read_text().startswith("before\n")
