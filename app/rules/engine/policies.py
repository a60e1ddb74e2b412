"""The policies that apply to every rule set (telco-demo.md, "Policies over all rules").

1. never an offering the customer owns (active) or that is in the cart;
2. never an offering that is not lifecycleStatus Active or whose validFor
   excludes the evaluation time (a rule outside its own validFor or with
   status deprecated/disabled does not fire: that is decided before, by durable);
3. one item per offering with the best priority, remembering every rule that
   proposed it;
4. sort by priority, then by the rules' order in the file (then the order in the
   rule's recommend list); at most `limit` items, numbered 1..n;
5. every item says why: rule ids and the rule set version.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.catalog import Catalog
from ..model.facts import Facts
from ..model.ruleset import Rule, RuleSet


@dataclass
class RecommendedItem:
    offering: dict                 # {id, href, name, "@referredType": "ProductOffering"}
    priority: int                  # rank 1..n
    rule_priority: int             # best priority a rule gave (smaller ranks first)
    rule_ids: list[str]            # every rule that proposed it, best first
    kinds: list[str]               # the kinds of those rules (same order, no repeats)

    @property
    def kind(self) -> str:
        return self.kinds[0] if self.kinds else ""

    @property
    def offering_id(self) -> str:
        return self.offering["id"]

    def as_dict(self) -> dict:
        return {"priority": self.priority, "offering": dict(self.offering),
                "rulePriority": self.rule_priority, "ruleIds": list(self.rule_ids),
                "kinds": list(self.kinds)}


@dataclass
class Recommendation:
    items: list[RecommendedItem]
    ruleset_id: str
    ruleset_version: str
    ruleset_hash: str
    catalog_hash: str = ""
    fired_rules: list[str] = field(default_factory=list)

    @property
    def offering_ids(self) -> list[str]:
        return [item.offering_id for item in self.items]

    def as_dict(self) -> dict:
        return {"ruleset": {"id": self.ruleset_id, "version": self.ruleset_version,
                            "hash": self.ruleset_hash, "catalogHash": self.catalog_hash},
                "firedRules": list(self.fired_rules),
                "items": [item.as_dict() for item in self.items]}


@dataclass
class Proposal:
    rule: Rule
    offering: str
    priority: int
    position: int                  # index in the rule's recommend list

    @property
    def sort_key(self) -> tuple:
        return (self.priority, self.rule.index, self.position)


def apply_policies(ruleset: RuleSet, catalog: Catalog, facts: Facts, fired: list[Rule],
                   href_base: str = "", trace: list | None = None) -> list[RecommendedItem]:
    """Fired rules (file order) -> the ranked items. `trace` collects explain steps."""
    if trace is None:
        return _apply_fast(ruleset, catalog, facts, fired, href_base)
    proposals = [Proposal(rule, rec.offering, rec.priority, pos)
                 for rule in fired for pos, rec in enumerate(rule.recommend)]
    if trace is not None:
        trace.append({"step": "proposed", "policy": None,
                      "items": [_p(p) for p in proposals]})

    # 1. owned or in the cart
    owned, in_cart = set(facts.owns), set(facts.cart)
    kept, dropped = [], []
    for p in proposals:
        if p.offering in owned:
            dropped.append({**_p(p), "reason": "owned", "detail": "the customer owns it (active product)"})
        elif p.offering in in_cart:
            dropped.append({**_p(p), "reason": "in-cart", "detail": "it is already in the cart"})
        else:
            kept.append(p)
    if trace is not None:
        trace.append({"step": "owned-or-in-cart", "policy": 1, "dropped": dropped})
    proposals = kept

    # 2. not Active, or validFor excludes the evaluation time
    kept, dropped = [], []
    for p in proposals:
        offering = catalog.get(p.offering)
        if offering is None:
            dropped.append({**_p(p), "reason": "unknown", "detail": "not in the catalog"})
        elif not offering.is_active:
            dropped.append({**_p(p), "reason": "not-active",
                            "detail": f"lifecycleStatus is {offering.lifecycle_status}"})
        elif not offering.valid_at(facts.time):
            dropped.append({**_p(p), "reason": "out-of-validity",
                            "detail": "offering validFor " + _window(offering) + " excludes the evaluation time"})
        else:
            kept.append(p)
    if trace is not None:
        trace.append({"step": "inactive-or-out-of-validity", "policy": 2, "dropped": dropped})
    proposals = kept

    # 3. one item per offering, best priority, every proposing rule remembered
    groups: dict[str, list[Proposal]] = {}
    for p in proposals:
        groups.setdefault(p.offering, []).append(p)
    merged, dropped = [], []
    for offering, group in groups.items():
        group.sort(key=lambda p: p.sort_key)
        best = group[0]
        for other in group[1:]:
            dropped.append({**_p(other), "reason": "duplicate",
                            "detail": f"kept the better proposal of rule {best.rule.id} (priority {best.priority})"})
        merged.append((best, group))
    if trace is not None:
        trace.append({"step": "one-per-offering", "policy": 3, "dropped": dropped})

    # 4. sort, limit, number
    merged.sort(key=lambda entry: entry[0].sort_key)
    over = merged[ruleset.limit:]
    merged = merged[:ruleset.limit]
    if trace is not None:
        trace.append({"step": "limit", "policy": 4, "limit": ruleset.limit,
                      "dropped": [{**_p(best), "reason": "over-limit",
                                   "detail": f"only the best {ruleset.limit} items are returned"}
                                  for best, _group in over]})
    items = []
    for rank, (best, group) in enumerate(merged, start=1):
        rule_ids = list(dict.fromkeys(p.rule.id for p in group))
        kinds = list(dict.fromkeys(p.rule.kind for p in group))
        items.append(RecommendedItem(offering=catalog.get(best.offering).ref(href_base), priority=rank,
                                     rule_priority=best.priority, rule_ids=rule_ids, kinds=kinds))
    return items


def _p(p: Proposal) -> dict:
    return {"offering": p.offering, "rule": p.rule.id, "priority": p.priority}


def _window(offering) -> str:
    start = offering.valid_from.isoformat().replace("+00:00", "Z") if offering.valid_from else "…"
    end = offering.valid_to.isoformat().replace("+00:00", "Z") if offering.valid_to else "…"
    return f"[{start}, {end})"


def _apply_fast(ruleset: RuleSet, catalog: Catalog, facts: Facts, fired: list[Rule],
                href_base: str) -> list[RecommendedItem]:
    """The same policies as apply_policies, without the explain trace (hot path)."""
    excluded = set(facts.owns) | set(facts.cart)
    allowed: dict[str, bool] = {}
    groups: dict[str, list] = {}
    when = facts.time
    for rule in fired:
        for pos, rec in enumerate(rule.recommend):
            offering = rec.offering
            ok = allowed.get(offering)
            if ok is None:
                entry = catalog.get(offering)
                ok = allowed[offering] = (offering not in excluded and entry is not None and entry.is_active
                                          and entry.valid_at(when))
            if ok:
                groups.setdefault(offering, []).append(((rec.priority, rule.index, pos), rule))
    ranked = sorted(groups.items(), key=lambda kv: min(kv[1], key=lambda g: g[0])[0])[: ruleset.limit]
    items = []
    for rank, (offering, group) in enumerate(ranked, start=1):
        group.sort(key=lambda g: g[0])
        items.append(RecommendedItem(offering=catalog.get(offering).ref(href_base), priority=rank,
                                     rule_priority=group[0][0][0],
                                     rule_ids=list(dict.fromkeys(r.id for _k, r in group)),
                                     kinds=list(dict.fromkeys(r.kind for _k, r in group))))
    return items
