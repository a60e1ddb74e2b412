"""Hand-picked nasty requests over HTTP: each is refused with a clear 4xx in
the TMF Error body, and nothing stored changes (every test of this module
compares the stored resources and hubs before and after it).

tests/test_errors.py has the basic cases (truncated JSON, top-level duplicate
keys, NaN, a leading invalid UTF-8 byte, 100 levels of nesting, 2 MB with a
Content-Length, wrong content type, unknown route); these go further.
"""
from __future__ import annotations

import http.client
import json

import pytest

from helpers import Client, Listener, ServiceProcess, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
S = "/tmf-api/sales/v4/salesLead"
HUB = Client.CUSTOMER + "/hub"
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
CUSTOMER = {"name": "Nasty Target", "engagedParty": {"id": "n-1", "@referredType": "Individual"},
            "characteristic": [{"name": "segment", "value": "premium"}]}


# every test here uses `world`: one xdist_group, so a parallel run starts
# its server (and registers its hub) once, not on each worker that is
# handed one of the module's tests
pytestmark = pytest.mark.xdist_group("hardening-nasties")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server of its own with one resource of each kind and one hub. Its
    tests send requests that must be refused, and check that nothing of
    `ids` changed (`snapshot`); they are one xdist_group."""
    service = ServiceProcess(tmp_path_factory.mktemp("nasties") / "data").start()
    listener = Listener()
    api = Client(service.url)
    ids = {
        "customer": api.post(C, json=CUSTOMER).json()["id"],
        "product": api.post(P, json={"name": "Fiber", "status": "active"}).json()["id"],
        "lead": api.post(S, json={"name": "A lead", "priority": "low"}).json()["id"],
        "hub": api.post(HUB, json={"callback": listener.url}).json()["id"],
    }
    yield service, api, ids, listener
    listener.close()
    service.stop()


def snapshot(api: Client, ids: dict) -> dict:
    state = {}
    for path in (C, P, S, R):
        response = api.get(path, params={"limit": 1000})
        assert response.status_code == 200, response.text
        state[path] = sorted(response.json(), key=lambda r: r["id"])
    state["hub"] = api.get(f"{HUB}/{ids['hub']}").json()
    return state


@pytest.fixture
def nasty(world):
    """(api, ids, server url); asserts afterwards that nothing stored changed
    and that no notification went out."""
    service, api, ids, listener = world
    before = snapshot(api, ids)
    yield api, ids, service
    assert snapshot(api, ids) == before, "a refused request changed what is stored"
    assert not listener.events, f"a refused request notified: {listener.events[:1]}"


def raw_request(service: ServiceProcess, method: str, target: str, body: bytes = b"",
                headers: dict | None = None):
    """Sends the request line and headers exactly as given (requests and
    urllib3 would normalise `..` segments and re-encode the path)."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def assert_raw_tmf_error(result, status: int) -> dict:
    code, content_type, body = result
    assert code == status, body[:300]
    assert content_type.startswith("application/json"), (content_type, body[:300])
    document = json.loads(body)
    assert document["@type"] == "Error" and document["status"] == str(status)
    assert document["code"] and document["reason"] and document["message"]
    assert b"Traceback" not in body
    return document


def customer_with(**changes) -> bytes:
    body = dict(CUSTOMER)
    body.update(changes)
    return json.dumps(body).encode()


# -- bodies ---------------------------------------------------------------

DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000
DEEP_IN_VALUE = customer_with(characteristic=[{"name": "x", "value": 1}]).replace(
    b'"value": 1', b'"value": ' + b'{"a": ' * 70 + b"1" + b"}" * 70)

