"""TMF680 over HTTP: the telco demo's public examples end to end, the user
guide's samples, and the asynchronous lifecycle with its notifications."""
from __future__ import annotations

import time
import uuid

import pytest

from helpers import PATIENCE, Client, assert_tmf_error

R = Client.RECOMMENDATION + "/queryProductRecommendation"


def make_customer(api, segment, owns=()):
    party = uuid.uuid4().hex
    customer = api.post(Client.CUSTOMER + "/customer", json={
        "name": f"{segment} customer", "engagedParty": {"id": party, "@referredType": "Individual"},
        "characteristic": [{"name": "segment", "value": segment}]}).json()
    for offering in owns:
        response = api.post(Client.INVENTORY + "/product", json={
            "status": "active", "productOffering": {"id": offering},
            "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]})
        assert response.status_code == 201, response.text
    return customer


def query(customer=None, cart=(), channel="21", day="2026-10-01", instant=True, **extra):
    body = {"instantSyncRecommendation": instant,
            "channel": [{"id": channel}],
            "validFor": {"startDateTime": f"{day}T12:00:00Z"}}
    if customer:
        body["relatedParty"] = {"id": customer["id"], "role": "customer", "@referredType": "Customer"}
    if cart:
        body["shoppingCart"] = [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
            {"id": str(n), "quantity": 1, "productOffering": {"id": offering}}
            for n, offering in enumerate(cart, 1)]}]
    body.update(extra)
    return body


def offering_ids(body):
    return [item["productOffering"]["id"] for item in body["recommendationItem"]]


EXAMPLES = [
    ("E1", None, (), ["6547"], "21", "2026-10-01", ["6542", "6543", "7301"]),
    ("E2", "premium", (), ["6547"], "23", "2026-10-01", ["6550", "6542", "6543"]),
    ("E3", "standard", ("7001",), [], "24", "2026-10-01", ["7002", "7402"]),
    ("E4", "standard", ("7101",), [], "23", "2026-12-01", ["7102", "7202"]),
    ("E5", "standard", ("7101",), [], "23", "2026-11-10", ["7102"]),
    ("E6", "premium", ("6542", "7002"), ["6547"], "22", "2026-10-01", ["6550", "7003", "6543", "7402"]),
]


@pytest.mark.parametrize("name,segment,owns,cart,channel,day,expected", EXAMPLES,
                         ids=[example[0] for example in EXAMPLES])
def test_public_examples(api, name, segment, owns, cart, channel, day, expected):
    customer = make_customer(api, segment, owns) if segment else None
    response = api.post(R, json=query(customer, cart, channel, day))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "done"
    assert offering_ids(body) == expected
    assert [item["priority"] for item in body["recommendationItem"]] == list(range(1, len(expected) + 1))
    for item in body["recommendationItem"]:
        assert item["productOffering"]["name"] and item["productOffering"]["href"].startswith("/tmf-api/productCatalogManagement/v4/productOffering/")
        assert item["explanation"]["ruleIds"] and item["explanation"]["ruleSetVersion"]
    # instant answers are recorded in the decision log: an id and href that resolve
    assert body["href"] == f"{R}/{body['id']}"
    assert response.headers["X-Ruleset"].startswith("telco-demo@")


def test_customer_found_by_engaged_party_id(api):
    customer = make_customer(api, "premium")
    body = query(None, ["6547"], "23")
    body["relatedParty"] = {"id": customer["engagedParty"]["id"], "role": "customer"}
    assert offering_ids(api.post(R, json=body).json()) == ["6550", "6542", "6543"]


