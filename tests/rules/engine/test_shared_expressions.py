"""Rules whose conditions compile to the same durable expression are one
durable rule (compiler.share_identical): durable keeps about 12 KiB of session
state and ~10 KiB of nodes per rule, fired or not. Every rule behind a shared
expression still fires, is counted, explained and ranked as itself."""
from __future__ import annotations

from app.rules.engine.compiler import share_identical
from rulehelpers import ctx, customer, rule

CART = {"cart": "6547"}


def durable_rules(engine) -> int:
    return sum(len(plan.rules) for plan in engine.plans)


def test_rules_with_the_same_condition_are_one_durable_rule_and_all_fire(build):
    engine = build([rule("A", CART, ("7301", 5)),
                    rule("OTHER", {"channel": "21"}, ("7202", 4)),
                    rule("B", {"cart": ["6547"]}, ("6542", 3)),           # same condition, list form
                    rule("C", CART, ("7402", 2)),
                    rule("D", {"cart": "6547", "channel": "21"}, ("6543", 1))], limit=5)
    assert durable_rules(engine) == 3                      # {A, B, C}, OTHER, D
    assert engine.recommend(ctx(cart=["6547"])).fired_rules == ["A", "B", "C"]
    both = engine.recommend(ctx(cart=["6547"], channels=["21"]))
    assert both.fired_rules == ["A", "OTHER", "B", "C", "D"]
    items = {item.offering_id: item.rule_ids for item in both.items}
    assert {"7301": ["A"], "6542": ["B"], "7402": ["C"], "6543": ["D"]}.items() <= items.items()
    assert engine.recommend(ctx(channels=["21"])).fired_rules == ["OTHER"]


def test_explain_reports_each_rule_of_a_shared_expression(build):
    engine = build([rule("A", CART, ("7301", 5)), rule("C", CART, ("7402", 2))])
    report = engine.explain(ctx(cart=["6547"]))
    assert [(r["id"], r["fired"], r["reason"]) for r in report["rules"]] == [
        ("A", True, "all conditions hold"), ("C", True, "all conditions hold")]
    assert report["engine"]["consistent"] is True


def test_a_deprecated_twin_does_not_fire_with_its_active_one(build):
    engine = build([rule("A", CART, ("7301", 5)), rule("OLD", CART, ("7402", 2), status="deprecated")])
    assert engine.recommend(ctx(cart=["6547"])).fired_rules == ["A"]


def test_rules_differing_only_in_validity_stay_apart(build):
    engine = build([rule("A", CART, ("7301", 5)),
                    rule("LATER", CART, ("7402", 2), validFor={"startDateTime": "2027-01-01T00:00:00Z"})])
    assert durable_rules(engine) == 2
    assert engine.recommend(ctx(cart=["6547"])).fired_rules == ["A"]
    assert engine.recommend(ctx(time="2027-02-01", cart=["6547"])).fired_rules == ["A", "LATER"]


def test_a_shared_expression_keeps_every_anchor_and_the_first_rule():
    # anchors of identical expressions: the union (None, unanchored, wins)
    same, other = {"$and": [{"t": "ctx"}, {"cart_0": 1}]}, {"$and": [{"t": "ctx"}, {"cart_1": 1}]}

    class Node:
        def __init__(self, expr):
            self.expr = expr
    a, b = frozenset({("cart", "x")}), frozenset({("cart", "y")})
    entries, sharing = share_identical([(0, Node(same), a), (1, Node(other), b), (2, Node(dict(same)), b)])
    assert [(index, anchor) for index, _node, anchor in entries] == [(0, a | b), (1, b)]
    assert sharing == {0: (0, 2)}
    entries, sharing = share_identical([(0, Node(same), a), (1, Node(same), None), (2, Node(same), b)])
    assert [(index, anchor) for index, _node, anchor in entries] == [(0, None)] and sharing == {0: (0, 1, 2)}


def test_a_known_customer_rule_shared_by_two_rules(build):
    engine = build([rule("K1", {"customer": "known", "segment": "premium"}, ("7301", 5)),
                    rule("K2", {"customer": "known", "segment": "premium"}, ("7402", 2))])
    assert durable_rules(engine) == 1
    assert engine.recommend(ctx(customer=customer(segment="premium"))).fired_rules == ["K1", "K2"]
    assert engine.recommend(ctx()).fired_rules == []
