"""The TMF699 SalesLead resource as the domain sees it (its schemas with the
`recommendation` reference, its lifecycle) and the conversion report over what
the store holds; shared by the TMF699 API and `flask sales conversion`."""
from __future__ import annotations

from collections.abc import Callable

from ..recommend.query import KIND as QUERY_KIND
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from ..timeutil import isoformat, utcnow
from .lifecycle import check_transition
from .recommendation_lead import (LEAD_JSON_SCHEMA, LEAD_TYPE, REFERENCE_ATTRIBUTE,
                                  REFERENCE_DESCRIPTION, REQUEST_REFERENCE_KEYS)
from .report import report_from_counts

URL_PREFIX = "/tmf-api/sales/v4"

# The reference to a recommended item, as its JSON schema says (id and itemId
# required), so that the served document and the behaviour agree.
# The request takes id, itemId, href and @referredType; the stored lead adds
# itemPriority and explanation.
_REFERENCE_DEFINITION = {**LEAD_JSON_SCHEMA["properties"]["recommendation"], "type": "object",
                         "additionalProperties": False}
# id and itemId may not be empty (app/sales/recommendation_lead.py, parse_reference)
_REFERENCE_REQUEST = {**_REFERENCE_DEFINITION, "properties": {
    key: {**value, "minLength": 1} if key in ("id", "itemId") else value
    for key, value in _REFERENCE_DEFINITION["properties"].items()
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

# What parse_reference checks across attributes, said in the document too: a
# recommendation makes the lead a RecommendationSalesLead (@type that or
# none), and that @type needs a recommendation.
schemas["SalesLead_Create"].document_constraints = (
    {"anyOf": [{"not": {"required": [REFERENCE_ATTRIBUTE]}},
               {"not": {"required": ["@type"]}},
               {"properties": {"@type": {"enum": [LEAD_TYPE]}}}],
     "description": f"'{REFERENCE_ATTRIBUTE}' belongs to @type {LEAD_TYPE} (or no @type)"},
    {"anyOf": [{"not": {"required": ["@type"], "properties": {"@type": {"enum": [LEAD_TYPE]}}}},
               {"required": [REFERENCE_ATTRIBUTE]}],
     "description": f"A {LEAD_TYPE} needs '{REFERENCE_ATTRIBUTE}'"},
)

KIND = ResourceKind(
    api="sales", collection="salesLead", type_name="SalesLead", payload_name="salesLead",
    base_path=f"{URL_PREFIX}/salesLead",
    resource_schema=schemas["SalesLead"], create_schema=schemas["SalesLead_Create"],
    update_schema=schemas["SalesLead_Update"], state_attribute="status",
    check_transition=check_transition, read_only=("creationDate", "recommendation"),
)


def current_report(store, rule_set_id: str | None = None,
                   rule_set_version: str | None = None,
                   is_instant_answer: Callable[[str], bool] | None = None) -> dict:
    """The report over what the store holds now (the API and `flask sales conversion`),
    from aggregates the store runs (Store.count_by: GROUP BY on PostgreSQL), so
    only the groups leave the database, not the documents. `is_instant_answer`:
    see :func:`report_from_counts`."""
    collections = {"recommendations": QUERY_KIND.collection, "leads": KIND.collection}
    return report_from_counts(lambda which, count: store.count_by(collections[which], count),
                              generated_at=isoformat(utcnow()), rule_set_id=rule_set_id,
                              rule_set_version=rule_set_version,
                              is_instant_answer=is_instant_answer)
