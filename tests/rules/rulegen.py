"""A generated catalog and rule set of any size, and a straightforward Python
oracle that computes the expected answer from the same plain data."""
from __future__ import annotations

import datetime as dt
import random


from app.rules import Context
from app.rules.model.yamlload import dump_text

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = [f"cat{i}" for i in range(20)]
CHANNELS = ["21", "22", "23", "24"]
SEGMENTS = ["premium", "standard", "gold"]


def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def make_catalog(n_offerings: int, rng: random.Random) -> dict:
    offerings = []
    for i in range(n_offerings):
        o = {"id": f"O{i:05d}", "name": f"Offering {i}", "lifecycleStatus": "Active",
             "category": [{"id": CATEGORIES[i % len(CATEGORIES)]}]}
        if i % 17 == 0:
            o["lifecycleStatus"] = "Retired"
        if i % 11 == 0:
            start = T0 + dt.timedelta(days=rng.randint(0, 200))
            o["validFor"] = {"startDateTime": iso(start), "endDateTime": iso(start + dt.timedelta(days=90))}
        offerings.append(o)
    return {"productOffering": offerings,
            "channels": [{"id": c, "name": f"channel {c}"} for c in CHANNELS]}


class Gen:
    def __init__(self, rng: random.Random, n_offerings: int):
        self.rng = rng
        self.offerings = [f"O{i:05d}" for i in range(n_offerings)]
        self.popular = self.offerings[:60]

    def offering(self):
        return self.rng.choice(self.popular if self.rng.random() < 0.7 else self.offerings)

    def leaf(self):
        r = self.rng.random()
        if r < 0.25:
            return {"cart": [self.offering() for _ in range(self.rng.randint(1, 3))]}
        if r < 0.40:
            return {"owns": self.offering()}
        if r < 0.50:
            return {"owns_category": self.rng.choice(CATEGORIES)}
        if r < 0.58:
            return {"cart_category": self.rng.choice(CATEGORIES)}
        if r < 0.66:
            return {"segment": self.rng.choice(SEGMENTS)}
        if r < 0.74:
            return {"channel": self.rng.sample(CHANNELS, self.rng.randint(1, 2))}
        if r < 0.80:
            return {"characteristic": {"tenure": {"at_least": self.rng.randint(0, 48)}}}
        if r < 0.86:
            return {"time": {"before": iso(T0 + dt.timedelta(days=self.rng.randint(0, 365)))}}
        if r < 0.92:
            return {"cart": {"none_of": [self.offering()]}}
        return {"customer": self.rng.choice(["known", "anonymous"])}

    def when(self, depth=0):
        r = self.rng.random()
        if depth < 2 and r < 0.15:
            return {"any": [self.when(depth + 1) for _ in range(2)]}
        if depth < 2 and r < 0.25:
            return {"not": self.when(depth + 1)}
        if depth < 2 and r < 0.35:
            return {"all": [self.when(depth + 1) for _ in range(2)]}
        cond = self.leaf()
        if depth == 0 and self.rng.random() < 0.5:
            cond = {"all": [cond, self.leaf()]}
        return cond


def anchored_when(gen: Gen) -> dict:
    """A typical product-manager rule: a cart or owned offering, maybe one more test."""
    anchor = {gen.rng.choice(["cart", "owns"]): gen.offering()}
    return {"all": [anchor, gen.leaf()]} if gen.rng.random() < 0.6 else anchor


def make_ruleset(n_rules: int, n_offerings: int, seed: int = 7, anchored: bool = False) -> tuple[dict, dict]:
    rng = random.Random(seed)
    catalog = make_catalog(n_offerings, rng)
    gen = Gen(rng, n_offerings)
    rules = []
    for i in range(n_rules):
        recs = []
        for offering in rng.sample(gen.offerings, rng.randint(1, 3)):
            recs.append({"offering": offering, "priority": rng.randint(1, 100)})
        r = {"id": f"G{i}", "kind": rng.choice(["up-sell", "cross-sell"]), "description": f"generated {i}",
             "when": anchored_when(gen) if anchored else gen.when(), "recommend": recs}
        if rng.random() < 0.1:
            start = T0 + dt.timedelta(days=rng.randint(0, 300))
            r["validFor"] = {"startDateTime": iso(start), "endDateTime": iso(start + dt.timedelta(days=60))}
        if rng.random() < 0.03:
            r["status"] = "deprecated"
        rules.append(r)
    ruleset = {"id": "generated", "version": "1.0.0", "status": "test", "description": "generated",
               "limit": 5, "rules": rules}
    return catalog, ruleset


def dump(data: dict) -> str:
    return dump_text(data)


