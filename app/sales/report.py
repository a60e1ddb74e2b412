"""Conversion feedback for product managers: per rule set version and per rule,
how many items the rules recommended (in stored TMF680 queries), how many of
those became sales leads, and where the leads are now.

Attribution comes from the explanation every recommended item carries
(`explanation.ruleIds`, `ruleSetId`, `ruleSetVersion`) and that a
RecommendationSalesLead keeps a copy of. An item proposed by two rules counts
for both rules, once for its rule set version.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..store.query import CountBy, Filter, count_python

from .lifecycle import STATUSES
from .recommendation_lead import REFERENCE_ATTRIBUTE

REPORT_TYPE = "SalesConversionReport"


class _Tally:
    def __init__(self):
        self.recommended_items = 0
        self.items_with_lead = 0
        self.leads = 0
        self.by_status = dict.fromkeys(STATUSES, 0)

    def as_dict(self) -> dict:
        rate = (round(self.items_with_lead / self.recommended_items, 4)
                if self.recommended_items else None)
        return {"recommendedItems": self.recommended_items, "itemsWithLead": self.items_with_lead,
                "conversionRate": rate, "leads": self.leads, "leadsByStatus": dict(self.by_status)}


# What the report counts, as aggregates (app.store.query.CountBy) that each
# store runs where the data is: Python on TinyDB, GROUP BY on PostgreSQL.
_ITEMS = ("recommendationItem",)
_ITEM_SET = _ITEMS + ("explanation", "ruleSetId")
_ITEM_VERSION = _ITEMS + ("explanation", "ruleSetVersion")
_ITEM_RULES = _ITEMS + ("explanation", "ruleIds")
_REF = (REFERENCE_ATTRIBUTE,)
_LEAD_KEYS = (_REF + ("id",), _REF + ("itemId",), _REF + ("explanation", "ruleSetId"),
              _REF + ("explanation", "ruleSetVersion"), ("status",))
#: recommendation ids per look-up of the items that have a lead
_IDS_PER_QUERY = 500

Counter = Callable[[str, CountBy], list]


def _attribution(set_id, version) -> tuple[str, str] | None:
    """(ruleSetId, ruleSetVersion) as text, or None for an item or lead the
    rules did not explain (no ruleSetId)."""
    return (str(set_id), str(version or "")) if set_id else None


def conversion_report(recommendations: Iterable[dict], leads: Iterable[dict], *,
                      generated_at: str, rule_set_id: str | None = None,
                      rule_set_version: str | None = None) -> dict:
    """`recommendations`: stored queryProductRecommendation resources;
    `leads`: salesLead resources, as lists (the same counts as
    :func:`report_from_counts` over a store)."""
    documents = {"recommendations": list(recommendations), "leads": list(leads)}
    return report_from_counts(lambda which, count: count_python(documents[which], count),
                              generated_at=generated_at, rule_set_id=rule_set_id,
                              rule_set_version=rule_set_version)


def report_from_counts(count: Counter, *, generated_at: str, rule_set_id: str | None = None,
                       rule_set_version: str | None = None,
                       is_instant_answer: Callable[[str], bool] | None = None) -> dict:
    """The report from aggregates: `count(which, CountBy)` runs one over
    "recommendations" or "leads" (a Store's count_by). Only leads made from
    a stored recommendation count: this report is about stored queries (its
    items are theirs), and a lead made from an instant answer, whose id
    `is_instant_answer(id)` recognises (handed in by the decision log, which
    gives those ids), counts in the funnel of every answer instead
    (app/decisions/funnel.py). An item counts once for its rule set version
    and once for each of its rules (`explanation.ruleIds`). `leads` may
    exceed `itemsWithLead` when a recommendation was deleted after its items
    became leads (the leads keep their attribution). What leaves the store:
    one row per (rule set version[, rule]) for the recommendations, one per
    referenced item and status for the leads."""
    totals: dict[tuple[str, str], _Tally] = {}
    per_rule: dict[tuple[str, str, str], _Tally] = {}

    def wanted(attribution) -> bool:
        return attribution is not None and (
            (rule_set_id is None or attribution[0] == rule_set_id)
            and (rule_set_version is None or attribution[1] == rule_set_version))

    def tally(attribution: tuple[str, str], rule=None) -> _Tally:
        if rule is None:
            return totals.setdefault(attribution, _Tally())
        per_rule_key = (*attribution, str(rule))
        totals.setdefault(attribution, _Tally())
        return per_rule.setdefault(per_rule_key, _Tally())

    # Leads: per referenced item, attribution (and rule) and status.
    referenced: set[tuple[str, str]] = set()
    for by_rule in (False, True):
        keys = _LEAD_KEYS + ((_REF + ("explanation", "ruleIds"),) if by_rule else ())
        for values, n in count("leads", CountBy(keys=keys)):
            reference_id, item_id, set_id, version, status = values[:5]
            attribution = _attribution(set_id, version)
            if attribution is None or (is_instant_answer is not None
                                       and is_instant_answer(str(reference_id))):
                continue
            referenced.add((str(reference_id), str(item_id)))
            if not wanted(attribution) or (by_rule and values[5] is None):
                continue
            target = tally(attribution, values[5] if by_rule else None)
            target.leads += n
            if status in target.by_status:
                target.by_status[status] += n

    # Recommended items: per rule set version, and per rule.
    for by_rule in (False, True):
        keys = (_ITEM_SET, _ITEM_VERSION) + ((_ITEM_RULES,) if by_rule else ())
        for values, n in count("recommendations", CountBy(keys=keys, each=_ITEMS)):
            attribution = _attribution(values[0], values[1])
            if wanted(attribution) and not (by_rule and values[2] is None):
                tally(attribution, values[2] if by_rule else None).recommended_items += n

    # Items with a lead: the referenced items that are still stored.
    ids = sorted({reference_id for reference_id, _item in referenced})
    for start in range(0, len(ids), _IDS_PER_QUERY):
        only = (Filter(("id",), "eq", tuple(ids[start:start + _IDS_PER_QUERY])),)
        for by_rule in (False, True):
            keys = (("id",), _ITEMS + ("id",), _ITEM_SET, _ITEM_VERSION) + (
                (_ITEM_RULES,) if by_rule else ())
            for values, n in count("recommendations",
                                   CountBy(keys=keys, each=_ITEMS, filters=only)):
                attribution = _attribution(values[2], values[3])
                if ((str(values[0]), str(values[1])) in referenced and wanted(attribution)
                        and not (by_rule and values[4] is None)):
                    tally(attribution, values[4] if by_rule else None).items_with_lead += n

    rule_sets = []
    for set_id, version in sorted(totals, key=lambda key: (_natural(key[0]), _natural(key[1]))):
        rules = sorted((rule for (s, v, rule) in per_rule if (s, v) == (set_id, version)),
                       key=_natural)
        rule_sets.append({
            "ruleSetId": set_id, "ruleSetVersion": version,
            **totals[(set_id, version)].as_dict(),
            "rules": [{"ruleId": rule, **per_rule[(set_id, version, rule)].as_dict()}
                      for rule in rules],
        })
    return {"@type": REPORT_TYPE, "generatedAt": generated_at, "ruleSets": rule_sets}


def _natural(text: str) -> tuple:
    """R2 before R10, 1.9 before 1.10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)


HEADER = ("RULE SET", "VERSION", "RULE", "ITEMS", "WITH LEAD", "RATE", "LEADS") + STATUSES


def report_rows(report: dict) -> list[tuple[str, ...]]:
    """One row per rule set version (rule `all`) followed by its rules."""
    rows = []
    for rule_set in report["ruleSets"]:
        for rule, tally in [("all", rule_set)] + [(r["ruleId"], r) for r in rule_set["rules"]]:
            rate = tally["conversionRate"]
            rows.append((rule_set["ruleSetId"], rule_set["ruleSetVersion"], rule,
                         str(tally["recommendedItems"]), str(tally["itemsWithLead"]),
                         "-" if rate is None else f"{rate * 100:.1f}%", str(tally["leads"]))
                        + tuple(str(tally["leadsByStatus"][status]) for status in STATUSES))
    return rows
