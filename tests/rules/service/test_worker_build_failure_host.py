"""When durable-rules refuses the rule set in every worker of a host, not in
one: the workers leave to be replaced a few times (a refusal may be
transient), then one stays, so that the host answers: /health says why
(to an admin key only), readiness and recommendations answer 503, and the
worker builds once the refusal is gone (or leaves once a sibling serves),
instead of gunicorn forking
workers that build and leave without end while nothing answers at all.

The refusal is injected (RECO_FAULT_ENGINE_BUILDS, app/rules/engine/faults.py)."""
from __future__ import annotations

import os
import signal

import pytest
import requests

from app.rules.service.workers import HOST_BUILD_EXITS
from helpers import Client, wait_until
from test_hot_reload import E1, booted_workers

R = Client.RECOMMENDATION + "/queryProductRecommendation"
ADMIN = {"X-API-Key": "rev-admin-key"}

pytestmark = [pytest.mark.backends("tinydb", reason="rule builds in worker processes; the store plays no part"),
              pytest.mark.slow]


def health(service, headers=None) -> dict | None:
    """The /health report, None while no worker answers."""
    try:
        return requests.get(service.url + "/health", headers=headers or {}, timeout=5).json()
    except requests.RequestException:
        return None


def test_when_no_worker_of_the_host_can_build_one_stays_and_answers_until_the_build_succeeds(make_server, tmp_path):
    faults = tmp_path / "build-faults"
    faults.write_text("0")
    service = make_server(data_dir=tmp_path / "data", workers=2,
                          env={"RECO_FAULT_ENGINE_BUILDS": str(faults), "RECO_ADMIN_KEYS": ADMIN["X-API-Key"]})
    workers = wait_until(lambda: (lambda w: w if w and len(w) == 2 else None)(
        (health(service, ADMIN) or {}).get("rules", {}).get("workers")), timeout=60)
    assert workers, "the two workers never served"
    # from now on durable refuses every build on this host; both workers crash
    faults.write_text("100000")
    for worker in workers:
        os.kill(worker["pid"], signal.SIGKILL)

    def refused():
        report = health(service, ADMIN)
        return report if report and report["rules"].get("buildFailure") and not report["rules"]["ok"] else None
    report = wait_until(refused, timeout=120, interval=0.5)
    assert report, "no worker answered /health while every build was refused"
    assert report["status"] == "degraded" and "injected build failure" in report["rules"]["buildFailure"]
    # a client without the admin key learns that the rules are not ok, not why
    public = health(service)
    assert public["rules"]["ok"] is False and "buildFailure" not in public["rules"]
    assert "injected" not in str(public) and str(tmp_path) not in str(public)
    not_ready = requests.get(service.url + "/health/ready", timeout=10)
    assert not_ready.status_code == 503 and not_ready.json()["code"] == "NOT_READY"
    answer = requests.post(service.url + R, json=E1, timeout=30)
    assert answer.status_code == 503 and answer.json()["@type"] == "Error"
    log = service.log_path.read_text()
    assert "staying, answering 503 and retrying" in log
    booted = len(booted_workers(service))
    assert booted <= 2 + HOST_BUILD_EXITS + 2, f"{booted} workers booted: the replacements did not stop"

    # the refusal goes away in all workers but one: the others retry after their
    # backoff and serve; the one still refused leaves (not 503 beside them) and
    # its replacement serves
    staying = [w["pid"] for w in health(service, ADMIN)["rules"]["workers"] if w.get("buildFailure")]
    assert staying
    faults.write_text(f"100000:{staying[0]}")

    def serving():
        report = health(service, ADMIN)
        if not report or not report["rules"]["ok"] or not report["rules"]["workersAgree"]:
            return None
        workers = report["rules"]["workers"]
        return report if len(workers) == 2 and all(w["hash"] and not w["buildFailure"] for w in workers) else None
    report = wait_until(serving, timeout=120, interval=1.0)
    assert report, "the host never served again with both workers after the refusal went away"
    assert {w["version"] for w in report["rules"]["workers"]} == {"1.0.0"}
    assert staying[0] not in [w["pid"] for w in report["rules"]["workers"]]
    assert "a sibling serves now; exiting so that it is replaced" in service.log_path.read_text()
    answers = [requests.post(service.url + R, json=E1, timeout=30) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
