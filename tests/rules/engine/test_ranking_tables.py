"""Requests rank with tables precomputed per compiled version (each rule's
proposals with their keys, each offering's catalog verdict); explain ranks
from the rules and the catalog directly. Both must give the same items at
every edge of the policies: owned, in the cart, not Active, before, at and
after an offering's validFor bounds, duplicates across rules, the limit."""
from __future__ import annotations

from rulehelpers import ctx, customer, products, rule

from app.rules.engine.policies import sort_key


def _rules():
    return [
        rule("A", {"channel": "21"}, ("6542", 3), ("7401", 1), ("7202", 2), ("7402", 4)),
        rule("B", {"channel": ["21", "22"]}, ("7202", 1), ("6543", 5), ("7002", 2)),
        rule("C", {"cart": "6547"}, ("6542", 1), ("6547", 1), ("7402", 9)),
        rule("D", {"channel": "21"}, ("6550", 7), ("7301", 6)),
    ]


def test_ranking_tables_rank_as_the_traced_policies(build):
    engine = build(_rules(), limit=4)
    checked = 0
    for when in ("2026-10-01", "2026-10-31T23:59:59Z", "2026-11-01", "2026-12-31T23:59:59Z", "2027-01-01"):
        for cart in ((), ("6547",), ("6542", "6547")):
            for owned in ((), ("7002",), ("6543", "7202")):
                context = ctx(time=when, channels=["21"], cart=cart, customer=customer("standard"),
                              products=products(*owned))
                items = [item.as_dict() for item in engine.recommend(context).items]
                assert items == engine.explain(context)["items"], (when, cart, owned)
                checked += len(items)
    assert checked > 100


def test_ranking_tables_belong_to_the_compiled_version(build):
    """The tables hold every rule's proposals in file order with their ranking
    keys, and a verdict for every offering a rule names: None for one policy 2
    always drops (7401 is Retired in the demo catalog), else its window."""
    engine = build(_rules())
    tables = engine.ranking
    assert [(offering, rule.id, priority) for _key, offering, rule, priority in tables.proposals[0]] == [
        ("6542", "A", 3), ("7401", "A", 1), ("7202", "A", 2), ("7402", "A", 4)]
    keys = [key for key, *_ in tables.proposals[0]]
    assert keys == [sort_key(3, 0, 0), sort_key(1, 0, 1), sort_key(2, 0, 2), sort_key(4, 0, 3)]
    assert tables.offerings["7401"] is None
    start, end = tables.offerings["7202"]
    assert (start.isoformat(), end.isoformat()) == ("2026-11-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert tables.offerings["6542"] == (None, None)


def test_sort_key_orders_as_the_ranking_tuple():
    """The packed key sorts exactly as (priority, rule index, position), at
    the edges of each part (0, the largest priority, the largest index and
    position it takes), and refuses what it cannot pack."""
    import itertools

    import pytest

    from app.rules.model.ruleset import MAX_PRIORITY

    edge = (1 << 24) - 1
    triples = list(itertools.product((0, 1, 2, MAX_PRIORITY), (0, 1, edge), (0, 1, edge)))
    assert sorted(triples, key=lambda t: sort_key(*t)) == sorted(triples)
    with pytest.raises(ValueError):
        sort_key(1, 1 << 24, 0)
    with pytest.raises(ValueError):
        sort_key(1, 0, -1)
