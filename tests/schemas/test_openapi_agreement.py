"""The served OpenAPI document and the behaviour agree (clients are generated from it):
each disagreement schemathesis found (`--checks all`, stateful phase) is a
test here, for every operation of its kind; tests/test_hardening_fuzz.py
keeps the bounded schemathesis run, stateful phase included."""
from __future__ import annotations

import uuid

import pytest
import schemathesis

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
L = "/tmf-api/sales/v4/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
PO = "/tmf-api/productCatalogManagement/v4/productOffering"
HUBS = [Client.CUSTOMER, Client.INVENTORY, Client.RECOMMENDATION, "/tmf-api/sales/v4"]
PATCHABLE = {C: {"name": "n", "engagedParty": {"id": "e", "@referredType": "Individual"}},
             P: {"status": "active", "name": "n"}, L: {"name": "n"}}


@pytest.fixture(scope="module")
def document(server):
    return Client(server.url).get("/openapi.json").json()


def _schema(document, ref_or_schema):
    while "$ref" in ref_or_schema:
        ref_or_schema = document["components"]["schemas"][ref_or_schema["$ref"].rsplit("/", 1)[-1]]
    return ref_or_schema


def test_hub_input_is_not_open_to_extensions_in_document_or_service(api, document):
    for base in HUBS:
        body = document["paths"][f"{base}/hub"]["post"]["requestBody"]["content"]
        schema = _schema(document, body["application/json"]["schema"])
        assert schema.get("additionalProperties") is False and "anyOf" not in schema, base
        for extra in ({"@type": "Sub"}, {"@schemaLocation": "https://x.example/s.json"}):
            assert_tmf_error(api.post(f"{base}/hub", json={
                "callback": "http://127.0.0.1:9/x", **extra}), 400)


@pytest.mark.parametrize("path", [C, P, L, R, PO])
def test_fields_answers_conform_to_the_get_schemas(api, server, document, path):
    schema = schemathesis.openapi.from_dict(document)
    if path in PATCHABLE:
        api.post(path, json=PATCHABLE[path])
    else:
        api.post(path, json={"instantSyncRecommendation": False})
    listed = api.get(path, params={"fields": "", "limit": 2})
    assert listed.status_code in (200, 206) and listed.json()
    schema[path]["GET"].validate_response(listed)                 # raises when it disagrees
    item_path = next(p for p in document["paths"] if p.startswith(path + "/{"))
    one = api.get(f"{path}/{listed.json()[0]['id']}", params={"fields": ""})
    assert set(one.json()) == {"id", "href", "@type"}
    schema[item_path]["GET"].validate_response(one)


def test_the_lead_reference_requires_id_and_item_id(api, document):
    for name in ("TMF699_SalesLead_Create", "TMF699_SalesLead"):
        prop = document["components"]["schemas"][name]["properties"]["recommendation"]
        reference = _schema(document, prop.get("allOf", [prop])[0])
        assert set(reference["required"]) == {"id", "itemId"}, name
    prop = document["components"]["schemas"]["TMF699_SalesLead_Create"]["properties"]["recommendation"]
    request_ref = _schema(document, prop.get("allOf", [prop])[0])
    assert request_ref.get("additionalProperties") is False
    for reference in ({"itemId": "1"}, {"id": str(uuid.uuid4())},
                      {"id": str(uuid.uuid4()), "itemId": "1", "itemPriority": 1}):
        assert_tmf_error(api.post(L, json={"@type": "RecommendationSalesLead",
                                           "recommendation": reference}), 400)


@pytest.mark.parametrize("path", [C, P, L, R, PO])
@pytest.mark.parametrize("query", ["offset=", "limit=", "offset=0&offset=1", "limit=1&limit=2",
                                   "fields=id&fields=href", "sort=id&sort=href"])
def test_paging_parameters_are_single_whole_numbers(api, path, query):
    error = assert_tmf_error(api.get(f"{path}?{query}"), 400)
    assert error["code"] == "INVALID_QUERY"


@pytest.mark.parametrize("path", list(PATCHABLE))
@pytest.mark.parametrize("patch", [{"": None}, {"noSuchAttribute": None}])
def test_a_null_for_an_unknown_attribute_is_refused(api, path, patch):
    created = api.post(path, json=PATCHABLE[path]).json()
    error = assert_tmf_error(api.patch(f"{path}/{created['id']}", json=patch), 400)
    assert list(patch)[0] in error["details"]
    assert api.get(f"{path}/{created['id']}").json() == created
    # a null that removes a known optional attribute still works
    assert api.patch(f"{path}/{created['id']}", json={"description": None} if path != C
                     else {"statusReason": None}).status_code == 200


def _patch_body_is_valid(document, path: str, body: dict) -> bool:
    """Does `body` conform to the served document's merge-patch request schema
    of `path`'s PATCH (the check schemathesis' positive_data_acceptance makes)?"""
    import jsonschema_rs   # schemathesis' own validator

    item_path = next(p for p in document["paths"] if p.startswith(path + "/{"))
    content = document["paths"][item_path]["patch"]["requestBody"]["content"]
    ref = content["application/merge-patch+json"]["schema"]["$ref"]
    return jsonschema_rs.validator_for({"$ref": ref, "components": document["components"]}
                                       ).is_valid(body)


