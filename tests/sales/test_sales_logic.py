"""The sales lead logic without a server: the status machine, the lead built
from a recommended item, and the conversion arithmetic (edge cases that are
slow or awkward to reach over HTTP)."""
from __future__ import annotations

import pytest

from app.cli.output import render_table
from app.errors import TMFError
from app.sales import (FINAL_STATUSES, STATUSES, build_recommendation_lead, check_transition,
                       conversion_report, lead_id_for, report_rows,
                       stamp_new_lead, stamp_status_change)
from app.sales.report import HEADER


# -- status machine ----------------------------------------------------------------------

ALLOWED = {
    ("acknowledged", "inProgress"), ("acknowledged", "pending"),
    ("inProgress", "pending"), ("pending", "inProgress"),
} | {(old, new) for old in ("acknowledged", "inProgress", "pending") for new in FINAL_STATUSES}


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_every_transition(old, new):
    problem = check_transition(old, new)
    if old == new or (old, new) in ALLOWED:
        assert problem is None
    else:
        assert problem and old in problem and new in problem


def test_final_and_removed_status_messages():
    assert "final" in check_transition("cancelled", "inProgress")
    assert "final" in check_transition("rejected", "inProgress")
    assert "removed" in check_transition("inProgress", None)
    assert "inProgress" in check_transition("pending", "acknowledged")  # names where it can go
    assert check_transition(None, "accepted") is None


def test_stamps():
    lead = stamp_new_lead({"name": "x"}, "T0")
    assert lead == {"name": "x", "creationDate": "T0", "status": "acknowledged",
                    "statusChangeDate": "T0"}
    imported = stamp_new_lead({"status": "pending", "statusChangeDate": "T-1"}, "T0")
    assert imported["status"] == "pending" and imported["statusChangeDate"] == "T-1"
    current = {"status": "acknowledged"}
    assert stamp_status_change(current, {"status": "inProgress"}, "T1")["statusChangeDate"] == "T1"
    assert "statusChangeDate" not in stamp_status_change(current, {"status": "acknowledged"}, "T1")
    assert "statusChangeDate" not in stamp_status_change(current, {"name": "y"}, "T1")
    dated = {"status": "inProgress", "statusChangeDate": "T-5"}
    assert stamp_status_change(current, dated, "T1") == dated


# -- lead from a recommended item ----------------------------------------------------

ITEM = {"id": "2", "priority": 2,
        "productOffering": {"id": "6543", "href": "http://h/po/6543", "name": "TMFone Screen Protector",
                            "lifecycleStatus": "Active"},
        "@type": "ExplainedRecommendationItem",
        "explanation": {"ruleIds": ["R1"], "ruleSetId": "telco-demo", "ruleSetVersion": "3",
                        "rulePriority": 30}}
RECO = {"id": "q1", "href": "http://h/q/q1", "state": "done", "channel": [{"id": "21", "name": "app"}],
        "relatedParty": {"id": "p-1", "role": "customer"}, "recommendationItem": [ITEM]}


def build(body, reco=RECO, customer=None):
    return build_recommendation_lead(
        body, get_recommendation=lambda key: reco if reco and key == reco["id"] else None,
        find_customer=lambda party: customer, schema_location="http://h/schema")


def error_of(body, **kwargs) -> TMFError:
    with pytest.raises(TMFError) as caught:
        build(body, **kwargs)
    return caught.value


def test_lead_is_filled_from_the_item_and_the_query():
    lead = build({"@type": "RecommendationSalesLead", "recommendation": {"id": "q1", "itemId": "2"},
                  "priority": "high"})
    assert lead.lead_id == lead_id_for("q1", "2") != lead_id_for("q1", "1")
    assert lead.body == {
        "priority": "high", "name": "Interest in TMFone Screen Protector",
        "productOffering": {"id": "6543", "href": "http://h/po/6543", "name": "TMFone Screen Protector",
                            "@referredType": "ProductOffering"},
        "relatedParty": [{"id": "p-1", "role": "customer", "@referredType": "Party"}],
        "channel": {"id": "21", "name": "app"}}
    assert lead.extension == {
        "@type": "RecommendationSalesLead", "@baseType": "SalesLead", "@schemaLocation": "http://h/schema",
        "recommendation": {"id": "q1", "href": "http://h/q/q1", "itemId": "2", "itemPriority": 2,
                           "explanation": ITEM["explanation"],
                           "@referredType": "QueryProductRecommendation"}}


def test_known_customer_and_client_values_win():
    customer = {"id": "c-9", "href": "http://h/c/c-9", "name": "Jane"}
    agent = {"id": "a-1", "role": "salesAgent", "@referredType": "Individual"}
    lead = build({"recommendation": {"id": "q1", "itemId": "2"}, "name": "Call Jane",
                  "channel": {"id": "24"}, "relatedParty": agent,
                  "productOffering": {"id": "6543"}}, customer=customer)
    assert lead.body["name"] == "Call Jane" and lead.body["channel"] == {"id": "24"}
    assert lead.body["relatedParty"] == [agent, {"id": "c-9", "href": "http://h/c/c-9", "name": "Jane",
                                                 "role": "customer", "@referredType": "Customer"}]


