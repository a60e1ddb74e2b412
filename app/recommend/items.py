"""The TMF680 edge of a recommendation: the engine answers with offering ids,
ranks and the rules behind them (app/rules Recommendation); here, and only
here, they become RecommendationItem objects with links (so that the
engine makes no TMF objects or hrefs that the API would copy and rewrite).

An item is the spec's RecommendationItem (TMF680 v4.0.0 swagger,
definitions/RecommendationItem: id, priority, productOffering as a
ProductOfferingRef) extended by TMF polymorphism (@type
ExplainedRecommendationItem, @baseType, @schemaLocation) with `explanation`:
why it is there."""
from __future__ import annotations

from ..rules import Recommendation
from ..rules.model.catalog import offering_ref

ITEM_SCHEMA_NAME = "ExplainedRecommendationItem"


def tmf_items(result: Recommendation, base_url: str) -> list[dict]:
    """The recommendationItem list of `result`, ranked; links are
    `base_url` (RECO_PUBLIC_BASE_URL or "", app/api/tmf.py base_url) plus
    the TMF620 path, so relative unless a public base is set."""
    location = f"{base_url}/schemas/{ITEM_SCHEMA_NAME}.schema.json"
    ruleset_id, version = result.ruleset_id, result.ruleset_version
    arm = ({"experimentId": result.experiment["id"], "experimentArm": result.experiment["arm"]}
           if result.experiment else {})
    return [{
        "id": str(item.priority),
        "priority": item.priority,
        "productOffering": offering_ref(item.offering_id, item.name, base_url),
        "@type": ITEM_SCHEMA_NAME,
        "@baseType": "RecommendationItem",
        "@schemaLocation": location,
        "explanation": {
            "ruleIds": list(item.rule_ids),
            "ruleSetId": ruleset_id,
            "ruleSetVersion": version,
            "rulePriority": item.rule_priority,
            **arm,
        },
    } for item in result.items]


def ruleset_headers(result: Recommendation) -> dict:
    """X-Ruleset (`id@version`) and X-Ruleset-Hash of the rule set that answered."""
    return {"X-Ruleset": f"{result.ruleset_id}@{result.ruleset_version}",
            "X-Ruleset-Hash": result.ruleset_hash or ""}


#: the explanation's experiment attributes (only inside a running experiment;
#: copied onto reactions and leads with the explanation): docs/experiments.md
EXPERIMENT_EXPLANATION = {
    "experimentId": {"type": "string",
                     "description": "The experiment whose arm chose the version (docs/experiments.md)"},
    "experimentArm": {"type": "string", "description": "The arm of that experiment"},
}

#: the answer's `experiment` attribute (this service's TMF680 extension)
EXPERIMENT_ATTRIBUTE = {
    "type": "object",
    "description": "This service's extension: the experiment and arm this answer was given in "
                   "(only inside a running experiment; a holdout's answer has no items). "
                   "docs/experiments.md",
    "properties": {"id": {"type": "string"}, "arm": {"type": "string"}},
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
                **EXPERIMENT_EXPLANATION,
            },
        }
    },
}
