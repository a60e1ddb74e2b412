"""List conditions over the cart, the channel and the query's categories,
compiled to one scalar property per value a rule names, answer by the
exact value, through HTTP: ids that differ only by a dot and an underscore,
by case, by leading zeros ("007" and "7"), a number's spellings ("1e3" and
"1000"), ids of the 200 characters allowed, and free-text channel and
category ids with spaces and accents. A request holding an id matches the
rules that name it and no rule naming a near miss."""
from __future__ import annotations

import pytest
import requests

from app.rules.model.yamlload import dump_text
from helpers import Client

R = Client.RECOMMENDATION + "/queryProductRecommendation"
LONG = "L" * 199 + "x"
OFFERING_IDS = ["a.b", "a_b", "a~b", "a:b", "007", "7", "1e3", "1000", "Abc", "abc", LONG, LONG[:-1] + "y"]
LONG_LIST = ["a_b", "a~b", "a:b", "007", "1e3", "Abc", LONG]     # past SCALAR_ANY_MAX: one $iany test
FREE_IDS = ["web shop", "web_shop", "Web Shop", "privé", "prive", "007", "7", "x.y", "x_y"]

pytestmark = pytest.mark.backends("tinydb", reason="rule files and their answers; the store plays no part")


def offering(oid: str) -> dict:
    return {"id": oid, "name": f"offering {oid}", "lifecycleStatus": "Active", "isSellable": True,
            "category": [{"id": "odd", "name": "odd"}]}


def setup_files(tmp_path):
    """A catalog of the odd ids plus one offering per rule to recommend
    (`rec-<n>`), and one rule per (fact, value): `any_of [value]` recommends
    rec-<n>; one rule over the cart's LONG_LIST recommends rec-long. Returns the rules and catalog folders and {(fact, value): rec id}."""
    rules, catalog, recs = [], [offering(o) for o in OFFERING_IDS], {}
    for fact, values in (("cart", OFFERING_IDS), ("channel", FREE_IDS), ("category", FREE_IDS)):
        for value in values:
            rec = f"rec-{len(recs)}"
            recs[(fact, value)] = rec
            catalog.append(offering(rec))
            rules.append({"id": f"R{len(recs)}", "kind": "cross-sell", "description": f"{fact} holds {value!r}",
                          "when": {fact: [value]}, "recommend": [{"offering": rec, "priority": 10}]})
    catalog.append(offering("rec-long"))
    rules.append({"id": "RLONG", "kind": "cross-sell", "description": "a long list", "when": {"cart": LONG_LIST},
                  "recommend": [{"offering": "rec-long", "priority": 10}]})
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "offerings.yaml").write_text(dump_text({"productOffering": catalog}))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "odd-ids.yaml").write_text(dump_text(
        {"id": "odd-ids", "version": "1.0.0", "status": "test", "description": "odd ids", "limit": 50,
         "rules": rules}))
    return tmp_path / "rules", tmp_path / "catalog", recs


def query(cart=(), channel=None, category=None) -> dict:
    body = {"instantSyncRecommendation": True, "validFor": {"startDateTime": "2026-10-01T12:00:00Z"}}
    if cart:
        body["shoppingCart"] = [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
            {"id": str(i), "quantity": 1, "productOffering": {"id": o}} for i, o in enumerate(cart)]}]
    if channel is not None:
        body["channel"] = [{"id": channel}]
    if category is not None:
        body["category"] = [{"id": category}]
    return body


def recommended(service, body) -> set[str]:
    answer = requests.post(service.url + R, json=body, timeout=30)
    assert answer.status_code in (200, 201), answer.text
    return {item["productOffering"]["id"] for item in answer.json()["recommendationItem"]}


def test_list_conditions_match_the_exact_id_and_no_near_miss(make_server, tmp_path):
    rules_dir, catalog_dir, recs = setup_files(tmp_path)
    service = make_server(data_dir=tmp_path / "data", rules_dir=rules_dir, catalog_dir=catalog_dir)
    health = requests.get(service.url + "/health", timeout=10).json()["rules"]
    assert health["ok"] and health["rulesetId"] == "odd-ids" and health["errors"] == [], health
    for value in OFFERING_IDS:
        assert recommended(service, query(cart=[value])) == {recs[("cart", value)]} | (
            {"rec-long"} if value in LONG_LIST else set()), value
    assert recommended(service, query(cart=["a.b", "1000"])) == {recs[("cart", "a.b")], recs[("cart", "1000")]}
    for value in FREE_IDS:
        assert recommended(service, query(channel=value)) == {recs[("channel", value)]}, value
        assert recommended(service, query(category=value)) == {recs[("category", value)]}, value
    # text compares in Unicode NFC: the decomposed spelling is the same id
    assert recommended(service, query(channel="prive\u0301")) == {recs[("channel", "privé")]}
    assert recommended(service, query(channel="WEB SHOP", category="web.shop")) == set()
