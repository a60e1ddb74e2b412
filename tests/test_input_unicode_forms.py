"""Text in Unicode NFD (what macOS input and file names often give: "e" and
a combining accent) against text in NFC ("é", one code point): a customer
whose segment was typed on a Mac did not match the rule value "privé", nor
did a filter find it. Every text is put into NFC where it enters
(app/textform.py): rule and catalog files, request bodies (so what is
stored), query strings and the facts of an evaluation. Each member on both
stores.

Only the evaluation test needs rules and a catalog of its own (a server of
its own); the others add their own data (uuid names and ids, lists filtered
by them) and read it back, so they use the session's `server`."""
from __future__ import annotations

import shutil
import unicodedata
import uuid

import pytest

import cliprocess
from helpers import DEMO_CATALOG, Client

R = Client.RECOMMENDATION + "/queryProductRecommendation"
C = Client.CUSTOMER + "/customer"
P = Client.INVENTORY + "/product"
L = "/tmf-api/sales/v4/salesLead"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


PRIVE, ZURICH, ELEVE, NIVEAU, CATEGORY = "privé", "Zürich", "élevé", "niveau-é", "appareils-privés"
assert nfd(PRIVE) != nfc(PRIVE)

RULES = f"""id: nfc
name: Unicode forms
version: "1.0.0"
status: stable
description: Rule values in NFC, and one rule written in NFD.
owner: tests
rules:
  - id: U1
    name: private segment
    kind: cross-sell
    description: A rule of the test.
    when:
      segment: "{nfc(PRIVE)}"
    recommend:
      - {{offering: "6542", priority: 10}}
  - id: U2
    name: a place
    kind: cross-sell
    description: A rule of the test.
    when:
      place: "{nfc(ZURICH)}"
    recommend:
      - {{offering: "6543", priority: 20}}
  - id: U3
    name: written in NFD
    kind: cross-sell
    description: A rule of the test.
    when:
      characteristic: {{"{nfd(NIVEAU)}": "{nfd(ELEVE)}"}}
    recommend:
      - {{offering: "7301", priority: 30}}
  - id: U4
    name: a catalog category written in NFD there
    kind: cross-sell
    description: A rule of the test.
    when:
      cart_category: "{nfc(CATEGORY)}"
    recommend:
      - {{offering: "6550", priority: 40}}
"""


