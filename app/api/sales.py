"""TMF699 Sales Management v4.0.0: salesLead, leads made from recommended
items, and the conversion report that tells which rules sell.

Where this differs from the published document, and why:
- `status` (and `statusChangeDate`) may be sent on create: the lead's first
  status, `acknowledged` by default; the spec's _Create skips both.
- `creationDate` and `statusChangeDate` are set by the service; a PATCH that
  changes `status` also sets `statusChangeDate` unless it dates the change.
- `RecommendationSalesLead` (TMF polymorphism) carries `recommendation`, the
  reference to a TMF680 recommended item; see app/sales/recommendation_lead.py.
- `GET /conversionReport` is this service's addition, not a TMF resource.
"""
from __future__ import annotations

from flask import request
from marshmallow import Schema, fields

from ..decisions.conversion import conversion_report, parse_range
from ..decisions.service import find_recommendation
from ..errors import TMFError
from ..jsonbody import MERGE_PATCH_TYPES, read_json_object
from ..sales import (LEAD_JSON_SCHEMA, LEAD_TYPE, STATUSES,
                     build_recommendation_lead, check_patch,
                     is_recommendation_lead, stamp_new_lead,
                     stamp_status_change)
from ..sales.resource import KIND, URL_PREFIX, schemas
from ..store import DuplicateId
from ..timeutil import isoformat, utcnow
from .tmf import (MERGE_PATCH_DESCRIPTION, ErrorSchema, base_url, created, error_responses,
                  json_response, resource_blueprint, services)

LEAD_SCHEMA_PATH = f"/schemas/{LEAD_TYPE}.schema.json"


def _service():
    return services().resources[KIND.collection]


def _create_sales_lead():
    reco = services()
    service = _service()
    body = read_json_object()
    KIND.refuse_server_owned(body)   # before the reference is looked up
    base = base_url()
    lead_id, extension = None, {}
    if is_recommendation_lead(body):
        lead = build_recommendation_lead(
            body,
            get_recommendation=find_recommendation(reco),
            find_customer=reco.recommender.parties.customer,
            schema_location=f"{base}{URL_PREFIX}{LEAD_SCHEMA_PATH}")
        body, extension, lead_id = lead.body, lead.extension, lead.lead_id
    resource = service.new_resource(body, base)
    if lead_id:
        resource.update(id=lead_id, href=f"{base}{KIND.base_path}/{lead_id}")
    resource.update(extension)
    stamp_new_lead(resource, isoformat(utcnow()))
    try:
        stored = service.insert(resource)
    except DuplicateId:
        raise TMFError(409, f"This recommended item already became salesLead {resource['href']}",
                       code="LEAD_EXISTS") from None
    return created(stored)


blp = resource_blueprint(
    "sales", KIND, schemas, url_prefix=URL_PREFIX,
    description="TMF699 Sales Management: salesLead, leads from recommended items "
                f"(@type {LEAD_TYPE}), conversion report per rule",
    patchable=False, create_handler=_create_sales_lead, item_methods=("get", "patch", "delete"),
    create_responses={"409": {
        "description": f"A {LEAD_TYPE} for this recommended item exists (TMF Error)",
        "content": {"application/json": {"schema": ErrorSchema}}}})

_RESOURCE_CONTENT = {"application/json": {"schema": KIND.resource_schema}}


# PATCH and DELETE are the shared ones plus the lead's own rules (read the
# lead, then patch): the product offering of a RecommendationSalesLead is
# fixed, and a status change is dated.
@blp.route("/salesLead/<resource_id>", methods=["PATCH"], endpoint="patch")
@blp.doc(summary="Update partially a SalesLead (JSON merge patch)",
         description=f"{MERGE_PATCH_DESCRIPTION} status moves acknowledged -> inProgress <-> "
                     "pending -> accepted | rejected | cancelled (final); a wrong change is a 400.",
         requestBody={"required": True, "content": {
             content_type: {"schema": KIND.update_schema} for content_type in MERGE_PATCH_TYPES}},
         responses={"200": {"description": "Updated", "content": _RESOURCE_CONTENT},
                    **error_responses(schemas)})
