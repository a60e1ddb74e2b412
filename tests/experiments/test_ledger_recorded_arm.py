"""A version recorded only in the store's ledger (app.rules.repository
.store_ledger: what an activation on another host, or in another worker,
records; this host has no lock-file entry for it) can be started as an
experiment's arm at once, and the arm serves: the experiments admin path
and the router see the ledger as it is now, not as it was when the worker
last reloaded. The watcher is slowed to an hour and no rule file or
pointer changes, so only a look at the ledger itself can see the record.
Over HTTP on both stores (TinyDB: a record written by another process)."""
from __future__ import annotations

from experiment_project import ADMIN, ADMIN_KEY, R, make_rules, query
from helpers import DEMO_CATALOG, Client

from app.rules.model.catalog import load_catalog
from app.rules.model.ruleset import read_ruleset_file
from app.rules.repository.store_ledger import StoreLedger
from app.store import open_store

CANARY = """\
version: 1
experiments:
  - id: canary
    status: draft
    channels: ["23"]
    control: stable
    arms:
      - {name: canary, version: "1.2.0", weight: 50}
      - {name: stable, version: "1.0.0", weight: 50}
"""


def test_a_version_recorded_in_the_ledger_starts_and_serves_without_a_reload(make_server, tmp_path):
    rules = make_rules(tmp_path / "project", experiments=CANARY)
    # 1.2.0's file is on this host, but not in its lock file: unrecorded here
    text = (rules / "telco-demo.yaml").read_text()
    path = rules / "versions" / "telco-demo@1.2.0.yaml"
    path.write_text(text.replace('version: "1.0.0"', 'version: "1.2.0"').replace("limit: 4", "limit: 1"))
    _rid, _version, ruleset, problems = read_ruleset_file(path, load_catalog(DEMO_CATALOG))
    assert ruleset is not None, problems

    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY,
                                               "RECO_RULES_CHECK_INTERVAL": "3600"})
    api = Client(server.url)
    refused = api.post("/admin/experiments/canary/start", json={}, headers=ADMIN)
    assert refused.status_code == 422 and "not recorded" in refused.text, refused.text

    # another host (or worker) records 1.2.0: its ledger entry, nothing else
    store = open_store(server.store_url)
    try:
        StoreLedger(store).record("telco-demo", "1.2.0", ruleset.hash, "other-host")
    finally:
        store.close()

    started = api.post("/admin/experiments/canary/start", json={}, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["status"] == "running"
    listed = api.get("/admin/experiments", headers=ADMIN).json()
    assert listed["running"] == ["canary"] and not [p for p in listed["problems"]
                                                   if p.get("severity") == "error"], listed

    # and it serves: 1.2.0 (limit 1) answers the canary arm, 1.0.0 (more items) the other
    seen = {}
    for n in range(40):
        answer = api.post(R, json=query(f"party-{n}", channel="23")).json()
        arm = (answer.get("experiment") or {}).get("arm")
        versions = {i["explanation"]["ruleSetVersion"] for i in answer["recommendationItem"]}
        seen[arm] = (versions, len(answer["recommendationItem"]))
    assert seen.get("canary") == ({"1.2.0"}, 1), seen
    assert seen.get("stable", ((), 0))[0] == {"1.0.0"} and seen["stable"][1] > 1, seen
