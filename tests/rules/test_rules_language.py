"""Every operator of the `when` language, evaluated by durable-rules (and by the
Python check used for explanations, which must agree)."""
from __future__ import annotations

import pytest

from app.rules.conditions import evaluate
from rulehelpers import customer, ctx, products, rule

PREMIUM = customer("premium", tenureMonths=26, churnRisk="high", contractEnd="2027-03-01T00:00:00Z",
                   vip=True)
STANDARD = customer("standard", tenureMonths="3", churnRisk="low")
NO_SEGMENT = customer(None)

# (label, when, context, fires)
CHECKS = [
    # cart / owns: offerings, any_of / all_of / none_of / empty
    ("cart-one", {"cart": "6547"}, ctx(cart=["6547"]), True),
    ("cart-one-miss", {"cart": "6547"}, ctx(cart=["6550"]), False),
    ("cart-list-any", {"cart": ["6547", "6550"]}, ctx(cart=["6550", "7001"]), True),
    ("cart-int-id", {"cart": 6547}, ctx(cart=["6547"]), True),
    ("cart-any_of", {"cart": {"any_of": ["6542", "6543"]}}, ctx(cart=["6543"]), True),
    ("cart-all_of", {"cart": {"all_of": ["6547", "6542"]}}, ctx(cart=["6542", "6547"]), True),
    ("cart-all_of-miss", {"cart": {"all_of": ["6547", "6542"]}}, ctx(cart=["6547"]), False),
    ("cart-none_of", {"cart": {"none_of": ["6547"]}}, ctx(cart=["6550"]), True),
    ("cart-none_of-empty-cart", {"cart": {"none_of": ["6547"]}}, ctx(), True),
    ("cart-none_of-miss", {"cart": {"none_of": ["6547", "6550"]}}, ctx(cart=["6550"]), False),
    ("cart-empty", {"cart": {"empty": True}}, ctx(), True),
    ("cart-empty-miss", {"cart": {"empty": True}}, ctx(cart=["6547"]), False),
    ("cart-not-empty", {"cart": {"empty": False}}, ctx(cart=["6547"]), True),
    ("cart-category", {"cart_category": "devices"}, ctx(cart=["6550"]), True),
    ("cart-category-miss", {"cart_category": "devices"}, ctx(cart=["6542"]), False),
    ("owns", {"owns": "7001"}, ctx(customer=STANDARD, products=products("7001")), True),
    ("owns-inactive", {"owns": "7001"}, ctx(customer=STANDARD, products=products("7001", status="suspended")), False),
    ("owns-category", {"owns_category": "mobile-plans"}, ctx(customer=STANDARD, products=products("7003")), True),
    ("owns-category-none_of", {"owns_category": {"none_of": ["tv"]}}, ctx(customer=STANDARD, products=products("7003")), True),
    ("owns-all_of", {"owns": {"all_of": ["7001", "7101"]}}, ctx(customer=STANDARD, products=products("7001", "7101")), True),
    # channel, place, query category
    ("channel", {"channel": ["21", "22"]}, ctx(channels=["22"]), True),
    ("channel-miss", {"channel": ["21", "22"]}, ctx(channels=["23"]), False),
    ("channel-int", {"channel": 23}, ctx(channels=["23"]), True),
    ("channel-none", {"channel": "21"}, ctx(), False),
    ("place-id", {"place": "P-PARIS"}, ctx(places=[{"id": "P-PARIS", "role": "installation"}]), True),
    ("place-name", {"place": "Paris"}, ctx(places=[{"id": "P1", "name": "Paris"}]), True),
    ("place-miss", {"place": "Paris"}, ctx(places=[{"id": "P2", "name": "Lyon"}]), False),
    ("query-category", {"category": "phones"}, ctx(categories=["phones", "deals"]), True),
    ("query-category-miss", {"category": "phones"}, ctx(categories=["tv"]), False),
    # segment, customer, characteristics
    ("segment", {"segment": "premium"}, ctx(customer=PREMIUM), True),
    ("segment-miss", {"segment": "premium"}, ctx(customer=STANDARD), False),
    ("segment-anonymous", {"segment": "premium"}, ctx(), False),
    ("segment-list", {"segment": ["gold", "premium"]}, ctx(customer=PREMIUM), True),
    ("segment-none_of", {"segment": {"none_of": ["premium"]}}, ctx(customer=STANDARD), True),
    ("segment-none_of-anonymous", {"segment": {"none_of": ["premium"]}}, ctx(), True),
    ("segment-none_of-miss", {"segment": {"none_of": ["premium"]}}, ctx(customer=PREMIUM), False),
    ("segment-exists", {"segment": {"exists": True}}, ctx(customer=STANDARD), True),
    ("segment-missing", {"segment": {"exists": False}}, ctx(customer=NO_SEGMENT), True),
    ("customer-known", {"customer": "known"}, ctx(customer=NO_SEGMENT), True),
    ("customer-known-miss", {"customer": "known"}, ctx(), False),
    ("customer-anonymous", {"customer": "anonymous"}, ctx(), True),
    ("char-text", {"characteristic": {"churnRisk": "high"}}, ctx(customer=PREMIUM), True),
    ("char-text-miss", {"characteristic": {"churnRisk": "high"}}, ctx(customer=STANDARD), False),
    ("char-bool", {"characteristic": {"vip": True}}, ctx(customer=PREMIUM), True),
    ("char-number-at_least", {"characteristic": {"tenureMonths": {"at_least": 24}}}, ctx(customer=PREMIUM), True),
    ("char-number-text-value", {"characteristic": {"tenureMonths": {"less_than": 6}}}, ctx(customer=STANDARD), True),
    ("char-number-more_than-edge", {"characteristic": {"tenureMonths": {"more_than": 26}}}, ctx(customer=PREMIUM), False),
    ("char-number-at_most", {"characteristic": {"tenureMonths": {"at_most": 26}}}, ctx(customer=PREMIUM), True),
    ("char-number-between", {"characteristic": {"tenureMonths": {"between": [12, 36]}}}, ctx(customer=PREMIUM), True),
    ("char-number-between-miss", {"characteristic": {"tenureMonths": {"between": [1, 2]}}}, ctx(customer=PREMIUM), False),
    ("char-number-missing", {"characteristic": {"tenureMonths": {"at_least": 1}}}, ctx(customer=NO_SEGMENT), False),
    ("char-number-not-a-number", {"characteristic": {"churnRisk": {"at_least": 1}}}, ctx(customer=PREMIUM), False),
    ("char-date-before", {"characteristic": {"contractEnd": {"before": "2027-06-01T00:00:00Z"}}}, ctx(customer=PREMIUM), True),
    ("char-date-after-miss", {"characteristic": {"contractEnd": {"after": "2027-06-01T00:00:00Z"}}}, ctx(customer=PREMIUM), False),
    ("char-none_of-missing", {"characteristic": {"churnRisk": {"none_of": ["high"]}}}, ctx(customer=NO_SEGMENT), True),
    ("char-exists", {"characteristic": {"churnRisk": {"exists": True}}}, ctx(customer=STANDARD), True),
    # time and counts
    ("time-from", {"time": {"from": "2026-10-01T00:00:00Z"}}, ctx(time="2026-10-01"), True),
    ("time-after-edge", {"time": {"after": "2026-10-01T00:00:00Z"}}, ctx(time="2026-10-01"), False),
    ("time-before", {"time": {"before": "2026-10-01T00:00:00Z"}}, ctx(time="2026-09-30T23:59:59Z"), True),
    ("time-until", {"time": {"until": "2026-10-01T00:00:00Z"}}, ctx(time="2026-10-01"), True),
    ("time-window", {"time": {"from": "2026-11-15T00:00:00Z", "before": "2027-01-01T00:00:00Z"}}, ctx(time="2026-12-24"), True),
    ("time-window-miss", {"time": {"from": "2026-11-15T00:00:00Z", "before": "2027-01-01T00:00:00Z"}}, ctx(time="2027-01-01"), False),
    ("cart-count", {"cart_count": {"at_least": 2}}, ctx(cart=["6547", "6542"]), True),
    ("cart-count-miss", {"cart_count": {"at_least": 2}}, ctx(cart=["6547"]), False),
    ("owns-count", {"owns_count": {"more_than": 0}}, ctx(customer=STANDARD, products=products("7001")), True),
    ("order-count", {"order_count": {"at_least": 1}}, ctx(orders=["PO-1"]), True),
    ("order-count-zero", {"order_count": {"less_than": 1}}, ctx(), True),
    # all / any / not, nesting, implicit and
    ("implicit-and", {"cart": "6547", "channel": "21"}, ctx(cart=["6547"], channels=["21"]), True),
    ("implicit-and-miss", {"cart": "6547", "channel": "21"}, ctx(cart=["6547"], channels=["22"]), False),
    ("all", {"all": [{"cart": "6547"}, {"segment": "premium"}]}, ctx(cart=["6547"], customer=PREMIUM), True),
    ("any", {"any": [{"cart": "6547"}, {"owns": "7001"}]}, ctx(customer=STANDARD, products=products("7001")), True),
    ("any-miss", {"any": [{"cart": "6547"}, {"owns": "7001"}]}, ctx(), False),
    ("any-both", {"any": [{"cart": "6547"}, {"channel": "21"}]}, ctx(cart=["6547"], channels=["21"]), True),
    ("not", {"not": {"cart": "6547"}}, ctx(cart=["6550"]), True),
    ("not-empty-cart", {"not": {"cart": "6547"}}, ctx(), True),
    ("not-miss", {"not": {"cart": "6547"}}, ctx(cart=["6547"]), False),
    ("not-all_of", {"not": {"cart": {"all_of": ["6547", "6542"]}}}, ctx(cart=["6547"]), True),
    ("not-all_of-miss", {"not": {"cart": {"all_of": ["6547", "6542"]}}}, ctx(cart=["6547", "6542"]), False),
    ("not-segment-anonymous", {"not": {"segment": "premium"}}, ctx(), True),
    ("not-known", {"not": {"customer": "known"}}, ctx(), True),
    ("not-char-compare-missing", {"not": {"characteristic": {"tenureMonths": {"at_least": 12}}}}, ctx(customer=NO_SEGMENT), True),
    ("not-char-compare", {"not": {"characteristic": {"tenureMonths": {"at_least": 12}}}}, ctx(customer=PREMIUM), False),
    ("not-time", {"not": {"time": {"before": "2026-10-01T00:00:00Z"}}}, ctx(time="2026-10-01"), True),
    ("not-cart-count", {"not": {"cart_count": {"at_least": 1}}}, ctx(), True),
    ("not-all-de-morgan", {"not": {"all": [{"cart": "6547"}, {"channel": "21"}]}}, ctx(cart=["6547"], channels=["22"]), True),
    ("not-any-de-morgan", {"not": {"any": [{"cart": "6547"}, {"channel": "21"}]}}, ctx(cart=["6550"], channels=["22"]), True),
    ("not-any-de-morgan-miss", {"not": {"any": [{"cart": "6547"}, {"channel": "21"}]}}, ctx(channels=["21"]), False),
    ("double-not", {"not": {"not": {"cart": "6547"}}}, ctx(cart=["6547"]), True),
    ("not-empty", {"not": {"cart": {"empty": True}}}, ctx(cart=["6547"]), True),
    ("not-none_of", {"not": {"cart": {"none_of": ["6547"]}}}, ctx(cart=["6547"]), True),
    ("not-exists", {"not": {"segment": {"exists": True}}}, ctx(), True),
    ("nested", {"any": [{"all": [{"cart_category": "devices"}, {"not": {"segment": "premium"}}]},
                        {"owns": "7002", "characteristic": {"tenureMonths": {"at_least": 24}}}]},
     ctx(customer=PREMIUM, products=products("7002")), True),
    ("nested-miss", {"any": [{"all": [{"cart_category": "devices"}, {"not": {"segment": "premium"}}]},
                             {"owns": "7002", "characteristic": {"tenureMonths": {"at_least": 24}}}]},
     ctx(customer=PREMIUM, cart=["6547"]), False),
]


@pytest.fixture(scope="module")
def engine(demo_catalog):
    from app.rules.engine import Engine
    from app.rules.ruleset import parse_ruleset
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
