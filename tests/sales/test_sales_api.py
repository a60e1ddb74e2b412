"""TMF699 salesLead over HTTP against a real server: every operation, the
status machine, every error, the four events, and the loop from a TMF680
recommendation to a lead, its status changes and the conversion report (HTTP
and `flask sales conversion`)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

import cliprocess
from helpers import PATIENCE, ROOT, Client, assert_tmf_error

SALES = "/tmf-api/sales/v4"
L = SALES + "/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
REPORT = SALES + "/conversionReport"
STATUSES = ("acknowledged", "inProgress", "pending", "accepted", "rejected", "cancelled")


def lead_body(**extra):
    body = {"name": f"Lead {uuid.uuid4().hex[:8]}"}
    body.update(extra)
    return body


def create(api, **extra) -> dict:
    response = api.post(L, json=lead_body(**extra))
    assert response.status_code == 201, response.text
    return response.json()


def path_of(api, resource: dict) -> str:
    return resource["href"].replace(api.url, "")


def is_date(value) -> bool:
    return isinstance(value, str) and value.endswith("Z") and "T" in value


# -- create and retrieve ----------------------------------------------------------------

def test_create_and_retrieve(api):
    response = api.post(L, json=lead_body(
        priority="high", rating="hot", description="met at the shop",
        productOffering={"id": "7002", "name": "Mobile 50GB"},
        relatedParty=[{"id": "p-1", "role": "prospect", "@referredType": "Individual"}],
        channel={"id": "23", "name": "retail store"}, validFor={"startDateTime": "2026-10-01T00:00:00Z"}))
    assert response.status_code == 201, response.text
    lead = response.json()
    uuid.UUID(lead["id"])
    assert lead["href"] == f"{L}/{lead['id']}" == response.headers["Location"]
    assert lead["@type"] == "SalesLead"
    assert lead["status"] == "acknowledged" and lead["priority"] == "high"
    assert is_date(lead["creationDate"]) and lead["statusChangeDate"] == lead["creationDate"]
    assert lead["channel"] == {"id": "23", "name": "retail store"}
    assert api.get(path_of(api, lead)).json() == lead
    selected = api.get(path_of(api, lead), params={"fields": "status,priority"}).json()
    assert selected == {"id": lead["id"], "href": lead["href"], "@type": "SalesLead",
                        "status": "acknowledged", "priority": "high"}


def test_first_status_may_be_given(api):
    lead = create(api, status="pending", statusChangeDate="2026-09-30T10:00:00Z")
    assert lead["status"] == "pending" and lead["statusChangeDate"] == "2026-09-30T10:00:00Z"


@pytest.mark.parametrize("body,field", [
    ({"priority": "low"}, "name"),                               # name is mandatory
    (lead_body(status="won"), "status"),                         # SalesLeadStateType only
    (lead_body(priority="urgent"), "priority"),                  # SalesLeadPriorityType only
    (lead_body(nmae="typo"), "nmae"),
    (lead_body(id="mine"), "id"),
    (lead_body(creationDate="2026-01-01T00:00:00Z"), "creationDate"),
    (lead_body(referredDate="yesterday"), "referredDate"),
    (lead_body(relatedParty=[{"id": "p-1"}]), "relatedParty"),   # TMF699 needs @referredType
    (lead_body(name=42), "name"),
])
def test_create_rejects_invalid_bodies(api, body, field):
    error = assert_tmf_error(api.post(L, json=body), 400)
    assert field in error["details"], error


def test_create_rejects_non_json(api):
    assert_tmf_error(api.post(L, data="name=x", headers={"Content-Type": "text/plain"}), 415)
    assert_tmf_error(api.post(L, data="[1]", headers={"Content-Type": "application/json"}), 400)
    assert_tmf_error(api.post(L, data="{", headers={"Content-Type": "application/json"}), 400)


def test_subclass_extension_travels(api):
    lead = create(api, **{"@type": "PartnerSalesLead", "@baseType": "SalesLead", "partnerId": "x7"})
    assert lead["partnerId"] == "x7" and lead["@type"] == "PartnerSalesLead"


def test_unknown_lead(api):
    missing = f"{L}/{uuid.uuid4()}"
    assert_tmf_error(api.get(missing), 404)
    assert_tmf_error(api.patch(missing, json={"name": "x"}), 404)
    assert_tmf_error(api.delete(missing), 404)
    assert_tmf_error(api.request("PUT", missing, json={}), 405)


# -- list ------------------------------------------------------------------------------

def test_list_filter_fields_sort_and_paging(api):
    tag = uuid.uuid4().hex
    leads = [create(api, name=f"{tag} {n}", description=tag, priority=priority)
             for n, priority in enumerate(("low", "high", "medium"))]
    api.patch(path_of(api, leads[1]), json={"status": "inProgress"})

    listed = api.get(L, params={"description": tag, "sort": "-name"})
    assert listed.status_code == 200
    assert listed.headers["X-Total-Count"] == "3" == listed.headers["X-Result-Count"]
    assert [lead["name"] for lead in listed.json()] == [f"{tag} 2", f"{tag} 1", f"{tag} 0"]

    page = api.get(L, params={"description": tag, "sort": "name", "offset": 1, "limit": 1,
                              "fields": "name,priority"})
    assert page.status_code == 206
    assert page.headers["X-Total-Count"] == "3" and page.headers["X-Result-Count"] == "1"
    assert page.json() == [{"id": leads[1]["id"], "href": leads[1]["href"], "@type": "SalesLead",
                            "name": f"{tag} 1", "priority": "high"}]

    in_progress = api.get(L, params={"description": tag, "status": "inProgress"}).json()
    assert [lead["id"] for lead in in_progress] == [leads[1]["id"]]
    either = api.get(L, params={"description": tag, "priority": "low,medium", "sort": "name"}).json()
    assert [lead["id"] for lead in either] == [leads[0]["id"], leads[2]["id"]]
    recent = api.get(L, params={"description": tag, "creationDate.gte": leads[0]["creationDate"]})
    assert recent.headers["X-Total-Count"] == "3"

    assert_tmf_error(api.get(L, params={"colour": "red"}), 400)
    assert_tmf_error(api.get(L, params={"fields": "nmae"}), 400)
    assert_tmf_error(api.get(L, params={"limit": "-1"}), 400)


# -- patch, status machine, delete -------------------------------------------------------

def test_patch_is_a_merge_patch_and_dates_status_changes(api):
    lead = create(api, description="to drop", note=[{"text": "called once"}])
    path = path_of(api, lead)
    patched = api.patch(path, json={"priority": "medium", "description": None, "rating": "warm"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["priority"] == "medium" and body["rating"] == "warm" and "description" not in body
    assert body["note"] == [{"text": "called once"}]
    assert body["statusChangeDate"] == lead["statusChangeDate"]  # no status change
    assert body["creationDate"] == lead["creationDate"]

    time.sleep(0.01)
    moved = api.patch(path, json={"status": "inProgress",
                                  "statusChangeReason": "customer called back"}).json()
    assert moved["status"] == "inProgress" and moved["statusChangeDate"] > lead["statusChangeDate"]
    dated = api.patch(path, json={"status": "pending", "statusChangeDate": "2026-10-02T09:00:00Z"}).json()
    assert dated["statusChangeDate"] == "2026-10-02T09:00:00Z"
    assert api.get(path).json() == dated
    # application/json is accepted for PATCH as well
    plain = api.request("PATCH", path, json={"rating": "hot"})
    assert plain.status_code == 200 and plain.json()["rating"] == "hot"


@pytest.mark.parametrize("steps,wrong", [
    (["inProgress", "pending", "inProgress", "accepted"], "inProgress"),
    (["pending", "rejected"], "inProgress"),
    (["cancelled"], "inProgress"),
    (["inProgress"], "acknowledged"),
    (["accepted"], "cancelled"),
])
def test_status_machine(api, steps, wrong):
    lead = create(api)
    path = path_of(api, lead)
    for status in steps:
        response = api.patch(path, json={"status": status})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    error = assert_tmf_error(api.patch(path, json={"status": wrong}), 400)
    assert error["code"] == "INVALID_STATE_TRANSITION" and steps[-1] in error["message"]
    assert api.get(path).json()["status"] == steps[-1]


def test_patch_errors(api):
    lead = create(api)
    path = path_of(api, lead)
    assert_tmf_error(api.patch(path, json={"status": "won"}), 400)
    promoted = assert_tmf_error(api.patch(path, json={"@type": "RecommendationSalesLead"}), 400)
    assert promoted["code"] == "NOT_PATCHABLE"
    assert_tmf_error(api.patch(path, json={"priority": "urgent"}), 400)
    assert_tmf_error(api.patch(path, json={"nmae": "typo"}), 400)
    assert_tmf_error(api.patch(path, json={"name": None}), 400)  # mandatory
    assert "removed" in assert_tmf_error(api.patch(path, json={"status": None}), 400)["message"]
    for owned in ("id", "href", "creationDate", "recommendation"):
        assert assert_tmf_error(api.patch(path, json={owned: "x"}), 400)["code"] == "NOT_PATCHABLE"
    assert_tmf_error(api.patch(path, data="name=x", headers={"Content-Type": "text/plain"}), 415)
    assert_tmf_error(api.patch(path, data="[]"), 400)
    assert api.get(path).json() == lead


def test_delete(api):
    lead = create(api)
    path = path_of(api, lead)
    response = api.delete(path)
    assert response.status_code == 204 and response.content == b""
    assert_tmf_error(api.get(path), 404)
    assert_tmf_error(api.delete(path), 404)


# -- hub and events --------------------------------------------------------------------

def test_hub_and_the_four_events(api, listener):
    response = api.post(SALES + "/hub", json={"callback": listener.url})
    assert response.status_code == 201, response.text
    hub = response.json()
    assert response.headers["Location"].endswith(f"{SALES}/hub/{hub['id']}")
    assert api.get(f"{SALES}/hub/{hub['id']}").json() == hub
    assert_tmf_error(api.get(f"{Client.CUSTOMER}/hub/{hub['id']}"), 404)  # hubs belong to their API
    try:
        lead = create(api)
        path = path_of(api, lead)
        api.patch(path, json={"priority": "high"})
        api.patch(path, json={"status": "inProgress"})
        api.delete(path)

        def mine(event):
            return event["event"]["salesLead"]["id"] == lead["id"]
        seen = {}
        for event_type in ("SalesLeadCreateEvent", "SalesLeadAttributeValueChangeEvent",
                           "SalesLeadStateChangeEvent", "SalesLeadDeleteEvent"):
            found = listener.wait_for(lambda e, t=event_type: e["eventType"] == t and mine(e))
            assert found, event_type
            seen[event_type] = found[0]
        # (the status change also changes statusChangeDate: a second attribute change event)
        # delivery is at least once: a retried delivery repeats its eventId
        states = {e["eventId"] for e in listener.events
                  if e["eventType"] == "SalesLeadStateChangeEvent" and mine(e)}
        assert len(states) == 1
        assert seen["SalesLeadCreateEvent"]["event"]["salesLead"] == lead
        assert seen["SalesLeadAttributeValueChangeEvent"]["event"]["salesLead"]["priority"] == "high"
        assert seen["SalesLeadStateChangeEvent"]["event"]["salesLead"]["status"] == "inProgress"
        for event in seen.values():
            assert event["eventId"] and is_date(event["eventTime"])
    finally:
        assert api.delete(f"{SALES}/hub/{hub['id']}").status_code == 204
    assert_tmf_error(api.get(f"{SALES}/hub/{hub['id']}"), 404)
    assert_tmf_error(api.post(SALES + "/hub", json={"callback": "http://169.254.169.254/x"}), 400)


# -- recommendation -> lead -> status changes -> conversion report -------------------

def async_query(customer_party=None, cart=("6547",), channel="21"):
    body = {"instantSyncRecommendation": False, "channel": [{"id": channel}],
            "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": str(n), "quantity": 1, "productOffering": {"id": offering}}
                for n, offering in enumerate(cart, 1)]}]}
    if customer_party:
        body["relatedParty"] = customer_party
    return body


def recommend(api, body, wait=True) -> dict:
    response = api.post(R, json=body)
    assert response.status_code == 201, response.text
    query = response.json()
    deadline = time.time() + PATIENCE
    while wait and query["state"] != "done":
        assert time.time() < deadline and query["state"] in ("accepted", "inProgress"), query
        time.sleep(0.05)
        query = api.get(path_of(api, query)).json()
    return query


def reference(query, offering_id) -> dict:
    item = next(i for i in query["recommendationItem"] if i["productOffering"]["id"] == offering_id)
    return {"id": query["id"], "itemId": item["id"]}


def from_item(api, query, offering_id, **extra):
    return api.post(L, json={"@type": "RecommendationSalesLead",
                             "recommendation": reference(query, offering_id), **extra})


def report_without_time(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "generatedAt"}


def run_cli(server, *args) -> subprocess.CompletedProcess:
    env = dict(server.env, RECO_BACKGROUND_WORKERS="false", FLASK_APP="wsgi")
    env.pop("NO_COLOR", None)
    return cliprocess.run([sys.executable, "-m", "flask", "sales", "conversion", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_recommendation_to_lead_to_conversion_report(make_server, listener):
    server = make_server()
    api = Client(server.url)
    hub = api.post(SALES + "/hub", json={"callback": listener.url}).json()

    # The demo's E1: an anonymous shopper, TMFone in the cart, mobile app channel
    query = recommend(api, async_query())
    items = query["recommendationItem"]
    assert [i["productOffering"]["id"] for i in items] == ["6542", "6543", "7301"]
    assert [i["explanation"]["ruleIds"] for i in items] == [["R1"], ["R1"], ["R3"]]
    version = items[0]["explanation"]["ruleSetVersion"]
    rule_set = items[0]["explanation"]["ruleSetId"]

    # The shopper wants the insurance: one call with the reference
    response = from_item(api, query, "7301", priority="high")
    assert response.status_code == 201, response.text
    insurance = response.json()
    assert response.headers["Location"] == insurance["href"]
    assert insurance["@type"] == "RecommendationSalesLead" and insurance["@baseType"] == "SalesLead"
    assert insurance["productOffering"]["id"] == "7301" and insurance["productOffering"]["name"]
    assert insurance["channel"]["id"] == "21"
    assert "relatedParty" not in insurance  # anonymous shopper
    assert insurance["name"] == f"Interest in {insurance['productOffering']['name']}"
    assert insurance["status"] == "acknowledged" and insurance["priority"] == "high"
    assert insurance["recommendation"] == {
        "id": query["id"], "href": query["href"], "itemId": items[2]["id"], "itemPriority": 3,
        "explanation": items[2]["explanation"], "@referredType": "QueryProductRecommendation"}
    schema = api.get(insurance["@schemaLocation"])   # a relative link
    assert schema.status_code == 200 and schema.json()["title"] == "RecommendationSalesLead"
    assert api.get(path_of(api, insurance)).json() == insurance

    # The same item again (a retry, a double click) is one lead, not two
    again = assert_tmf_error(from_item(api, query, "7301"), 409)
    assert again["code"] == "LEAD_EXISTS" and insurance["href"] in again["message"]

    # The case: worked, then won; the insurance: rejected
    case = from_item(api, query, "6542").json()
    for status in ("inProgress", "accepted"):
        assert api.patch(path_of(api, case), json={"status": status}).status_code == 200
    assert api.patch(path_of(api, insurance), json={"status": "rejected"}).status_code == 200
    error = assert_tmf_error(api.patch(path_of(api, insurance), json={"status": "inProgress"}), 400)
    assert error["code"] == "INVALID_STATE_TRANSITION"

    # The lead is the lead of its recommended offering
    for fixed in ({"productOffering": {"id": "6550"}}, {"@type": "SalesLead"}):
        assert assert_tmf_error(api.patch(path_of(api, case), json=fixed), 400)["code"] == "NOT_PATCHABLE"
    # Leads are found by the recommendation and rule they came from
    by_query = api.get(L, params={"recommendation.id": query["id"], "sort": "recommendation.itemPriority"})
    assert [lead["id"] for lead in by_query.json()] == [case["id"], insurance["id"]]
    by_rule = api.get(L, params={"recommendation.explanation.ruleIds": "R3", "fields": "status"}).json()
    assert by_rule == [{"id": insurance["id"], "href": insurance["href"],
                        "@type": "RecommendationSalesLead", "status": "rejected"}]

    # Events of the lead made from a recommendation
    created_events = listener.wait_for(lambda e: e["eventType"] == "SalesLeadCreateEvent"
                                       and e["event"]["salesLead"]["id"] == case["id"])
    assert created_events[0]["event"]["salesLead"]["recommendation"]["explanation"]["ruleIds"] == ["R1"]
    assert listener.wait_for(lambda e: e["eventType"] == "SalesLeadStateChangeEvent"
                             and e["event"]["salesLead"]["status"] == "accepted")

    # The conversion report
    zero = dict.fromkeys(STATUSES, 0)
    response = api.get(REPORT)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["@type"] == "SalesConversionReport" and is_date(report["generatedAt"])
    assert report["ruleSets"] == [{
        "ruleSetId": rule_set, "ruleSetVersion": version,
        "recommendedItems": 3, "itemsWithLead": 2, "conversionRate": 0.6667, "leads": 2,
        "leadsByStatus": {**zero, "accepted": 1, "rejected": 1},
        "rules": [
            {"ruleId": "R1", "recommendedItems": 2, "itemsWithLead": 1, "conversionRate": 0.5,
             "leads": 1, "leadsByStatus": {**zero, "accepted": 1}},
            {"ruleId": "R3", "recommendedItems": 1, "itemsWithLead": 1, "conversionRate": 1.0,
             "leads": 1, "leadsByStatus": {**zero, "rejected": 1}},
        ]}]
    assert api.get(REPORT, params={"ruleSetVersion": version}).json()["ruleSets"] == report["ruleSets"]
    assert api.get(REPORT, params={"ruleSetVersion": version + "-other"}).json()["ruleSets"] == []
    assert api.get(REPORT, params={"ruleSetId": rule_set}).json()["ruleSets"] == report["ruleSets"]
    assert_tmf_error(api.get(REPORT, params={"rule": "R1"}), 400)

    # The same report on the command line: JSON, and a colour-free table when piped
    as_json = run_cli(server, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert report_without_time(json.loads(as_json.stdout)) == report_without_time(report)
    table = run_cli(server)
    assert table.returncode == 0, table.stderr
    assert "\x1b[" not in table.stdout
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0][:3] == ["RULE", "SET", "VERSION"]
    assert [rule_set, version, "all", "3", "2", "66.7%", "2", "0", "0", "0", "1", "1", "0"] in rows
    assert [rule_set, version, "R3", "1", "1", "100.0%", "1", "0", "0", "0", "0", "1", "0"] in rows
    other = run_cli(server, "--rule-set", "nothing-here")
    assert other.returncode == 0 and "No recommended items" in other.stdout

    api.delete(f"{SALES}/hub/{hub['id']}")


def test_lead_names_the_known_customer(api):
    engaged = uuid.uuid4().hex
    customer = api.post(Client.CUSTOMER + "/customer", json={
        "name": "Jane Standard", "engagedParty": {"id": engaged, "@referredType": "Individual"},
        "characteristic": [{"name": "segment", "value": "standard"}]}).json()
    query = recommend(api, async_query({"id": engaged, "role": "customer"}, channel="22"))
    agent = {"id": "agent-7", "role": "salesAgent", "@referredType": "Individual"}
    response = from_item(api, query, "6543", relatedParty=[agent], channel={"id": "24"},
                         name="Call Jane about the protector")
    assert response.status_code == 201, response.text
    lead = response.json()
    assert lead["relatedParty"] == [agent, {"id": customer["id"], "href": customer["href"],
                                            "name": "Jane Standard", "role": "customer",
                                            "@referredType": "Customer"}]
    assert lead["channel"] == {"id": "24"} and lead["name"] == "Call Jane about the protector"
    by_customer = api.get(L, params={"relatedParty.id": customer["id"]}).json()
    assert [found["id"] for found in by_customer] == [lead["id"]]


def test_recommendation_reference_errors(api):
    query = recommend(api, async_query())
    item_id = reference(query, "6543")["itemId"]

    def post(body):
        return api.post(L, json=body)
    missing = assert_tmf_error(post({"@type": "RecommendationSalesLead",
                                     "recommendation": {"id": str(uuid.uuid4()), "itemId": "1"}}), 404)
    assert missing["code"] == "RECOMMENDATION_NOT_FOUND"
    no_item = assert_tmf_error(post({"recommendation": {"id": query["id"], "itemId": "99"}}), 404)
    assert no_item["code"] == "RECOMMENDATION_ITEM_NOT_FOUND"
    mismatch = assert_tmf_error(post({"recommendation": {"id": query["id"], "itemId": item_id},
                                      "productOffering": {"id": "7003"}}), 400)
    assert mismatch["code"] == "RECOMMENDATION_MISMATCH"
    for bad in ({"@type": "RecommendationSalesLead", "name": "no reference"},
                {"@type": "PartnerSalesLead", "recommendation": {"id": query["id"], "itemId": item_id}},
                {"recommendation": [query["id"], item_id]},
                {"recommendation": {"id": query["id"]}},
                {"recommendation": {"id": query["id"], "itemId": 2}},
                {"recommendation": {"id": query["id"], "itemId": item_id, "explanation": {}}},
                {"recommendation": {"id": query["id"], "itemId": item_id}, "priority": "urgent"},
                {"recommendation": {"id": query["id"], "itemId": item_id}, "nmae": "typo"}):
        error = assert_tmf_error(post(bad), 400)
        assert error["code"] == "INVALID_BODY", (bad, error)
    # nothing of the above made a lead
    assert api.get(L, params={"recommendation.id": query["id"]}).json() == []


def test_query_without_items_yet(make_server, tmp_path):
    """Without a valid rule set an async query is retried for seconds before it
    ends in terminatedWithError: until then it has no items to make a lead of."""
    server = make_server(rules_dir=tmp_path / "no-rules")
    api = Client(server.url)
    query = recommend(api, async_query(), wait=False)
    error = assert_tmf_error(api.post(L, json={"recommendation": {"id": query["id"], "itemId": "1"}}), 400)
    assert error["code"] == "RECOMMENDATION_NOT_DONE"
    assert "(state accepted)" in error["message"] or "(state inProgress)" in error["message"]
    assert api.get(REPORT).json()["ruleSets"] == []


def test_openapi_documents_sales(api):
    spec = api.get("/openapi.json").json()
    for path in ("/salesLead", "/salesLead/{resource_id}", "/hub", "/hub/{hub_id}",
                 "/conversionReport", "/schemas/RecommendationSalesLead.schema.json"):
        assert SALES + path in spec["paths"], path
    item = spec["paths"][SALES + "/salesLead/{resource_id}"]
    assert {"get", "patch", "delete"} <= set(item)
    assert "409" in spec["paths"][SALES + "/salesLead"]["post"]["responses"]
    schemas = spec["components"]["schemas"]
    assert "recommendation" in schemas["TMF699_SalesLead_Create"]["properties"]
    assert schemas["TMF699_SalesLead_Create"]["required"] == ["name"]
    assert {"ruleSets", "generatedAt", "@type"} <= set(schemas["SalesConversionReport"]["properties"])
