"""The TMF699 SalesLead resource as the domain sees it (its schemas with the
`recommendation` reference, its lifecycle) and the conversion report over what
the store holds; shared by the TMF699 API and `flask sales conversion`."""
from __future__ import annotations

from ..recommend.query import KIND as QUERY_KIND
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from ..timeutil import isoformat, utcnow
from .lifecycle import check_transition
from .recommendation_lead import REFERENCE_DESCRIPTION
from .report import conversion_report

URL_PREFIX = "/tmf-api/sales/v4"

_REFERENCE = {"type": "object", "description": REFERENCE_DESCRIPTION}
schemas = SpecSchemas(
    "TMF699-Sales-v4.0.0.swagger.json", "TMF699",
    added_properties={
        "SalesLead_Create": {
            "status": {"$ref": "#/definitions/SalesLeadStateType",
                       "description": "First status of the lead (default acknowledged)"},
            "statusChangeDate": {"type": "string", "format": "date-time",
                                 "description": "Date of the first status (default: now)"},
            "recommendation": _REFERENCE,
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