BAD_BODIES = {
    "deep arrays (100,000 levels)": (DEEP_ARRAYS, "nested"),
    "deep object inside a valid attribute": (DEEP_IN_VALUE, "nested deeper than 64"),
    "array of 10,001 items": (customer_with(characteristic=[{"name": "a", "value": 1}] * 10_001),
                              "at most 10000"),
    "invalid UTF-8 inside a string": (b'{"name": "caf\xe9", "engagedParty": {"id": "1"}}', "utf-8"),
    "overlong UTF-8 encoding of '/'": (b'{"name": "\xc0\xaf", "engagedParty": {"id": "1"}}', "utf-8"),
    "UTF-8 encoded surrogate (CESU-8)": (b'{"name": "\xed\xa0\x80", "engagedParty": {"id": "1"}}',
                                         "utf-8"),
    "lone surrogate escape in a string": (customer_with(name="\ud800"), "surrogate"),
    "lone surrogate escape in a key": (
        b'{"name": "x", "engagedParty": {"id": "1"}, "\\udc00": 1}', "surrogate"),
    "duplicate key in a nested object": (
        b'{"name": "x", "engagedParty": {"id": "1", "id": "2", "@referredType": "I"}}', "duplicate"),
    "duplicate key deep in an array": (
        b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
        b'[{"name": "a", "value": {"k": 1, "k": 2}}]}', "duplicate"),
    "-Infinity": (b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
                  b'[{"name": "a", "value": -Infinity}]}', "not a json number"),
    "NaN nested": (b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
                   b'[{"name": "a", "value": [NaN]}]}', "not a json number"),
    "number that overflows to infinity": (
        b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
        b'[{"name": "a", "value": 1e999}]}', "out of range"),
    "negative overflowing number": (
        b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
        b'[{"name": "a", "value": -2.5e400}]}', "out of range"),
    "integer of 5,000 digits": (
        b'{"name": "x", "engagedParty": {"id": "1"}, "characteristic": '
        b'[{"name": "a", "value": ' + b"9" * 5000 + b"}]}", "digits"),
    "JSON null": (b"null", "must be an object"),
    "JSON string": (b'"customer"', "must be an object"),
    "only whitespace": (b" \r\n\t ", "empty"),
    "byte order mark": (b"\xef\xbb\xbf" + customer_with(), "byte order mark (u+feff): send"),
    "two documents": (customer_with() + customer_with(), "extra data"),
    "trailing comma": (b'{"name": "x", "engagedParty": {"id": "1"},}', "not valid json"),
    "single quotes": (b"{'name': 'x'}", "not valid json"),
    "comment": (b'{"name": "x" /* hi */, "engagedParty": {"id": "1"}}', "not valid json"),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_malformed_json_bodies_are_400(nasty, name):
    api, ids, _ = nasty
    raw, expected = BAD_BODIES[name]
    for method, path, headers in (("POST", C, JSON), ("PATCH", f"{C}/{ids['customer']}", MERGE)):
        body = assert_tmf_error(api.request(method, path, data=raw, headers=headers), 400)
        assert expected in body["message"].lower(), (method, body)


@pytest.mark.parametrize("path", [R, P, S, HUB, Client.INVENTORY + "/hub", "/tmf-api/sales/v4/hub"])
def test_every_create_reads_bodies_strictly(nasty, path):
    api, _, _ = nasty
    for raw, _expected in (BAD_BODIES["duplicate key in a nested object"],
                           BAD_BODIES["number that overflows to infinity"],
                           BAD_BODIES["lone surrogate escape in a string"],
                           BAD_BODIES["deep arrays (100,000 levels)"],
                           BAD_BODIES["invalid UTF-8 inside a string"]):
        assert_tmf_error(api.post(path, data=raw, headers=JSON), 400)


def test_a_huge_invalid_array_gets_a_bounded_answer(nasty):
    """5,000 wrong items: refused quickly, with the first problems only (not
    an answer a hundred times larger than the question)."""
    api, _, _ = nasty
    raw = customer_with(characteristic=[{"nmae": "a"}] * 5000)
    response = api.post(C, data=raw, headers=JSON)
    body = assert_tmf_error(response, 400)
    assert len(response.content) < 20_000
    assert "more problem" in body["details"]["_truncated"]
    assert response.elapsed.total_seconds() < 5


WRONG_TYPES = {
    "name": [5, [], {}, True],
    "engagedParty": ["p-1", [], 5, None],
    "characteristic": ["segment", 5, [5], [None], [{"name": 5, "value": 1}], None],
    "validFor": ["2026", [], {"startDateTime": 5}, {"startDateTime": "soon"}],
    "status": [{}, [], 1.5],
    "contactMedium": [{"mediumType": 5}, [{"characteristic": "x"}]],
    "@type": [5, {}, []],
}


@pytest.mark.parametrize("attribute,value", [(a, v) for a, values in WRONG_TYPES.items()
                                             for v in values])
def test_wrong_types_are_400_naming_the_attribute(nasty, attribute, value):
    api, ids, _ = nasty
    body = assert_tmf_error(api.post(C, data=customer_with(**{attribute: value}), headers=JSON), 400)
    assert attribute in json.dumps(body.get("details", {})), body
    if value is not None:  # null in a merge patch deletes: covered below
        body = assert_tmf_error(api.patch(f"{C}/{ids['customer']}", json={attribute: value}), 400)
        assert attribute in json.dumps(body.get("details", {})), body


def test_null_for_mandatory_objects(nasty):
    """null for an object is no object: refused on create; in a merge patch it
    deletes, and deleting a mandatory attribute is refused."""
    api, ids, _ = nasty
    for name in ("engagedParty", "name"):
        assert_tmf_error(api.post(C, data=customer_with(**{name: None}), headers=JSON), 400)
        assert_tmf_error(api.patch(f"{C}/{ids['customer']}", json={name: None}), 400)
    assert_tmf_error(api.patch(f"{C}/{ids['customer']}", json={"engagedParty": {"id": None}}), 400)
    assert_tmf_error(api.post(S, json={"name": None}), 400)
    assert_tmf_error(api.post(HUB, json={"callback": None}), 400)


@pytest.mark.parametrize("body", [
    {"instantSyncRecommendation": "maybe"},
    {"instantSyncRecommendation": True, "channel": 5},
    {"instantSyncRecommendation": True, "shoppingCart": [{"@type": "ShoppingCart", "cartItem": "x"}]},
    {"instantSyncRecommendation": True, "shoppingCart": [
        {"@type": "ShoppingCart", "cartItem": [{"id": "1", "quantity": "two"}]}]},
    {"instantSyncRecommendation": True, "validFor": {"startDateTime": "soon"}},
    {"instantSyncRecommendation": True, "relatedParty": {"role": "customer"}},
    {"instantSyncRecommendation": True, "relatedParty": "p-42"},
    {"instantSyncRecommendation": True, "recommendationItem": []},
    {"name": "async", "id": "mine"},
    {"name": "async", "href": "http://elsewhere/x"},
])
def test_wrong_recommendation_queries(nasty, body):
    api, _, _ = nasty
    assert_tmf_error(api.post(R, json=body), 400)


@pytest.mark.parametrize("body", [
    {"callback": 5}, {"callback": ["http://127.0.0.1:9/x"]}, {"callback": "http://127.0.0.1:9/x", "query": 5},
    {"callback": "http://127.0.0.1:9/x", "query": "eventType=a&&=&"},
    {"callback": "not a url"}, {"callback": "http://"}, {"callback": "http://127.0.0.1:99999/x"},
    {"callback": "http://user:pw@127.0.0.1:9/x"}, {"callback": "file:///etc/passwd"},
    {"callback": "gopher://127.0.0.1:25/x"}, {"callback": "http://[::1"},
    {"callback": "http://127.0.0.1:9/x", "id": "mine"},
])
def test_wrong_hub_registrations(nasty, body):
    api, _, _ = nasty
    assert_tmf_error(api.post(HUB, json=body), 400)


@pytest.mark.parametrize("content_type,status", [
    ("application/json; charset=latin-1", 400),   # the bytes are latin-1: not UTF-8
    ("text/json", 415), ("application/jsonx", 415), ("multipart/form-data; boundary=x", 415),
    ("application/x-www-form-urlencoded", 415), ("", 415),
])
def test_content_types(nasty, content_type, status):
    api, _, service = nasty
    body = json.dumps({"name": "Zoë", "engagedParty": {"id": "1"}}).encode("utf-8")
    body = body.replace("Zoë".encode("utf-8"), "Zoë".encode("latin-1")).replace(b"\\u00eb", b"\xeb")
    headers = {"Content-Type": content_type} if content_type else {}
    error = assert_raw_tmf_error(raw_request(service, "POST", C, body, headers), status)
    if status == 400:     # what to send instead
        assert "UTF-8 whatever charset" in error["message"], error


# -- query strings --------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"nosuch": "1"}, {"nosuch.gt": "1"}, {"nosuch.id": "1"}, {"relatedParty..id": "1"},
    {".gt": "1"}, {"": "1"}, {"fields": "name,nosuch"}, {"fields": "name\x00"},
    {"fields": "\ufffd"}, {"sort": "-nosuch"}, {"sort": "name,-nosuch.x"}, {"sort": "-"},
    {"offset": "-1"}, {"limit": "-1"}, {"limit": "1001"}, {"limit": str(10 ** 30)},
    {"offset": "1e3"}, {"limit": "0x10"}, {"limit": "ten"}, {"offset": "1.5"},
    {"offset": "9" * 5000},
])
def test_bad_list_queries(nasty, params):
    api, _, _ = nasty
    for path in (C, P, S, R):
        assert_tmf_error(api.get(path, params=params), 400)


