"""Date-times a client really sends (the user guide's samples too): one parser for
the whole service (app/timeutil.py), and a date-time whose instant leaves the
representable range when converted to UTC is a 400 naming the attribute on
every POST and PATCH of every API, in both recommendation modes and on
POST /admin/rules/explain, never a 500; nothing is stored.

The date-time attributes are taken from the served OpenAPI document, so an
attribute added later is checked too."""
from __future__ import annotations

import time
import uuid

import pytest

from app.rules.model.common import parse_time
from app.timeutil import DateTimeOutOfRange, parse_datetime
from helpers import PATIENCE, Client, assert_tmf_error

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"]
GOOD = "2026-03-01T01:00:00+01:00"


def _bodies():
    tag = uuid.uuid4().hex[:8]
    return {
        Client.CUSTOMER + "/customer": {
            "name": f"Dates {tag}", "engagedParty": {"id": tag, "@referredType": "Individual"}},
        Client.INVENTORY + "/product": {"status": "active", "name": "Mobile 10GB"},
        "/tmf-api/sales/v4/salesLead": {"name": f"Lead {tag}"},
        Client.RECOMMENDATION + "/queryProductRecommendation": {
            "instantSyncRecommendation": True},
    }


def _resolve(document, schema):
    while "$ref" in schema or len(schema.get("allOf") or []) == 1:
        if "allOf" in schema:
            schema = schema["allOf"][0]
        else:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def date_time_paths(document, schema) -> list[tuple[str, ...]]:
    """Top-level date-time attributes and those of top-level objects
    (validFor.startDateTime, ...) of a request body schema."""
    found = []
    for name, prop in (_resolve(document, schema).get("properties") or {}).items():
        prop = _resolve(document, prop)
        if prop.get("format") == "date-time":
            found.append((name,))
        elif prop.get("type") == "object" or "properties" in prop:
            for inner, inner_prop in (prop.get("properties") or {}).items():
                if _resolve(document, inner_prop).get("format") == "date-time":
                    found.append((name, inner))
    return found


def with_value(body: dict, path: tuple[str, ...], value) -> dict:
    body = dict(body)
    if len(path) == 1:
        body[path[0]] = value
    else:
        body[path[0]] = {path[1]: value}
    return body


def members(api, method: str) -> list[tuple[str, tuple[str, ...]]]:
    document = api.get("/openapi.json").json()
    out = []
    for collection in _bodies():
        item = collection + "/{" if method == "patch" else collection
        for path, operations in document["paths"].items():
            if path.startswith(item) and path.count("/") == collection.count("/") + (method == "patch") \
                    and method in operations:
                content = operations[method]["requestBody"]["content"]
                schema = next(iter(content.values()))["schema"]
                out.extend((collection, attr) for attr in date_time_paths(document, schema))
    return out


def named(details, path) -> bool:
    node = details
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_the_parser_raises_a_value_error_naming_the_text(text):
    with pytest.raises(DateTimeOutOfRange) as caught:
        parse_datetime(text)
    assert isinstance(caught.value, ValueError) and text in str(caught.value)
    # rule, case and catalog files read through the same parser: "not a time"
    assert parse_time(text) is None


@pytest.mark.parametrize("text,expected", [
    ("2019-07-03 T04:00:00.0Z", "2019-07-03T04:00:00+00:00"),   # the TMF680 user guide
    ("2026-03-01T01:00:00+0100", "2026-03-01T00:00:00+00:00"),
    ("2026-03-01T01:00:00.1234567Z", "2026-03-01T01:00:00.123456+00:00"),
    ("2026-03-01", "2026-03-01T00:00:00+00:00"),
    ("2026-W10-1", None),                                       # ISO week dates: no
    ("2026-060", None),
    ("tomorrow", None),
])
def test_one_parser_for_requests_and_rule_files(text, expected):
    for parse in (parse_datetime, parse_time):
        got = parse(text)
        assert (got.isoformat() if got else None) == expected, parse


