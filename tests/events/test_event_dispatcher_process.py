"""The event dispatcher in a process of its own beside the gunicorn workers
(app/events/process.py): it delivers, it is started again when it dies, and
it does not outlive its master."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from helpers import PATIENCE, Client, is_event_dispatcher
from helpers import child_pids as children

C = "/tmf-api/customerManagement/v4/customer"
C_HUB = "/tmf-api/customerManagement/v4/hub"
FAST = {"RECO_EVENT_TIMEOUT_SECONDS": "1", "RECO_EVENT_POLL_SECONDS": "0.2"}


@pytest.fixture(params=["tinydb", "postgresql"])
def store_env(request) -> dict:
    if request.param == "postgresql":
        return {"RECO_STORE_URL": request.getfixturevalue("pg_cluster").new_database()}
    return {}


def dispatchers_of(master: int) -> list[int]:
    return [pid for pid in children(master) if is_event_dispatcher(pid)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def create(api: Client) -> str:
    response = api.post(C, json={"name": "Ada", "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_one_dispatcher_process_delivers_and_is_started_again_when_it_dies(
        make_server, listener, store_env):
    server = make_server(workers=2, env={**FAST, **store_env})
    master = server.process.pid
    (first,) = wait_for(lambda: dispatchers_of(master), PATIENCE)
    api = Client(server.url)
    assert api.post(C_HUB, json={"callback": listener.url}).status_code == 201
    before = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == before, timeout=PATIENCE)
    os.kill(first, signal.SIGKILL)
    (second,) = wait_for(lambda: [p for p in dispatchers_of(master) if p != first], PATIENCE)
    after = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == after, timeout=PATIENCE)
    assert len(dispatchers_of(master)) == 1 and second != first


def test_the_dispatcher_process_ends_with_its_master_even_a_killed_one(make_server, listener):
    server = make_server(workers=1, env=FAST)
    master = server.process.pid
    (dispatcher,) = wait_for(lambda: dispatchers_of(master), PATIENCE)
    os.kill(master, signal.SIGKILL)
    server.process.wait(10)
    try:
        # nobody is left to deliver for a stopped service (its parent gone, it stops)
        assert wait_for(lambda: not alive(dispatcher), PATIENCE), "dispatcher outlived its master"
    finally:
        try:
            os.killpg(master, signal.SIGKILL)     # the orphaned workers
        except ProcessLookupError:
            pass


@pytest.mark.backends("tinydb", reason="the temporary directories do not depend on the store")
def test_a_killed_masters_wake_socket_directory_is_removed_by_the_next_start(make_server):
    # A short TMPDIR of its own: the wake socket's path must fit AF_UNIX's 108 bytes.
    tmp = tempfile.mkdtemp(prefix="ev")
    try:
        env = {**FAST, "TMPDIR": tmp}
        first = make_server(workers=1, env=env)
        master = first.process.pid
        left = glob.glob(os.path.join(tmp, f"reco-events-{master}-*"))
        assert left, os.listdir(tmp)
        first.kill()                          # SIGKILL: no on_exit, nothing cleaned
        assert all(os.path.isdir(path) for path in left)
        second = make_server(workers=1, env=env)
        assert not any(os.path.exists(path) for path in left), os.listdir(tmp)
        assert glob.glob(os.path.join(tmp, f"reco-events-{second.process.pid}-*"))
        assert not glob.glob(os.path.join(tmp, f"reco-prometheus-{master}-*"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_with_dispatcher_workers_each_worker_delivers_and_there_is_no_process(
        make_server, listener):
    server = make_server(workers=2, env={**FAST, "RECO_EVENT_DISPATCHER": "workers"})
    api = Client(server.url)
    assert api.post(C_HUB, json={"callback": listener.url}).status_code == 201
    created = create(api)
    assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == created, timeout=PATIENCE)
    assert dispatchers_of(server.process.pid) == []
