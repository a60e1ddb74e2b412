"""The conversion report's funnel over every recorded decision, through
HTTP, `flask sales conversion` and the Studio, on both stores (GROUP BY on
PostgreSQL, Python on the embedded store: the same numbers)."""
from __future__ import annotations

import json
import sys

import cliprocess
from helpers import PATIENCE, ROOT, Client, assert_tmf_error, wait_until
from test_decision_log import R, answer, instant_query, metric
from test_reactions import react
from test_recommendation_api import make_customer

REPORT = "/tmf-api/sales/v4/conversionReport"
LEADS = "/tmf-api/sales/v4/salesLead"
COUNTS = ("decisions", "items", "shown", "clicked", "leads", "accepted")


def lead(api, decision, item_id, status=None):
    response = api.post(LEADS, json={"@type": "RecommendationSalesLead",
                                     "recommendation": {"id": decision["id"], "itemId": item_id}})
    assert response.status_code == 201, response.text
    if status:
        api.patch(response.json()["href"], json={"status": status}).raise_for_status()


def expected_rows(answers, segments, reacted, led, accepted):
    """The funnel per dimension, counted from what the API answered."""
    groups = {name: {} for name in ("total", "ruleSetVersion", "rule", "offering", "channel",
                                    "segment")}
    for decision in answers:
        for item in decision["recommendationItem"]:
            explanation = item["explanation"]
            version = (explanation["ruleSetId"], explanation["ruleSetVersion"])
            key = (decision["id"], item["id"])
            flags = {"shown": "shown" in reacted.get(key, ()),
                     "clicked": "clicked" in reacted.get(key, ()),
                     "leads": key in led, "accepted": key in accepted}
            keys = {"total": [()], "ruleSetVersion": [version],
                    "rule": [(*version, rule) for rule in explanation["ruleIds"]],
                    "offering": [(*version, item["productOffering"]["id"])],
                    "channel": [(*version, decision["channel"][0]["id"])],
                    "segment": [(*version, segments[decision["id"]])]}
            for name, group_keys in keys.items():
                for group in group_keys:
                    counts = groups[name].setdefault(group, {"ids": set(), **dict.fromkeys(
                        COUNTS[1:], 0)})
                    counts["ids"].add(decision["id"])
                    counts["items"] += 1
                    for flag, value in flags.items():
                        counts[flag] += int(value)
    return {name: {group: {"decisions": len(c.pop("ids")), **c} for group, c in found.items()}
            for name, found in groups.items()}


def as_groups(funnel: dict, name: str, key: str | None) -> dict:
    return {(row["ruleSetId"], row["ruleSetVersion"]) + ((row[key],) if key else ()):
            {c: row[c] for c in COUNTS} for row in funnel[name]}


def test_the_funnel_counts_instant_and_stored_answers(make_server):
    server = make_server()
    api = Client(server.url)
    premium = make_customer(api, "premium")
    anonymous = answer(api)                                   # channel 21, 3 items
    known = answer(api, {**instant_query(channel="23"), "relatedParty": {
        "id": premium["id"], "role": "customer", "@referredType": "Customer"}})
    stored = api.post(R, json={**instant_query(), "instantSyncRecommendation": False}).json()
    assert wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    stored = api.get(stored["href"]).json()

    react(api, anonymous, "1", "shown")
    react(api, anonymous, "1", "clicked")
    react(api, anonymous, "1", "shown")                       # a retry: counts once
    react(api, anonymous, "3", "shown")
    react(api, known, "1", "shown")
    react(api, stored, "2", "accepted")
    lead(api, anonymous, "1", status="accepted")
    lead(api, stored, "3")
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= 3, PATIENCE)

    report = api.get(REPORT).json()
    funnel = report["funnel"]
    answers = [anonymous, known, stored]
    reacted = {(anonymous["id"], "1"): {"shown", "clicked"}, (anonymous["id"], "3"): {"shown"},
               (known["id"], "1"): {"shown"}, (stored["id"], "2"): {"accepted"}}
    led = {(anonymous["id"], "1"), (stored["id"], "3")}
    accepted = {(anonymous["id"], "1"), (stored["id"], "2")}
    segments = {anonymous["id"]: None, known["id"]: "premium", stored["id"]: None}
    expected = expected_rows(answers, segments, reacted, led, accepted)
    items = sum(len(a["recommendationItem"]) for a in answers)
    assert funnel["total"] == {"decisions": 3, "items": items, "shown": 3, "clicked": 1,
                               "leads": 2, "accepted": 2}
    assert funnel["total"] == expected["total"][()]
    for name, key in (("ruleSetVersion", None), ("rule", "ruleId"), ("offering", "offeringId"),
                      ("channel", "channelId"), ("segment", "segment")):
        assert as_groups(funnel, f"by{name[0].upper()}{name[1:]}", key) == expected[name], name
    assert {row["segment"] for row in funnel["bySegment"]} == {None, "premium"}

    # filters: channel, time range; a bad date-time is a 400
    only_23 = api.get(REPORT, params={"channel": "23"}).json()["funnel"]["total"]
    assert only_23["decisions"] == 1 and only_23["shown"] == 1
    future = api.get(REPORT, params={"since": "2099-01-01T00:00:00Z"}).json()["funnel"]
    assert future["total"] == dict.fromkeys(COUNTS, 0) and future["byRule"] == []
    past = api.get(REPORT, params={"until": "2000-01-01"}).json()["funnel"]["total"]
    assert past["decisions"] == 0
    assert api.get(REPORT, params={"since": "2000-01-01", "until": "2099-01-01"}).json()[
        "funnel"]["total"] == funnel["total"]
    assert assert_tmf_error(api.get(REPORT, params={"since": "last week"}), 400)["code"] \
        == "INVALID_QUERY"

    # the same funnel on the command line, and in the Studio
    env = dict(server.env, RECO_BACKGROUND_WORKERS="false", FLASK_APP="wsgi", NO_COLOR="1")

    def cli(*args):
        done = cliprocess.run([sys.executable, "-m", "flask", "sales", "conversion", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert json.loads(cli("--json"))["funnel"] == funnel
    table = cli("--by", "rule")
    assert f"{funnel['total']['decisions']} decisions" in table
    rows = [line.split() for line in table.splitlines()]
    for row in funnel["byRule"]:
        assert [row["ruleSetId"], row["ruleSetVersion"], row["ruleId"],
                *(str(row[c]) for c in COUNTS)] in rows
    page = api.get("/studio/conversion", params={"by": "channel"})
    assert page.status_code == 200 and 'id="funnel-table"' in page.text
    assert "<td>23</td>" in page.text
