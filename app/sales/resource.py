"""The TMF699 SalesLead resource as the domain sees it (its schemas with the
`recommendation` reference, its lifecycle) and the conversion report over what
the store holds; shared by the TMF699 API and `flask sales conversion`."""
from __future__ import annotations

from ..recommend.query import KIND as QUERY_KIND
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from ..timeutil import isoformat, utcnow
from .lifecycle import check_transition
from .recommendation_lead import LEAD_JSON_SCHEMA, REFERENCE_DESCRIPTION, REQUEST_REFERENCE_KEYS
from .report import conversion_report

URL_PREFIX = "/tmf-api/sales/v4"

# The reference to a recommended item, as its JSON schema says (id and itemId
# required), so that the served document and the behaviour agree.
# The request takes id, itemId, href and @referredType; the stored lead adds
# itemPriority and explanation.
_REFERENCE_DEFINITION = {**LEAD_JSON_SCHEMA["properties"]["recommendation"], "type": "object",
                         "additionalProperties": False}
_REFERENCE_REQUEST = {**_REFERENCE_DEFINITION, "properties": {
    key: value for key, value in _REFERENCE_DEFINITION["properties"].items()
    if key in REQUEST_REFERENCE_KEYS}}
_REFERENCE = {"$ref": "#/definitions/RecommendationItemRef", "description": REFERENCE_DESCRIPTION}
schemas = SpecSchemas(
    "TMF699-Sales-v4.0.0.swagger.json", "TMF699",
    added_definitions={"RecommendationItemRef": _REFERENCE_DEFINITION,
                       "RecommendationItemRef_Create": _REFERENCE_REQUEST},
    added_properties={
        "SalesLead_Create": {
            "status": {"$ref": "#/definitions/SalesLeadStateType",
                       "description": "First status of the lead (default acknowledged)"},
            "statusChangeDate": {"type": "string", "format": "date-time",
                                 "description": "Date of the first status (default: now)"},
            "recommendation": {**_REFERENCE,
                               "$ref": "#/definitions/RecommendationItemRef_Create"},
        },
        "SalesLead": {"recommendation": _REFERENCE},
    },
)

KIND = ResourceKind(
    api="sales", collection="salesLead", type_name="SalesLead", payload_name="salesLead",
    base_path=f"{URL_PREFIX}/salesLead",
    resource_schema=schemas["SalesLead"], create_schema=schemas["SalesLead_Create"],
    update_schema=schemas["SalesLead_Update"], state_attribute="status",
    check_transition=check_transition, read_only=("creationDate", "recommendation"),
)


def current_report(store, rule_set_id: str | None = None,
                   rule_set_version: str | None = None) -> dict:
    """The report over what the store holds now (the API and `flask sales conversion`)."""
    return conversion_report(store.all(QUERY_KIND.collection),
                             store.all(KIND.collection),
                             generated_at=isoformat(utcnow()), rule_set_id=rule_set_id,
                             rule_set_version=rule_set_version)


