"""When the workers of one host serve different versions (one failed to
build the new one), /health says so to a caller without the admin key too
(`rules.workersAgree`: a load balancer's or an uptime monitor's check), as a
flag only: which worker serves what, and why, needs the key.

The refusal is injected (RECO_FAULT_ENGINE_BUILDS, app/rules/engine/faults.py)."""
from __future__ import annotations

import shutil
import time

import pytest
import requests

from app.rules.service.workers import BUILD_RETRY_DELAYS
from helpers import DEMO_RULES, Client, wait_until
from test_hot_reload import E1

R = Client.RECOMMENDATION + "/queryProductRecommendation"
ADMIN = {"X-API-Key": "rev-admin-key"}
ATTEMPTS = len(BUILD_RETRY_DELAYS) + 1

pytestmark = pytest.mark.backends("tinydb", reason="rule builds in worker processes; the store plays no part")


def test_a_caller_without_the_admin_key_sees_that_the_workers_disagree_not_why(make_server, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(DEMO_RULES / "telco-demo.yaml", rules_dir / "telco-demo.yaml")
    faults = tmp_path / "build-faults"
    faults.write_text("0")
    service = make_server(data_dir=tmp_path / "data", workers=2, rules_dir=rules_dir,
                          env={"RECO_FAULT_ENGINE_BUILDS": str(faults), "RECO_ADMIN_KEYS": ADMIN["X-API-Key"]})
    workers = wait_until(lambda: (lambda w: w if len(w) == 2 else None)(
        requests.get(service.url + "/health", headers=ADMIN, timeout=10).json()["rules"]["workers"]), timeout=60)
    assert workers
    public = requests.get(service.url + "/health", timeout=10).json()["rules"]
    assert public["workersAgree"] is True and "workers" not in public
    faults.write_text(f"{3 * ATTEMPTS}:{workers[0]['pid']}")      # one worker fails its next three reloads
    text = (rules_dir / "telco-demo.yaml").read_text().replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    (rules_dir / "telco-demo.yaml").write_text(text)

    def disagreement():
        requests.post(service.url + R, json=E1, timeout=30)          # wakes the workers' watchers
        time.sleep(0.05)
        rules = requests.get(service.url + "/health", timeout=10).json()["rules"]
        return rules if rules["workersAgree"] is False else None
    public = wait_until(disagreement, timeout=60, interval=0.1)
    assert public, "a caller without the key never saw the workers disagree"
    assert "workers" not in public and "buildFailure" not in public and "errors" not in public
    assert public["errorCount"] >= 1 and "injected" not in str(public) and str(tmp_path) not in str(public)
