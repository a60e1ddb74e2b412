"""Generated rule sets: 1,000 rules over 1,000 offerings must match a plain
Python oracle on random contexts; 10,000 rules load and evaluate."""
from __future__ import annotations

import random

import pytest

from app.rules import Context
from app.rules.engine.engine import Engine
from app.rules.model.catalog import load_catalog
from app.rules.model.ruleset import load_ruleset
from rulegen import context_of, dump, make_ruleset, oracle, random_context


def build_engine(tmp_path, n_rules, n_offerings, seed=7):
    catalog_data, ruleset_data = make_ruleset(n_rules, n_offerings, seed)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "catalog.yaml").write_text(dump(catalog_data))
    (tmp_path / "generated.yaml").write_text(dump(ruleset_data))
    catalog = load_catalog(tmp_path / "catalog")
    engine = Engine(load_ruleset(tmp_path / "generated.yaml", catalog), catalog)
    return engine, catalog_data, ruleset_data


def compare(engine, catalog_data, ruleset_data, contexts):
    fired_total = 0
    for c in contexts:
        expected_fired, expected_items = oracle(catalog_data, ruleset_data, c)
        result = engine.recommend(context_of(c))
        assert result.fired_rules == expected_fired, c
        got = [(i.offering_id, i.rule_priority, i.rule_ids) for i in result.items]
        assert got == expected_items, c
        fired_total += len(expected_fired)
    return fired_total


def test_1000_rules_over_1000_offerings_match_the_oracle(tmp_path):
    engine, catalog_data, ruleset_data = build_engine(tmp_path, 1000, 1000)
    assert len(engine.plans) > 1                  # split across several durable rulesets
    rng = random.Random(42)
    contexts = [random_context(rng, 1000) for _ in range(300)]
    fired_total = compare(engine, catalog_data, ruleset_data, contexts)
    assert fired_total > 300                      # the contexts really exercise the rules


def test_many_rules_firing_at_once_stay_within_durable_limits(tmp_path, demo_catalog, build):
    """200 rules that all hold at once (durable's alpha stack holds ~64 entries)."""
    from rulehelpers import ctx, rule
    # each its own expression (identical ones would be one durable rule: test_shared_expressions.py)
    rules = [rule(f"A{i}", {"any": [{"channel": "21"}, {"cart_count": {"at_least": -i}},
                                    {"not": {"segment": "gold"}}]}, ("7301", i)) for i in range(200)]
    engine = build(rules)
    result = engine.recommend(ctx(channels=["21"]))
    assert len(result.fired_rules) == 200 and result.items[0].rule_ids[:3] == ["A0", "A1", "A2"]


@pytest.mark.slow
def test_10000_rules_load_and_evaluate(tmp_path):
    engine, catalog_data, ruleset_data = build_engine(tmp_path, 10_000, 1000, seed=11)
    assert len(engine.ruleset.rules) == 10_000 and len(engine.plans) >= 10_000 // 48
    rng = random.Random(5)
    compare(engine, catalog_data, ruleset_data, [random_context(rng, 1000) for _ in range(40)])


def test_rules_with_many_alternatives_holding_at_once(build):
    from rulehelpers import ctx, rule
    def alternatives(k):                     # 40 alternatives, all true; each rule its own expression
        return [{"cart_count": {"at_least": i - 100 * k}} for i in range(-40, 0)]
    engine = build([rule(f"M{i}", {"any": alternatives(i)}, ("7301", i)) for i in range(10)])
    assert len(engine.plans) == 10                                                # one rule per durable ruleset
    assert len(engine.recommend(ctx()).fired_rules) == 10


def test_a_rule_with_too_many_simultaneous_alternatives_is_rejected_with_its_line(build):
    from app.rules import RuleSetError
    from rulehelpers import rule
    alternatives = [{"cart_count": {"at_least": i}} for i in range(-41, 0)]
    with pytest.raises(RuleSetError) as info:
        build([rule("OK", {"cart": "6547"}, ("6542", 1)), rule("BIG", {"any": alternatives}, ("7301", 1))])
    [problem] = info.value.problems
    assert problem.rule == "BIG" and problem.line > 1 and "condition too complex: 41 alternatives" in problem.message


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_explain_shows_the_answer_requests_get_on_generated_rule_sets(tmp_path, seed):
    """recommend() and explain() run the same policy code (explain adds a
    tracer): on random rule sets and contexts their items are equal, and the
    trace accounts for every proposal (kept as an item, or dropped by one
    policy with a reason)."""
    engine, _catalog_data, _ruleset_data = build_engine(tmp_path, 300, 120, seed=seed)
    rng = random.Random(seed)
    traced = 0
    for _ in range(120):
        ctx = context_of(random_context(rng, 120))
        items = [item.as_dict() for item in engine.recommend(ctx).items]
        explained = engine.explain(ctx)
        assert items == explained["items"]
        steps = {step["step"]: step for step in explained["policies"]}
        dropped = sum(len(step.get("dropped", [])) for step in explained["policies"])
        # each proposal is dropped by exactly one policy or is the best of its offering's item
        assert len(steps["proposed"]["items"]) == dropped + len(items)
        assert all(d["reason"] and d["detail"] for step in explained["policies"] for d in step.get("dropped", []))
        traced += dropped
    assert traced > 100                                        # the contexts exercise the policies
