"""TMF629 Customer and TMF637 Product Inventory over HTTP against a real
server: every operation of the spec, the guideline query features, and the
mandatory attributes the conformance profile checks."""
from __future__ import annotations

import uuid

import pytest

from helpers import Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"


def customer_body(**extra):
    body = {"name": f"Customer {uuid.uuid4().hex[:8]}",
            "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}}
    body.update(extra)
    return body


def product_body(**extra):
    body = {"status": "active", "name": "Mobile 10GB",
            "productOffering": {"id": "7001", "name": "Mobile 10GB"}}
    body.update(extra)
    return body


API_CASES = [pytest.param(C, customer_body, "Customer", id="TMF629"),
             pytest.param(P, product_body, "Product", id="TMF637")]


@pytest.mark.parametrize("path,make,type_name", API_CASES)
def test_create_sets_id_href_type_and_location(api, path, make, type_name):
    response = api.post(path, json=make())
    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["href"] == f"{path}/{body['id']}"   # relative: RECO_PUBLIC_BASE_URL unset
    assert response.headers["Location"] == body["href"]
    assert body["@type"] == type_name
    again = api.get(f"{path}/{body['id']}")
    assert again.status_code == 200
    assert again.json() == body


@pytest.mark.parametrize("path,make,type_name", API_CASES)
def test_server_owned_id_cannot_be_sent(api, path, make, type_name):
    assert_tmf_error(api.post(path, json=make(id="mine")), 400)


def test_customer_mandatory_attributes(api):
    body = assert_tmf_error(api.post(C, json={"engagedParty": {"id": "1", "@referredType": "Individual"}}), 400)
    assert "name" in body["details"]
    body = assert_tmf_error(api.post(C, json={"name": "x"}), 400)
    assert "engagedParty" in body["details"]
    body = assert_tmf_error(api.post(C, json={"name": "x", "engagedParty": {"name": "no id"}}), 400)
    assert "id" in body["details"]["engagedParty"]


def test_product_status_is_mandatory_and_enumerated(api):
    assert "status" in assert_tmf_error(api.post(P, json={"name": "x"}), 400)["details"]
    assert "status" in assert_tmf_error(api.post(P, json=product_body(status="sleeping")), 400)["details"]


@pytest.mark.parametrize("path,make,type_name", API_CASES)
def test_typo_is_rejected_but_subclass_extension_travels(api, path, make, type_name):
    body = assert_tmf_error(api.post(path, json=make(nmae="typo")), 400)
    assert body["details"] == {"nmae": ["Unknown field."]}
    extended = make(**{"@type": f"Vip{type_name}", "@baseType": type_name,
                       "loyaltyTier": "gold"})
    created = api.post(path, json=extended)
    assert created.status_code == 201, created.text
    assert created.json()["loyaltyTier"] == "gold"
    assert api.get(created.headers["Location"].replace(api.url, "")).json()["loyaltyTier"] == "gold"


@pytest.mark.parametrize("path,make,type_name", API_CASES)
def test_wrong_field_types(api, path, make, type_name):
    assert_tmf_error(api.post(path, json=make(name=42)), 400)
    assert_tmf_error(api.post(path, json=make(relatedParty={"id": 5})), 400)
    assert_tmf_error(api.post(path, json=make(validFor={"startDateTime": "tomorrow"})), 400)


def test_patch_merges_and_emits_events(api, listener):
    hub = api.post(Client.CUSTOMER + "/hub", json={"callback": listener.url})
    assert hub.status_code == 201, hub.text
    created = api.post(C, json=customer_body(status="pending",
                                             characteristic=[{"name": "segment", "value": "standard"}]))
    cid = created.json()["id"]
    patched = api.patch(f"{C}/{cid}", json={"status": "approved", "statusReason": "vip",
                                           "characteristic": [{"name": "segment", "value": "premium"}]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["status"] == "approved" and body["statusReason"] == "vip"
    assert body["characteristic"] == [{"name": "segment", "value": "premium"}]
    assert body["engagedParty"] == created.json()["engagedParty"]
    # null removes an attribute (RFC 7386)
    removed = api.patch(f"{C}/{cid}", json={"statusReason": None}).json()
    assert "statusReason" not in removed
    assert api.get(f"{C}/{cid}").json() == removed

    def about(event):
        return event["event"]["customer"]["id"] == cid
    assert listener.wait_for(lambda e: e["eventType"] == "CustomerCreateEvent" and about(e))
    state = listener.wait_for(lambda e: e["eventType"] == "CustomerStateChangeEvent" and about(e))
    assert state[0]["event"]["customer"]["status"] == "approved"
    assert listener.wait_for(lambda e: e["eventType"] == "CustomerAttributeValueChangeEvent" and about(e))
    for event in listener.events:
        assert set(event) >= {"eventId", "eventTime", "eventType", "event"}
    api.delete(f"/tmf-api/customerManagement/v4/hub/{hub.json()['id']}")


def test_patch_errors(api):
    cid = api.post(C, json=customer_body()).json()["id"]
    assert_tmf_error(api.patch(f"{C}/{cid}", json={"id": "other"}), 400)
    assert_tmf_error(api.patch(f"{C}/{cid}", json={"name": 3}), 400)
    # removing a mandatory attribute leaves an invalid customer: refused, nothing changed
    before = api.get(f"{C}/{cid}").json()
    assert_tmf_error(api.patch(f"{C}/{cid}", json={"engagedParty": None}), 400)
    assert api.get(f"{C}/{cid}").json() == before
    assert_tmf_error(api.patch(f"{C}/{uuid.uuid4()}", json={"name": "x"}), 404)
    assert_tmf_error(api.patch(f"{C}/{cid}", json=[{"op": "replace"}]), 400)
    response = api.request("PATCH", f"{C}/{cid}", data='{"name": "x"}',
                           headers={"Content-Type": "application/json-patch+json"})
    assert_tmf_error(response, 415)


@pytest.mark.parametrize("path,make,type_name", API_CASES)
def test_delete(api, path, make, type_name):
    rid = api.post(path, json=make()).json()["id"]
    assert api.delete(f"{path}/{rid}").status_code == 204
    assert_tmf_error(api.get(f"{path}/{rid}"), 404)
    assert_tmf_error(api.delete(f"{path}/{rid}"), 404)


def test_list_filter_fields_sort_and_paging(api):
    tag = uuid.uuid4().hex
    owner = f"owner-{tag}"
    made = []
    for index, status in enumerate(["active", "suspended", "active", "terminated", "active"]):
        made.append(api.post(P, json=product_body(
            status=status, description=tag, name=f"p{index}",
            startDate=f"2026-0{index + 1}-01T00:00:00Z",
            relatedParty=[{"id": owner, "role": "customer", "@referredType": "Customer"}])).json())
    everything = api.get(P, params={"relatedParty.id": owner})
    assert everything.status_code == 200
    assert everything.headers["X-Total-Count"] == "5" == everything.headers["X-Result-Count"]
    assert {p["id"] for p in everything.json()} == {p["id"] for p in made}

    either = api.get(P, params={"relatedParty.id": owner, "status": "suspended,terminated"}).json()
    assert sorted(p["status"] for p in either) == ["suspended", "terminated"]

    later = api.get(P, params={"description": tag, "startDate.gte": "2026-03-01T00:00:00Z",
                               "sort": "-startDate"}).json()
    assert [p["name"] for p in later] == ["p4", "p3", "p2"]
    earlier = api.get(P, params={"description": tag, "startDate.lt": "2026-02-15", "sort": "name"}).json()
    assert [p["name"] for p in earlier] == ["p0", "p1"]

    page = api.get(P, params={"description": tag, "sort": "name", "offset": 1, "limit": 2,
                              "fields": "name,status"})
    assert page.status_code == 206
    assert page.headers["X-Total-Count"] == "5" and page.headers["X-Result-Count"] == "2"
    assert page.json() == [
        {"id": made[1]["id"], "href": made[1]["href"], "@type": "Product", "name": "p1", "status": "suspended"},
        {"id": made[2]["id"], "href": made[2]["href"], "@type": "Product", "name": "p2", "status": "active"},
    ]
    one = api.get(f"{P}/{made[0]['id']}", params={"fields": "status"}).json()
    assert one == {"id": made[0]["id"], "href": made[0]["href"], "@type": "Product", "status": "active"}


@pytest.mark.parametrize("params", [
    {"fields": "nosuch"}, {"nosuch": "1"}, {"sort": "nosuch"}, {"limit": "-1"},
    {"offset": "abc"}, {"limit": "100000"},
])
def test_bad_list_queries(api, params):
    assert_tmf_error(api.get(P, params=params), 400)


def test_conformance_customer_flow(api):
    """What the TMF629 conformance kit checks: create, then find and read it
    back with all mandatory attributes and the href of the Location header."""
    created = api.post(C, json=customer_body())
    body = created.json()
    for attribute in ("id", "href", "name", "@type", "engagedParty"):
        assert body.get(attribute)
    listed = api.get(C, params={"name": body["name"]}).json()
    assert listed == [body]
    selected = api.get(C, params={"fields": "name", "id": body["id"]}).json()
    assert selected == [{"id": body["id"], "href": body["href"], "@type": "Customer",
                         "name": body["name"]}]
