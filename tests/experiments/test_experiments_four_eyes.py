"""Four eyes (RECO_RULES_REQUIRE_APPROVAL) hold for experiments, on both
stores (the approvals and activations are in the store's history): an arm
serves its version to a share of the customers as an activation serves it
to all of them, so starting an experiment needs, for each arm's version,
that it serves now, served before, or was approved by another key.

Before: with approval required, the author of 1.1.0 alone (never approved)
recorded it and started an experiment with a 99 % arm of it; it answered
most customers (through the API, the Studio and `flask experiments start`
alike: one service function)."""
from __future__ import annotations

import requests

from experiment_project import FIFTY_FIFTY, R, make_rules, query
from helpers import Client, assert_tmf_error

ANA, BEN = "key-of-ana-author-0123", "key-of-ben-reviewer-0123"
CANARY_ONLY = FIFTY_FIFTY.replace("status: running", "status: stopped")


def test_an_experiment_serves_only_approved_or_already_served_versions(make_server, tmp_path):
    rules = make_rules(tmp_path, CANARY_ONLY)
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": f"{ANA},{BEN}",
                                              "RECO_RULES_REQUIRE_APPROVAL": "1"})
    api = Client(server.url)
    ana, ben = {"Authorization": f"Bearer {ANA}"}, {"Authorization": f"Bearer {BEN}"}

    # 1.0.0 serves (approved by Ben, activated by Ana: back from 1.1.0, the highest); 1.1.0 is recorded, not approved
    assert api.post("/admin/rules/approve", json={"rulesetId": "telco-demo", "version": "1.0.0"},
                    headers=ben).status_code == 200
    assert api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"},
                    headers=ana).status_code == 200
    refused = api.post("/admin/experiments/canary/start", json={"rulesetId": "telco-demo"}, headers=ana)
    error = assert_tmf_error(refused, 409)
    assert error["code"] == "APPROVAL_REQUIRED" and "arm canary" in error["message"], error
    assert "1.1.0" in error["message"]
    assert api.get("/admin/experiments/canary", headers=ana).json()["status"] == "draft"
    served = {requests.post(server.url + R, json=query(f"party-{n}", channel="23"),
                            timeout=30).headers["X-Ruleset"] for n in range(40)}
    assert served == {"telco-demo@1.0.0"}                        # nobody got 1.1.0
    assert [h["action"] for h in api.get("/admin/rules/history", headers=ana).json()] == ["rollback", "approve"]

    approved = api.post("/admin/rules/approve", json={"rulesetId": "telco-demo", "version": "1.1.0"}, headers=ben)
    assert approved.status_code == 200, approved.text
    started = api.post("/admin/experiments/canary/start", json={"rulesetId": "telco-demo"}, headers=ana)
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["status"] == "running"