def patch_sales_lead(resource_id):
    patch = read_json_object(MERGE_PATCH_TYPES)
    service = _service()
    current = service.get(resource_id)
    check_patch(current, patch)
    patch = stamp_status_change(current, patch, isoformat(utcnow()))
    return json_response(service.patch(resource_id, patch))


@blp.route("/salesLead/<resource_id>", methods=["DELETE"], endpoint="delete")
@blp.doc(summary="Delete a SalesLead",
         responses={"204": {"description": "Deleted"}, **error_responses(schemas)})
def delete_sales_lead(resource_id):
    _service().delete(resource_id)
    return "", 204


class _TallySchema(Schema):
    recommendedItems = fields.Integer(metadata={
        "description": "Items the rules recommended, in stored queryProductRecommendations"})
    itemsWithLead = fields.Integer(metadata={"description": "Of those, items that became a lead"})
    conversionRate = fields.Float(allow_none=True, metadata={
        "description": "itemsWithLead / recommendedItems (null without items)"})
    leads = fields.Integer(metadata={
        "description": "Leads made from these recommendations (also of deleted recommendations)"})
    leadsByStatus = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": f"Leads by current status ({', '.join(STATUSES)}); accepted, "
                       "rejected and cancelled are final"})


class RuleConversionSchema(_TallySchema):
    ruleId = fields.String()


class RuleSetConversionSchema(_TallySchema):
    ruleSetId = fields.String()
    ruleSetVersion = fields.String()
    rules = fields.List(fields.Nested(RuleConversionSchema))


class SalesConversionReportSchema(Schema):
    type_ = fields.String(data_key="@type")
    generatedAt = fields.String()
    ruleSets = fields.List(fields.Nested(RuleSetConversionSchema))
    funnel = fields.Dict(metadata={
        "description": "Every recorded decision (instant and asynchronous) in [since, until): "
                       "decisions, items, shown, clicked, leads, accepted; `total` and lists "
                       "byRuleSetVersion, byRule, byOffering, byChannel, bySegment "
                       "(app/decisions/funnel.py). Absent when the decision log is off."})


REPORT_FILTERS = ("ruleSetId", "ruleSetVersion", "since", "until", "channel")


@blp.route("/conversionReport", methods=["GET"], endpoint="conversion_report")
@blp.doc(summary="Conversion of recommendations into sales leads, per rule set version and rule",
         description="ruleSets: the items of stored (asynchronous) TMF680 queries and the "
                     f"{LEAD_TYPE}s made from them; funnel: every recorded decision, instant "
                     "ones included, with its reactions and leads. Not a TMF resource: this "
                     "service's addition.",
         parameters=[{"in": "query", "name": name, "schema": {"type": "string"},
                      "description": f"Only this {name}"}
                     for name in ("ruleSetId", "ruleSetVersion", "channel")] + [
             {"in": "query", "name": name, "schema": {"type": "string", "format": "date-time"},
              "description": f"funnel: decisions {word} this date-time"}
             for name, word in (("since", "at or after"), ("until", "before"))],
         responses={"200": {"description": "The report", "content": {
             "application/json": {"schema": SalesConversionReportSchema}}},
             **error_responses(schemas)})
def get_conversion_report():
    unknown = sorted(set(request.args) - set(REPORT_FILTERS))
    if unknown:
        raise TMFError(400, f"Unknown parameter(s): {', '.join(unknown)}; "
                            f"filters are {', '.join(REPORT_FILTERS)}", code="INVALID_QUERY")
    since, until = parse_range(request.args.get("since"), request.args.get("until"))
    return json_response(conversion_report(
        services(), request.args.get("ruleSetId"), request.args.get("ruleSetVersion"),
        since, until, request.args.get("channel")))


@blp.route(LEAD_SCHEMA_PATH, methods=["GET"], endpoint="lead_schema")
@blp.doc(summary=f"JSON schema of {LEAD_TYPE} (its @schemaLocation)", responses={
    "200": {"description": "A JSON schema (draft-07)",
            "content": {"application/json": {"schema": {"type": "object"}}}}})
def lead_schema():
    return json_response(LEAD_JSON_SCHEMA)