def test_anonymous_query_gives_no_party():
    anonymous = {**RECO, "relatedParty": None}
    assert "relatedParty" not in build({"recommendation": {"id": "q1", "itemId": "2"}},
                                       reco=anonymous).body


@pytest.mark.parametrize("body,status,code", [
    ({"@type": "RecommendationSalesLead"}, 400, "INVALID_BODY"),
    ({"@type": "VipSalesLead", "recommendation": {"id": "q1", "itemId": "2"}}, 400, "INVALID_BODY"),
    ({"recommendation": "q1"}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "q1"}}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "q1", "itemId": 2}}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "", "itemId": "2"}}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "q1", "itemId": "2", "ruleIds": ["R9"]}}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "q1", "itemId": "2", "@referredType": "Cart"}}, 400, "INVALID_BODY"),
    ({"recommendation": {"id": "nope", "itemId": "2"}}, 404, "RECOMMENDATION_NOT_FOUND"),
    ({"recommendation": {"id": "q1", "itemId": "9"}}, 404, "RECOMMENDATION_ITEM_NOT_FOUND"),
    ({"recommendation": {"id": "q1", "itemId": "2"}, "productOffering": {"id": "7301"}},
     400, "RECOMMENDATION_MISMATCH"),
    ({"recommendation": {"id": "q1", "itemId": "2"}, "productOffering": "6543"}, 400, "INVALID_BODY"),
])
def test_reference_errors(body, status, code):
    error = error_of(body)
    assert (error.status, error.code) == (status, code), error.message


def test_query_not_done_yet():
    error = error_of({"recommendation": {"id": "q1", "itemId": "2"}},
                     reco={**RECO, "state": "inProgress", "recommendationItem": None})
    assert (error.status, error.code) == (400, "RECOMMENDATION_NOT_DONE")
    assert "inProgress" in error.message


# -- conversion report ---------------------------------------------------------------

def item(item_id, rules, version="3", rule_set="telco-demo"):
    return {"id": item_id, "explanation": {"ruleIds": rules, "ruleSetId": rule_set,
                                           "ruleSetVersion": version}}


def lead(reco_id, item_id, rules, status, version="3"):
    return {"id": f"{reco_id}/{item_id}", "status": status,
            "recommendation": {"id": reco_id, "itemId": item_id,
                               "explanation": item(item_id, rules, version)["explanation"]}}


def test_report_counts_per_rule_set_version_and_rule():
    recommendations = [
        {"id": "a", "recommendationItem": [item("1", ["R1"]), item("2", ["R1"]), item("3", ["R3"])]},
        {"id": "b", "recommendationItem": [item("1", ["R2", "R1"]), item("2", ["R10"])]},
        {"id": "c", "recommendationItem": [item("1", ["R1"], version="2")]},
        {"id": "d", "state": "inProgress"},
    ]
    leads = [lead("a", "1", ["R1"], "accepted"), lead("a", "3", ["R3"], "inProgress"),
             lead("b", "1", ["R2", "R1"], "rejected"),
             lead("gone", "1", ["R3"], "cancelled"),          # its query was deleted
             {"id": "plain", "status": "accepted"}]            # not from a recommendation
    report = conversion_report(recommendations, leads, generated_at="T")
    assert report["@type"] == "SalesConversionReport" and report["generatedAt"] == "T"
    assert [(s["ruleSetId"], s["ruleSetVersion"]) for s in report["ruleSets"]] == [
        ("telco-demo", "2"), ("telco-demo", "3")]
    v2, v3 = report["ruleSets"]
    assert (v2["recommendedItems"], v2["itemsWithLead"], v2["leads"], v2["conversionRate"]) == (1, 0, 0, 0.0)
    assert (v3["recommendedItems"], v3["itemsWithLead"], v3["leads"]) == (5, 3, 4)
    assert v3["conversionRate"] == 0.6
    assert v3["leadsByStatus"] == {"acknowledged": 0, "inProgress": 1, "pending": 0, "accepted": 1,
                                   "rejected": 1, "cancelled": 1}
    rules = {r["ruleId"]: r for r in v3["rules"]}
    assert [r["ruleId"] for r in v3["rules"]] == ["R1", "R2", "R3", "R10"]
    assert (rules["R1"]["recommendedItems"], rules["R1"]["itemsWithLead"], rules["R1"]["leads"]) == (3, 2, 2)
    assert rules["R1"]["conversionRate"] == 0.6667
    assert rules["R3"]["leads"] == 2 and rules["R3"]["itemsWithLead"] == 1
    assert rules["R3"]["leadsByStatus"]["cancelled"] == 1
    assert rules["R10"]["itemsWithLead"] == 0 and rules["R10"]["conversionRate"] == 0.0

    only = conversion_report(recommendations, leads, generated_at="T", rule_set_version="2")
    assert [s["ruleSetVersion"] for s in only["ruleSets"]] == ["2"]
    assert conversion_report(recommendations, leads, generated_at="T",
                             rule_set_id="other")["ruleSets"] == []


