"""Every error a client can provoke gets the TMF Error body and the right
status, never an HTML page or a stack trace."""
from __future__ import annotations

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("raw,why", [
    (b'{"name": ', "truncated"),
    (b'{"name": "a", "name": "b", "engagedParty": {"id": "1", "@referredType": "x"}}', "duplicate"),
    (b'{"name": NaN}', "NaN"),
    (b'{"name": Infinity}', "Infinity"),
    (b'\xff\xfe{"name": "x"}', "UTF-8"),
    (b'', "empty"),
    (b'[1, 2]', "object"),
    (b'{"a":' * 100 + b'1' + b'}' * 100, "deep"),
])
def test_malformed_bodies(api, raw, why):
    body = assert_tmf_error(api.post(C, data=raw, headers=JSON), 400)
    assert why.lower() in body["message"].lower() or why in ("truncated", "deep")


def test_wrong_content_type(api):
    assert_tmf_error(api.post(C, data='{"name": "x"}', headers={"Content-Type": "text/plain"}), 415)
    assert_tmf_error(api.post(R, data="instantSyncRecommendation=true",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)


def test_unknown_route_and_id(api):
    assert_tmf_error(api.get("/tmf-api/nothingHere/v4/thing"), 404)
    assert_tmf_error(api.get(f"{C}/does-not-exist"), 404)
    assert_tmf_error(api.get(f"{R}/does-not-exist"), 404)


def test_wrong_method_lists_allowed_ones(api):
    response = api.request("PUT", f"{C}/some-id", json={})
    assert_tmf_error(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "PATCH", "DELETE"}
    response = api.request("PATCH", f"{R}/some-id", json={})
    assert_tmf_error(response, 405)
    assert "PATCH" not in response.headers["Allow"]
    assert_tmf_error(api.request("DELETE", R), 405)


def test_body_too_large(api):
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_tmf_error(api.post(C, data=huge, headers=JSON), 413)


def test_openapi_document_is_served(api):
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (R, f"{R}/{{resource_id}}", C, f"{C}/{{resource_id}}",
                 Client.INVENTORY + "/product", Client.CUSTOMER + "/hub"):
        assert path in paths, path
    assert "patch" in paths[f"{C}/{{resource_id}}"] and "patch" not in paths[f"{R}/{{resource_id}}"]
    schemas = spec["components"]["schemas"]
    assert "TMF629_Customer_Create" in schemas
    assert schemas["TMF629_Customer_Create"]["required"] == ["engagedParty", "name"]
    assert api.get("/docs").status_code == 200
    slash = api.get("/docs/", allow_redirects=False)
    assert slash.status_code == 308 and slash.headers["Location"] == "/docs"


H = Client.CUSTOMER + "/hub"


@pytest.mark.parametrize("method,path,kwargs,status,code", [
    ("GET", C + "?loyaltyTierX=gold", {}, 400, "UNKNOWN_ATTRIBUTE"),
    ("GET", C + "?sort=nope", {}, 400, "UNKNOWN_ATTRIBUTE"),
    ("GET", C + "?fields=nope", {}, 400, "UNKNOWN_ATTRIBUTE"),
    ("GET", C + "?name.=x", {}, 400, "INVALID_FILTER"),
    ("GET", C + "?limit=100000000", {}, 400, "INVALID_QUERY"),
    ("GET", C + "?offset=-1", {}, 400, "INVALID_QUERY"),
    ("GET", C + "?limit=ten", {}, 400, "INVALID_QUERY"),
    ("POST", C, {"data": b"", "headers": JSON}, 400, "EMPTY_BODY"),
    ("POST", C, {"data": b"[1]", "headers": JSON}, 400, "INVALID_BODY"),
    ("POST", C, {"data": b'{"name": ', "headers": JSON}, 400, "INVALID_JSON"),
    ("POST", C, {"data": b"\xff", "headers": JSON}, 400, "INVALID_JSON"),
    ("POST", C, {"data": b'{"a":' * 100 + b"1" + b"}" * 100, "headers": JSON}, 400,
     "INVALID_JSON"),
    ("POST", C, {"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("POST", C, {"data": b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', "headers": JSON},
     413, "BODY_TOO_LARGE"),
    ("GET", "/tmf-api/nothingHere/v4/thing", {}, 404, "NOT_FOUND"),
    ("PUT", C + "/some-id", {"json": {}}, 405, "METHOD_NOT_ALLOWED"),
    ("POST", H, {"json": {"callback": "http://127.0.0.1:9/x", "colour": "red"}}, 400,
     "UNKNOWN_ATTRIBUTE"),
    ("POST", H, {"json": {"callback": 5}}, 400, "INVALID_BODY"),
    ("POST", H, {"json": {"callback": "http://127.0.0.1:9/x", "query": 5}}, 400,
     "INVALID_BODY"),
])
def test_every_error_has_a_named_code(api, method, path, kwargs, status, code):
    """`code` is a stable upper-snake name a client can branch on, never the
    HTTP status again as a number (that is `status`)."""
    body = assert_tmf_error(api.request(method, path, **kwargs), status)
    assert not body["code"].isdigit(), body
    assert body["code"] == code, body
