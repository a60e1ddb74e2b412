"""Every operator of the `when` language, evaluated by durable-rules (and by the
Python check used for explanations, which must agree)."""
from __future__ import annotations

import pytest

from app.rules.model.conditions import evaluate
from language_checks import CHECKS
from rulehelpers import customer, ctx, products, rule



@pytest.fixture(scope="module")
def engine(demo_catalog):
    from app.rules.engine.engine import Engine
    from app.rules.model.ruleset import parse_ruleset
    from rulehelpers import ruleset_text
    rules = [rule(f"L{i}", when, ("7301", 10)) for i, (_label, when, _ctx, _fires) in enumerate(CHECKS)]
    return Engine(parse_ruleset(ruleset_text(rules), "language.yaml", demo_catalog), demo_catalog)


@pytest.mark.parametrize("index", range(len(CHECKS)), ids=[c[0] for c in CHECKS])
def test_operator(engine, index):
    label, _when, context, fires = CHECKS[index]
    facts = engine.facts(context)
    fired = engine.fired_indexes(facts)
    assert (index in fired) is fires, f"durable-rules: {label}"
    assert evaluate(engine.ruleset.rules[index].when, facts) is fires, f"python check: {label}"


def test_rule_fires_once_even_when_several_alternatives_hold(build):
    engine = build([rule("R", {"any": [{"cart": "6547"}, {"channel": "21"}, {"cart_count": {"at_least": 1}}]},
                         ("7301", 10))])
    result = engine.recommend(ctx(cart=["6547"], channels=["21"]))
    assert [i.offering_id for i in result.items] == ["7301"]
    assert result.fired_rules == ["R"]