def test_report_table():
    report = conversion_report([{"id": "a", "recommendationItem": [item("1", ["R1"])]}],
                               [lead("gone", "1", ["R9"], "pending")], generated_at="T")
    rows = report_rows(report)
    assert rows[0][:7] == ("telco-demo", "3", "all", "1", "0", "0.0%", "1")
    assert rows[2][:7] == ("telco-demo", "3", "R9", "0", "0", "-", "1")
    lines = render_table(HEADER, rows, numeric_from=3)       # as `flask sales conversion` prints it
    assert lines[0].startswith("RULE SET") and "cancelled" in lines[0]
    assert set(lines[1]) == {"─"} and len(lines) == 5
    rate_end = lines[0].index("RATE") + len("RATE")  # numbers are right-aligned
    assert lines[2][rate_end - 4:rate_end] == "0.0%" and lines[4][rate_end - 2:rate_end] == " -"


def oracle_report(recommendations, leads):
    """The report's definition, document by document (the implementation
    before it became aggregates the store runs): the reference the stores'
    answers are compared with. {(set, version[, rule]): (items, with lead,
    leads, {status: n})}."""
    def explained(value):
        explanation = value.get("explanation") if isinstance(value, dict) else None
        if not isinstance(explanation, dict) or not explanation.get("ruleSetId"):
            return None
        rules = list(dict.fromkeys(str(rule) for rule in explanation.get("ruleIds") or []))
        return (str(explanation["ruleSetId"]), str(explanation.get("ruleSetVersion") or ""), rules)

    tallies: dict = {}

    def targets(attribution):
        set_id, version, rules = attribution
        return [tallies.setdefault(key, [0, 0, 0, dict.fromkeys(STATUSES, 0)])
                for key in [(set_id, version)] + [(set_id, version, rule) for rule in rules]]

    referenced = set()
    for lead in leads:
        attribution = explained(lead.get("recommendation"))
        if attribution:
            referenced.add((str(lead["recommendation"].get("id")),
                            str(lead["recommendation"].get("itemId"))))
            for target in targets(attribution):
                target[2] += 1
                if lead.get("status") in target[3]:
                    target[3][lead["status"]] += 1
    for recommendation in recommendations:
        for entry in recommendation.get("recommendationItem") or []:
            attribution = explained(entry)
            if attribution:
                for target in targets(attribution):
                    target[0] += 1
                    target[1] += (recommendation["id"], str(entry.get("id"))) in referenced
    return tallies


def as_tallies(report):
    found = {}
    for rule_set in report["ruleSets"]:
        key = (rule_set["ruleSetId"], rule_set["ruleSetVersion"])
        for target, tally in [(key, rule_set)] + [(key + (r["ruleId"],), r) for r in rule_set["rules"]]:
            found[target] = [tally["recommendedItems"], tally["itemsWithLead"], tally["leads"],
                             tally["leadsByStatus"]]
    return found


def test_the_report_a_store_aggregates_matches_its_definition(store_url):
    """The same answer on TinyDB (Python) and PostgreSQL (GROUP BY) for a
    data set with the awkward cases: several versions and rule sets, items
    with two rules or none or no explanation, leads whose query was deleted,
    leads without attribution, and more referenced queries than one look-up
    takes (app/sales/report.py, _IDS_PER_QUERY)."""
    import random

    from app.sales.resource import KIND, QUERY_KIND, current_report
    from app.store import open_store

    rng = random.Random(680)
    recommendations, leads = [], []
    for number in range(1500):
        items = []
        for position in range(rng.choice([0, 1, 2, 3])):
            rules = rng.sample(["R1", "R2", "R10", "R3"], rng.choice([0, 1, 1, 2]))
            explanation = {"ruleSetId": rng.choice(["telco-demo", "telco-demo", "b2b"]),
                           "ruleSetVersion": rng.choice(["1", "2", "10"]), "ruleIds": rules}
            if rng.random() < 0.1:
                explanation = {"ruleIds": rules}  # no rule set: not counted
            items.append({"id": str(position + 1), "explanation": explanation})
        recommendations.append({"id": f"q{number}", "recommendationItem": items})
        for entry in items:
            if rng.random() < 0.5:
                leads.append({"id": f"l{len(leads)}", "status": rng.choice(STATUSES),
                              "recommendation": {"id": f"q{number}", "itemId": entry["id"],
                                                 "explanation": entry["explanation"]}})
    leads.append({"id": "plain", "status": "accepted"})
    deleted = {f"q{number}" for number in range(0, 1500, 7)}
    kept = [r for r in recommendations if r["id"] not in deleted]
    store = open_store(store_url)
    try:
        store.insert_many(QUERY_KIND.collection, kept)
        store.insert_many(KIND.collection, leads)
        report = current_report(store)
        assert as_tallies(report) == oracle_report(kept, leads)
        assert sum(s["itemsWithLead"] for s in report["ruleSets"]) > 500  # not a vacuous set
        only = current_report(store, rule_set_id="b2b", rule_set_version="10")
        assert as_tallies(only) == {key: value for key, value in oracle_report(kept, leads).items()
                                    if key[:2] == ("b2b", "10")}
    finally:
        store.close()
