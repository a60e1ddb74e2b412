"""Contact policies over HTTP against a real server, on both stores: the
rule set file declares them; an instant answer drops what the party's
recent reactions and answers forbid (the 4th impression, after rejected,
after accepted, the per-day cap) and lets an item back after the window;
the Playground's explain and `flask rules explain` name the policy; lint
finds bad declarations with file:line and a fix.

Time is controlled without a test clock: reactions carry the client's
`reactionDate` (past times), and an answer is evaluated at the query's
`validFor.startDateTime` (a later time shows the item coming back)."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import uuid

import pytest

import cliprocess
from helpers import BACKENDS, DEMO_RULES, ROOT, Client, ServiceProcess, store_env

R = Client.RECOMMENDATION + "/queryProductRecommendation"
REACTIONS = Client.RECOMMENDATION + "/recommendationReaction"
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(autouse=True)
def _now():
    """Each test's "now" is taken when it starts, not at import: in a long
    parallel run a module-level time was 19 minutes old by the time the
    per-day test ran, so "a day and 5 minutes later" still counted the
    answers just given (decided at the real time) and the allowance never
    came back."""
    global NOW
    NOW = dt.datetime.now(dt.timezone.utc)


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def rules_with(tmp_path, policies: str):
    """A copy of the demo rules whose rule set declares `policies` (YAML
    list items) as version 1.1.0."""
    folder = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, folder)
    path = folder / "telco-demo.yaml"
    text = path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"')
    path.write_text(text + "\ncontactPolicies:\n" + policies)
    return folder


def query(party: str | None = "p-1", at: dt.datetime | None = None) -> dict:
    """The demo's E1 (TMFone in the cart, app channel 21): items 6542, 6543, 7301."""
    body = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
    if party:
        body["relatedParty"] = {"id": party, "role": "customer"}
    if at is not None:
        body["validFor"] = {"startDateTime": iso(at)}
    return body


def offerings(answer: dict) -> list[str]:
    return [item["productOffering"]["id"] for item in answer["recommendationItem"]]


