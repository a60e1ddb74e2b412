"""The benchmark workload, generated from a seed so that anyone can reproduce a run.

    catalog  N offerings over 24 categories, 8 sales channels (catalog/ YAML)
    rules    R rules in the project's YAML rule language (rules/<id>.yaml)
    parties  customers (TMF629) with characteristics, each owning 0-4 products (TMF637)
    bodies   instant TMF680 POST bodies: a customer (by customer id or by the id of its
             engaged party) or nobody, a channel, an evaluation time and a cart by value

The mix is meant to look like a telco catalogue managed by product people, not
like a worst case: popularity is skewed (a few phones and plans are in most
carts and most rules), most rules hang on a cart or an owned product, and a few
are broad (a segment, a channel or a season). `MIX` below is the exact recipe;
`describe()` reports what a generated rule set really contains.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

UTC = dt.timezone.utc
YEAR_START = dt.datetime(2026, 1, 1, tzinfo=UTC)
RULESET_ID = "bench"

# (category id, share of the catalogue)
CATEGORIES = [
    ("phones", 0.10), ("tablets", 0.04), ("wearables", 0.04), ("laptops", 0.03),
    ("accessories", 0.16), ("cases", 0.06), ("chargers", 0.04), ("audio", 0.05),
    ("mobile-plans", 0.06), ("data-addons", 0.05), ("roaming", 0.03), ("fiber", 0.03),
    ("dsl", 0.02), ("tv", 0.04), ("streaming", 0.04), ("gaming", 0.03),
    ("insurance", 0.04), ("support", 0.03), ("security", 0.03), ("cloud", 0.02),
    ("smart-home", 0.03), ("business", 0.01), ("iot", 0.01), ("refurbished", 0.01),
]
CHANNELS = [("21", "mobile app"), ("22", "web shop"), ("23", "retail store"), ("24", "call center"),
            ("25", "partner shop"), ("26", "telesales"), ("27", "self-care portal"), ("28", "chatbot")]
CHANNEL_WEIGHTS = [0.30, 0.35, 0.15, 0.08, 0.04, 0.03, 0.04, 0.01]
SEGMENTS = [("mass", 0.55), ("premium", 0.20), ("youth", 0.12), ("senior", 0.08), ("business", 0.05)]
KINDS = ["cross-sell", "up-sell", "retention", "bundle", "acquisition"]

# The recipe of a rule: its main ("anchor") condition, then extra conditions.
MIX = {
    "main": [                                 # (kind, share)
        ("cart", 0.34),                       # one of 1-3 offerings in the cart
        ("owns", 0.22),                       # owns an offering (active product)
        ("cart_category", 0.10),
        ("owns_category", 0.10),
        ("owns+cart", 0.06),                  # owns X and has Y in the cart
        ("segment", 0.08),                    # a segment campaign (often with a channel)
        ("known+characteristic", 0.04),       # known customer with a characteristic test
        ("channel", 0.04),                    # broad: a channel (often seasonal)
        ("time", 0.02),                       # broad: a season only
    ],
    "extra": [                                # (kind, probability, each independent)
        ("channel", 0.30),
        ("segment", 0.15),
        ("time", 0.10),                       # when: time: {from, before}
        ("validFor", 0.10),                   # the rule's own validFor window
        ("characteristic", 0.08),             # tenure / contractMonths / churnRisk
        ("cart_none_of", 0.10),               # not when a competing offering is in the cart
        ("not_owns_category", 0.05),          # not: {owns_category: ...}
        ("any", 0.05),                        # any: [two alternatives]
    ],
    "status": [("stable", 0.90), ("experimental", 0.04), ("test", 0.03), ("deprecated", 0.03)],
}


def _weighted(rng: random.Random, pairs):
    items, weights = zip(*pairs)
    return rng.choices(items, weights=weights, k=1)[0]


def iso(when: dt.datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Catalog:
    offerings: list[dict]
    by_category: dict[str, list[str]]
    popularity: list[float]                   # weight per offering (same order)

    @property
    def ids(self) -> list[str]:
        return [o["id"] for o in self.offerings]


def make_catalog(n_offerings: int, seed: int) -> Catalog:
    rng = random.Random(f"catalog-{seed}")
    names, weights = zip(*CATEGORIES)
    offerings, by_category = [], {name: [] for name in names}
    for index in range(n_offerings):
        category = rng.choices(names, weights=weights, k=1)[0]
        offering_id = f"{8000 + index}"
        categories = [{"id": category, "name": category}]
        if category in ("phones", "tablets") and rng.random() < 0.2:
            categories.append({"id": "refurbished", "name": "refurbished"})
        offering = {
            "id": offering_id,
            "name": f"{category.replace('-', ' ').title()} {index}",
            "description": f"Generated {category} offering number {index}.",
            "lifecycleStatus": "Active",
            "isBundle": category == "tv" and rng.random() < 0.3,
            "isSellable": True,
            "category": categories,
            "productOfferingPrice": [{
                "@type": "ProductOfferingPrice", "name": "price",
                "priceType": "recurring" if category in ("mobile-plans", "fiber", "dsl", "tv", "streaming",
                                                         "insurance", "cloud") else "oneTime",
                "price": {"unit": "EUR", "value": round(rng.uniform(5, 1200), 2)}}],
        }
        roll = rng.random()
        if roll < 0.04:
            offering["lifecycleStatus"] = "Retired"
        elif roll < 0.12:
            start = YEAR_START + dt.timedelta(days=rng.randint(0, 300))
            offering["validFor"] = {"startDateTime": iso(start),
                                    "endDateTime": iso(start + dt.timedelta(days=rng.randint(30, 120)))}
        offerings.append(offering)
        for c in categories:
            by_category.setdefault(c["id"], []).append(offering_id)
    # Zipf-like popularity: rank r gets weight 1/(r+1)^0.9, ranks shuffled over the catalogue
    ranks = list(range(n_offerings))
    rng.shuffle(ranks)
    popularity = [1.0 / (rank + 1) ** 0.9 for rank in ranks]
    by_category = {k: v for k, v in by_category.items() if v}
    return Catalog(offerings, by_category, popularity)


def catalog_yaml(catalog: Catalog) -> str:
    doc = {"productOffering": catalog.offerings,
           "channels": [{"id": cid, "name": name} for cid, name in CHANNELS]}
    return "# Generated by bench/workload.py\n" + _dump(doc)


def _dump(doc) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120)


class RuleGen:
    def __init__(self, catalog: Catalog, rng: random.Random):
        self.catalog = catalog
        self.rng = rng
        self.ids = catalog.ids
        self.categories = list(catalog.by_category)

    def offering(self) -> str:
        return self.rng.choices(self.ids, weights=self.catalog.popularity, k=1)[0]

    def offerings(self, low: int, high: int) -> list[str]:
        return list(dict.fromkeys(self.offering() for _ in range(self.rng.randint(low, high))))

    def category(self) -> str:
        return self.rng.choice(self.categories)

    def channels(self) -> list[str]:
        count = self.rng.choice([1, 1, 2, 3])
        return self.rng.sample([c for c, _ in CHANNELS], count)

    def segment(self):
        values = [s for s, _ in SEGMENTS]
        picked = self.rng.sample(values, self.rng.choice([1, 1, 2]))
        return picked[0] if len(picked) == 1 else picked

    def season(self) -> dict:
        start = YEAR_START + dt.timedelta(days=self.rng.randint(0, 330))
        return {"from": iso(start), "before": iso(start + dt.timedelta(days=self.rng.randint(7, 60)))}

    def characteristic(self) -> dict:
        roll = self.rng.random()
        if roll < 0.4:
            return {"tenure": {"at_least": self.rng.choice([6, 12, 24, 36])}}
        if roll < 0.7:
            return {"contractMonths": {"at_most": self.rng.choice([1, 3, 6])}}
        return {"churnRisk": self.rng.sample(["high", "medium", "low"], self.rng.choice([1, 2]))}

    def main(self, kind: str) -> dict:
        if kind == "cart":
            return {"cart": self.offerings(1, 3)}
        if kind == "owns":
            return {"owns": self.offering()}
        if kind == "cart_category":
            return {"cart_category": self.category()}
        if kind == "owns_category":
            return {"owns_category": self.category()}
        if kind == "owns+cart":
            return {"owns": self.offering(), "cart": self.offerings(1, 2)}
        if kind == "segment":
            return {"segment": self.segment()}
        if kind == "known+characteristic":
            return {"customer": "known", "characteristic": self.characteristic()}
        if kind == "channel":
            return {"channel": self.channels()}
        if kind == "time":
            return {"time": self.season()}
        raise ValueError(kind)

    def rule(self, index: int) -> dict:
        rng = self.rng
        main = _weighted(rng, MIX["main"])
        when = dict(self.main(main))
        extras = []
        for kind, probability in MIX["extra"]:
            if rng.random() >= probability:
                continue
            if kind == "channel" and "channel" not in when:
                when["channel"] = self.channels()
            elif kind == "segment" and "segment" not in when:
                when["segment"] = self.segment()
            elif kind == "time" and "time" not in when:
                when["time"] = self.season()
            elif kind == "characteristic" and "characteristic" not in when:
                when["characteristic"] = self.characteristic()
            elif kind == "cart_none_of" and "cart" not in when:
                when["cart"] = {"none_of": self.offerings(1, 2)}
            elif kind == "not_owns_category":
                extras.append({"not": {"owns_category": self.category()}})
            elif kind == "any":
                extras.append({"any": [{"cart": self.offerings(1, 2)}, {"owns": self.offering()}]})
            elif kind == "validFor":
                pass                                  # handled below
        if extras:
            when = {"all": [when, *extras]}
        recommend = []
        for offering in self.offerings(1, 3):
            if offering not in recommend:
                recommend.append(offering)
        rule = {
            "id": f"B{index:05d}",
            "name": f"{main}-{index}",
            "kind": rng.choice(KINDS),
            "description": f"Generated rule {index} ({main}).",
            "status": _weighted(rng, MIX["status"]),
        }
        if rng.random() < dict(MIX["extra"])["validFor"]:
            start = YEAR_START + dt.timedelta(days=rng.randint(0, 300))
            rule["validFor"] = {"startDateTime": iso(start),
                                "endDateTime": iso(start + dt.timedelta(days=rng.randint(14, 120)))}
        rule["when"] = when
        rule["recommend"] = [{"offering": o, "priority": rng.randint(1, 100)} for o in recommend]
        return rule


def make_rules(catalog: Catalog, n_rules: int, seed: int, version: str = "1.0.0") -> dict:
    rng = random.Random(f"rules-{seed}-{n_rules}-{version}")
    gen = RuleGen(catalog, rng)
    return {"id": RULESET_ID, "name": f"Benchmark rule set ({n_rules} rules)", "version": version,
            "status": "test", "description": f"Generated by bench/workload.py, seed {seed}.",
            "owner": "bench", "limit": 5, "rules": [gen.rule(i) for i in range(n_rules)]}


def rules_yaml(ruleset: dict) -> str:
    return "# Generated by bench/workload.py\n" + _dump(ruleset)


def describe(ruleset: dict) -> dict:
    """What a generated rule set contains (for the report)."""
    keys: dict[str, int] = {}

    def walk(cond):
        for key, value in cond.items():
            keys[key] = keys.get(key, 0) + 1
            if key in ("all", "any"):
                for child in value:
                    walk(child)
            elif key == "not":
                walk(value)

    for rule in ruleset["rules"]:
        walk(rule["when"])
    rules = ruleset["rules"]
    return {"rules": len(rules), "conditionKeys": dict(sorted(keys.items())),
            "withValidFor": sum("validFor" in r for r in rules),
            "deprecated": sum(r["status"] == "deprecated" for r in rules),
            "recommendations": sum(len(r["recommend"]) for r in rules)}


# --------------------------------------------------------------------------- parties and requests
@dataclass
class Parties:
    customers: list[dict] = field(default_factory=list)   # TMF629 Customer documents (as stored)
    products: list[dict] = field(default_factory=list)    # TMF637 Product documents (as stored)


def make_parties(catalog: Catalog, n_customers: int, seed: int, base: str = "http://127.0.0.1") -> Parties:
    """Customers with characteristics and active (mostly) products, in the shape the
    service stores them (server-set id and href included)."""
    rng = random.Random(f"parties-{seed}")
    gen = RuleGen(catalog, rng)
    plans = catalog.by_category.get("mobile-plans", []) + catalog.by_category.get("fiber", [])
    parties = Parties()
    for index in range(n_customers):
        cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        chars = [{"name": "segment", "value": _weighted(rng, SEGMENTS)},
                 {"name": "tenure", "value": rng.randint(0, 120)},
                 {"name": "contractMonths", "value": rng.randint(0, 24)}]
        if rng.random() < 0.5:
            chars.append({"name": "churnRisk", "value": rng.choice(["high", "medium", "low"])})
        parties.customers.append({
            "id": cid, "href": f"{base}/tmf-api/customerManagement/v4/customer/{cid}",
            "name": f"Customer {index}", "status": "approved",
            "engagedParty": {"id": f"party-{index}", "@referredType": "Individual"},
            "characteristic": chars, "@type": "Customer"})
        owned = gen.offerings(0, 4)
        if plans and rng.random() < 0.7:
            owned.append(rng.choice(plans))
        for offering in dict.fromkeys(owned):
            pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            parties.products.append({
                "id": pid, "href": f"{base}/tmf-api/productInventory/v4/product/{pid}",
                "status": "active" if rng.random() < 0.9 else "terminated",
                "productOffering": {"id": offering},
                "startDate": iso(YEAR_START - dt.timedelta(days=rng.randint(1, 900))),
                "relatedParty": [{"id": cid, "role": "customer", "@referredType": "Customer"}],
                "@type": "Product"})
    return parties


def make_bodies(catalog: Catalog, parties: Parties, count: int, seed: int) -> list[dict]:
    """Instant TMF680 POST bodies. 40 % name the customer by its id, 40 % by the id
    of its engaged party (as the examples of README.md and docs/api.md do), 20 % are anonymous."""
    rng = random.Random(f"bodies-{seed}")
    gen = RuleGen(catalog, rng)
    bodies = []
    for index in range(count):
        body: dict = {"instantSyncRecommendation": True}
        roll = rng.random()
        if parties.customers and roll < 0.8:
            customer = rng.choice(parties.customers)
            party_id = customer["id"] if roll < 0.4 else customer["engagedParty"]["id"]
            body["relatedParty"] = {"id": party_id, "role": "customer"}
        body["channel"] = [{"id": rng.choices([c for c, _ in CHANNELS], weights=CHANNEL_WEIGHTS, k=1)[0]}]
        when = YEAR_START + dt.timedelta(days=rng.randint(0, 364), hours=rng.randint(0, 23))
        body["validFor"] = {"startDateTime": iso(when)}
        items = gen.offerings(0, 3)
        if items or rng.random() < 0.5:
            body["shoppingCart"] = [{"id": f"cart-{index}", "@type": "ShoppingCart", "cartItem": [
                {"id": str(pos + 1), "quantity": 1, "action": "add", "productOffering": {"id": offering}}
                for pos, offering in enumerate(items)]}]
        bodies.append(body)
    return bodies


# --------------------------------------------------------------------------- writing a workload to disk
@dataclass
class Workload:
    root: Path
    seed: int
    n_offerings: int
    catalog: Catalog
    parties: Parties
    bodies: list[dict]
    rulesets: dict[int, dict] = field(default_factory=dict)

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    def rules_dir(self, n_rules: int) -> Path:
        return self.root / f"rules-{n_rules}"

    def ruleset_path(self, n_rules: int) -> Path:
        return self.rules_dir(n_rules) / f"{RULESET_ID}.yaml"

    def add_ruleset(self, n_rules: int) -> Path:
        ruleset = make_rules(self.catalog, n_rules, self.seed)
        self.rulesets[n_rules] = ruleset
        path = self.ruleset_path(n_rules)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rules_yaml(ruleset), encoding="utf-8")
        return path

    def bodies_path(self) -> Path:
        return self.root / "bodies.jsonl"


def build(root: Path, seed: int, n_offerings: int, n_customers: int, n_bodies: int,
          rule_counts: list[int]) -> Workload:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    catalog = make_catalog(n_offerings, seed)
    (root / "catalog").mkdir(exist_ok=True)
    (root / "catalog" / "offerings.yaml").write_text(catalog_yaml(catalog), encoding="utf-8")
    parties = make_parties(catalog, n_customers, seed)
    bodies = make_bodies(catalog, parties, n_bodies, seed)
    workload = Workload(root, seed, n_offerings, catalog, parties, bodies)
    with open(workload.bodies_path(), "w", encoding="utf-8") as handle:
        for body in bodies:
            handle.write(json.dumps(body, separators=(",", ":")) + "\n")
    for n_rules in rule_counts:
        workload.add_ruleset(n_rules)
    return workload
