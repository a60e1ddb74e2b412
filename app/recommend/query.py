"""The TMF680 QueryProductRecommendation resource as the domain sees it: its
schemas (the served spec with the user guide's additions), the checks a query
passes before it is accepted, and the Context a query means to the rules.
Shared by the TMF680 API, the rules admin API and the `flask rules` CLI, so no
API module imports another."""
from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError

from ..errors import TMFError
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from .facts import QueryFacts, build_context, query_facts
from .items import EXPERIMENT_ATTRIBUTE

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
                     "description": "validFor.startDateTime is the evaluation time (default: now)"}},
        "QueryProductRecommendation": {"experiment": EXPERIMENT_ATTRIBUTE}},
)


def check_query(data: dict, sent: dict | None = None) -> QueryFacts:
    """Everything the evaluation will read is checked before a query is
    accepted, so an asynchronous query never fails later on bad input; what
    was read (the cart's offering ids, the evaluation time) is returned for
    an instant answer's build_context. (recommendationItem, id and href are
    server-owned: ResourceService.new_resource refuses them with
    SERVER_OWNED_ATTRIBUTE.) `sent`: the body as the client sent it, whose
    shape the error details follow (a single cart object, not item 0)."""
    return query_facts(data, sent)


KIND = ResourceKind(
    api="recommendationManagement", collection="queryProductRecommendation",
    type_name="QueryProductRecommendation", payload_name="queryProductRecommendation",
    base_path=f"{URL_PREFIX}/queryProductRecommendation",
    resource_schema=schemas["QueryProductRecommendation"],
    create_schema=schemas["QueryProductRecommendation_Create"],
    state_attribute="state", validate_create=check_query,
)


def context_from_query(body: dict, parties, default_time: dt.datetime | None = None):
    """A Context from a TMF680 QueryProductRecommendation body, validated like
    a create request; the customer and its products come from the store."""
    data = {key: value for key, value in body.items() if key not in ("id", "href", "state", "recommendationItem")}
    try:
        data = KIND.create_schema().load(data)
    except ValidationError as exc:
        raise TMFError(400, "The body is neither a case context nor a valid TMF680 query",
                       code="INVALID_CONTEXT", details=exc.messages) from None
    context = build_context(data, parties, check_query(data, body))
    if default_time is not None and not (data.get("validFor") or {}).get("startDateTime"):
        context.time = default_time
    return context


