"""Server-owned attributes and stored links (a client cannot set what the
server owns, nor put its host into a stored link).

- id, href and every attribute the service sets (a salesLead's creationDate,
  a query's recommendationItem) never come from the client, whatever @type or
  @schemaLocation say: a 400 that says the server sets them, on every API.
- A stored subclass (@type + @schemaLocation) governs later PATCH, filters and
  `fields=` on its own attributes.
- No value of the request (Host, port) becomes part of a stored link: links
  are relative, or start with RECO_PUBLIC_BASE_URL when it is set.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from helpers import PATIENCE, Client, assert_tmf_error

C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
L = "/tmf-api/sales/v4/salesLead"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
SUBCLASS = {"@type": "Residential", "@schemaLocation": "https://schemas.example/Residential.json"}


def customer(**extra):
    tag = uuid.uuid4().hex[:8]
    return {"name": f"Owned {tag}", "engagedParty": {"id": tag, "@referredType": "Individual"},
            **extra}


def product(**extra):
    return {"status": "active", "name": f"Owned {uuid.uuid4().hex[:8]}", **extra}


def lead(**extra):
    return {"name": f"Owned {uuid.uuid4().hex[:8]}", **extra}


def query(**extra):
    return {"instantSyncRecommendation": True, **extra}


def async_query(**extra):
    return {"instantSyncRecommendation": False, **extra}


# (collection, body maker, the attributes the service owns there)
OWNED = [
    pytest.param(C, customer, ["id", "href"], id="TMF629"),
    pytest.param(P, product, ["id", "href"], id="TMF637"),
    pytest.param(L, lead, ["id", "href", "creationDate"], id="TMF699"),
    pytest.param(R, query, ["id", "href", "recommendationItem"], id="TMF680-instant"),
    pytest.param(R, async_query, ["id", "href", "recommendationItem"], id="TMF680-async"),
]
VALUES = {"id": "my-own-id", "href": "adsadada", "creationDate": "2020-01-01T00:00:00Z",
          "recommendationItem": [{"id": "1", "priority": 1}]}


def count(api, collection) -> int:
    return int(api.get(collection, params={"limit": 0}).headers["X-Total-Count"])


@pytest.mark.parametrize("collection,make,owned", OWNED)
@pytest.mark.parametrize("typing", [{}, {"@schemaLocation": "https://x.example/s.json"},
                                    {"@type": "MySubclass"}, SUBCLASS],
                         ids=["plain", "schemaLocation", "subclass", "both"])
def test_server_owned_attributes_are_never_taken_from_the_client(api, collection, make, owned, typing):
    before = count(api, collection)
    for name in owned:
        for attempt in range(2):          # sending it again was a 500
            response = api.post(collection, json=make(**typing, **{name: VALUES[name]}))
            error = assert_tmf_error(response, 400)
            assert error["code"] == "SERVER_OWNED_ATTRIBUTE", error
            assert f"{name} is set by the server" in error["message"]
            assert name in error["details"]
    assert count(api, collection) == before


def test_a_recommendation_lead_cannot_bring_its_own_id(api):
    error = assert_tmf_error(api.post(L, json={
        "@type": "RecommendationSalesLead", "id": "mine",
        "recommendation": {"id": str(uuid.uuid4()), "itemId": "1"}}), 400)
    assert error["code"] == "SERVER_OWNED_ATTRIBUTE"


@pytest.mark.parametrize("collection,make,owned", OWNED[:3])
def test_server_owned_attributes_cannot_be_patched(api, collection, make, owned):
    created = api.post(collection, json=make(**SUBCLASS, extra="x")).json()
    for name in owned:
        error = assert_tmf_error(api.patch(f"{collection}/{created['id']}",
                                           json={name: VALUES[name]}), 400)
        assert "set by the server" in error["message"]
    assert api.get(f"{collection}/{created['id']}").json() == created


@pytest.mark.parametrize("collection,make", [(C, customer), (P, product), (L, lead)],
                         ids=["TMF629", "TMF637", "TMF699"])
def test_a_stored_subclass_governs_patch_filters_and_fields(api, collection, make):
    tier = f"gold-{uuid.uuid4().hex[:6]}"
    created = api.post(collection, json=make(**SUBCLASS, loyaltyTier="silver"))
    assert created.status_code == 201, created.text
    url = f"{collection}/{created.json()['id']}"
    patched = api.patch(url, json={"loyaltyTier": tier})     # no @type sent again
    assert patched.status_code == 200, patched.text
    assert patched.json()["loyaltyTier"] == tier and patched.json()["@type"] == "Residential"
    found = api.get(collection, params={"loyaltyTier": tier})
    assert found.status_code == 200, found.text
    assert [r["id"] for r in found.json()] == [created.json()["id"]]
    listed = api.get(collection, params={"loyaltyTier": tier, "fields": "loyaltyTier"}).json()
    assert listed == [{"id": created.json()["id"], "href": created.json()["href"],
                       "@type": "Residential", "loyaltyTier": tier}]
    ranked = api.get(collection, params={"sort": "-loyaltyTier", "fields": "loyaltyTier"})
    assert ranked.status_code == 200 and ranked.json()[0]["loyaltyTier"] >= tier
    one = api.get(url, params={"fields": "loyaltyTier"})
    assert one.status_code == 200 and one.json()["loyaltyTier"] == tier
    # still strict where nothing declares the attribute
    plain = api.post(collection, json=make()).json()
    assert_tmf_error(api.patch(f"{collection}/{plain['id']}", json={"loyaltyTier": "x"}), 400)
    assert_tmf_error(api.get(f"{collection}/{plain['id']}", params={"fields": "loyaltyTier"}), 400)
    assert_tmf_error(api.get(collection, params={"noSuchAttribute": "x"}), 400)


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def links_of(value) -> list[str]:
    return [text for text in strings(value) if "/tmf-api/" in text or "/schemas/" in text]


def _made_everywhere(api, headers) -> list[dict]:
    """One resource of each kind, a lead from a recommended item and a hub,
    created with the given request headers; what the store then holds."""
    made = []
    cust = api.post(C, json=customer(), headers=headers).json()
    made.append(cust)
    made.append(api.post(P, json=product(relatedParty=[{"id": cust["id"], "role": "owner",
                                                        "@referredType": "Customer"}]),
                         headers=headers).json())
    made.append(api.post(L, json=lead(), headers=headers).json())
    instant = api.post(R, json=query(channel=[{"id": "21"}], shoppingCart=[{
        "@type": "ShoppingCart", "id": "c1", "cartItem": [{
            "id": "1", "productOffering": {"id": "6547"}}]}]), headers=headers)
    assert instant.status_code == 200, instant.text
    made.append(instant.json())
    queued = api.post(R, json=async_query(channel=[{"id": "21"}], shoppingCart=[{
        "@type": "ShoppingCart", "id": "c1", "cartItem": [{
            "id": "1", "productOffering": {"id": "6547"}}]}]), headers=headers).json()
    deadline = time.time() + PATIENCE
    while (stored := api.get(f"{R}/{queued['id']}").json())["state"] != "done":
        assert time.time() < deadline, stored
        time.sleep(0.05)
    made.append(stored)
    assert stored["recommendationItem"], stored
    from_item = api.post(L, json={"@type": "RecommendationSalesLead", "recommendation": {
        "id": stored["id"], "itemId": stored["recommendationItem"][0]["id"]}}, headers=headers)
    assert from_item.status_code == 201, from_item.text
    made.append(from_item.json())
    hub = api.post(Client.CUSTOMER + "/hub", json={"callback": "http://127.0.0.1:9/x"},
                   headers=headers)
    made.append({"Location": hub.headers["Location"]})
    return made


def test_a_client_host_never_becomes_part_of_a_stored_link(api):
    # the session's shared server: what is read back is this test's own,
    # and its hub is deleted again
    made = _made_everywhere(api, {"Host": "attacker.example:8080"})
    try:
        _no_client_host_in(api, made)
    finally:
        api.delete(made[-1]["Location"])


def _no_client_host_in(api, made):
    # read back by everyone else, through the ordinary address
    stored = [api.get(r["href"]).json() if "href" in r else r for r in made]
    links = links_of(stored)
    assert len(links) >= 10, links
    assert not [link for link in links if "attacker" in link or ":8080" in link], links
    # relative links, that resolve against the service's own address
    assert all(link.startswith("/") for link in links), links
    for link in {link for link in links if "/productOffering/" not in link}:
        if "/hub/" not in link:
            assert api.get(link).status_code == 200, link
    assert "attacker" not in json.dumps(api.get(C, params={"id": made[0]["id"]}).json())


def test_links_start_with_the_public_base_url_when_it_is_set(make_server):
    public = "https://api.example.com"
    server = make_server(env={"RECO_PUBLIC_BASE_URL": public + "/"})
    api = Client(server.url)
    made = _made_everywhere(api, {"Host": "attacker.example"})
    links = links_of(made)
    assert len(links) >= 10 and all(link.startswith(public + "/") for link in links), links
    assert made[0]["href"] == f"{public}{C}/{made[0]['id']}"
