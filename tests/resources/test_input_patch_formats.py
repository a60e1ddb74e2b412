"""PATCH in a patch format the service does not take (RFC 6902 JSON Patch,
`application/json-patch+json`, sent by clients that assume it) is a 415
that says which formats are taken, in Accept-Patch (RFC 5789 section 2.2),
and OPTIONS on a patchable resource names them too (section 3.1). Every
PATCH operation of the OpenAPI document is checked, so a new patchable API
is covered without a new test."""
from __future__ import annotations

import re
import uuid

import pytest

from helpers import Client, assert_tmf_error

SALES = "/tmf-api/sales/v4/salesLead"
ACCEPTED = {"application/merge-patch+json", "application/json"}
JSON_PATCH = [{"op": "replace", "path": "/name", "value": "patched"}]


def _accept_patch(response) -> set[str]:
    return {item.strip() for item in response.headers.get("Accept-Patch", "").split(",") if item.strip()}


def _created_ids(api) -> dict[str, str]:
    """A fresh resource of every patchable collection, by its path template."""
    tag = uuid.uuid4().hex[:8]
    customer = api.post(Client.CUSTOMER + "/customer", json={
        "name": f"Patch {tag}", "engagedParty": {"id": tag, "@referredType": "Individual"}})
    product = api.post(Client.INVENTORY + "/product", json={"status": "active", "name": "Patch"})
    lead = api.post(SALES, json={"name": "Patch lead"})
    for response in (customer, product, lead):
        assert response.status_code == 201, response.text
    return {Client.CUSTOMER + "/customer/{resource_id}": customer.json()["id"],
            Client.INVENTORY + "/product/{resource_id}": product.json()["id"],
            SALES + "/{resource_id}": lead.json()["id"]}


def _patch_urls(api) -> list[str]:
    """The URL of a stored resource for every PATCH operation in /openapi.json."""
    ids = _created_ids(api)
    paths = [path for path, operations in api.get("/openapi.json").json()["paths"].items()
             if "patch" in operations]
    assert set(paths) == set(ids), "a PATCH operation this test does not know: add it"
    return [re.sub(r"\{[^}]+\}", ids[path], path) for path in paths]


@pytest.mark.parametrize("content_type", [
    "application/json-patch+json", "text/plain", "application/x-www-form-urlencoded"])
def test_unsupported_patch_format_is_415_with_accept_patch(api, content_type):
    for url in _patch_urls(api):
        before = api.get(url).json()
        response = api.request("PATCH", url, json=JSON_PATCH,
                               headers={"Content-Type": content_type})
        body = assert_tmf_error(response, 415)
        assert body["code"] == "UNSUPPORTED_MEDIA_TYPE"
        assert _accept_patch(response) == ACCEPTED, (url, response.headers)
        assert api.get(url).json() == before     # nothing changed


def test_options_on_a_patchable_resource_says_accept_patch(api):
    for url in _patch_urls(api):
        response = api.request("OPTIONS", url)
        assert response.status_code == 200, (url, response.text)
        assert "PATCH" in response.headers["Allow"]
        assert _accept_patch(response) == ACCEPTED, (url, response.headers)


def test_accept_patch_formats_are_taken(api):
    """What Accept-Patch lists is what PATCH takes."""
    for url in _patch_urls(api):
        for content_type in sorted(ACCEPTED):
            response = api.patch(url, json={"name": "merge patched"},
                                 headers={"Content-Type": content_type})
            assert response.status_code == 200, (url, content_type, response.text)


def test_no_accept_patch_where_there_is_no_patch(api):
    for url in (Client.CUSTOMER + "/customer", Client.RECOMMENDATION + "/queryProductRecommendation"):
        response = api.request("OPTIONS", url)
        assert "PATCH" not in response.headers["Allow"]
        assert "Accept-Patch" not in response.headers
    response = api.post(Client.CUSTOMER + "/customer", data="x", headers={"Content-Type": "text/plain"})
    assert_tmf_error(response, 415)
    assert "Accept-Patch" not in response.headers
