"""Compressed request bodies (clients and proxies send them): `Content-Encoding: gzip` was
read as if it were the JSON text ("not valid UTF-8"). gzip and deflate are
decoded on every operation that takes a body, within the size limit (which
applies to the decoded size); any other coding is a 415 naming what is
accepted."""
from __future__ import annotations

import gzip
import json
import uuid
import zlib

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"


def _customer():
    tag = uuid.uuid4().hex[:8]
    return {"name": f"Zipped {tag}", "engagedParty": {"id": tag, "@referredType": "Individual"}}


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


CODINGS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,     # what some clients send as "deflate"
}


# Every operation that reads a body: (method, path, body, expected status).
def operations(api):
    cid = api.post(C, json=_customer()).json()["id"]
    lead = api.post("/tmf-api/sales/v4/salesLead", json={"name": "Zipped lead"}).json()["id"]
    product = api.post(Client.INVENTORY + "/product",
                       json={"status": "active", "name": "Zipped"}).json()["id"]
    return [
        ("POST", C, _customer(), 201),
        ("PATCH", f"{C}/{cid}", {"status": "approved"}, 200),
        ("POST", Client.INVENTORY + "/product", {"status": "active", "name": "Zipped"}, 201),
        ("PATCH", f"{Client.INVENTORY}/product/{product}", {"name": "Zipped 2"}, 200),
        ("POST", "/tmf-api/sales/v4/salesLead", {"name": "Zipped"}, 201),
        ("PATCH", f"/tmf-api/sales/v4/salesLead/{lead}", {"description": "zipped"}, 200),
        ("POST", Client.RECOMMENDATION + "/queryProductRecommendation",
         {"instantSyncRecommendation": True}, 200),
        ("POST", Client.CUSTOMER + "/hub", {"callback": "http://127.0.0.1:9/listener"}, 201),
        ("POST", "/admin/rules/explain", {"cart": ["6547"], "channel": "21"}, 200),
    ]


def send(api, method, path, body, coding, encode):
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    return api.request(method, path, data=encode(json.dumps(body).encode()),
                       headers={"Content-Type": content_type, "Content-Encoding": coding})


def test_gzip_and_deflate_bodies_are_decoded_everywhere(api):
    for method, path, body, status in operations(api):
        for name, encode in CODINGS.items():
            coding = "deflate" if name == "deflate-raw" else name
            response = send(api, method, path, body, coding, encode)
            assert response.status_code == status, (method, path, name, response.text)
            if path.endswith("/hub"):       # a listener on the shared server: not left behind
                assert api.delete(f"{path}/{response.json()['id']}").status_code == 204


def test_codings_are_undone_in_reverse_order(api):
    response = send(api, "POST", C, _customer(), "deflate, gzip",
                    lambda data: gzip.compress(zlib.compress(data)))
    assert response.status_code == 201, response.text
    response = send(api, "POST", C, _customer(), "identity", lambda data: data)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("coding", ["br", "compress", "zstd", "gzip, br"])
def test_other_codings_are_415_with_accept_encoding(api, coding):
    before = api.get(C, params={"limit": 1}).headers["X-Total-Count"]
    for method, path, body, _status in operations(api):
        response = send(api, method, path, body, coding, lambda data: data)
        error = assert_tmf_error(response, 415)
        assert "Content-Encoding" in error["message"]
        assert response.headers["Accept-Encoding"] == "gzip, deflate, identity"
    assert int(api.get(C, params={"limit": 1}).headers["X-Total-Count"]) == int(before) + 1


def test_the_size_limit_applies_to_the_decoded_body(api):
    # 2 MB of JSON (the limit is 1 MB) that compresses to a few KB
    bomb = json.dumps({**_customer(), "description": " " * 2_000_000}).encode()
    packed = gzip.compress(bomb)
    assert len(packed) < 100_000
    response = api.post(C, data=packed, headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert_tmf_error(response, 413)


def test_broken_compressed_data_is_400(api):
    body = json.dumps(_customer()).encode()
    for coding, data in [("gzip", gzip.compress(body)[:-12]), ("gzip", body),
                         ("deflate", b"\x00\x01garbage")]:
        response = api.post(C, data=data, headers={
            "Content-Type": "application/json", "Content-Encoding": coding})
        error = assert_tmf_error(response, 400)
        assert coding in error["message"]