def test_an_offset_past_the_end_is_an_empty_page_not_an_error(nasty):
    api, _, _ = nasty
    response = api.get(C, params={"offset": str(10 ** 30), "limit": "5"})
    assert response.status_code == 206 and response.json() == []
    assert response.headers["X-Total-Count"] == "1" and response.headers["X-Result-Count"] == "0"


def test_unknown_query_parameters_outside_lists(nasty):
    api, ids, _ = nasty
    customer = f"{C}/{ids['customer']}"
    for response in (
        api.get(customer, params={"feilds": "name"}),
        api.get(customer, params={"fields": "nosuch"}),
        api.get(f"{HUB}/{ids['hub']}", params={"x": "1"}),
        api.post(C, params={"dryRun": "true"}, data=customer_with(), headers=JSON),
        api.patch(customer, params={"x": "1"}, json={"name": "changed"}),
        api.delete(customer, params={"x": "1"}),
        api.get("/tmf-api/sales/v4/conversionReport", params={"ruleId": "R1"}),
    ):
        assert_tmf_error(response, 400)


# -- ids and paths --------------------------------------------------------

@pytest.mark.parametrize("resource_id", [
    "..%2F..%2Fhealth", "%2e%2e", "..", "%2E%2E%2Fcustomer", "%00", "a%00b", "%ff%fe",
    "%5C..%5C..%5Cetc%5Cpasswd", "%252e%252e%252f", "x" * 8000, "%20", "%0d%0aX-Injected:%201",
])
def test_ids_with_path_characters_are_404(nasty, resource_id):
    _, _, service = nasty
    for prefix in (C, P, S, HUB, R):
        for method in ("GET", "PATCH", "DELETE"):
            if method == "PATCH" and prefix in (HUB, R):
                continue
            result = raw_request(service, method, f"{prefix}/{resource_id}", b'{"name": "x"}',
                                 MERGE if method == "PATCH" else {})
            status = result[0]
            assert status in (404, 405), (method, prefix, resource_id, result)
            assert_raw_tmf_error(result, status)


