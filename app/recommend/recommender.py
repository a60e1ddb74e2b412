"""The one interface the TMF680 API calls: recommend(query) -> ranked items."""
from __future__ import annotations

from ..observability.metrics import observe_recommendation
from ..rules import RuleService, RuleSetError
from .facts import PartyFacts, build_context

ITEM_SCHEMA_NAME = "ExplainedRecommendationItem"


class RecommenderUnavailable(Exception):
    """No valid rule set is loaded; the reason is in the health report."""


class Recommender:
    def __init__(self, rules: RuleService, store):
        self.rules = rules
        self.store = store
        self.parties = PartyFacts(store)

    @observe_recommendation
    def recommend(self, query: dict, base_url: str, mode: str = "instant") -> tuple[list[dict], dict]:
        """TMF680 recommendationItem list and the rule set that produced it
        ({"id", "version", "hash", "firedRules"}). `mode` (instant, async)
        labels the metrics only."""
        context = build_context(query, self.parties)
        # a clock read; a changed file is reloaded by the service's watcher
        # thread while the version in service keeps answering (issue 13)
        self.rules.poll()
        try:
            result = self.rules.recommend(context)
        except RuleSetError as exc:       # only "no usable rule set"; an engine fault is a 500
            raise RecommenderUnavailable(str(exc)) from exc
        ruleset = {"id": result.ruleset_id, "version": result.ruleset_version,
                   "hash": result.ruleset_hash, "firedRules": result.fired_rules}
        return [to_tmf_item(item, result, base_url) for item in result.items], ruleset


def to_tmf_item(item, result, base_url: str) -> dict:
    """A RecommendationItem extended (TMF polymorphism) with why it is there."""
    offering = dict(item.offering)
    if offering.get("href", "").startswith("/"):
        offering["href"] = base_url + offering["href"]
    return {
        "id": str(item.priority),
        "priority": item.priority,
        "productOffering": offering,
        "@type": ITEM_SCHEMA_NAME,
        "@baseType": "RecommendationItem",
        "@schemaLocation": f"{base_url}/schemas/{ITEM_SCHEMA_NAME}.schema.json",
        "explanation": {
            "ruleIds": list(item.rule_ids),
            "ruleSetId": result.ruleset_id,
            "ruleSetVersion": result.ruleset_version,
            "rulePriority": item.rule_priority,
        },
    }


ITEM_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": ITEM_SCHEMA_NAME,
    "description": "TMF680 RecommendationItem with the reasons the rules engine recommended it.",
    "allOf": [{"$ref": "TMF680-Recommendation-v4.0.0.swagger.json#/definitions/RecommendationItem"}],
    "type": "object",
    "properties": {
        "explanation": {
            "type": "object",
            "properties": {
                "ruleIds": {"type": "array", "items": {"type": "string"},
                            "description": "Rules that proposed this offering, best first"},
                "ruleSetId": {"type": "string"},
                "ruleSetVersion": {"type": "string"},
                "rulePriority": {"type": "integer",
                                 "description": "Best priority a rule gave (smaller ranks first)"},
            },
        }
    },
}