def test_every_post_refuses_out_of_range_date_times(api):
    found = members(api, "post")
    # the sample's attributes are among them
    assert (Client.RECOMMENDATION + "/queryProductRecommendation", ("validFor", "startDateTime")) in found
    assert (Client.CUSTOMER + "/customer", ("validFor", "endDateTime")) in found
    assert ("/tmf-api/sales/v4/salesLead", ("statusChangeDate",)) in found
    assert (Client.INVENTORY + "/product", ("startDate",)) in found
    for collection, attr in found:
        bodies = [_bodies()[collection]]
        if collection.endswith("queryProductRecommendation"):
            bodies.append({"instantSyncRecommendation": False})   # both modes
        for body in bodies:
            before = api.get(collection, params={"limit": 1}).headers.get("X-Total-Count")
            for text in OUT_OF_RANGE:
                error = assert_tmf_error(api.post(collection, json=with_value(body, attr, text)), 400)
                assert named(error["details"], attr), (collection, attr, error)
                assert "outside the supported range" in str(error["details"])
            assert api.get(collection, params={"limit": 1}).headers.get("X-Total-Count") == before
            good = api.post(collection, json=with_value(body, attr, GOOD))
            assert good.status_code in (200, 201), (collection, attr, good.text)


def test_every_patch_refuses_out_of_range_date_times(api):
    found = members(api, "patch")
    assert {collection for collection, _ in found} == {
        Client.CUSTOMER + "/customer", Client.INVENTORY + "/product", "/tmf-api/sales/v4/salesLead"}
    for collection, attr in found:
        created = api.post(collection, json=_bodies()[collection]).json()
        url = f"{collection}/{created['id']}"
        for text in OUT_OF_RANGE:
            error = assert_tmf_error(api.patch(url, json=with_value({}, attr, text)), 400)
            assert named(error["details"], attr), (collection, attr, error)
        assert api.get(url).json() == created
        assert api.patch(url, json=with_value({}, attr, GOOD)).status_code == 200, (collection, attr)


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_rule_explain_refuses_out_of_range_date_times(api, text):
    query = assert_tmf_error(api.post("/admin/rules/explain", json={
        "validFor": {"startDateTime": text}, "channel": [{"id": "21"}]}), 400)
    assert named(query["details"], ("validFor", "startDateTime"))
    context = assert_tmf_error(api.post("/admin/rules/explain", json={
        "cart": ["6547"], "channel": "21", "time": text}), 400)
    assert "time" in context["message"]


CART = {"id": "c1", "@type": "ShoppingCart", "cartItem": [
    {"id": "1", "quantity": 1, "action": "add", "productOffering": {"id": "6547"}}]}


@pytest.mark.parametrize("instant", [True, False])
@pytest.mark.parametrize("path, value", [
    (("validFor", "startDateTime"), "0001-01-01T00:00:00+01:00"),
    (("validFor", "endDateTime"), "9999-12-31T23:30:00-01:00"),
    (("validFor", "startDateTime"), "banana"),
    (("cartItem", 0, "itemPrice", 0, "validFor", "startDateTime"), "0001-01-01T00:00:00+01:00"),
])
def test_a_cart_sent_by_value_is_checked_whole(api, instant, path, value):
    """A TMF680 body's shoppingCart by value is a TMF663 ShoppingCart: its own
    date-times (not only its items') are checked, and nothing is stored."""
    cart = {**CART, "cartItem": [dict(CART["cartItem"][0], itemPrice=[{"priceType": "recurring"}])]}
    target = cart
    for step in path[:-1]:
        if isinstance(step, str) and step not in target:
            target[step] = {}
        target = target[step]
    target[path[-1]] = value
    before = stored_query_ids(api)
    response = api.post(Client.RECOMMENDATION + "/queryProductRecommendation",
                        json={"instantSyncRecommendation": instant, "channel": [{"id": "21"}],
                              "shoppingCart": [cart]})
    error = assert_tmf_error(response, 400)
    assert set(error.get("details", {}).get("shoppingCart", {})) == {"0"}, error
    assert stored_query_ids(api) == before