def random_context(rng: random.Random, n_offerings: int) -> dict:
    """A plain context: what the oracle reads and what tests turn into a Context."""
    pool = [f"O{i:05d}" for i in range(min(60, n_offerings))] if rng.random() < 0.8 else \
        [f"O{i:05d}" for i in range(n_offerings)]
    known = rng.random() < 0.8
    return {
        "time": T0 + dt.timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23)),
        "cart": rng.sample(pool, rng.randint(0, 4)),
        "owned": [(o, "active" if rng.random() < 0.85 else "terminated") for o in rng.sample(pool, rng.randint(0, 5))]
        if known else [],
        "segment": rng.choice(SEGMENTS + [None]) if known else None,
        "tenure": rng.choice([rng.randint(0, 60), None, "n/a"]) if known else None,
        "known": known,
        "channels": rng.sample(CHANNELS, 1),
    }


# --------------------------------------------------------------------------- oracle
def _t(value) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def oracle_holds(when: dict, c: dict, cat_of: dict) -> bool:
    results = []
    for key, value in when.items():
        cart, owns = set(c["cart"]), {o for o, st in c["owned"] if st == "active"}
        if key == "all":
            results.append(all(oracle_holds(w, c, cat_of) for w in value))
        elif key == "any":
            results.append(any(oracle_holds(w, c, cat_of) for w in value))
        elif key == "not":
            results.append(not oracle_holds(value, c, cat_of))
        elif key == "cart":
            if isinstance(value, dict):
                results.append(not any(v in cart for v in value["none_of"]))
            else:
                results.append(any(v in cart for v in value))
        elif key == "owns":
            results.append(value in owns)
        elif key == "owns_category":
            results.append(any(cat_of[o] == value for o in owns))
        elif key == "cart_category":
            results.append(any(cat_of.get(o) == value for o in cart))
        elif key == "segment":
            results.append(c["known"] and c["segment"] == value)
        elif key == "channel":
            results.append(any(ch in value for ch in c["channels"]))
        elif key == "characteristic":
            tenure = c["tenure"]
            results.append(c["known"] and isinstance(tenure, int) and tenure >= value["tenure"]["at_least"])
        elif key == "time":
            results.append(c["time"] < _t(value["before"]))
        elif key == "customer":
            results.append(c["known"] == (value == "known"))
        else:
            raise AssertionError(key)
    return all(results)


def oracle(catalog: dict, ruleset: dict, c: dict) -> tuple[list[str], list[tuple]]:
    """(fired rule ids, [(offering, rule_priority, rule_ids)] in order)."""
    offerings = {o["id"]: o for o in catalog["productOffering"]}
    cat_of = {oid: o["category"][0]["id"] for oid, o in offerings.items()}
    owns = {o for o, st in c["owned"] if st == "active"}
    fired = []
    for r in ruleset["rules"]:
        if r.get("status") in ("deprecated", "disabled"):
            continue
        if "validFor" in r and not (_t(r["validFor"]["startDateTime"]) <= c["time"] < _t(r["validFor"]["endDateTime"])):
            continue
        if oracle_holds(r["when"], c, cat_of):
            fired.append(r)
    best: dict[str, tuple] = {}
    rules_of: dict[str, list] = {}
    fired_ids = {r["id"] for r in fired}
    for index, r in enumerate(ruleset["rules"]):
        if r["id"] not in fired_ids:
            continue
        for pos, rec in enumerate(r["recommend"]):
            oid = rec["offering"]
            o = offerings[oid]
            if oid in owns or oid in c["cart"] or o["lifecycleStatus"] != "Active":
                continue
            if "validFor" in o and not (_t(o["validFor"]["startDateTime"]) <= c["time"] < _t(o["validFor"]["endDateTime"])):
                continue
            key = (rec["priority"], index, pos)
            rules_of.setdefault(oid, []).append((key, r["id"]))
            if oid not in best or key < best[oid]:
                best[oid] = key
    ordered = sorted(best, key=lambda oid: best[oid])[: ruleset["limit"]]
    return ([r["id"] for r in fired],
            [(oid, best[oid][0], [rid for _k, rid in sorted(rules_of[oid])]) for oid in ordered])


def context_of(c: dict) -> Context:
    customer = None
    if c["known"]:
        chars = []
        if c["segment"] is not None:
            chars.append({"name": "segment", "value": c["segment"]})
        if c["tenure"] is not None:
            chars.append({"name": "tenure", "value": c["tenure"]})
        customer = {"id": "C", "characteristic": chars}
    return Context(time=c["time"], channels=c["channels"], cart=c["cart"], customer=customer,
                   products=[{"id": f"P{i}", "status": st, "productOffering": {"id": o}}
                             for i, (o, st) in enumerate(c["owned"])])