def test_inactive_products_are_not_owned(api):
    customer = make_customer(api, "standard")
    api.post(Client.INVENTORY + "/product", json={
        "status": "terminated", "productOffering": {"id": "7001"},
        "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]})
    assert offering_ids(api.post(R, json=query(customer, channel="24")).json()) == []


def test_user_guide_instant_sample(api):
    """The guide's create sample with instantSyncRecommendation "true": string
    booleans, single objects for arrays and its odd date format all pass."""
    sample = {
        "name": "Recommendation of the latest TMFone",
        "description": "Recommendation of the latest TMFone, for the customers with a high level of requirements",
        "instantSyncRecommendation": "true",
        "@type": "queryProductRecommendation",
        "validFor": {"startDateTime": "2019-07-03 T04:00:00.0Z", "endDateTime": "2019-07-05 T20:42:23.0Z"},
        "channel": {"id": "21", "href": "http://serverlocation:port/recommendation/v4/channel/21",
                    "name": "mobile app channel"},
        "shoppingCart": {"id": "65484jyuty57655",
                         "href": "http://serverlocation:port/shoppingCart/v4/shoppingCart/65484jyuty57655"},
        "relatedParty": {"id": "34", "href": "http: //serverlocation:port/partyManagement/v4/individual/34",
                         "name": "John Smith", "role": "customer"},
    }
    response = api.post(R, json=sample)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "done" and body["instantSyncRecommendation"] is True
    assert body["name"] == sample["name"] and body["@type"] == "queryProductRecommendation"
    assert body["channel"] == [sample["channel"]]
    assert isinstance(body["recommendationItem"], list)


def test_boolean_spellings_are_those_docs_api_md_lists(api):
    """docs/api.md: JSON true/false, the guide's "true"/"false" and
    marshmallow's other spellings; anything else is a 400 naming the
    attribute (instantSyncRecommendation: true answers now, 200; false is
    an asynchronous query, 201)."""
    for spelling, instant in [(True, True), ("true", True), ("TRUE", True), ("Yes", True),
                              ("on", True), ("t", True), ("Y", True), (1, True), ("1", True),
                              (False, False), ("false", False), ("No", False), ("OFF", False),
                              ("f", False), ("n", False), (0, False), ("0", False)]:
        response = api.post(R, json={**query(), "instantSyncRecommendation": spelling})
        assert response.status_code == (200 if instant else 201), (spelling, response.text)
        assert response.json()["instantSyncRecommendation"] is instant, spelling
    for spelling in (None, 2, "maybe", "tRuE", [], {}):
        body = assert_tmf_error(api.post(R, json={**query(), "instantSyncRecommendation": spelling}),
                                400)
        assert "instantSyncRecommendation" in body["details"], (spelling, body)


def test_a_single_object_for_an_array_has_its_errors_named_without_an_index(api):
    """The guide sends `channel` as one object (stored as a one-item array):
    its error is `channel.id`, the attribute the client sent; in an array
    it is `channel.0.id`. The same for every such attribute (TMF629's
    contactMedium here)."""
    one = assert_tmf_error(api.post(R, json=query(channel="21") | {"channel": {"id": 5}}), 400)
    assert one["details"] == {"channel": {"id": ["Not a valid string."]}}, one
    many = assert_tmf_error(api.post(R, json=query(channel="21") | {"channel": [{"id": 5}]}), 400)
    assert many["details"] == {"channel": {"0": {"id": ["Not a valid string."]}}}, many
    body = {"name": "One medium", "engagedParty": {"id": "e1", "@referredType": "Individual"},
            "contactMedium": {"mediumType": 7, "characteristic": {}}}
    medium = assert_tmf_error(api.post(Client.CUSTOMER + "/customer", json=body), 400)
    assert set(medium["details"]["contactMedium"]) == {"mediumType"}, medium
    # a cart by value is checked against TMF663 after the schema: the same
    cart = {"id": "c1", "@type": "ShoppingCart",
            "cartItem": [{"id": "1", "quantity": "x", "productOffering": {"id": "6547"}}]}
    for sent, details in ((cart, {"cartItem": {"0": {"quantity": ["Not a valid integer."]}}}),
                          ([cart], {"0": {"cartItem": {"0": {"quantity": ["Not a valid integer."]}}}})):
        error = assert_tmf_error(api.post(R, json=query() | {"shoppingCart": sent}), 400)
        assert error["details"] == {"shoppingCart": details}, error


def wait_state(api, href, states, timeout=PATIENCE):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = api.get(href.replace(api.url, "")).json()
        if body["state"] in states:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{href} never reached {states}: {body}")


def test_async_lifecycle_with_events_and_user_guide_list(api, listener):
    hub = api.post(Client.RECOMMENDATION + "/hub", json={"callback": listener.url}).json()
    customer = make_customer(api, "premium")
    sample = query(customer, ["6547"], "23", instant=False,
                   name="Recommendation of the latest TMFone", description="for demanding customers")
    sample["instantSyncRecommendation"] = "false"
    response = api.post(R, json=sample)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "accepted" and response.headers["Location"] == created["href"]
    assert "recommendationItem" not in created
    done = wait_state(api, created["href"], {"done"})
    assert offering_ids(done) == ["6550", "6542", "6543"]

    def mine(event):
        return event["event"]["queryProductRecommendation"]["id"] == created["id"]
    assert listener.wait_for(lambda e: e["eventType"] == "QueryProductRecommendationCreateEvent" and mine(e))
    states = [e["event"]["queryProductRecommendation"]["state"] for e in
              listener.wait_for(lambda e: e["eventType"] == "QueryProductRecommendationStateChangeEvent"
                                and mine(e) and e["event"]["queryProductRecommendation"]["state"] == "done")]
    assert states == ["done"]
    changes = [e["event"]["queryProductRecommendation"]["state"] for e in listener.events
               if e["eventType"] == "QueryProductRecommendationStateChangeEvent" and mine(e)]
    assert changes == ["inProgress", "done"]

    # The user guide's list: fields and relatedParty.id
    listed = api.get(R, params={"fields": "id,href,name,description,state",
                                "relatedParty.id": customer["id"]})
    assert listed.status_code == 200
    assert listed.json() == [{"id": created["id"], "href": created["href"], "@type": "QueryProductRecommendation",
                              "name": sample["name"], "description": sample["description"], "state": "done"}]
    api.delete(f"{Client.RECOMMENDATION}/hub/{hub['id']}")


def test_create_rejects_items_and_bad_input(api):
    body = assert_tmf_error(api.post(R, json={"recommendationItem": [{"product": {}}]}), 400)
    assert "recommendationItem" in body["message"]
    assert_tmf_error(api.post(R, json={"instantSyncRecommendation": "maybe"}), 400)
    assert_tmf_error(api.post(R, json={"channel": [{"name": "no id"}]}), 400)
    assert_tmf_error(api.post(R, json={"shoppingCart": [{"id": "c", "@type": "ShoppingCart",
                                                         "cartItem": [{"quantity": "one"}]}]}), 400)
