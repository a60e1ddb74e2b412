"""Two arms of a running experiment whose versions declare different
contact policies, on both stores over HTTP: each arm's answer is shaped by
its own version's policies, read for its own reaction types (the
challenger caps impressions of the case, the control pauses the screen
protector after a rejection), never by the other arm's. On PostgreSQL the
history is read ahead with the customer, for the answering arm's kinds."""
from __future__ import annotations

import datetime as dt
import json

from experiment_project import ADMIN_KEY, R, make_rules, query
from helpers import DEMO_CATALOG, Client

from app.rules.model.catalog import load_catalog
from app.rules.model.ruleset import read_ruleset_file

REACTIONS = "/tmf-api/recommendationManagement/v4/recommendationReaction"
CHALLENGER_POLICY = """
contactPolicies:
  - id: CAP
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
"""
CONTROL_POLICY = """
contactPolicies:
  - id: PAUSE
    kind: pauseAfterRejected
    scope: {offering: "6543"}
    days: 30
"""


def rules_with_arm_policies(root):
    rules = make_rules(root)
    main, challenger = rules / "telco-demo.yaml", rules / "versions" / "telco-demo@1.1.0.yaml"
    main.write_text(main.read_text() + CONTROL_POLICY)
    challenger.write_text(challenger.read_text().replace("limit: 1", "limit: 2") + CHALLENGER_POLICY)
    lock = json.loads((rules / "telco-demo.lock.json").read_text())
    catalog = load_catalog(DEMO_CATALOG)
    for version, path in (("1.0.0", main), ("1.1.0", challenger)):
        _rid, _version, ruleset, problems = read_ruleset_file(path, catalog)
        assert ruleset is not None and ruleset.contact_policies, problems
        lock["versions"][version] = ruleset.hash
    (rules / "telco-demo.lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    return rules


def ask(api, party: str, at: str) -> dict:
    body = query(party)
    body["validFor"] = {"startDateTime": at}
    response = api.post(R, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def items(answer: dict) -> list[str]:
    return [i["productOffering"]["id"] for i in answer["recommendationItem"]]


def react(api, answer: dict, offering: str, kind: str, at: str) -> None:
    item = next(i for i in answer["recommendationItem"] if i["productOffering"]["id"] == offering)
    response = api.post(REACTIONS, json={"reactionType": kind, "reactionDate": at, "channel": {"id": "21"},
                                         "recommendation": {"id": answer["id"], "itemId": item["id"]}})
    assert response.status_code == 201, response.text


def at(base: dt.datetime, minutes: int) -> str:
    return (base + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_each_arm_is_shaped_by_its_own_versions_policies(make_server, tmp_path):
    base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=6)
    api = Client(make_server(rules_dir=rules_with_arm_policies(tmp_path / "project"),
                             env={"RECO_ADMIN_KEYS": ADMIN_KEY}).url)
    arms = {}
    for n in range(40):
        party = f"arm-party-{n}"
        first = ask(api, party, at(base, 0))
        version = first["recommendationItem"][0]["explanation"]["ruleSetVersion"]
        arms.setdefault(version, []).append((party, first))
        if len(arms.get("1.0.0", ())) >= 2 and len(arms.get("1.1.0", ())) >= 2:
            break
    assert set(arms) == {"1.0.0", "1.1.0"}, arms.keys()
    for version, found in arms.items():
        for party, first in found[:2]:
            assert items(first) == (["6542", "6543", "7301"] if version == "1.0.0" else ["6542", "6543"])
            # the same history for every party: the case shown three times, the protector rejected
            react(api, first, "6543", "rejected", at(base, 5))
            for hour in (1, 2, 3):
                answer = ask(api, party, at(base, 60 * hour))
                react(api, answer, "6542", "shown", at(base, 60 * hour + 1))
    for party, _first in arms["1.1.0"][:2]:          # CAP drops the case; PAUSE is not the challenger's
        assert items(ask(api, party, at(base, 240))) == ["6543", "7301"], party
    for party, _first in arms["1.0.0"][:2]:          # PAUSE drops the protector; CAP is not the control's
        assert items(ask(api, party, at(base, 240))) == ["6542", "7301"], party
