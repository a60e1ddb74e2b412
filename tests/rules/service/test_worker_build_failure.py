"""A gunicorn worker whose rule engine durable-rules refuses to build: it
retries, and failing that it leaves so that gunicorn replaces it, instead of
answering 503 beside healthy siblings while /health says ok. A worker that
fails to build a new version keeps serving the old one, retries after a
backoff, and /health shows that the workers disagree meanwhile.

The refusal is injected (RECO_FAULT_ENGINE_BUILDS, app/rules/engine/faults.py):
its real causes (a heap state, memory pressure) cannot be produced on demand
in one worker of a running server."""
from __future__ import annotations

import shutil
import time

import pytest
import requests

from app.rules.service.workers import BUILD_RETRY_DELAYS
from helpers import DEMO_RULES, Client, wait_until
from test_hot_reload import E1, booted_workers

R = Client.RECOMMENDATION + "/queryProductRecommendation"
ATTEMPTS = len(BUILD_RETRY_DELAYS) + 1        # builds one worker tries before it gives up

pytestmark = pytest.mark.backends("tinydb", reason="rule builds in worker processes; the store plays no part")


def fault_file(tmp_path, failures: int):
    path = tmp_path / "build-faults"
    path.write_text(str(failures))
    return path


def test_a_worker_that_cannot_build_its_rule_set_is_replaced_and_serves(make_server, tmp_path):
    # two workers start at once; whatever the interleaving, at least two of the
    # first workers use up all their attempts (no worker tries more than ATTEMPTS)
    faults = fault_file(tmp_path, 2 * ATTEMPTS)
    service = make_server(data_dir=tmp_path / "data", workers=2, env={"RECO_FAULT_ENGINE_BUILDS": str(faults)})
    assert wait_until(lambda: faults.read_text() == "0" and len(booted_workers(service)) >= 4, timeout=60)
    health = wait_until(lambda: (lambda h: h if h["rules"]["ok"] and len(h["rules"]["workers"]) == 2 else None)(
        requests.get(service.url + "/health", timeout=10).json()), timeout=60)
    assert health["status"] == "ok" and health["rules"]["workersAgree"] is True
    assert {w["version"] for w in health["rules"]["workers"]} == {"1.0.0"}
    answers = [requests.post(service.url + R, json=E1, timeout=30) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    log = service.log_path.read_text()
    assert log.count("cannot build its rule set") >= 2
    assert "retrying in" in log


def test_a_worker_that_fails_a_new_version_serves_the_old_retries_and_health_shows_it(make_server, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(DEMO_RULES / "telco-demo.yaml", rules_dir / "telco-demo.yaml")
    faults = fault_file(tmp_path, 0)
    service = make_server(data_dir=tmp_path / "data", workers=2, rules_dir=rules_dir,
                          env={"RECO_FAULT_ENGINE_BUILDS": str(faults)})
    workers = wait_until(lambda: (lambda w: w if len(w) == 2 else None)(
        requests.get(service.url + "/health", timeout=10).json()["rules"]["workers"]), timeout=60)
    assert workers and {w["version"] for w in workers} == {"1.0.0"}
    # one worker fails its next two reloads (every attempt of each); the other builds 1.1.0
    lagging_pid = workers[0]["pid"]
    faults.write_text(f"{2 * ATTEMPTS}:{lagging_pid}")
    text = (rules_dir / "telco-demo.yaml").read_text().replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    assert "1.1.0" in text
    (rules_dir / "telco-demo.yaml").write_text(text)
    for _ in range(20):                      # wake both workers' watchers
        requests.post(service.url + R, json=E1, timeout=30)
        time.sleep(0.05)

    def disagreement():
        rules = requests.get(service.url + "/health", timeout=10).json()["rules"]
        failed = [w for w in rules["workers"] if w.get("buildFailure")]
        return rules if not rules["workersAgree"] and failed else None
    rules = wait_until(disagreement, timeout=60)
    assert rules, "the workers never disagreed"
    assert sorted(w["version"] for w in rules["workers"]) == ["1.0.0", "1.1.0"]
    [lagging] = [w for w in rules["workers"] if w["version"] == "1.0.0"]
    assert lagging["pid"] == lagging_pid and "injected build failure" in lagging["buildFailure"]
    assert any("serve different versions" in e for e in rules["errors"])
    # the lagging worker keeps answering (1.0.0), retries after its backoff and catches up

    def caught_up():
        for _ in range(6):
            requests.post(service.url + R, json=E1, timeout=30)
        rules = requests.get(service.url + "/health", timeout=10).json()["rules"]
        return rules if rules["workersAgree"] and {w["version"] for w in rules["workers"]} == {"1.1.0"} else None
    assert wait_until(caught_up, timeout=60, interval=0.5)
    assert faults.read_text() == f"0:{lagging_pid}"
    assert lagging_pid in booted_workers(service) and len(booted_workers(service)) == 2   # not replaced
    answers = [requests.post(service.url + R, json=E1, timeout=30) for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["X-Ruleset"] for a in answers} == {"telco-demo@1.1.0"}
