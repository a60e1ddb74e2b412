"""Numbers keep their exact value in storage and in comparisons, on both
stores (app/exactnumbers.py): a 20-digit ICCID is found by
`characteristic.value=` and ordered by `.lt`/`.gt` exactly; a filter value
never passes through a double; a decimal a double cannot hold is refused
with a named code rather than stored altered. The `api` fixture runs each
test on TinyDB and on PostgreSQL."""
from __future__ import annotations

import json
import uuid

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
JSON = {"Content-Type": "application/json"}
ICCID = 89314404000012345678        # 20 digits: beyond a double's 53 bits


def make_customer(api, tag: str, value_text: str) -> str:
    """A customer named `tag` whose characteristic `iccid` is the JSON
    number `value_text`, sent as written."""
    text = ('{"name": "%s", "engagedParty": {"id": "%s", "@referredType": "Individual"}, '
            '"characteristic": [{"name": "iccid", "value": %s}]}' % (tag, uuid.uuid4().hex,
                                                                   value_text))
    made = api.post(C, data=text, headers=JSON)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def found(api, tag: str, **params) -> list[str]:
    response = api.get(C, params={"name": tag, **params})
    assert response.status_code == 200, response.text
    return sorted(c["id"] for c in response.json())


def test_a_20_digit_integer_is_stored_exactly_and_matched_exactly(api):
    tag = uuid.uuid4().hex
    low = make_customer(api, tag, str(ICCID))
    high = make_customer(api, tag, str(ICCID + 1))
    assert api.get(f"{C}/{low}").json()["characteristic"][0]["value"] == ICCID
    assert found(api, tag, **{"characteristic.value": str(ICCID)}) == [low]
    assert found(api, tag, **{"characteristic.value": str(ICCID + 1)}) == [high]
    assert found(api, tag, **{"characteristic.value.lt": str(ICCID + 1)}) == [low]
    assert found(api, tag, **{"characteristic.value.gt": str(ICCID)}) == [high]
    assert found(api, tag, **{"characteristic.value.gte": str(ICCID + 1)}) == [high]
    assert found(api, tag, **{"characteristic.value.ne": str(ICCID)}) == [high]
    ordered = api.get(C, params={"name": tag, "sort": "-characteristic.value"}).json()
    assert [c["id"] for c in ordered] == [high, low]


def test_doubles_compare_as_the_decimal_they_are_stored_as(api):
    """0.1 is stored as the text 0.1 (jsonb) and as the double nearest 0.1
    (TinyDB): both stores compare it as the decimal 0.1, so a filter value a
    double cannot hold still orders correctly, and 1e23 equals the integer
    it writes as."""
    tag = uuid.uuid4().hex
    tenth = make_customer(api, tag, "0.1")
    big = make_customer(api, tag, "1e23")
    assert found(api, tag, **{"characteristic.value": "0.1"}) == [tenth]
    assert found(api, tag, **{"characteristic.value.lt": "0.1000000000000000055"}) == [tenth]
    assert found(api, tag, **{"characteristic.value.gt": "0.0999999999999999999"}) == sorted(
        [tenth, big])
    assert found(api, tag, **{"characteristic.value": "100000000000000000000000"}) == [big]
    assert found(api, tag, **{"characteristic.value.lt": "100000000000000000000000"}) == [tenth]


def test_a_typed_number_filter_does_not_pass_through_a_double(api):
    tag = uuid.uuid4().hex
    body = {"status": "active", "name": "priced", "description": tag,
            "productOffering": {"id": "7001"},
            "productPrice": [{"priceType": "recurring", "price": {
                "taxIncludedAmount": {"unit": "EUR", "value": 0.1}}}]}
    made = api.post(P, json=body)
    assert made.status_code == 201, made.text
    path = "productPrice.price.taxIncludedAmount.value"
    listed = api.get(P, params={"description": tag, f"{path}.lt": "0.1000000000000000055"})
    assert [p["id"] for p in listed.json()] == [made.json()["id"]]
    none = api.get(P, params={"description": tag, f"{path}.gt": "0.1000000000000000001"})
    assert none.status_code == 200 and none.json() == []


