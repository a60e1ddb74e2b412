"""The fast path of create-body validation (app/schemas/fast.py) agrees with
marshmallow: a body it accepts is one marshmallow accepts, loaded to the same
data; the service's answers and stored resources are the same either way;
and the bodies the service sends (TMF680 queries with carts by value, whose
ShoppingCartRef carries cartItem as an extension attribute) take it.

The property checks use marshmallow as the oracle over bodies generated from
each create schema (valid ones, then one mutation each: a value replaced by
another JSON value, a name added or removed, a @type or @schemaLocation
changed), with hypothesis derandomized so a failure reproduces."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from marshmallow import ValidationError, fields

from app import create_app
from app.api import customer, inventory
from app.recommend import facts, query
from app.resources import service as service_module
from app.sales import resource as sales
from app.schemas.fast import FastLoader
from app.schemas.spec import DateTimeString, OneOrMany
from bench.workload import make_bodies, make_catalog, make_parties

SCHEMAS = {
    "QueryProductRecommendation_Create": query.KIND.create_schema(),
    "ShoppingCart": facts._carts,
    "Customer_Create": customer.KIND.create_schema(),
    "Product_Create": inventory.KIND.create_schema(),
    "SalesLead_Create": sales.KIND.create_schema(),
}
LOADERS = {name: FastLoader(schema) for name, schema in SCHEMAS.items()}

_CATALOG = make_catalog(200, 680)
BODIES = make_bodies(_CATALOG, make_parties(_CATALOG, 40, 680), 120, 680)

#: Values a mutation puts somewhere: each JSON type, the date-times the
#: service refuses (no date, no 30 February, beyond UTC's range), an int
#: where a number or a string is declared, a single object for an array.
ODD_VALUES = [None, True, False, 0, 1, -7, 2.5, 10 ** 30, "", "x", "true", "1.5",
              "2026-05-01T10:00:00Z", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59-05:00",
              "2026-05-01", "not a date", "add", "delete", "customer", [], [1], ["a"],
              {}, {"id": "1"}, {"id": 1}, {"@type": "Sub", "extra": 1}, [{"id": "1"}],
              {"@schemaLocation": "https://x/s.json", "id": "2", "more": [1]}]
ODD_NAMES = ["@type", "@baseType", "@schemaLocation", "id", "href", "name", "typo", "extra",
             "validFor", "cartItem", "quantity"]


def marshmallow_load(schema, body):
    try:
        return schema.load(body)
    except ValidationError:
        return None


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def assert_agrees(name: str, body) -> bool:
    """The fast path accepts only what marshmallow accepts, loaded alike;
    returns whether it accepted."""
    fast = LOADERS[name].decode(body)
    slow = marshmallow_load(SCHEMAS[name], body)
    if fast is None:
        return False
    assert slow is not None, f"fast path accepted what marshmallow refuses: {body!r}"
    # marshmallow adds extension attributes in set order: compare by name,
    # with exact types (1.0 is not 1 in the JSON answered)
    assert canonical(fast) == canonical(slow), body
    declared = SCHEMAS[name].load_fields
    assert [k for k in fast if k in declared] == [k for k in slow if k in declared]
    return True


# -- generated bodies -------------------------------------------------------

def valid_value(field, rng: random.Random, depth: int):
    kind = type(field)
    if kind is DateTimeString:
        return rng.choice(["2026-05-01T10:00:00Z", "2026-12-31T23:00:00+02:00"])
    if kind is fields.String:
        for validator in field.validators:
            if hasattr(validator, "choices"):
                return rng.choice(list(validator.choices))
        return rng.choice(["a", "id-7", "Hello"])
    if kind is fields.Integer:
        return rng.randint(-3, 30)
    if kind is fields.Float:
        return rng.choice([1, 2.5, 0.1])
    if kind is fields.Boolean:
        return rng.random() < 0.5
    if kind is fields.Dict:
        return rng.choice([{}, {"k": "v"}])
    if kind is fields.Raw:
        return rng.choice(["x", 3, None, {"a": [1]}])
    if kind is fields.Nested:
        return valid_object(field.schema, rng, depth + 1)
    if kind in (fields.List, OneOrMany):
        items = [valid_value(field.inner, rng, depth + 1) for _ in range(rng.randint(0, 2))]
        if kind is OneOrMany and len(items) == 1 and rng.random() < 0.3:
            return items[0]
        return items
    return "x"


def valid_object(schema, rng: random.Random, depth: int = 0) -> dict:
    body = {}
    for key, field in schema.load_fields.items():
        if field.required or (depth < 3 and rng.random() < 0.4):
            body[key] = valid_value(field, rng, depth)
    return body


def containers(value, found=None):
    """Every dict and list inside `value` (itself included)."""
    found = [] if found is None else found
    if isinstance(value, (dict, list)):
        found.append(value)
        for child in (value.values() if isinstance(value, dict) else value):
            containers(child, found)
    return found


def mutate(body: dict, rng: random.Random) -> dict:
    body = json.loads(json.dumps(body))
    target = rng.choice(containers(body))
    move = rng.randrange(4)
    if isinstance(target, list):
        if target:
            target[rng.randrange(len(target))] = rng.choice(ODD_VALUES)
        else:
            target.append(rng.choice(ODD_VALUES))
    elif move == 0 and target:
        target.pop(rng.choice(list(target)))
    elif move == 1 and target:
        target[rng.choice(list(target))] = rng.choice(ODD_VALUES)
    else:
        target[rng.choice(ODD_NAMES)] = rng.choice(ODD_VALUES)
    return body


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_create_schema_has_a_fast_path(name):
    assert LOADERS[name].struct is not None


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False), mutations=st.integers(0, 3))
def test_fast_path_never_accepts_what_marshmallow_refuses(name, rng, mutations):
    body = valid_object(SCHEMAS[name], rng)
    assert_agrees(name, body)
    for _ in range(mutations):
        body = mutate(body, rng)
        assert_agrees(name, body)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(index=st.integers(0, len(BODIES) - 1), rng=st.randoms(use_true_random=False),
       mutations=st.integers(0, 2))
def test_service_bodies_and_their_mutations_agree(index, rng, mutations):
    body = BODIES[index]
    for _ in range(mutations):
        body = mutate(body, rng)
    assert_agrees("QueryProductRecommendation_Create", body)
    for cart in body.get("shoppingCart") or [] if isinstance(body, dict) else []:
        if isinstance(cart, dict):
            assert_agrees("ShoppingCart", {k: v for k, v in cart.items() if k != "@referredType"})


def test_the_service_bodies_take_the_fast_path():
    """Every benchmark body, carts by value with their extension cartItem
    included, is decided by the fast path, not handed to marshmallow."""
    for body in BODIES:
        assert assert_agrees("QueryProductRecommendation_Create", body), body
        for cart in body.get("shoppingCart") or []:
            assert assert_agrees("ShoppingCart",
                                 {k: v for k, v in cart.items() if k != "@referredType"}), cart


@pytest.mark.parametrize("body", [
    {"instantSyncRecommendation": True, "relatedParty": [{"id": "1", "typo": 1}]},
    {"instantSyncRecommendation": True, "relatedParty": [{"id": "1", "@type": "Sub", "x": 1}]},
    {"instantSyncRecommendation": True, "relatedParty": [{"id": "1", "@schemaLocation": "s", "x": 1}]},
    {"instantSyncRecommendation": True, "relatedParty": [{"id": "1", "@type": "RelatedParty", "x": 1}]},
    {"@type": "QueryProductRecommendation", "note": 1},
    {"@type": "QueryProductRecommendationSpecial", "note": {"deep": [1]}},
    {"validFor": {"startDateTime": "2026-02-30T00:00:00Z"}},
    {"validFor": {"startDateTime": "0001-01-01T00:00:00+01:00"}},
    {"channel": {"id": "21"}},
    {"instantSyncRecommendation": 1},
])
def test_polymorphism_and_edge_cases_agree(body):
    assert_agrees("QueryProductRecommendation_Create", body)


# -- the service, both ways ---------------------------------------------------

@pytest.fixture
def app_client(store_url, tmp_path):
    app = create_app(data_dir=tmp_path / "data", store_url=store_url, background_workers=False)
    return app.test_client()


def post_both_ways(client, monkeypatch, path, body):
    fast = client.post(path, json=body)
    with monkeypatch.context() as patched:
        patched.setattr(service_module.FastLoader, "decode", lambda self, data: None)
        patched.setattr(facts.FastLoader, "decode", lambda self, data: None)
        slow = client.post(path, json=body)
    return fast, slow


QUERIES = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"


def test_answers_and_stored_resources_are_the_same_both_ways(app_client, monkeypatch):
    """Instant answers are the same bytes but for the id and href the
    decision log gives each answer; stored resources (an asynchronous query,
    a customer) likewise; bad bodies get the same 400."""
    for body in BODIES[:25]:
        fast, slow = post_both_ways(app_client, monkeypatch, QUERIES, body)
        assert fast.status_code == slow.status_code == 200
        ids = [r.get_json()["id"] for r in (fast, slow)]
        assert ids[0] != ids[1]
        assert fast.get_data().replace(ids[0].encode(), b"") == slow.get_data().replace(ids[1].encode(), b"")
    for path, body in [
            (QUERIES, {**BODIES[3], "instantSyncRecommendation": False}),
            ("/tmf-api/customerManagement/v4/customer",
             {"name": "Ada", "@type": "ResidentialCustomer", "loyaltyTier": "gold",
              "engagedParty": {"id": "p-1", "@referredType": "Individual"},
              "validFor": {"startDateTime": "2026-01-01T00:00:00Z"}})]:
        name = "Customer_Create" if "customer" in path else "QueryProductRecommendation_Create"
        assert LOADERS[name].decode(body) is not None       # the fast path decides it
        fast, slow = post_both_ways(app_client, monkeypatch, path, body)
        assert fast.status_code == slow.status_code == 201
        answers = [{k: v for k, v in r.get_json().items() if k not in ("id", "href")}
                   for r in (fast, slow)]
        assert answers[0] == answers[1]
        stored = app_client.get(path + "/" + fast.get_json()["id"]).get_json()
        assert {k: v for k, v in stored.items() if k not in ("id", "href")} == answers[0]
    for body in [{"instantSyncRecommendation": "maybe"},
                 {**BODIES[0], "channel": [{"id": "21", "typo": 1}]},
                 {**BODIES[0], "shoppingCart": [{"@type": "ShoppingCart",
                                                 "cartItem": [{"quantity": "two"}]}]}]:
        fast, slow = post_both_ways(app_client, monkeypatch, QUERIES, body)
        assert fast.status_code == slow.status_code == 400
        assert fast.get_json()["@type"] == "Error" and fast.get_json()["code"]
        assert fast.get_json() == slow.get_json()
