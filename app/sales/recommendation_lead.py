"""A salesLead from a recommended item: the one call a storefront or an agent
makes when a customer takes up (or shows interest in) a recommendation.

The request is a TMF699 SalesLead sub-classed the TMF way:

    {"@type": "RecommendationSalesLead",
     "recommendation": {"id": "<queryProductRecommendation id>", "itemId": "2"}}

plus, optionally, any SalesLead attribute (name, priority, status, note, ...).
The service checks the reference and fills the lead from the stored
recommendation: the recommended `productOffering`, the customer as
`relatedParty`, the query's `channel`, a default `name`, and keeps the item's
explanation (rule ids, rule set id and version) on the lead so that the
conversion report can attribute the lead to the rules that proposed it.

One recommended item gives at most one lead: the lead's id is derived from the
reference, so a repeated call (a retry, a double click) is a 409 that names the
existing lead instead of a second lead that would inflate the conversion.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from ..errors import TMFError

LEAD_TYPE = "RecommendationSalesLead"
BASE_TYPE = "SalesLead"
RECOMMENDATION_TYPE = "QueryProductRecommendation"
REFERENCE_ATTRIBUTE = "recommendation"
REQUEST_REFERENCE_KEYS = ("id", "itemId", "href", "@referredType")

# The TMF699 reference definitions' attributes (ProductOfferingRef, ChannelRef,
# RelatedParty): what is copied from the TMF680 resource into the lead.
REF_KEYS = ("id", "href", "name", "@baseType", "@schemaLocation", "@type", "@referredType")
PARTY_KEYS = REF_KEYS + ("role",)

_LEAD_IDS = uuid.UUID("5b0c1d3e-7f4a-5e68-9c2b-0d1e2f3a4b5c")


@dataclass
class RecommendationLead:
    lead_id: str
    body: dict       # plain SalesLead create body, validated by the spec schema
    extension: dict  # @type, @baseType, @schemaLocation and the recommendation reference


def is_recommendation_lead(body: dict) -> bool:
    return REFERENCE_ATTRIBUTE in body or body.get("@type") == LEAD_TYPE


def lead_id_for(recommendation_id: str, item_id: str) -> str:
    return str(uuid.uuid5(_LEAD_IDS, f"{recommendation_id}\n{item_id}"))


def parse_reference(body: dict) -> tuple[str, str]:
    """(recommendation id, item id) of a RecommendationSalesLead request."""
    declared = body.get("@type")
    if declared not in (None, LEAD_TYPE):
        raise _invalid(f"'{REFERENCE_ATTRIBUTE}' belongs to @type {LEAD_TYPE}, not {declared!r}",
                       {"@type": [f"Must be {LEAD_TYPE} when '{REFERENCE_ATTRIBUTE}' is given."]})
    reference = body.get(REFERENCE_ATTRIBUTE)
    if reference is None:
        raise _invalid(f"A {LEAD_TYPE} needs '{REFERENCE_ATTRIBUTE}': "
                       '{"id": <queryProductRecommendation id>, "itemId": <recommendationItem id>}',
                       {REFERENCE_ATTRIBUTE: ["Missing data for required field."]})
    if not isinstance(reference, dict):
        raise _invalid(f"'{REFERENCE_ATTRIBUTE}' must be an object",
                       {REFERENCE_ATTRIBUTE: ["Not a valid object."]})
    problems: dict[str, list[str]] = {}
    for key in ("id", "itemId"):
        value = reference.get(key)
        if value is None:
            problems[key] = ["Missing data for required field."]
        elif not isinstance(value, str) or not value:
            # only "": as the document says (minLength 1); a blank id is not found
            problems[key] = ["Not a valid non-empty string."]
    for key in reference:
        if key not in REQUEST_REFERENCE_KEYS:
            problems[key] = ["Unknown field."]
    referred = reference.get("@referredType")
    if referred is not None and referred != RECOMMENDATION_TYPE:
        problems["@referredType"] = [f"Must be {RECOMMENDATION_TYPE}."]
    if problems:
        raise _invalid(f"'{REFERENCE_ATTRIBUTE}' is not a valid reference to a recommended item",
                       {REFERENCE_ATTRIBUTE: problems})
    return reference["id"], reference["itemId"]


def build_recommendation_lead(body: dict, *,
                              get_recommendation: Callable[[str], dict | None],
                              find_customer: Callable[[dict | None], dict | None],
                              schema_location: str) -> RecommendationLead:
    """The lead a RecommendationSalesLead request stands for, or a TMFError:
    400 for a malformed reference or one to a query that has no items yet,
    404 when the recommendation or its item does not exist."""
    recommendation_id, item_id = parse_reference(body)
    recommendation = get_recommendation(recommendation_id)
    if recommendation is None:
        raise TMFError(404, f"No {RECOMMENDATION_TYPE} with id {recommendation_id!r} "
                            f"(recommendation.id): a stored query, or an instant answer "
                            f"within the retention window", code="RECOMMENDATION_NOT_FOUND")
    if recommendation.get("state") != "done":
        raise TMFError(400, f"{RECOMMENDATION_TYPE} {recommendation_id!r} has no items yet "
                            f"(state {recommendation.get('state')}); a lead can reference it "
                            f"once it is done", code="RECOMMENDATION_NOT_DONE")
    item = next((candidate for candidate in recommendation.get("recommendationItem") or []
                 if str(candidate.get("id")) == item_id), None)
    if item is None:
        raise TMFError(404, f"{RECOMMENDATION_TYPE} {recommendation_id!r} has no "
                            f"recommendationItem with id {item_id!r} (recommendation.itemId)",
                       code="RECOMMENDATION_ITEM_NOT_FOUND")
    offering = _ref(item.get("productOffering") or {}, REF_KEYS)
    if not offering.get("id"):
        raise TMFError(400, f"recommendationItem {item_id!r} recommends no productOffering",
                       code="RECOMMENDATION_ITEM_WITHOUT_OFFERING")
    offering.setdefault("@referredType", "ProductOffering")

    lead = {key: value for key, value in body.items()
            if key not in (REFERENCE_ATTRIBUTE, "@type", "@baseType", "@schemaLocation")}
    asked = lead.get("productOffering")
    if asked is not None and not isinstance(asked, dict):
        raise _invalid("productOffering must be an object", {"productOffering": ["Invalid input type."]})
    if asked is not None and asked.get("id") not in (None, offering["id"]):
        raise TMFError(400, f"productOffering {asked.get('id')!r} is not the recommended "
                            f"offering {offering['id']!r} of item {item_id!r}",
                       code="RECOMMENDATION_MISMATCH")
    lead["productOffering"] = offering
    lead.setdefault("name", f"Interest in {offering.get('name') or offering['id']}")
    party = customer_party(recommendation.get("relatedParty"), find_customer)
    if party is not None:
        parties = lead.get("relatedParty", [])
        if isinstance(parties, dict):  # one object for the array, as the schema accepts
            parties = [parties]
        if isinstance(parties, list):  # anything else is the schema's 400
            if not any(isinstance(p, dict) and p.get("id") == party["id"] for p in parties):
                parties = parties + [party]
            lead["relatedParty"] = parties
    channels = recommendation.get("channel") or []
    if "channel" not in lead and channels and isinstance(channels[0], dict):
        lead["channel"] = _ref(channels[0], REF_KEYS)

    reference = {
        "id": recommendation_id,
        "href": recommendation.get("href"),
        "itemId": item_id,
        "itemPriority": item.get("priority"),
        "explanation": item.get("explanation") or {},
        "@referredType": RECOMMENDATION_TYPE,
    }
    extension = {"@type": LEAD_TYPE, "@baseType": BASE_TYPE, "@schemaLocation": schema_location,
                 REFERENCE_ATTRIBUTE: {k: v for k, v in reference.items() if v is not None}}
    return RecommendationLead(lead_id_for(recommendation_id, item_id), lead, extension)


def check_patch(current: dict, patch: dict) -> None:
    """A RecommendationSalesLead stays the lead for the recommended offering:
    its offering and type cannot be patched, and no other lead can take that
    type (the reference itself is read-only for every lead)."""
    if current.get("@type") != LEAD_TYPE:
        if patch.get("@type") == LEAD_TYPE:
            raise TMFError(400, f"A lead becomes a {LEAD_TYPE} only when it is created from a "
                                f"recommended item", code="NOT_PATCHABLE")
        return
    fixed = [name for name in ("productOffering", "@type", "@baseType", "@schemaLocation")
             if name in patch]
    if fixed:
        raise TMFError(400, f"{', '.join(fixed)} of a {LEAD_TYPE} cannot be changed: it is the "
                            f"lead for the recommended offering", code="NOT_PATCHABLE")


def customer_party(party, find_customer) -> dict | None:
    """The query's party as the lead's RelatedParty: the TMF629 customer when
    the service knows it (by customer id or engaged party id), else the party
    as the query named it."""
    if not isinstance(party, dict) or not party.get("id"):
        return None
    customer = find_customer(party)
    if customer is not None:
        return _ref({"id": customer["id"], "href": customer.get("href"),
                     "name": customer.get("name"), "role": "customer",
                     "@referredType": "Customer"}, PARTY_KEYS)
    copied = _ref(party, PARTY_KEYS)
    copied.setdefault("role", "customer")
    copied.setdefault("@referredType", "Party")
    return copied


def _ref(value: dict, keys: tuple[str, ...]) -> dict:
    return {key: value[key] for key in keys if value.get(key) is not None}


def _invalid(message: str, details: dict) -> TMFError:
    return TMFError(400, message, code="INVALID_BODY", details=details)


REFERENCE_DESCRIPTION = (
    f"{LEAD_TYPE} only: the recommended item this lead comes from. Send "
    '{"id": <queryProductRecommendation id>, "itemId": <recommendationItem id>}; the service '
    "checks both and adds href, itemPriority, explanation (ruleIds, ruleSetId, ruleSetVersion, "
    "rulePriority, copied from the item) and @referredType. Read-only after creation.")

LEAD_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": LEAD_TYPE,
    "description": "TMF699 SalesLead made from a TMF680 recommended item: it keeps the "
                   "reference to the item and why the rules recommended it.",
    "allOf": [{"$ref": "TMF699-Sales-v4.0.0.swagger.json#/definitions/SalesLead"}],
    "type": "object",
    "required": [REFERENCE_ATTRIBUTE],
    "properties": {
        REFERENCE_ATTRIBUTE: {
            "type": "object",
            "description": REFERENCE_DESCRIPTION,
            "required": ["id", "itemId"],
            "properties": {
                "id": {"type": "string", "description": "Id of the queryProductRecommendation"},
                "href": {"type": "string", "description": "Its href"},
                "itemId": {"type": "string", "description": "Id of the recommendationItem"},
                "itemPriority": {"type": "integer", "description": "The item's rank (1 = first)"},
                "explanation": {
                    "type": "object",
                    "description": "The item's explanation, as the rules engine gave it",
                    "properties": {
                        "ruleIds": {"type": "array", "items": {"type": "string"}},
                        "ruleSetId": {"type": "string"},
                        "ruleSetVersion": {"type": "string"},
                        "rulePriority": {"type": "integer"},
                        "experimentId": {"type": "string",
                                         "description": "The experiment the answer was given in"},
                        "experimentArm": {"type": "string", "description": "Its arm"},
                    },
                },
                "@referredType": {"type": "string", "enum": [RECOMMENDATION_TYPE]},
            },
        },
    },
}