def ask(api, body) -> dict:
    response = api.post(R, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def react(api, answer: dict, offering: str, reaction_type: str, when: dt.datetime, channel="21"):
    item = next(i for i in answer["recommendationItem"] if i["productOffering"]["id"] == offering)
    response = api.post(REACTIONS, json={
        "reactionType": reaction_type, "reactionDate": iso(when), "channel": {"id": channel},
        "recommendation": {"id": answer["id"], "itemId": item["id"]}})
    assert response.status_code == 201, response.text


IMPRESSIONS = """\
  - id: P1
    description: at most three impressions of the case in a week
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
"""


@pytest.fixture(scope="module", params=BACKENDS)
def impressions(request, tmp_path_factory):
    """One server per store on the demo rules with P1 (IMPRESSIONS), for this
    module's tests of P1. Its tests only add answers and reactions of parties
    of their own (uuid ids) and read those parties' answers and explanations,
    never totals; the store is not changed otherwise. They are one
    xdist_group, so a parallel run starts it once per store."""
    base = tmp_path_factory.mktemp("impressions")
    service = ServiceProcess(base / "data", rules_dir=rules_with(base, IMPRESSIONS),
                             env=store_env(request)).start()
    yield service
    service.stop()


def party_of_its_own() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


@pytest.mark.xdist_group("contact-impressions")
def test_fourth_impression_is_suppressed_and_the_item_returns_after_the_window(impressions):
    api = Client(impressions.url)
    party, other = party_of_its_own(), party_of_its_own()
    shown_at = NOW - dt.timedelta(days=6)
    for n in range(3):
        # the visit of six days ago, answered for that time (a reaction
        # cannot predate the answer it reacts to)
        answer = ask(api, query(party=party, at=shown_at + dt.timedelta(minutes=n)))
        assert offerings(answer) == ["6542", "6543", "7301"], f"impression {n + 1}"
        react(api, answer, "6542", "shown", shown_at + dt.timedelta(minutes=n))
    # clicked, rejected on another channel etc. are no impressions; other parties unaffected
    fourth = ask(api, query(party=party))
    assert offerings(fourth) == ["6543", "7301"]
    assert offerings(ask(api, query(party=other))) == ["6542", "6543", "7301"]
    assert offerings(ask(api, query(party=None))) == ["6542", "6543", "7301"]   # anonymous: skipped
    # two days later the impressions of six days ago are out of the 7-day window
    later = ask(api, query(party=party, at=NOW + dt.timedelta(days=2)))
    assert offerings(later) == ["6542", "6543", "7301"]

    # why not: the Playground's explain names the policy
    explained = api.post("/admin/rules/explain", json=query(party=party)).json()
    step = next(s for s in explained["policies"] if s["step"] == "contact-policy")
    assert step["policies"] == ["P1"]
    assert [(d["offering"], d["detail"]) for d in step["dropped"]] == [
        ("6542", "shown 3 times in 7 days (policy P1)")]
    text = api.post("/admin/rules/explain", params={"format": "text"}, json=query(party=party)).text
    assert re.search(r"dropped 6542 .*\(from R1\): contact-policy, shown 3 times in 7 days \(policy P1\)",
                     text), text
    anonymous = api.post("/admin/rules/explain", json=query(party=None)).json()
    step = next(s for s in anonymous["policies"] if s["step"] == "contact-policy")
    assert step["dropped"] == [] and "anonymous" in step["skipped"]


def test_rejected_pauses_and_accepted_stops(make_server, tmp_path):
    policies = """\
  - id: P2
    kind: pauseAfterRejected
    days: 30
  - id: P3
    kind: stopAfterAccepted
"""
    api = Client(make_server(rules_dir=rules_with(tmp_path, policies)).url)
    # a visit 20 days ago (within the 30 days reactions are kept)
    first = ask(api, query(party="p-2", at=NOW - dt.timedelta(days=20)))
    react(api, first, "6543", "rejected", NOW - dt.timedelta(days=10))
    react(api, first, "7301", "accepted", NOW - dt.timedelta(days=20))
    react(api, first, "6542", "clicked", NOW - dt.timedelta(hours=1))    # no policy about clicks
    assert offerings(ask(api, query(party="p-2"))) == ["6542"]
    # 21 days on the pause is over; accepted stays
    assert offerings(ask(api, query(party="p-2", at=NOW + dt.timedelta(days=21)))) == ["6542", "6543"]
    explained = api.post("/admin/rules/explain", json=query(party="p-2")).json()
    details = {d["offering"]: d["detail"] for s in explained["policies"] for d in s.get("dropped", [])
               if s["step"] == "contact-policy"}
    assert re.fullmatch(r"rejected at \S+Z, paused for 30 days \(policy P2\)", details["6543"])
    assert re.fullmatch(r"accepted at \S+Z, not offered again \(policy P3\)", details["7301"])


def test_offers_per_day_cap(make_server, tmp_path):
    policies = """\
  - id: P4
    kind: maxOffersPerDay
    count: 5
"""
    api = Client(make_server(rules_dir=rules_with(tmp_path, policies)).url)
    assert len(ask(api, query(party="p-3"))["recommendationItem"]) == 3
    second = ask(api, query(party="p-3"))                 # the first may not be written yet
    assert offerings(second) == ["6542", "6543"]
    assert [i["priority"] for i in second["recommendationItem"]] == [1, 2]
    assert offerings(ask(api, query(party="p-3"))) == []
    assert len(ask(api, query(party="p-4"))["recommendationItem"]) == 3
    # a day later the allowance is back
    a_day_later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1, minutes=5)
    assert len(ask(api, query(party="p-3", at=a_day_later))
               ["recommendationItem"]) == 3
    # (that answer was decided now: 3 + 2 + 3 items in the 24 hours before now)
    explained = api.post("/admin/rules/explain", json=query(party="p-3")).json()
    step = next(s for s in explained["policies"] if s["step"] == "contact-policy")
    assert {d["detail"] for d in step["dropped"]} == {
        "offered 8 items in the last 24 hours, at most 5 a day (policy P4)"}


@pytest.mark.xdist_group("contact-impressions")
def test_cli_explain_names_the_policy(impressions, tmp_path):
    server = impressions
    api = Client(server.url)
    party = party_of_its_own()
    for n in range(3):
        when = NOW - dt.timedelta(hours=n + 1)
        react(api, ask(api, query(party=party, at=when)), "6542", "shown", when)
    context = tmp_path / "query.json"
    context.write_text(json.dumps(query(party=party)))
    env = {**server.env}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "explain", str(context)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "5. contact policies:" in done.stdout
    assert "contact-policy, shown 3 times in 7 days (policy P1)" in done.stdout


