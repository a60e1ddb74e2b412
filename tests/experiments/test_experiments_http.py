"""Experiments end to end, through HTTP against real server processes, on
both stores: the split, stickiness across calls and workers, holdouts,
anonymous shoppers, the arm on reactions and leads, the report against a
hand count (API and CLI), and start / weights / promote with the audit
history (docs/experiments.md)."""
from __future__ import annotations

import json
import math
import os
import re
import sys

import pytest
import requests

import cliprocess
from experiment_project import ADMIN, ADMIN_KEY, R, make_rules, query
from helpers import DEMO_CATALOG, PATIENCE, ROOT, Client, assert_tmf_error, wait_until

REACTIONS = "/tmf-api/recommendationManagement/v4/recommendationReaction"
LEADS = "/tmf-api/sales/v4/salesLead"
COUNTS = ("decisions", "items", "shown", "clicked", "leads", "accepted")


def start(make_server, tmp_path, workers=1):
    rules = make_rules(tmp_path / "project")
    return make_server(workers=workers, rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY}), rules


def ask(api, body, fresh=False) -> dict:
    if fresh:      # a new connection each time: gunicorn's workers share the accepts
        response = requests.post(api.url + R, json=body, headers={"Connection": "close"}, timeout=30)
    else:
        response = api.post(R, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def arm_of(answer: dict) -> str | None:
    return (answer.get("experiment") or {}).get("arm")


def test_split_is_binomial_sticky_across_calls_and_workers_and_holdout_gets_nothing(make_server, tmp_path):
    server, _rules = start(make_server, tmp_path, workers=2)
    api = Client(server.url)
    arms = {}
    for n in range(2000):
        answer = ask(api, query(f"party-{n}"))
        arm = arm_of(answer)
        assert answer["experiment"] == {"id": "split", "arm": arm}
        items = answer["recommendationItem"]
        # the arm's version answers: 1.1.0 has limit 1, 1.0.0 gives the demo's three items
        assert len(items) == (1 if arm == "challenger" else 3)
        assert {i["explanation"]["ruleSetVersion"] for i in items} == {"1.1.0" if arm == "challenger" else "1.0.0"}
        assert all(i["explanation"]["experimentArm"] == arm and i["explanation"]["experimentId"] == "split"
                   for i in items)
        arms[n] = arm
    challengers = sum(1 for arm in arms.values() if arm == "challenger")
    # 99.9 % of Binomial(2000, 0.5) lies within 1000 +- 3.29 * sqrt(500)
    assert abs(challengers - 1000) <= 3.2905 * math.sqrt(2000 * 0.25), challengers
    assert set(arms.values()) == {"challenger", "control"}

    # the same party, 20 calls in all, on fresh connections spread over both workers
    for n in range(0, 2000, 40):
        seen = {arm_of(ask(api, query(f"party-{n}"), fresh=True)) for _ in range(19)}
        assert seen == {arms[n]}, (n, seen)
    # and both workers answered them (the request log names each answer's process)
    pids = {match.group(1) for line in server.log_path.read_text(errors="replace").splitlines()
            if "queryProductRecommendation" in line and (match := re.search(r'pid\W+(\d+)', line))}
    assert len(pids) == 2, pids

    # holdout: no items, and the arm on the answer
    split = {"holdout": 0, "control": 0}
    for n in range(200):
        answer = ask(api, query(f"h-{n}", channel="22"))
        arm = arm_of(answer)
        split[arm] += 1
        assert answer["experiment"]["id"] == "holdout-test"
        assert (answer["recommendationItem"] == []) == (arm == "holdout")
    assert split["holdout"] > 50 and split["control"] > 50, split

    # an anonymous shopper is kept in one arm by the shopping cart id
    anonymous = {arm_of(ask(api, query(None, cart_id="cart-anon-1"), fresh=True)) for _ in range(10)}
    assert len(anonymous) == 1 and anonymous != {None}
    # another channel is in no experiment: the active version, no attribute
    outside = ask(api, query("party-1", channel="99"))
    assert "experiment" not in outside


@pytest.mark.xdist_group("experiments-to-read")
def test_arm_on_reactions_leads_and_recorded_answer(experiments_to_read):
    # the shared experiment server (tests/experiments/conftest.py): the
    # answers, so the reactions and the lead, are this test's own
    api = Client(experiments_to_read.url)
    answer = ask(api, query("party-react"))
    arm = arm_of(answer)
    reaction = api.post(REACTIONS, json={"reactionType": "clicked",
                                         "recommendation": {"id": answer["id"], "itemId": "1"}})
    assert reaction.status_code == 201, reaction.text
    assert reaction.json()["recommendation"]["explanation"]["experimentArm"] == arm
    lead = api.post(LEADS, json={"@type": "RecommendationSalesLead",
                                 "recommendation": {"id": answer["id"], "itemId": "1"}})
    assert lead.status_code == 201, lead.text
    assert lead.json()["recommendation"]["explanation"]["experimentId"] == "split"
    assert lead.json()["recommendation"]["explanation"]["experimentArm"] == arm
    # the recorded answer (decision log) keeps it
    recorded = wait_until(lambda: api.get(answer["href"]).json(), 10)
    assert recorded["experiment"] == {"id": "split", "arm": arm}
    # an asynchronous query is answered in the same arm, recorded on the stored query
    body = {**query("party-react"), "instantSyncRecommendation": False}
    stored = api.post(R, json=body)
    assert stored.status_code == 201, stored.text
    done = wait_until(lambda: (lambda q: q if q["state"] == "done" else None)(
        api.get(stored.json()["href"]).json()), 30)
    assert done and done["experiment"] == {"id": "split", "arm": arm}
    assert done["recommendationItem"][0]["explanation"]["experimentArm"] == arm
    # and the metric counts it
    metrics = wait_until(lambda: api.get("/metrics", headers=ADMIN).text, 5)
    assert f'reco_experiment_assignments_total{{arm="{arm}",experiment="split"}}' in metrics


def hand_count(answers, reacted, led, accepted) -> dict:
    found = {}
    for answer in answers:
        counts = found.setdefault(arm_of(answer), {**dict.fromkeys(COUNTS, 0),
                                                   "converted": dict.fromkeys(("shown", "clicked", "leads", "accepted"), 0)})
        counts["decisions"] += 1
        hits = set()
        for item in answer["recommendationItem"]:
            key = (answer["id"], item["id"])
            counts["items"] += 1
            flags = {"shown": "shown" in reacted.get(key, ()), "clicked": "clicked" in reacted.get(key, ()),
                     "leads": key in led, "accepted": key in accepted}
            for name, value in flags.items():
                counts[name] += int(value)
                if value:
                    hits.add(name)
        for name in hits:
            counts["converted"][name] += 1
    return found


def test_report_counts_match_a_hand_count_api_and_cli(make_server, tmp_path):
    server, rules = start(make_server, tmp_path)
    api = Client(server.url)
    answers = [ask(api, query(f"r-{n}")) for n in range(60)]
    holdout_answers = [ask(api, query(f"rh-{n}", channel="22")) for n in range(30)]
    reacted, led, accepted = {}, set(), set()
    for n, answer in enumerate(answers + holdout_answers):
        for item in answer["recommendationItem"]:
            key = (answer["id"], item["id"])
            if (n + int(item["id"])) % 2 == 0:
                api.post(REACTIONS, json={"reactionType": "shown", "recommendation": {
                    "id": answer["id"], "itemId": item["id"]}}).raise_for_status()
                reacted.setdefault(key, set()).add("shown")
            if (n + int(item["id"])) % 3 == 0:
                api.post(REACTIONS, json={"reactionType": "clicked", "recommendation": {
                    "id": answer["id"], "itemId": item["id"]}}).raise_for_status()
                reacted.setdefault(key, set()).add("clicked")
            if (n * 7 + int(item["id"])) % 5 == 0:
                made = api.post(LEADS, json={"@type": "RecommendationSalesLead", "recommendation": {
                    "id": answer["id"], "itemId": item["id"]}})
                assert made.status_code == 201, made.text
                led.add(key)
                if n % 2 == 0:
                    api.patch(made.json()["href"], json={"status": "accepted"}).raise_for_status()
                    accepted.add(key)
    for experiment, given in (("split", answers), ("holdout-test", holdout_answers)):
        expected = hand_count(given, reacted, led, accepted)

        def counted():
            found = api.get(f"/admin/experiments/{experiment}/report", headers=ADMIN)
            assert found.status_code == 200, found.text
            return found.json()
        report = wait_until(lambda: (lambda r: r if sum(a["decisions"] for a in r["arms"]) == len(given)
                                     else None)(counted()), 20) or counted()
        by_arm = {arm["name"]: arm for arm in report["arms"]}
        for arm, counts in expected.items():
            assert {c: by_arm[arm][c] for c in COUNTS} == {c: counts[c] for c in COUNTS}, arm
            assert {m: by_arm[arm]["rates"][m]["decisions"] for m in counts["converted"]} == counts["converted"]
        assert "mSPRT" in report["method"] and "Wilson" in report["method"]
        assert report["sampleRatio"]["pValue"] > 0.001 and report["sampleRatio"]["warning"] is None
        control = by_arm["control"]
        assert control["uplift"] is None and control["control"] is True
        other = next(a for a in report["arms"] if not a["control"])
        assert other["uplift"]["low"] <= other["uplift"]["difference"] <= other["uplift"]["high"]
        rate = control["rates"]["accepted"]
        assert rate["low"] <= rate["rate"] <= rate["high"]
    # the holdout's answers count as decisions with no items
    holdout = next(a for a in report["arms"] if a["name"] == "holdout")
    assert holdout["decisions"] > 0 and holdout["items"] == 0

    # the CLI prints the same counts from the same store
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(server.data_dir), "RECO_LOG_LEVEL": "warning"}
    if server.env.get("RECO_STORE_URL"):
        env["RECO_STORE_URL"] = server.env["RECO_STORE_URL"]
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "experiments", "report", "split",
                           "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    api_report = api.get("/admin/experiments/split/report", headers=ADMIN).json()
    assert [{c: a[c] for c in COUNTS} for a in printed["arms"]] == \
        [{c: a[c] for c in COUNTS} for a in api_report["arms"]]
    text = api.get("/admin/experiments/split/report?format=text", headers=ADMIN)
    assert text.status_code == 200 and "sample ratio" in text.text and "method:" in text.text


