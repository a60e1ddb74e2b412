"""TMF680 Recommendation Management v4.0.0.

Served at /tmf-api/recommendationManagement/v4: the spec's basePath
`/customer/v4/` is a known error in the published document.
"""
from __future__ import annotations

from ..errors import TMFError
from ..jsonbody import read_json_object
from ..recommend import RecommenderUnavailable
from ..recommend.facts import cart_offerings
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from .tmf import base_url, created, json_response, resource_blueprint, services

URL_PREFIX = "/tmf-api/recommendationManagement/v4"

# The user guide's create samples carry validFor (the evaluation time) and a
# relatedParty without @referredType; the spec's _Create definition skips
# the first and RelatedParty requires the second. The guide is what clients
# copy, so both are accepted. The _Create definition lists recommendationItem,
# which the service computes and refuses on create (a 400), so the served
# document does not offer it.
schemas = SpecSchemas(
    "TMF680-Recommendation-v4.0.0.swagger.json", "TMF680",
    required_overrides={"RelatedParty": ["id"]},
    removed_properties={"QueryProductRecommendation_Create": ["recommendationItem"]},
    added_properties={"QueryProductRecommendation_Create": {
        "validFor": {"$ref": "#/definitions/TimePeriod",
                     "description": "validFor.startDateTime is the evaluation time (default: now)"}}},
)


def _check_query(data: dict) -> None:
    """Everything the evaluation will read is checked before a query is
    accepted, so an asynchronous query never fails later on bad input."""
    cart_offerings(data.get("shoppingCart"))


KIND = ResourceKind(
    api="recommendationManagement", collection="queryProductRecommendation",
    type_name="QueryProductRecommendation", payload_name="queryProductRecommendation",
    base_path=f"{URL_PREFIX}/queryProductRecommendation",
    resource_schema=schemas["QueryProductRecommendation"],
    create_schema=schemas["QueryProductRecommendation_Create"],
    state_attribute="state", validate_create=_check_query,
)



def _create_recommendation():
    reco = services()
    service = reco.resources[KIND.collection]
    # recommendationItem, id and href are server-owned: new_resource refuses them
    resource = service.new_resource(read_json_object(), base_url())
    if resource.get("instantSyncRecommendation"):
        try:
            items, ruleset = reco.recommender.recommend(resource, base_url())
        except RecommenderUnavailable as exc:
            raise TMFError(503, f"No valid rule set is active: {exc}",
                           code="RULESET_UNAVAILABLE") from None
        # Nothing is stored for an instant answer, so there is nothing to point to.
        resource.pop("id")
        resource.pop("href")
        resource["state"] = "done"
        resource["recommendationItem"] = items
        return json_response(resource, 200, ruleset_headers(ruleset))
    resource["state"] = "accepted"
    reco.jobs.enqueue(resource["id"], base_url())
    stored = service.insert(resource)
    reco.jobs.wake()
    return created(stored)


def ruleset_headers(ruleset: dict) -> dict:
    return {"X-Ruleset": f"{ruleset['id']}@{ruleset['version']}",
            "X-Ruleset-Hash": ruleset["hash"] or ""}


blp = resource_blueprint(
    "recommendationManagement", KIND, schemas, url_prefix=URL_PREFIX,
    description="TMF680 Recommendation Management",
    patchable=False, create_handler=_create_recommendation,
    create_responses={"200": {
        "description": "instantSyncRecommendation: the ranked items, state done, nothing stored",
        "content": {"application/json": {"schema": KIND.resource_schema}}}})
