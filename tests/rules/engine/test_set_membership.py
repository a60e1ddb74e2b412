"""Conditions over list-valued facts (cart, cart_category, owns, owns_category,
channel, place, category) compiled to scalar membership tests: the same answers
as the model's Python evaluator, and rule sets that always build, even when
the heap holds the bytes that made durable-rules' `$iany` over `$or` fail."""
from __future__ import annotations

import json
import random

import durable_rules_engine as dre
import pytest

from app.rules.engine.engine import Engine
from app.rules.model.catalog import load_catalog
from app.rules.model.conditions import evaluate
from app.rules.model.ruleset import load_ruleset, parse_ruleset
from rulegen import dump
from rulehelpers import ctx, customer, products, rule, ruleset_text
from setgen import make_set_ruleset, set_context


def python_fired(engine: Engine, context) -> list[str]:
    """The rules that must fire, by the model's evaluator (no durable-rules)."""
    facts = engine.facts(context)
    return [r.id for r in engine.ruleset.rules
            if r.fires_by_status and r.valid_at(facts.time) and evaluate(r.when, facts)]


def test_set_heavy_rules_fire_as_the_python_evaluator_says(tmp_path):
    catalog_data, ruleset_data = make_set_ruleset(1000, 1000, seed=21)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
    (tmp_path / "rules.yaml").write_text(dump(ruleset_data))
    catalog = load_catalog(tmp_path / "catalog")
    engine = Engine(load_ruleset(tmp_path / "rules.yaml", catalog), catalog)
    rng = random.Random(8)
    fired_total = 0
    for _ in range(500):
        context = set_context(rng, 1000)
        expected = python_fired(engine, context)
        assert engine.recommend(context).fired_rules == expected, context
        fired_total += len(expected)
    assert fired_total > 5000                     # the contexts really exercise the rules


OFFERINGS = ["6542", "6543", "7003", "7102", "7202", "7402", "7401"]    # past SCALAR_ANY_MAX
CATEGORIES = ["accessories", "home-internet", "mobile-addons", "services", "tv", "devices", "mobile-plans"]
FACT_VALUES = {   # each list-valued fact: values a rule names, a context holding the first two,
                  # and a long list (past SCALAR_ANY_MAX) not holding them (None: too few values exist)
    "cart": (["6547", "6550", "7301"], dict(cart=["6547", "6550"]), OFFERINGS),
    "cart_category": (["devices", "mobile-plans", "tv"], dict(cart=["6547", "7001"]), None),
    "owns": (["7001", "7002", "7101"], dict(customer=customer(), products=products("7001", "7002")), OFFERINGS),
    "owns_category": (["mobile-plans", "devices", "tv"], dict(customer=customer(), products=products("7001", "6547")),
                      None),
    "channel": (["21", "22", "23"], dict(channels=["21", "22"]), None),
    "place": (["P-1", "P-2", "P-3"], dict(places=[{"id": "P-1"}, {"name": "P-2"}]), [f"P-{i}" for i in range(4, 12)]),
    "category": (["a", "b", "c"], dict(categories=["a", "b"]), list("defghijk")),
}


@pytest.mark.parametrize("fact", sorted(FACT_VALUES))
def test_every_mode_of_every_list_fact(build, fact):
    values, holding, long = FACT_VALUES[fact]
    held, other = values[0], values[2]
    long = long or values
    whens = {
        "any-held": {fact: [other, held]}, "any-other": {fact: [other]},
        "any-long": {fact: long + [held]}, "any-long-other": {fact: long + [other]},
        "all-held": {fact: {"all_of": [held]}}, "all-mixed": {fact: {"all_of": [held, other]}},
        "none-held": {fact: {"none_of": [other, held]}}, "none-other": {fact: {"none_of": [other]}},
        "empty": {fact: {"empty": True}}, "not-empty": {fact: {"empty": False}},
        "not-all": {"not": {fact: {"all_of": [held, other]}}},
        "not-any": {"not": {fact: [other, held]}},
        "any-or-any": {"any": [{fact: [other]}, {fact: [held, other]}]},
    }
    if fact in ("place", "category"):        # free text: room for lists past SCALAR_NONE_MAX
        many = [f"v{i}" for i in range(70)]
        whens.update({"none-many-held": {fact: {"none_of": many + [held]}},
                      "none-many-other": {fact: {"none_of": many + [other]}}})
    rules = [rule(name, when, ("7301", i)) for i, (name, when) in enumerate(whens.items())]
    engine = build(rules)
    for context in (ctx(**holding), ctx()):
        expected = python_fired(engine, context)
        assert engine.recommend(context).fired_rules == expected
    assert {"any-held", "all-held", "not-empty", "not-all", "any-or-any"} <= set(python_fired(engine, ctx(**holding)))
    assert {"none-held", "empty", "not-any", "none-other"} <= set(python_fired(engine, ctx()))


