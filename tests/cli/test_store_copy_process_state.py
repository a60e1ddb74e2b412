"""`flask store copy` copies data, not the state of the source's running
processes: the event dispatchers' heartbeats (`eventDispatcher`) stay
behind. Before: a TinyDB store copied into PostgreSQL (docs/deployment.md,
step 3) brought its dispatcher's last heartbeat along; no process ever beat
it again, so every host's /health said delivery was stalled ("dispatcher
<host>:<pid> has not reported") for up to a day, although nothing was."""
from __future__ import annotations

import time

from helpers import Client, ServiceProcess
from test_store_cli import customer, flask


def test_copy_leaves_the_source_dispatchers_heartbeats_behind(pg_url, tmp_path):
    from app.store import open_store

    source = tmp_path / "tiny"
    with open_store(str(source)) as tiny:
        tiny.insert("customer", customer(1))
        tiny.insert("eventDispatcher", {"id": "laptop:4242", "host": "laptop", "pid": 4242,
                                        "beatAt": time.time() - 3600, "leases": 0})
    done = flask({"RECO_STORE_URL": pg_url, "RECO_DATA_DIR": str(tmp_path / "d")}, "copy", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "eventDispatcher: not copied" in done.stdout
    assert "copied 1 documents of 1 collections" in done.stdout
    with open_store(pg_url) as pg:
        assert pg.get("customer", "crm-1") is not None
        assert pg.all("eventDispatcher") == []

    service = ServiceProcess(tmp_path / "served", env={"RECO_STORE_URL": pg_url}).start()
    try:
        health = Client(service.url).get("/health").json()
        assert health["status"] == "ok" and health["events"]["stalled"] is False, health
    finally:
        service.stop()
