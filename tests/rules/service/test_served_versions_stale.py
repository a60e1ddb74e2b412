"""/health's `rules.workers` lists the processes of this host that serve now,
not what a previous run of the server left in `<data dir>/workers/`: a host
restarted after a crash (the master killed, a container restarted with its
data volume) reuses process ids, so a file whose pid is alive again, as some
other process, must not count as a worker serving an old version (a false
`workersAgree: false` that never goes away)."""
from __future__ import annotations

import json
import os

import pytest
import requests

from helpers import wait_until

pytestmark = pytest.mark.backends("tinydb", reason="the served-versions files of one host; the store plays no part")


def test_a_restarted_server_forgets_the_worker_files_of_its_previous_run(make_server, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "workers").mkdir(parents=True)
    # what a worker of the previous run wrote, under a pid that is alive now
    # (this test's process stands for the unrelated process that reused it)
    stale = {"pid": os.getpid(), "rulesetId": "telco-demo", "version": "0.9.0", "hash": "0123456789abcdef",
             "buildFailure": None, "accepting": True}
    (data_dir / "workers" / f"{os.getpid()}.json").write_text(json.dumps(stale))
    service = make_server(data_dir=data_dir, workers=2)

    def both_workers():
        rules = requests.get(service.url + "/health", timeout=10).json()["rules"]
        return rules if len([w for w in rules["workers"] if w["version"] == "1.0.0"]) == 2 else None
    rules = wait_until(both_workers, timeout=60)
    assert rules, "the server's two workers never both showed in /health"
    assert os.getpid() not in [w["pid"] for w in rules["workers"]]
    assert [w["version"] for w in rules["workers"]] == ["1.0.0", "1.0.0"]
    assert rules["workersAgree"] is True
    assert not any("serve different versions" in e for e in rules["errors"])