def stored_query_ids(api):
    """The ids of the stored queries: the refused one must not be among them. Ids,
    not whole bodies, because an earlier test's async query may move from
    'accepted' to 'done' between the two reads (it did in CI)."""
    listed = api.get(Client.RECOMMENDATION + "/queryProductRecommendation?fields=id")
    assert listed.status_code == 200, listed.text
    return {query["id"] for query in listed.json()}


def test_a_valid_cart_by_value_still_recommends(api):
    response = api.post(Client.RECOMMENDATION + "/queryProductRecommendation",
                        json={"instantSyncRecommendation": True, "channel": [{"id": "21"}],
                              "shoppingCart": [dict(CART, validFor={"startDateTime": "2026-01-01T00:00:00Z"})]})
    assert response.status_code == 200, response.text


# A date-time without a zone in a request (`validFor.startDateTime:
# "2026-11-14T23:30:00"`) or a date alone is read as UTC (docs/api.md, date-times):
# the demo's R7 (owners of 7101, 2026-11-15T00:00:00Z to 2027-01-01T00:00:00Z)
# fires for the same instants as the zoned forms, on both stores.
ZONE_LESS = [
    ("2026-11-14T23:30:00", ["7102"]),                 # 23:30 UTC: before the window
    ("2026-11-14T23:30:00Z", ["7102"]),
    ("2026-11-14T23:30:00-01:00", ["7102", "7202"]),   # 00:30 UTC on the 15th: inside
    ("2026-11-14 23:30", ["7102"]),
    ("2026-11-15", ["7102", "7202"]),                  # midnight UTC: the start is included
    ("2026-11-14", ["7102"]),
]


def _owner_of_7101(api) -> dict:
    party = uuid.uuid4().hex
    customer = api.post(Client.CUSTOMER + "/customer", json={
        "name": "Zone-less", "engagedParty": {"id": party, "@referredType": "Individual"},
        "characteristic": [{"name": "segment", "value": "standard"}]}).json()
    response = api.post(Client.INVENTORY + "/product", json={
        "status": "active", "productOffering": {"id": "7101"},
        "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]})
    assert response.status_code == 201, response.text
    return customer


def test_a_zone_less_evaluation_time_is_utc(api):
    customer = _owner_of_7101(api)
    for text, expected in ZONE_LESS:
        body = {"instantSyncRecommendation": True, "channel": [{"id": "23"}],
                "validFor": {"startDateTime": text},
                "relatedParty": {"id": customer["id"], "role": "customer", "@referredType": "Customer"}}
        response = api.post(Client.RECOMMENDATION + "/queryProductRecommendation", json=body)
        assert response.status_code == 200, (text, response.text)
        answer = response.json()
        assert [item["productOffering"]["id"] for item in answer["recommendationItem"]] == expected, text
        assert answer["validFor"]["startDateTime"] == text        # the client's text is kept


def test_a_zone_less_time_in_an_asynchronous_query_is_utc_and_kept_as_sent(api):
    customer = _owner_of_7101(api)
    body = {"instantSyncRecommendation": False, "channel": [{"id": "23"}],
            "validFor": {"startDateTime": "2026-11-14T23:30:00"},
            "relatedParty": {"id": customer["id"], "role": "customer", "@referredType": "Customer"}}
    created = api.post(Client.RECOMMENDATION + "/queryProductRecommendation", json=body)
    assert created.status_code == 201, created.text
    path = Client.RECOMMENDATION + "/queryProductRecommendation/" + created.json()["id"]
    deadline = time.time() + PATIENCE
    while (stored := api.get(path).json())["state"] not in ("done", "terminatedWithError"):
        assert time.time() < deadline, stored
        time.sleep(0.1)
    assert stored["state"] == "done"
    assert [item["productOffering"]["id"] for item in stored["recommendationItem"]] == ["7102"]
    assert stored["validFor"]["startDateTime"] == "2026-11-14T23:30:00"