# An attribute of a nested object per API: a TimePeriod, a ProductOfferingRef.
NESTED = {C: "validFor", P: "productOffering", L: "validFor"}
SUBCLASS = {"@type": "Residential", "@schemaLocation": "https://schemas.example/Residential.json"}


@pytest.mark.parametrize("path", list(PATCHABLE))
@pytest.mark.parametrize("typing", [{"@schemaLocation": "https://x.example/s.json"},
                                    {"@type": "MySubclass"}, SUBCLASS],
                         ids=["schemaLocation", "subclass", "both"])
def test_a_patch_that_declares_a_subclass_may_remove_any_attribute(api, document, path, typing):
    # found by the stateful fuzz run: {"@schemaLocation": ..., "k": null, ...}
    # was a 400 "k: Unknown field" though the document allows it (anyOf,
    # "extension: @schemaLocation given"), while the non-null extension
    # attributes next to it were taken
    created = api.post(path, json=PATCHABLE[path]).json()
    body = {**typing, "loyaltyTier": "gold", "k": None, "": None}
    assert _patch_body_is_valid(document, path, body)
    patched = api.patch(f"{path}/{created['id']}", json=body,
                        headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["loyaltyTier"] == "gold" and "k" not in patched.json()
    assert api.get(f"{path}/{created['id']}").json() == patched.json()
    # the stored subclass governs the next patch: no need to declare it again
    again = api.patch(f"{path}/{created['id']}", json={"loyaltyTier": None, "k": None})
    assert again.status_code == 200, again.text
    assert "loyaltyTier" not in again.json()


@pytest.mark.parametrize("path", list(PATCHABLE))
def test_nulls_in_nested_objects_follow_the_same_rule(api, document, path):
    created = api.post(path, json=PATCHABLE[path]).json()
    url = f"{path}/{created['id']}"
    name = NESTED[path]
    # a plain nested object: a null names an attribute it cannot have -> 400,
    # as the document says (its "known attributes only" branch)
    typo = {name: {"noSuchAttribute": None}}
    assert not _patch_body_is_valid(document, path, typo)
    error = assert_tmf_error(api.patch(url, json=typo), 400)
    assert error["details"] == {name: {"noSuchAttribute": ["Unknown field."]}}
    assert api.get(url).json() == created
    # the same object declaring a subclass may remove anything
    extended = {name: {"@schemaLocation": "https://x.example/s.json", "noSuchAttribute": None,
                       "id": "1", "extra": "x"}}
    assert _patch_body_is_valid(document, path, extended)
    patched = api.patch(url, json=extended)
    assert patched.status_code == 200, patched.text
    assert patched.json()[name]["extra"] == "x"
    # ...and, stored so, governs the next patches of that object, values and nulls
    changed = api.patch(url, json={name: {"extra": "y", "more": 1}})
    assert changed.status_code == 200, changed.text
    assert changed.json()[name]["extra"] == "y" and changed.json()[name]["more"] == 1
    again = api.patch(url, json={name: {"extra": None, "other": None}})
    assert again.status_code == 200, again.text
    assert "extra" not in again.json()[name] and again.json()[name]["more"] == 1


def _create_body_is_valid(document, path: str, body: dict) -> bool:
    import jsonschema_rs

    content = document["paths"][path]["post"]["requestBody"]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return jsonschema_rs.validator_for({"$ref": ref, "components": document["components"]}
                                       ).is_valid(body)


@pytest.mark.parametrize("body", [
    # found by the fuzz runs: both were schema-valid in the document, and 400s
    {"name": "n", "@type": "PartnerSalesLead", "recommendation": {"id": "q", "itemId": "1"}},
    {"name": "n", "recommendation": {"id": "", "itemId": ""}},
    {"name": "n", "@type": "RecommendationSalesLead"},
], ids=["other-type", "empty-ids", "no-reference"])
def test_what_a_recommendation_lead_needs_is_in_the_document(api, document, body):
    assert _create_body_is_valid(document, L, {"name": "n"})   # only what the case breaks
    assert not _create_body_is_valid(document, L, body)
    assert_tmf_error(api.post(L, json=body), 400)


def test_a_blank_recommendation_id_is_simply_not_found(api, document):
    body = {"name": "n", "recommendation": {"id": " ", "itemId": " "}}
    assert _create_body_is_valid(document, L, body)
    assert assert_tmf_error(api.post(L, json=body), 404)["code"] == "RECOMMENDATION_NOT_FOUND"


@pytest.mark.parametrize("fmt,content_type", [("json", "application/json"), ("text", "text/plain")])
def test_explain_answers_in_a_documented_content_type(api, document, fmt, content_type):
    # found by the fuzz test: format=text answered text/plain, documented was JSON only
    answer = api.post("/admin/rules/explain", params={"format": fmt}, json={})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(content_type)
    assert content_type in document["paths"]["/admin/rules/explain"]["post"]["responses"]["200"]["content"]
    schemathesis.openapi.from_dict(document)["/admin/rules/explain"]["POST"].validate_response(answer)


@pytest.mark.parametrize("path", list(PATCHABLE))
def test_a_merge_patch_needs_no_attribute(api, document, path):
    # TMF629's Customer_Update requires engagedParty; a merge patch is partial
    created = api.post(path, json=PATCHABLE[path]).json()
    assert _patch_body_is_valid(document, path, {"name": "renamed"})
    patched = api.patch(f"{path}/{created['id']}", json={"name": "renamed"})
    assert patched.status_code == 200 and patched.json()["name"] == "renamed"
