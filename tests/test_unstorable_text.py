"""Strings no store can hold (a NUL, an unpaired UTF-16 surrogate;
app/storable.py) get one answer on both stores, decided before the store
is reached: a 400 with a named code, never a 500, never a 201 on one store
and a 400 on the other, and nothing stored. The `api` fixture runs each test
on TinyDB and on PostgreSQL."""
from __future__ import annotations

import json
import uuid

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
S = "/tmf-api/sales/v4/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
HUBS = [Client.CUSTOMER + "/hub", Client.INVENTORY + "/hub", "/tmf-api/sales/v4/hub",
        Client.RECOMMENDATION + "/hub"]
JSON = {"Content-Type": "application/json"}
NUL, SURROGATE = "\\u0000", "\\ud800"


def customer_text(name: str = "ok", value: str = '"v"') -> str:
    """A TMF629 Customer as JSON text, with `name` and a characteristic value
    spliced in verbatim (so that escapes reach the server as written)."""
    return ('{"name": "%s", "engagedParty": {"id": "p-%s", "@referredType": "Individual"}, '
            '"characteristic": [{"name": "note", "value": %s}]}' % (name, uuid.uuid4().hex, value))


def refused(response, where: str | None = None) -> dict:
    body = assert_tmf_error(response, 400)
    if where is not None:
        assert body["code"] == "UNSUPPORTED_CHARACTER", body
        assert where in body["message"], body
    return body


@pytest.mark.parametrize("hub", HUBS)
@pytest.mark.parametrize("attribute", ["callback", "query"])
def test_a_nul_in_a_hub_registration_is_400_on_every_hub(api, hub, attribute):
    callback = "http://127.0.0.1:9/listener"
    body = {"callback": callback, "query": "eventType=CustomerCreateEvent"}
    body[attribute] = body[attribute][:10] + "\u0000" + body[attribute][10:]
    refused(api.post(hub, data=json.dumps(body), headers=JSON), attribute)
    # a lone surrogate, which jsonb cannot hold either
    text = json.dumps({"callback": callback}).replace("listener", "li\\udc00stener")
    assert_tmf_error(api.post(hub, data=text, headers=JSON), 400)


@pytest.mark.parametrize("path, text, where", [
    (C, customer_text(name="a" + NUL + "b"), "name"),
    (C, customer_text(value='{"deep": ["x", "y' + NUL + '"]}'), "characteristic[0].value.deep[1]"),
    (C, customer_text(value='{"k' + NUL + '": 1}'), "attribute name"),
    (P, json.dumps({"name": "x", "status": "active", "productOffering": {"id": "7001"},
                    "productCharacteristic": [{"name": "n", "value": "z"}]}).replace(
        '"z"', '"z' + NUL + '"'), "productCharacteristic[0].value"),
    (S, json.dumps({"name": "lead", "channel": {"id": "web"}, "note": [{"text": "hi"}]}).replace(
        '"hi"', '"h' + NUL + 'i"'), "note[0].text"),
    (R, json.dumps({"relatedParty": [{"id": "p1", "role": "customer"}]}).replace(
        '"p1"', '"p' + NUL + '1"'), "relatedParty[0].id"),
    # ids of their own: the bodies hold a fresh party id, and every pytest-xdist
    # worker must collect the same test ids
], ids=["customer-name", "customer-deep-value", "customer-attribute-name", "product", "salesLead",
        "queryProductRecommendation"])
def test_a_nul_anywhere_in_a_created_resource_is_400(api, path, text, where):
    total = api.get(path, params={"limit": 0}).headers.get("X-Total-Count")
    refused(api.post(path, data=text, headers=JSON), where)
    refused(api.post(path, data=text.replace(NUL, SURROGATE), headers=JSON))
    assert api.get(path, params={"limit": 0}).headers.get("X-Total-Count") == total


def test_a_nul_in_a_patch_is_400_and_changes_nothing(api):
    made = api.post(C, data=customer_text(), headers=JSON)
    assert made.status_code == 201, made.text
    item = f"{C}/{made.json()['id']}"
    refused(api.patch(item, data='{"name": "x' + NUL + '"}'), "name")
    refused(api.patch(item, data='{"characteristic": [{"name": "n", "value": "' + NUL + '"}]}'),
            "characteristic[0].value")
    assert api.get(item).json() == made.json()


@pytest.mark.parametrize("path", [C, P, S, R, "/tmf-api/productCatalogManagement/v4/productOffering"])
@pytest.mark.parametrize("params", [{"name": "a\u0000b"}, {"name\u0000": "a"},
                                    {"fields": "name\u0000"}])
def test_a_nul_in_a_query_string_is_400_on_every_list(api, path, params):
    refused(api.get(path, params=params), "Query parameter")


def test_text_that_spells_a_nul_escape_is_ordinary_text_on_both_stores(api):
    """A backslash followed by `u0000` (a Windows path, a code sample) is six
    ordinary characters, not a NUL: stored and found as written, never
    mistaken for the escape of a NUL by the store's check of its JSON text."""
    for written in ("C:\\\\u0000dir", "a\\\\\\\\u0000b", "x\\\\ud800y"):
        made = api.post(C, data=customer_text(name=written), headers=JSON)
        assert made.status_code == 201, made.text
        name = json.loads('"%s"' % written)
        assert made.json()["name"] == name
        assert api.get(f"{C}/{made.json()['id']}").json()["name"] == name
        assert [c["id"] for c in api.get(C, params={"name": name}).json()] == [made.json()["id"]]
    for hub in HUBS:                 # a hub's query and callback likewise
        body = '{"callback": "http://127.0.0.1:9/C:\\\\u0000", "query": "eventType=a\\\\u0000"}'
        made = api.post(hub, data=body, headers=JSON)
        assert made.status_code == 201, made.text
        assert made.json()["query"] == "eventType=a\\u0000"
        assert api.delete(f"{hub}/{made.json()['id']}").status_code == 204


@pytest.mark.parametrize("path", [C, P, S])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_nul_in_a_path_id_is_404_for_every_method(api, path, method):
    """No stored id holds a NUL, so an id with one names nothing: 404 on
    both stores, whatever the method (PostgreSQL cannot even be asked)."""
    response = api.request(method, f"{path}/a%00b", data='{"name": "x"}',
                           headers={"Content-Type": "application/merge-patch+json"})
    assert_tmf_error(response, 404)


@pytest.mark.parametrize("path", [R, Client.RECOMMENDATION + "/recommendationReaction"])
def test_a_nul_in_a_recorded_answer_or_reaction_id_is_404(api, path):
    """A recorded answer is looked up in the decision log when it is not a
    stored async query: that look-up, too, names nothing for an id with a NUL
    (on PostgreSQL it asked the database, which refused the text: a 500)."""
    assert_tmf_error(api.get(f"{path}/a%00b"), 404)
