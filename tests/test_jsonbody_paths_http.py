"""The same customer sent twice over HTTP, once as a body the fast parse
takes (orjson) and once with one key spelled as a `\\u` escape, so that
the strict parse decides: both are stored alike, key order included, on
both stores (app/jsonbody.py). (PostgreSQL's jsonb keeps its own key order,
the same for both.)"""
from __future__ import annotations

import uuid

from app.jsonbody import _fast_parse
from helpers import Client

C = Client.CUSTOMER + "/customer"
JSON = {"Content-Type": "application/json"}
VARYING = ("id", "href", "name")


def _body(name: str, text: str, escaped: bool) -> bytes:
    value = ('{"deep": [18446744073709551615, -9223372036854775808, true, null, '
             '{"k:": "%s", "e": "caf\u00e9"}], "at": "10:00:00"}' % text)
    body = ('{"name": "%s", "engagedParty": {"id": "p", "@referredType": "Individual"}, '
            '"characteristic": [{"name": "n", "value": %s}]}' % (name, value))
    if escaped:
        body = body.replace('"at"', '"\\u0061t"')
    return body.encode()


def test_a_body_of_either_parse_is_stored_alike(api):
    tag = uuid.uuid4().hex
    fast, strict = _body(tag + "-f", "a:b\\\\", False), _body(tag + "-s", "a:b\\\\", True)
    assert _fast_parse(fast) is not None and _fast_parse(strict) is None
    stored = []
    for raw in (fast, strict):
        created = api.post(C, data=raw, headers=JSON)
        assert created.status_code == 201, created.text
        read = api.get(f"{C}/{created.json()['id']}")
        assert read.status_code == 200, read.text
        assert read.json() == created.json()
        stored.append({k: v for k, v in read.json().items() if k not in VARYING})
    assert stored[0] == stored[1]
    value = stored[0]["characteristic"][0]["value"]
    assert value["deep"][0] == 18446744073709551615 and value["deep"][4]["k:"] == "a:b\\"
    assert set(value) == {"deep", "at"}