@pytest.mark.parametrize("number", ["12345678901234567890.5", "0.30000000000000000001",
                                    "1e-400", "123456789012345678901234567890e-5"])
def test_a_decimal_a_double_cannot_hold_is_refused_not_altered(api, number):
    tag = uuid.uuid4().hex
    text = ('{"name": "%s", "engagedParty": {"id": "p", "@referredType": "Individual"}, '
            '"characteristic": [{"name": "n", "value": %s}]}' % (tag, number))
    body = assert_tmf_error(api.post(C, data=text, headers=JSON), 400)
    assert body["code"] == "INEXACT_NUMBER" and number[:20] in body["message"], body
    assert found(api, tag) == []
    made = api.post(C, data=text.replace(number, json.dumps(number)), headers=JSON)
    assert made.status_code == 201, made.text          # as text it is kept as sent
    assert made.json()["characteristic"][0]["value"] == number


def test_a_hub_query_on_a_20_digit_integer_is_exact(api, listener):
    hub = api.post(Client.CUSTOMER + "/hub", json={
        "callback": listener.url,
        "query": f"eventType=CustomerCreateEvent&event.customer.characteristic.value={ICCID},7"})
    assert hub.status_code == 201, hub.text
    try:
        tag = uuid.uuid4().hex
        wanted = make_customer(api, tag, str(ICCID))
        other = make_customer(api, tag, str(ICCID + 1))
        marker = make_customer(api, tag, "7")            # delivered after `other` would be
        assert listener.wait_for(lambda e: e["event"]["customer"]["id"] == marker)
        delivered = {e["event"]["customer"]["id"] for e in listener.delivered()}
        assert wanted in delivered and other not in delivered
    finally:
        api.delete(f"{Client.CUSTOMER}/hub/{hub.json()['id']}")


def test_a_sort_over_any_values_orders_doubles_by_the_number_both_stores_keep(api):
    """A sort on a TMF `Any` attribute orders scalars by their text; a
    double whose shortest form has an exponent (1e+300, 1e-05, -0.0) is
    ordered by the decimal both stores keep (1000...0, 0.00001, 0.0), as
    PostgreSQL's numeric writes it, not by Python's spelling."""
    tag = uuid.uuid4().hex
    made = {text: make_customer(api, tag, text)
            for text in ("99999999999999999999", "1e300", "1e-05", "-0.0", "0.5", "2e+16")}
    ordered = api.get(C, params={"name": tag, "sort": "characteristic.value"})
    assert ordered.status_code == 200, ordered.text
    expected = ["-0.0", "1e-05", "0.5", "1e300", "2e+16", "99999999999999999999"]
    assert [c["id"] for c in ordered.json()] == [made[text] for text in expected]
    descending = api.get(C, params={"name": tag, "sort": "-characteristic.value"}).json()
    assert [c["id"] for c in descending] == [made[text] for text in reversed(expected)]


def test_only_ascii_digits_spell_a_number_in_a_filter(api):
    """`١٠٠` (Arabic-Indic digits) is text, not the JSON number 100: it
    matches the text it is, never the number (Python's int() and Decimal()
    would read it; JSON and PostgreSQL do not); a typed number attribute
    refuses it."""
    tag = uuid.uuid4().hex
    hundred = make_customer(api, tag, "100")
    text = make_customer(api, tag, '"١٠٠"')
    assert found(api, tag, **{"characteristic.value": "١٠٠"}) == [text]
    assert found(api, tag, **{"characteristic.value": "100"}) == [hundred]
    assert found(api, tag, **{"characteristic.value.lte": "١٠٠.٠"}) == [text]
    refused = api.get(P, params={"productPrice.price.taxIncludedAmount.value": "٣"})
    assert assert_tmf_error(refused, 400)["code"] == "INVALID_FILTER_VALUE"
