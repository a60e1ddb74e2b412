"""Generated rule sets that lean on list-valued facts, and their contexts.

rulegen.py covers the usual product-manager rules (short cart/owns/channel
lists); this generator covers every list-valued fact (cart, cart_category,
owns, owns_category, channel, place, category) in every mode (any_of of 1 to
12 values, all_of, none_of, empty, negated), mixed with scalar tests, so a
change of how the engine encodes set membership can be checked against the
model's own Python evaluator (`conditions.evaluate`, no durable-rules) and
against the answers of the previous encoding.
"""
from __future__ import annotations

import datetime as dt
import random

from app.rules import Context
from rulegen import CATEGORIES, CHANNELS, SEGMENTS, T0, iso, make_catalog

PLACES = [f"P-{i}" for i in range(12)]
QUERY_CATEGORIES = [f"q{i}" for i in range(10)]
SET_FACTS = ("cart", "cart_category", "owns", "owns_category", "channel", "place", "category")


class SetGen:
    def __init__(self, rng: random.Random, n_offerings: int):
        self.rng = rng
        self.offerings = [f"O{i:05d}" for i in range(n_offerings)]
        self.popular = self.offerings[:40]

    def values(self, fact: str, count: int) -> list[str]:
        pool = {"cart": None, "owns": None, "cart_category": CATEGORIES, "owns_category": CATEGORIES,
                "channel": CHANNELS, "place": PLACES, "category": QUERY_CATEGORIES}[fact]
        if pool is None:
            pool = self.popular if self.rng.random() < 0.8 else self.offerings
        return self.rng.sample(pool, min(count, len(pool)))

    def set_leaf(self) -> dict:
        fact = self.rng.choice(SET_FACTS)
        r = self.rng.random()
        count = self.rng.choice([1, 1, 2, 3, 4, 5, 8, 12])
        if r < 0.5:
            return {fact: self.values(fact, count)}
        if r < 0.65:
            return {fact: {"all_of": self.values(fact, min(count, 3))}}
        if r < 0.85:
            return {fact: {"none_of": self.values(fact, count)}}
        return {fact: {"empty": self.rng.random() < 0.5}}

    def leaf(self) -> dict:
        r = self.rng.random()
        if r < 0.75:
            return self.set_leaf()
        if r < 0.85:
            return {"segment": self.rng.choice(SEGMENTS)}
        if r < 0.92:
            return {"customer": self.rng.choice(["known", "anonymous"])}
        return {"cart_count": {"at_least": self.rng.randint(0, 3)}}

    def when(self, depth: int = 0) -> dict:
        r = self.rng.random()
        if depth < 2 and r < 0.15:
            return {"any": [self.when(depth + 1) for _ in range(2)]}
        if depth < 2 and r < 0.3:
            return {"not": self.when(depth + 1)}
        if depth < 2 and r < 0.4:
            return {"all": [self.when(depth + 1) for _ in range(2)]}
        cond = self.leaf()
        if depth == 0 and self.rng.random() < 0.6:
            cond = {"all": [cond, self.leaf()]}
        return cond


def make_set_ruleset(n_rules: int, n_offerings: int, seed: int = 3) -> tuple[dict, dict]:
    """(catalog data, rule set data) of `n_rules` set-heavy rules."""
    rng = random.Random(seed)
    catalog = make_catalog(n_offerings, rng)
    gen = SetGen(rng, n_offerings)
    rules = []
    for i in range(n_rules):
        recs = [{"offering": o, "priority": rng.randint(1, 100)} for o in rng.sample(gen.offerings, rng.randint(1, 3))]
        rules.append({"id": f"S{i}", "kind": rng.choice(["up-sell", "cross-sell"]), "description": f"generated {i}",
                      "when": gen.when(), "recommend": recs})
    ruleset = {"id": "setgen", "version": "1.0.0", "status": "test", "description": "set-heavy generated rules",
               "limit": 5, "rules": rules}
    return catalog, ruleset


def set_context(rng: random.Random, n_offerings: int) -> Context:
    """A Context with every list-valued fact drawn (some empty)."""
    pool = [f"O{i:05d}" for i in range(min(40, n_offerings))] if rng.random() < 0.8 else \
        [f"O{i:05d}" for i in range(n_offerings)]
    known = rng.random() < 0.8
    customer = None
    if known:
        customer = {"id": "C", "characteristic": [{"name": "segment", "value": rng.choice(SEGMENTS)}]}
    owned = rng.sample(pool, rng.randint(0, 6)) if known else []
    return Context(
        time=T0 + dt.timedelta(days=rng.randint(0, 365)),
        channels=rng.sample(CHANNELS, rng.randint(0, 2)),
        cart=rng.sample(pool, rng.randint(0, 6)),
        customer=customer,
        products=[{"id": f"P{i}", "status": "active" if rng.random() < 0.85 else "terminated",
                   "productOffering": {"id": o}} for i, o in enumerate(owned)],
        places=[{"id": p} for p in rng.sample(PLACES, rng.randint(0, 2))],
        categories=rng.sample(QUERY_CATEGORIES, rng.randint(0, 3)),
    )


__all__ = ["make_set_ruleset", "set_context", "iso"]