# the session's shared TinyDB server (lint reads rule text, not the store;
# it stores nothing)
@pytest.mark.parametrize("server", ["tinydb"], indirect=True)
def test_lint_finds_bad_policies_with_line_and_fix(api):
    text = (DEMO_RULES / "telco-demo.yaml").read_text()
    first_line = text.count("\n") + 3          # the line of the first `- id: P1`
    bad = text + """
contactPolicies:
  - id: P1
    kind: maxImpressions
    scope: {offering: "65422"}
    count: 3
    days: 7
  - id: P1
    kind: pauseAfterRejected
    days: -2
  - id: P3
    kind: maxImpressions
    scope: {category: gadgetz}
    count: 2
    days: 7
"""
    found = api.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": bad}).json()
    problems = {(p["line"], p["code"]): p for p in found["problems"]}
    offering = problems[(first_line + 2, "unknown-offering")]
    assert offering["severity"] == "error" and "did you mean '6542'?" in offering["hint"]
    assert (first_line + 5, "duplicate-policy-id") in problems
    assert "days: 7" in problems[(first_line + 7, "bad-window")]["hint"]
    category = problems[(first_line + 10, "unknown-category")]
    assert "devices" in category["hint"]
    assert all(p["file"].endswith("telco-demo.yaml") for p in found["problems"])


HISTORY_CASES = """\
ruleset: telco-demo
cases:
  - name: fourth-impression-suppressed
    context:
      customer: {id: C9}
      cart: ["6547"]
      channel: "21"
      time: "2026-10-01T00:00:00Z"
      history:
        - {reaction: shown, offering: "6542", ago: 1d, channel: "21"}
        - {reaction: shown, offering: "6542", ago: 2d}
        - {reaction: shown, offering: "6542", ago: 6d}
    expect: ["6543", "7301"]
  - name: impressions-out-of-the-window
    context:
      customer: {id: C9}
      cart: ["6547"]
      channel: "21"
      time: "2026-10-01T00:00:00Z"
      history:
        - {reaction: shown, offering: "6542", ago: 1d}
        - {reaction: shown, offering: "6542", ago: 2d}
        - {reaction: shown, offering: "6542", ago: 8d}
        - {offered: "6542", ago: 3h}
    expect: ["6542", "6543", "7301"]
  - name: a-wrong-expectation
    context:
      customer: {id: C9}
      cart: ["6547"]
      channel: "21"
      time: "2026-10-01T00:00:00Z"
      history: [{reaction: shown, offering: "6542", ago: 1h}, {reaction: shown, offering: "6542", ago: 2h},
                {reaction: shown, offering: "6542", ago: 3h}]
    expect: ["6542", "6543", "7301"]
"""


def flask(args, env, cwd=ROOT):
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=180)


def test_regression_cases_state_a_history(tmp_path):
    """`flask rules test` and lint over a cases file whose contexts state
    the customer's history (no server: the cases run on the rule files)."""
    rules = rules_with(tmp_path, IMPRESSIONS)
    cases = rules / "telco-demo.cases.yaml"
    cases.write_text(HISTORY_CASES)
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_DATA_DIR": str(tmp_path / "data")}
    done = flask(["rules", "test", "--json", str(cases)], env)
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)["files"][0]["results"]}
    assert results["fourth-impression-suppressed"]["passed"] is True
    assert results["impressions-out-of-the-window"]["passed"] is True
    assert results["a-wrong-expectation"]["passed"] is False
    assert done.returncode == 1
    # a history item without `ago` is an error with its line
    cases.write_text(HISTORY_CASES.replace("ago: 6d", "when: 6d"))
    broken = flask(["rules", "test", str(cases)], env)
    assert broken.returncode != 0
    assert re.search(r"telco-demo\.cases\.yaml:12:\d+: .*unknown field 'when'", broken.stdout + broken.stderr)


def test_rules_diff_shows_what_a_policy_would_suppress_on_recorded_traffic(make_server, tmp_path):
    server = make_server()                      # the demo 1.0.0: no contact policies
    api = Client(server.url)
    answers = [ask(api, query(party="p-8", at=NOW - dt.timedelta(hours=1))) for _ in range(4)]
    for answer in answers[:3]:
        react(api, answer, "6542", "shown", NOW - dt.timedelta(hours=1))
    ask(api, query(party="p-9"))                # never saw it: unchanged
    new = rules_with(tmp_path, IMPRESSIONS) / "telco-demo.yaml"
    env = {**server.env}
    done = flask(["rules", "diff", "1.0.0", str(new), "--no-cases", "--recorded", "10", "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    traffic = report["recordedTraffic"]
    assert traffic["answers"] == 5 and traffic["changed"] == 4
    assert traffic["offerings"] == [{"offering": "6542", "name": traffic["offerings"][0]["name"],
                                     "gained": 0, "lost": 4}]