@pytest.mark.parametrize("target", [
    f"{C}/../../../../health", f"{C}/./x", "/tmf-api/customerManagement/v4/../v4/customer/x",
    f"{C}//x", "/health/../tmf-api/customerManagement/v4/customer",
])
def test_dot_segments_are_not_resolved(nasty, target):
    """A path with dot segments reaches nothing else (and writes nothing)."""
    _, _, service = nasty
    for method in ("GET", "DELETE", "POST"):
        result = raw_request(service, method, target, b"{}", JSON)
        assert result[0] in (404, 405), (method, target, result)
        assert_raw_tmf_error(result, result[0])


# -- sizes the HTTP server refuses ----------------------------------------

def test_request_line_too_long_is_414_tmf_error(nasty):
    _, _, service = nasty
    assert_raw_tmf_error(raw_request(service, "GET", f"{C}/{'x' * 9000}"), 414)


def test_headers_too_large_or_too_many_are_431_tmf_error(nasty):
    _, _, service = nasty
    assert_raw_tmf_error(raw_request(service, "GET", C, headers={"X-Big": "x" * 9000}), 431)
    many = {f"X-Header-{n}": "1" for n in range(120)}
    assert_raw_tmf_error(raw_request(service, "GET", C, headers=many), 431)


def test_malformed_http_is_400_tmf_error(nasty):
    _, _, service = nasty
    import socket
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["@type"] == "Error"


def test_chunked_body_over_the_limit_is_413(nasty):
    """No Content-Length to refuse up front: the body is cut at the limit and
    refused, not parsed truncated."""
    _, _, service = nasty
    big = customer_with(name="x" * 1_100_000)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                      for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.putrequest("POST", C)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(chunks)
    response = connection.getresponse()
    result = (response.status, response.getheader("Content-Type", ""), response.read())
    connection.close()
    assert_raw_tmf_error(result, 413)


@pytest.mark.parametrize("wire", [
    b"zz\r\n{}\r\n0\r\n\r\n",                       # a chunk size that is no hex number
    b"2\r\n{}XX0\r\n\r\n",                          # a chunk without its CRLF terminator
    b"2;\x01=\r\n{}\r\n0\r\n\r\n",                  # a chunk extension with a control character
], ids=["bad-size", "no-terminator", "bad-extension"])
def test_a_malformed_chunked_body_is_400_not_500(nasty, wire):
    """A body whose chunked framing is broken cannot be read: the client's
    error (400 INVALID_BODY_ENCODING), never a 500, on every way a body is read."""
    _, ids, service = nasty
    for method, url in (("POST", C), ("PATCH", f"{C}/{ids['customer']}"), ("POST", P),
                        ("POST", R)):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        connection.putrequest(method, url)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        connection.send(wire)
        response = connection.getresponse()
        result = (response.status, response.getheader("Content-Type", ""), response.read())
        connection.close()
        assert assert_raw_tmf_error(result, 400)["code"] == "INVALID_BODY_ENCODING", (method, url, result)


def test_chunked_body_under_the_limit_is_read(world):
    service, api, _, _ = world
    body = customer_with(name="chunked")
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.request("POST", C, body=iter([body[:10], body[10:]]), headers=JSON,
                       encode_chunked=True)
    response = connection.getresponse()
    created = json.loads(response.read())
    connection.close()
    assert response.status == 201 and created["name"] == "chunked"
    assert api.delete(f"{C}/{created['id']}").status_code == 204

