"""A FastLoader (app/schemas/fast.py) generates its msgspec struct on its
first body, not when it is built: create_app (every worker, every `flask`
command) builds one per resource kind and generates none; the first body of
a kind generates its struct, and first bodies that come at once (gthread
workers) all get the fast path and marshmallow's answer."""
from __future__ import annotations

import random
import threading

import pytest

from app import create_app
from app.api import customer, inventory
from app.recommend import facts, query
from app.sales import resource as sales
from app.schemas import fast
from app.schemas.fast import FastLoader
from helpers import DEMO_CATALOG, DEMO_RULES
from test_fast_validation import canonical, valid_object

SCHEMAS = (query.KIND.create_schema, lambda: facts.cart_schemas["ShoppingCart"](),
           customer.KIND.create_schema, inventory.KIND.create_schema, sales.KIND.create_schema)


@pytest.fixture
def generator(monkeypatch):
    """A fresh struct generator and shape table, as in a new process."""
    fresh = fast._Generator()
    monkeypatch.setattr(fast, "_GENERATOR", fresh)
    monkeypatch.setattr(fast, "_SHAPES", {})
    return fresh


def test_create_app_generates_no_struct_and_a_first_body_does(tmp_path, generator):
    app = create_app(data_dir=tmp_path, rules_dir=DEMO_RULES, catalog_dir=DEMO_CATALOG,
                     background_workers=False)
    assert generator.names == {}
    created = app.test_client().post(customer.KIND.base_path,
                                     json={"name": "Ada", "engagedParty": {
                                         "id": "p1", "@referredType": "Individual"}})
    assert created.status_code == 201, created.get_json()
    assert {cls.__name__ for cls in generator.names} >= {type(customer.KIND.create_schema()).__name__}


def test_first_bodies_at_once_all_take_the_fast_path(generator):
    rng = random.Random(25)
    schemas = [make() for make in SCHEMAS]
    bodies = [valid_object(schema, rng) for schema in schemas]
    expected = [canonical(schema.load(body)) for schema, body in zip(schemas, bodies)]
    readers = 4
    loaders = [[FastLoader(schema) for schema in schemas] for _ in range(readers)]
    assert generator.names == {}                                    # built, nothing generated
    start = threading.Barrier(readers)
    answers = [None] * readers

    def decode(index):
        start.wait()
        answers[index] = [loader.decode(body) for loader, body in zip(loaders[index], bodies)]

    threads = [threading.Thread(target=decode, args=(index,)) for index in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for row in answers:
        assert row is not None and None not in row                  # every one the fast path
        assert [canonical(loaded) for loaded in row] == expected
    assert all(loader.struct is not None for row in loaders for loader in row)