def test_a_context_holding_every_value_of_many_rules_stays_within_durables_fact_size(build):
    """durable refuses a fact of more than 255 properties (error 302); each
    value a rule names is one property, so chunks are cut to read at most
    CHUNK_PROPERTIES of them, whatever the context holds."""
    rules = [rule(f"P{i}", {"any": [{"place": {"none_of": [f"P-{i}-{j}" for j in range(60)]}},
                                    {"segment": "gold"}]}, ("7301", i)) for i in range(6)]
    engine = build(rules)
    context = ctx(places=[{"id": f"P-{i}-{j}"} for i in range(1, 6) for j in range(60)])
    assert engine.recommend(context).fired_rules == ["P0"]


# ---------------------------------------------------------------- durable's error 102 under heap churn
def spray_heap(rng: random.Random, count: int = 400) -> None:
    """Leave the bytes 0x09 (JSON_IDENTIFIER) and 0x0C (JSON_EXPRESSION) in
    freed heap blocks of the sizes durable's node pool grows through (malloc,
    not pymalloc: > 512 bytes; not mmap: < 128 KiB), where a realloc of the
    pool finds them."""
    blocks = [bytes([rng.choice((0x09, 0x0C))]) * rng.choice((600, 1200, 4000, 9000, 20000, 60000, 120000))
              for _ in range(count)]
    del blocks


def iany_over_or_definition(rng: random.Random) -> str:
    rules = {}
    for i in range(40):
        values = [f"O{rng.randint(0, 99)}" for _ in range(rng.randint(2, 4))]
        body = {"$or": [{"$i": v} for v in values]}
        rules[f"r{i}"] = {"all": [{"m": {"$and": [{"t": "ctx"}, {"$iany": {"cart": body}}]}}]}
    return json.dumps(rules)


def test_the_spray_makes_durables_iany_over_or_fail():
    """Control: the spray does reach durable. The form the compiler no longer
    emits, `$iany` with an `$or` body, fails to build with error 102."""
    rng = random.Random(1)
    failures = 0
    for attempt in range(20):
        spray_heap(rng)
        try:
            dre.create_ruleset(f"spray-control~{attempt}~{rng.random()}", iany_over_or_definition(rng))
        except dre.error as exc:
            assert "102" in str(exc)
            failures += 1
    assert failures >= 10


def list_condition_rules(demo_catalog):
    rules = [rule("A", {"cart": ["6547", "6550"]}, ("7301", 1)),
             rule("B", {"owns": ["7001", "7002", "7101"], "channel": ["21", "22"]}, ("7301", 2)),
             rule("C", {"cart_category": {"none_of": ["devices", "tv"]},
                        "owns_category": {"all_of": ["mobile-plans", "tv"]}}, ("7301", 3)),
             rule("D", {"not": {"cart": {"all_of": ["6547", "6550"]}}, "place": ["P-1", "P-2"]}, ("7301", 4)),
             rule("E", {"category": ["a", "b", "c", "d", "e", "f", "g", "h"]}, ("7301", 5)),
             rule("F", {"any": [{"cart": ["6547", "6550"]}, {"owns": ["7001", "7002"]}]}, ("7301", 6))]
    return parse_ruleset(ruleset_text(rules), "lists.yaml", demo_catalog)


def build_after_spray(demo_catalog, builds: int) -> None:
    ruleset = list_condition_rules(demo_catalog)
    rng = random.Random(2)
    for _ in range(builds):
        spray_heap(rng)
        engine = Engine(ruleset, demo_catalog)     # raises RuleSetError if durable refuses a chunk
    assert engine.recommend(ctx(cart=["6550"], places=[{"id": "P-2"}])).fired_rules == ["A", "D", "F"]


def test_rule_sets_with_list_conditions_build_after_heap_spray(demo_catalog):
    build_after_spray(demo_catalog, 100)


@pytest.mark.slow
def test_1000_builds_in_a_row_after_heap_spray(demo_catalog):
    build_after_spray(demo_catalog, 1000)
