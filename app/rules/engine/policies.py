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

import heapq
from dataclasses import dataclass, field

from ..model.catalog import HREF_PATH, Catalog
from ..model.facts import Facts
from ..model.ruleset import Rule, RuleSet


@dataclass
class RecommendedItem:
    """One ranked offering and why: the engine's answer is ids and reasons;
    the TMF680 edge (app/recommend/items.py) makes the RecommendationItem and
    its links, once, with the service's public base URL (issue 13)."""
    offering_id: str
    name: str                      # the offering's catalog name
    priority: int                  # rank 1..n
    rule_priority: int             # best priority a rule gave (smaller ranks first)
    rule_ids: list[str]            # every rule that proposed it, best first
    kinds: list[str]               # the kinds of those rules (same order, no repeats)
    href_base: str = ""            # the engine's href base for `offering` (authoring tools)

    @property
    def kind(self) -> str:
        return self.kinds[0] if self.kinds else ""

    @property
    def offering(self) -> dict:
        """The ProductOfferingRef {id, href, name, @referredType} (explain, cases, studio)."""
        return {"id": self.offering_id, "href": f"{self.href_base.rstrip('/')}{HREF_PATH}{self.offering_id}",
                "name": self.name, "@referredType": "ProductOffering"}

    def as_dict(self) -> dict:
        return {"priority": self.priority, "offering": self.offering,
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


class PolicyTrace:
    """What `explain` shows product managers: every proposal, and which policy
    dropped which proposal and why. Filled by apply_policies itself, so the
    trace cannot disagree with the answer requests get."""

    def __init__(self):
        self.proposed: list[dict] = []
        self.dropped: dict[int, list[dict]] = {1: [], 2: [], 3: [], 4: [], 5: []}
        self.contact_step: dict | None = None    # set by the engine when contact policies apply

    def steps(self, limit: int) -> list[dict]:
        """The explain "policies" list: [{step, policy, items|dropped[, limit]}] in policy order."""
        return [{"step": "proposed", "policy": None, "items": self.proposed},
                {"step": "owned-or-in-cart", "policy": 1, "dropped": self.dropped[1]},
                {"step": "inactive-or-out-of-validity", "policy": 2, "dropped": self.dropped[2]},
                {"step": "one-per-offering", "policy": 3, "dropped": self.dropped[3]},
                {"step": "limit", "policy": 4, "limit": limit, "dropped": self.dropped[4]},
                *([{"step": "contact-policy", "policy": 5, "dropped": self.dropped[5],
                    **self.contact_step}] if self.contact_step is not None else [])]


def _proposal(rule: Rule, offering: str, priority: int) -> dict:
    return {"offering": offering, "rule": rule.id, "priority": priority}


POLICY_OF = {"owned": 1, "in-cart": 1, "unknown": 2, "not-active": 2, "out-of-validity": 2,
             "contact-policy": 5}


def _refusal(offering_id: str, catalog: Catalog, when, owned: set, in_cart: set) -> str | None:
    """Why policies 1 and 2 drop every proposal of this offering (a reason
    of POLICY_OF), or None when it may be recommended. No text here: the
    request path only needs the verdict."""
    if offering_id in owned:
        return "owned"
    if offering_id in in_cart:
        return "in-cart"
    offering = catalog.get(offering_id)
    if offering is None:
        return "unknown"
    if not offering.is_active:
        return "not-active"
    if not offering.valid_at(when):
        return "out-of-validity"
    return None


def _refusal_detail(reason: str, offering) -> str:
    """The explain text of a refusal."""
    if reason == "owned":
        return "the customer owns it (active product)"
    if reason == "in-cart":
        return "it is already in the cart"
    if reason == "unknown":
        return "not in the catalog"
    if reason == "not-active":
        return f"lifecycleStatus is {offering.lifecycle_status}"
    return "offering validFor " + _window(offering) + " excludes the evaluation time"


def apply_policies(ruleset: RuleSet, catalog: Catalog, facts: Facts, fired: list[Rule],
                   href_base: str = "", trace: PolicyTrace | None = None,
                   suppressed: dict[str, str] | None = None) -> list[RecommendedItem]:
    """Fired rules (file order) -> the ranked items; the one implementation of
    the policies, for requests and for explain (`trace` records each step).
    `suppressed` {offering: why}: offerings a contact policy drops before
    ranking (engine/contact.py), so the next best takes their place."""
    if trace is None:
        return _top_items(ruleset, catalog, facts, fired, href_base, suppressed)
    owned, in_cart, when = set(facts.owns), set(facts.cart), facts.time
    refusals: dict[str, str | None] = dict.fromkeys(suppressed, "contact-policy") if suppressed else {}
    groups: dict[str, list] = {}
    for rule in fired:
        for pos, rec in enumerate(rule.recommend):
            offering = rec.offering
            if trace is not None:
                trace.proposed.append(_proposal(rule, offering, rec.priority))
            if offering in refusals:
                refusal = refusals[offering]
            else:
                refusal = refusals[offering] = _refusal(offering, catalog, when, owned, in_cart)
            if refusal is None:
                groups.setdefault(offering, []).append(((rec.priority, rule.index, pos), rule))
            elif trace is not None:
                trace.dropped[POLICY_OF[refusal]].append(
                    {**_proposal(rule, offering, rec.priority), "reason": refusal,
                     "detail": suppressed[offering] if refusal == "contact-policy"
                     else _refusal_detail(refusal, catalog.get(offering))})
    for offering, group in groups.items():
        group.sort(key=lambda g: g[0])
        if trace is not None:
            (best_priority, _index, _pos), best_rule = group[0]
            trace.dropped[3].extend(
                {**_proposal(rule, offering, key[0]), "reason": "duplicate",
                 "detail": f"kept the better proposal of rule {best_rule.id} (priority {best_priority})"}
                for key, rule in group[1:])
    ranked = sorted(groups.items(), key=lambda kv: kv[1][0][0])
    if trace is not None:
        trace.dropped[4].extend({**_proposal(group[0][1], offering, group[0][0][0]), "reason": "over-limit",
                                 "detail": f"only the best {ruleset.limit} items are returned"}
                                for offering, group in ranked[ruleset.limit:])
    return [_item(catalog, offering, rank, group, href_base)
            for rank, (offering, group) in enumerate(ranked[: ruleset.limit], start=1)]


def _item(catalog: Catalog, offering: str, rank: int, group: list, href_base: str) -> RecommendedItem:
    """The answer's item for `offering` at `rank`: `group` holds its
    proposals as (key, rule), best first."""
    return RecommendedItem(offering_id=offering, name=catalog.get(offering).name, priority=rank,
                           rule_priority=group[0][0][0],
                           rule_ids=list(dict.fromkeys(r.id for _k, r in group)),
                           kinds=list(dict.fromkeys(r.kind for _k, r in group)),
                           href_base=href_base)


def _top_items(ruleset: RuleSet, catalog: Catalog, facts: Facts, fired: list[Rule],
               href_base: str, suppressed: dict[str, str] | None = None) -> list[RecommendedItem]:
    """apply_policies without a trace: the same items, but only the best
    `limit` offerings are ranked (heapq) and only their proposals sorted; at
    10,000 rules a request fires hundreds of rules whose proposals the limit
    drops. Keys (priority, rule index, position) are unique, so the order is
    exactly the full sort's."""
    owned, in_cart, when = set(facts.owns), set(facts.cart), facts.time
    refusals: dict[str, str | None] = dict.fromkeys(suppressed, "contact-policy") if suppressed else {}
    groups: dict[str, list] = {}
    best: dict[str, tuple] = {}
    for rule in fired:
        index = rule.index
        for pos, rec in enumerate(rule.recommend):
            offering = rec.offering
            refusal = refusals.get(offering, "")
            if refusal == "":
                refusal = refusals[offering] = _refusal(offering, catalog, when, owned, in_cart)
            if refusal is not None:
                continue
            key = (rec.priority, index, pos)
            group = groups.get(offering)
            if group is None:
                groups[offering] = [(key, rule)]
                best[offering] = key
            else:
                group.append((key, rule))
                if key < best[offering]:
                    best[offering] = key
    return [_item(catalog, offering, rank, sorted(groups[offering], key=lambda g: g[0]), href_base)
            for rank, offering in enumerate(heapq.nsmallest(ruleset.limit, best, key=best.__getitem__), start=1)]


def _window(offering) -> str:
    start = offering.valid_from.isoformat().replace("+00:00", "Z") if offering.valid_from else "…"
    end = offering.valid_to.isoformat().replace("+00:00", "Z") if offering.valid_to else "…"
    return f"[{start}, {end})"