def test_start_weights_promote_are_admin_actions_recorded_and_weights_move_few(make_server, tmp_path):
    server, rules = start(make_server, tmp_path)
    api = Client(server.url)
    parties = [f"c-{n}" for n in range(300)]
    # a draft serves nobody
    assert "experiment" not in ask(api, query(parties[0], channel="23"))
    # changes need the admin key: nothing changes without it
    assert_tmf_error(api.post("/admin/experiments/canary/start", json={}), 401)
    before = (rules / "telco-demo.experiments.yaml").read_text()
    started = api.post("/admin/experiments/canary/start", json={"fileVersion": 1}, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["status"] == "running"
    assert started.json()["fileVersion"] == 2
    # a stale form (file version 1 was read before the start) changes nothing
    body = assert_tmf_error(api.post("/admin/experiments/canary/stop", json={"fileVersion": 1},
                                     headers=ADMIN), 409)
    assert body["code"] == "STALE_EXPERIMENTS"
    assert (rules / "telco-demo.experiments.yaml").read_text() != before

    in_canary = []
    for weight in (5, 25, 100):
        if weight != 5:
            changed = api.post("/admin/experiments/canary/weights", headers=ADMIN,
                               json={"weights": {"canary": weight, "stable": 100 - weight}})
            assert changed.status_code == 200, changed.text
        now = {p for p in parties if arm_of(ask(api, query(p, channel="23"))) == "canary"}
        in_canary.append(now)
    five, twenty_five, hundred = in_canary
    # a party in the canary at 5 % stays in it at 25 % and at 100 %
    assert five <= twenty_five <= hundred == set(parties)
    assert 0 < len(five) < len(twenty_five) < 300

    # bad weights: a TMF error, the file unchanged
    text = (rules / "telco-demo.experiments.yaml").read_text()
    for bad in ({"canary": 60, "stable": 60}, {"canary": 50}, {"canary": "x", "stable": 100}):
        body = assert_tmf_error(api.post("/admin/experiments/canary/weights", headers=ADMIN,
                                         json={"weights": bad}), 400)
        assert body["code"] == "INVALID_BODY"
    assert (rules / "telco-demo.experiments.yaml").read_text() == text
    assert_tmf_error(api.post("/admin/experiments/nope/start", json={}, headers=ADMIN), 404)
    assert_tmf_error(api.post("/admin/experiments/holdout-test/promote", json={"arm": "holdout"},
                              headers=ADMIN), 409)

    promoted = api.post("/admin/experiments/canary/promote", json={"arm": "stable"}, headers=ADMIN)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["experiment"]["status"] == "completed"
    status = api.get("/admin/rules", headers=ADMIN).json()
    assert status["version"] == "1.0.0"
    after = ask(api, query(parties[0], channel="23"))
    assert "experiment" not in after
    assert {i["explanation"]["ruleSetVersion"] for i in after["recommendationItem"]} == {"1.0.0"}

    history = api.get("/admin/rules/history", headers=ADMIN).json()
    entries = history if isinstance(history, list) else history.get("history", history.get("entries"))
    actions = [(e["action"], e.get("experimentId")) for e in entries]
    for action in ("experiment-start", "experiment-weights", "experiment-promote"):
        assert (action, "canary") in actions, actions
    assert all(e["by"] and e["at"] for e in entries if e["action"].startswith("experiment-"))
    weights = [e for e in entries if e["action"] == "experiment-weights"]
    assert [e["weights"]["canary"] for e in weights] == [100, 25]        # newest first
    # the OpenAPI document lists the report
    assert "/admin/experiments/{experiment_id}/report" in api.get("/openapi.json").json()["paths"]

    # a file broken by hand: its problems with file:line over HTTP, and no experiment serves
    assert arm_of(ask(api, query("party-1"))) is not None
    path = rules / "telco-demo.experiments.yaml"
    path.write_text(path.read_text().replace("weight: 50", "weight: 40", 1))
    listing = wait_until(lambda: (lambda found: found if found["problems"] else None)(
        api.get("/admin/experiments", headers=ADMIN).json()), 10)
    problem = next(p for p in listing["problems"] if p["code"] == "weights-not-100")
    assert problem["severity"] == "error" and problem["line"] > 1 and problem["hint"]
    assert problem["text"].startswith(f"{problem['file']}:{problem['line']}:")
    linted = api.get("/admin/rules/overview", headers=ADMIN).json()["lint"]["problems"]
    assert any(p["code"] == "weights-not-100" and p["line"] == problem["line"] for p in linted)
    assert wait_until(lambda: "experiment" not in ask(api, query("party-1")), PATIENCE)
