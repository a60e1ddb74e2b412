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
from collections.abc import Iterable

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


def _explanation(value) -> tuple[str, str, list[str]] | None:
    explanation = value.get("explanation") if isinstance(value, dict) else None
    if not isinstance(explanation, dict) or not explanation.get("ruleSetId"):
        return None
    rule_ids = [str(rule) for rule in explanation.get("ruleIds") or []]
    return (str(explanation["ruleSetId"]), str(explanation.get("ruleSetVersion") or ""),
            list(dict.fromkeys(rule_ids)))


def conversion_report(recommendations: Iterable[dict], leads: Iterable[dict], *,
                      generated_at: str, rule_set_id: str | None = None,
                      rule_set_version: str | None = None) -> dict:
    """`recommendations`: stored queryProductRecommendation resources;
    `leads`: salesLead resources. Only leads made from a recommendation count.
    `leads` may exceed `itemsWithLead` when a recommendation was deleted after
    its items became leads (the leads keep their attribution)."""
    totals: dict[tuple[str, str], _Tally] = {}
    per_rule: dict[tuple[str, str, str], _Tally] = {}

    def wanted(set_id: str, version: str) -> bool:
        return ((rule_set_id is None or set_id == rule_set_id)
                and (rule_set_version is None or version == rule_set_version))

    def tallies(set_id: str, version: str, rule_ids: list[str]) -> list[_Tally]:
        found = [totals.setdefault((set_id, version), _Tally())]
        found += [per_rule.setdefault((set_id, version, rule), _Tally()) for rule in rule_ids]
        return found

    leads_with_reference = []
    referenced: set[tuple[str, str]] = set()
    for lead in leads:
        reference = lead.get(REFERENCE_ATTRIBUTE)
        attribution = _explanation(reference)
        if attribution is None:
            continue
        leads_with_reference.append((lead, attribution))
        referenced.add((str(reference.get("id")), str(reference.get("itemId"))))

    for recommendation in recommendations:
        for item in recommendation.get("recommendationItem") or []:
            attribution = _explanation(item)
            if attribution is None or not wanted(attribution[0], attribution[1]):
                continue
            has_lead = (str(recommendation.get("id")), str(item.get("id"))) in referenced
            for tally in tallies(*attribution):
                tally.recommended_items += 1
                tally.items_with_lead += has_lead

    for lead, attribution in leads_with_reference:
        if not wanted(attribution[0], attribution[1]):
            continue
        status = lead.get("status")
        for tally in tallies(*attribution):
            tally.leads += 1
            if status in tally.by_status:
                tally.by_status[status] += 1

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