@pytest.fixture
def unicode_server(make_server, tmp_path):
    """A server with the NFC/NFD rules above and a catalog category in NFD."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nfc.yaml").write_text(RULES, encoding="utf-8")
    catalog = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, catalog)
    offerings = catalog / "offerings.yaml"
    text = offerings.read_text(encoding="utf-8")
    first = "- {id: devices, name: devices}"          # TMFone's category (the first offering)
    assert first in text
    offerings.write_text(text.replace(first, f'- {{id: "{nfd(CATEGORY)}", name: devices}}', 1),
                         encoding="utf-8")
    return make_server(rules_dir=rules, catalog_dir=catalog)


def _customer(api, **characteristics) -> dict:
    party = uuid.uuid4().hex
    response = api.post(C, json={
        "name": f"Unicode {party[:6]}", "engagedParty": {"id": party, "@referredType": "Individual"},
        "characteristic": [{"name": name, "value": value} for name, value in characteristics.items()]})
    assert response.status_code == 201, response.text
    return response.json()


def _recommended(api, customer=None, **extra) -> list[str]:
    body = {"instantSyncRecommendation": True, "channel": [{"id": "21"}], **extra}
    if customer:
        body["relatedParty"] = {"id": customer["id"], "role": "customer", "@referredType": "Customer"}
    response = api.post(R, json=body)
    assert response.status_code == 200, response.text
    return [item["productOffering"]["id"] for item in response.json()["recommendationItem"]]


def test_nfd_and_nfc_match_in_every_evaluation_member(unicode_server):
    """One server per store for the four members (starting one is slow)."""
    api = Client(unicode_server.url)
    # stored customer text (NFD) against a rule value (NFC)
    assert "6542" in _recommended(api, _customer(api, segment=nfd(PRIVE)))
    assert "6542" in _recommended(api, _customer(api, segment=nfc(PRIVE)))
    assert "6542" not in _recommended(api, _customer(api, segment="prive"))
    # a request fact (NFD) against a rule value (NFC)
    assert "6543" in _recommended(api, place={"id": nfd(ZURICH), "role": "shop"})
    assert "6543" in _recommended(api, place={"name": nfc(ZURICH), "role": "shop"})
    # a rule written in NFD (name and value) against NFC text, and NFD text
    assert "7301" in _recommended(api, _customer(api, **{nfc(NIVEAU): nfc(ELEVE)}))
    assert "7301" in _recommended(api, _customer(api, **{nfd(NIVEAU): nfd(ELEVE)}))
    # a catalog category written in NFD against a rule's NFC
    cart = [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
        {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]
    assert "6550" in _recommended(api, shoppingCart=cart)
    offering = api.get("/tmf-api/productCatalogManagement/v4/productOffering/6547").json()
    assert offering["category"][0]["id"] == nfc(CATEGORY)


BODIES = {
    C: lambda name: {"name": name, "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}},
    P: lambda name: {"status": "active", "name": name},
    L: lambda name: {"name": name},
}


def test_text_is_stored_in_nfc_and_found_by_either_form(server):
    api = Client(server.url)
    for collection, body in BODIES.items():
        name = f"{PRIVE} {uuid.uuid4().hex[:6]}"
        created = api.post(collection, json=body(nfd(name)))
        assert created.status_code == 201, created.text
        assert created.json()["name"] == nfc(name)
        assert api.get(f"{collection}/{created.json()['id']}").json()["name"] == nfc(name)
        for form in (nfc(name), nfd(name)):
            found = api.get(collection, params={"name": form}).json()
            assert [item["id"] for item in found] == [created.json()["id"]], (collection, form)
    tag = uuid.uuid4().hex[:6]
    customer = _customer(api, **{f"tier{tag}": nfd(ELEVE)})
    for form in (nfc(ELEVE), nfd(ELEVE)):
        found = api.get(C, params={"characteristic.name": f"tier{tag}", "characteristic.value": form}).json()
        assert [item["id"] for item in found] == [customer["id"]], form


def test_store_load_stores_nfc(store_url, tmp_path):
    """`flask store load` (a CRM export typed on a Mac) stores what the API would."""
    import json
    import os
    import sys

    from app.store import open_store
    from helpers import ROOT

    lines = tmp_path / "customers.jsonl"
    lines.write_text(json.dumps({
        "id": "crm-nfd", "name": nfd(PRIVE),
        "engagedParty": {"id": "party-nfd", "@referredType": "Individual"},
        "characteristic": [{"name": nfd(NIVEAU), "value": nfd(ELEVE)}]}) + "\n", encoding="utf-8")
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "store", "load", "customer",
                           str(lines)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RECO_STORE_URL": store_url,
                               "RECO_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stdout + done.stderr
    with open_store(store_url) as store:
        stored = store.get("customer", "crm-nfd")
    assert stored["name"] == nfc(PRIVE)
    assert stored["characteristic"] == [{"name": nfc(NIVEAU), "value": nfc(ELEVE)}]


def test_an_id_in_either_unicode_form_is_refused_by_load_and_no_url_finds_it(server, tmp_path):
    """Ids are of the id alphabet (ASCII: app/ids.py), so no Unicode form of
    an accented id can be stored: `flask store load` names the line and
    skips it, and a URL with the id in either form is a 404 TMF Error."""
    import json
    import os
    import sys
    from urllib.parse import quote

    from helpers import ROOT

    tag = uuid.uuid4().hex[:6]
    given = nfd(f"crm-{PRIVE}-{tag}")
    lines = tmp_path / "customers.jsonl"
    lines.write_text("".join(json.dumps({
        "id": form, "name": f"Loaded {tag}",
        "engagedParty": {"id": tag, "@referredType": "Individual"}}) + "\n" for form in (given, nfc(given))),
        encoding="utf-8")
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "store", "load", "customer",
                           str(lines)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RECO_STORE_URL": server.store_url,
                               "RECO_DATA_DIR": str(server.data_dir)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 customer records loaded, 2 lines skipped" in done.stdout + done.stderr
    api = Client(server.url)
    for form in (given, nfc(given)):
        got = api.get(f"{C}/{quote(form)}")
        assert got.status_code == 404 and got.json()["@type"] == "Error", (form, got.text)


def test_keys_that_differ_only_in_unicode_form_are_a_duplicate_key(server):
    """`{"café": 1, "café": 2}` with one key in NFD is the same key twice once
    in NFC: a 400 INVALID_JSON as a literal duplicate key is, never one value
    silently dropped; nothing is stored, on every POST and PATCH."""
    import json

    api = Client(server.url)
    twice = f'{{"{nfc("café")}": 1, "{nfd("café")}": 2}}'
    for collection, body in BODIES.items():
        name = f"Keys {uuid.uuid4().hex[:6]}"
        texts = [json.dumps(body(name))[:-1] + ", " + twice[1:]]      # at the top
        if collection == C:                                          # in a value of any shape
            texts.append(json.dumps({**body(name), "characteristic": [
                {"name": "x", "value": "PLACEHOLDER"}]}).replace('"PLACEHOLDER"', twice))
        for text in texts:
            created = api.post(collection, data=text.encode("utf-8"),
                               headers={"Content-Type": "application/json"})
            assert created.status_code == 400, (collection, created.text)
            assert created.json()["code"] == "INVALID_JSON", created.text
            assert "duplicate key" in created.json()["message"]
        assert api.get(collection, params={"name": name}).json() == []
        stored = api.post(collection, json=body(name))
        assert stored.status_code == 201, stored.text
        url = f"{collection}/{stored.json()['id']}"
        patched = api.request("PATCH", url, data=f'{{"name": "x", {twice[1:]}'.encode(),
                              headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 400, (collection, patched.text)
        assert patched.json()["code"] == "INVALID_JSON"
        assert api.get(url).json() == stored.json()
