"""TMF620 productOffering, read-only, from the catalog files the rules read
(a link a client cannot follow is a defect): every link this service hands out resolves, the
recommended items' and leads' `productOffering.href` included (they were
404), and the list takes the guideline query (fields, filters, sort, paging)."""
from __future__ import annotations

import time

import pytest

from app.rules import load_catalog
from helpers import DEMO_CATALOG, PATIENCE, Client, assert_tmf_error

PO = "/tmf-api/productCatalogManagement/v4/productOffering"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
L = "/tmf-api/sales/v4/salesLead"
QUERY = {"channel": [{"id": "21"}], "shoppingCart": [{
    "@type": "ShoppingCart", "id": "c1", "cartItem": [{"id": "1", "productOffering": {"id": "6547"}}]}]}


def offering_refs(*resources):
    """The productOffering references the service made: of recommended items
    and of leads (a cart's references are the client's)."""
    for resource in resources:
        for item in resource.get("recommendationItem", []):
            yield item["productOffering"]
        if resource.get("@type") == "RecommendationSalesLead":
            yield resource["productOffering"]


def test_every_handed_out_offering_href_resolves(api):
    instant = api.post(R, json={**QUERY, "instantSyncRecommendation": True}).json()
    queued = api.post(R, json=QUERY).json()
    deadline = time.time() + PATIENCE
    while (stored := api.get(f"{R}/{queued['id']}").json())["state"] != "done":
        assert time.time() < deadline
        time.sleep(0.05)
    lead = api.post(L, json={"@type": "RecommendationSalesLead", "recommendation": {
        "id": stored["id"], "itemId": stored["recommendationItem"][0]["id"]}}).json()
    refs = list(offering_refs(instant, stored, lead))
    assert len(refs) >= 3 and lead["productOffering"] in refs
    for ref in refs:
        response = api.get(ref["href"])
        assert response.status_code == 200, ref
        offering = response.json()
        assert offering["id"] == ref["id"] and offering["name"] == ref["name"]
        assert offering["href"] == ref["href"] and offering["@type"] == "ProductOffering"


def test_the_list_is_the_catalog_the_rules_read(api):
    catalog = load_catalog(DEMO_CATALOG)
    listed = api.get(PO)
    assert listed.status_code == 200
    assert [o["id"] for o in listed.json()] == list(catalog.offerings)
    assert listed.headers["X-Total-Count"] == str(len(catalog.offerings))
    for offering in listed.json():
        assert offering == {**catalog.offerings[offering["id"]].data, "href": f"{PO}/{offering['id']}"}
        assert api.get(offering["href"]).json() == offering


def test_fields_filters_sort_and_paging(api):
    devices = api.get(PO, params={"category.id": "devices", "fields": "name"})
    assert devices.status_code == 200 and devices.json()
    assert all(set(o) == {"id", "href", "@type", "name"} for o in devices.json())
    every = api.get(PO, params={"sort": "-name", "fields": "name"}).json()
    assert [o["name"] for o in every] == sorted((o["name"] for o in every), reverse=True)
    page = api.get(PO, params={"sort": "name", "offset": 2, "limit": 3, "fields": "name"})
    assert page.status_code == 206 and page.json() == sorted(
        every, key=lambda o: o["name"])[2:5]
    assert page.headers["X-Total-Count"] == str(len(every))
    one = api.get(f"{PO}/6547", params={"fields": "lifecycleStatus"})
    assert one.json() == {"id": "6547", "href": f"{PO}/6547", "@type": "ProductOffering",
                          "lifecycleStatus": "Active"}


@pytest.mark.parametrize("method,path,params,status", [
    ("GET", f"{PO}/no-such-offering", {}, 404),
    ("GET", PO, {"nmae": "TMFone"}, 400),
    ("GET", PO, {"fields": "price"}, 400),
    ("GET", f"{PO}/6547", {"feilds": "name"}, 400),
    ("POST", PO, {}, 405),
    ("PATCH", f"{PO}/6547", {}, 405),
    ("DELETE", f"{PO}/6547", {}, 405),
])
def test_errors_are_tmf_errors(api, method, path, params, status):
    assert_tmf_error(api.request(method, path, params=params, json={}), status)


@pytest.mark.backends("tinydb", reason="TMF620 is read from the catalog files, never from the store")
def test_hrefs_use_the_public_base_url(make_server):
    public = "https://shop.example.com"
    api = Client(make_server(env={"RECO_PUBLIC_BASE_URL": public}).url)
    body = api.post(R, json={**QUERY, "instantSyncRecommendation": True}).json()
    for ref in offering_refs(body):
        assert ref["href"].startswith(public + PO + "/")
        assert api.get(ref["href"].removeprefix(public)).json()["href"] == ref["href"]
