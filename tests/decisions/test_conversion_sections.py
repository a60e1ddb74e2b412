"""Each section of the conversion report counts its own leads, on both
stores: `ruleSets` is about stored (asynchronous) queries, their items and
the leads made from them; `funnel` is about every recorded answer, instant
ones too. Before: a lead made from an instant answer counted in `ruleSets`
(`leads`, `leadsByStatus`, per rule) beside the stored queries' items it
was not one of."""
from __future__ import annotations

from helpers import PATIENCE, Client, wait_until
from test_conversion_funnel import REPORT, lead
from test_decision_log import R, answer, instant_query, metric


def test_the_stored_query_section_counts_only_leads_on_stored_queries(make_server):
    api = Client(make_server().url)
    instant = answer(api)
    stored = api.post(R, json={**instant_query(), "instantSyncRecommendation": False}).json()
    assert wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    stored = api.get(stored["href"]).json()
    lead(api, instant, "1", status="inProgress")
    lead(api, instant, "2")
    lead(api, stored, "3", status="inProgress")
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total") >= 2, PATIENCE)

    # by hand: the stored query's items, and the one lead made from them
    items = stored["recommendationItem"]
    version = (items[0]["explanation"]["ruleSetId"], items[0]["explanation"]["ruleSetVersion"])
    led = next(item for item in items if item["id"] == "3")
    per_rule = {}
    for item in items:
        for rule in item["explanation"]["ruleIds"]:
            tally = per_rule.setdefault(rule, {"recommendedItems": 0, "itemsWithLead": 0,
                                               "leads": 0, "inProgress": 0})
            tally["recommendedItems"] += 1
            if item is led:
                tally["itemsWithLead"] += 1
                tally["leads"] += 1
                tally["inProgress"] += 1

    report = api.get(REPORT).json()
    [rule_set] = report["ruleSets"]
    assert (rule_set["ruleSetId"], rule_set["ruleSetVersion"]) == version
    assert rule_set["recommendedItems"] == len(items) == 3
    assert rule_set["itemsWithLead"] == 1 and rule_set["leads"] == 1, rule_set
    assert rule_set["leadsByStatus"]["inProgress"] == 1
    assert sum(rule_set["leadsByStatus"].values()) == 1
    assert {rule["ruleId"]: {"recommendedItems": rule["recommendedItems"],
                             "itemsWithLead": rule["itemsWithLead"], "leads": rule["leads"],
                             "inProgress": rule["leadsByStatus"]["inProgress"]}
            for rule in rule_set["rules"]} == per_rule

    # the funnel counts every answer's leads: 2 on the instant answer, 1 on the stored one
    assert report["funnel"]["total"]["decisions"] == 2
    assert report["funnel"]["total"]["leads"] == 3
