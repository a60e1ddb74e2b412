"""The recommendationReaction resource: what happened to one recommended
item, as the client that showed it reports it. This service's extension of
TMF680 (under its base path, in the served OpenAPI document), shaped like a
TMF managed entity (id, href, @type; list with filters, retrieve, hub events
CreateEvent through the TMF680 hub).

    POST .../recommendationReaction
    {"reactionType": "clicked",                  # shown | clicked | accepted | rejected
     "recommendation": {"id": "<queryProductRecommendation id>", "itemId": "2"},
     "reactionDate": "2026-12-06T10:00:00Z",     # optional, default now
     "channel": {"id": "web"}}                   # optional, default the query's channel

The service checks the reference (a stored query or a recorded instant
answer: 404 RECOMMENDATION_NOT_FOUND / RECOMMENDATION_ITEM_NOT_FOUND) and adds
the item's productOffering, the query's party (id only) and the item's
explanation. One reaction per (decision, item, reactionType): its id is
derived from the three, so a retried POST answers 200 with the reaction it
already made and counts once."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Callable

from ..errors import TMFError
from ..resources.service import ResourceKind
from ..schemas import SpecSchemas
from ..store import DuplicateId
from ..store.query import Filter, Query
from ..timeutil import isoformat, parse_request_datetime, utcnow
from .ids import decision_time
from .record import parse_time

URL_PREFIX = "/tmf-api/recommendationManagement/v4"
REACTION_TYPE = "RecommendationReaction"
REACTION_TYPES = ("shown", "clicked", "accepted", "rejected")
_IDS = uuid.UUID("9d6f3a52-2b1c-5e47-8a90-3c4d5e6f7a8b")
#: how far a client's clock may be off: a reactionDate up to this much in
#: the future, or before the answer it reacts to, is taken as sent
CLOCK_SKEW = dt.timedelta(minutes=5)

_REFERENCE = {
    "type": "object", "additionalProperties": False, "required": ["id", "itemId"],
    "description": "The recommended item reacted to: the queryProductRecommendation id (a "
                   "stored query or an instant answer) and the recommendationItem id; the "
                   "service adds href, itemPriority, explanation and @referredType.",
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "itemId": {"type": "string", "minLength": 1},
        "href": {"type": "string"},
        "itemPriority": {"type": "integer"},
        "explanation": {"type": "object", "properties": {
            "ruleIds": {"type": "array", "items": {"type": "string"}},
            "ruleSetId": {"type": "string"}, "ruleSetVersion": {"type": "string"},
            "rulePriority": {"type": "integer"},
            "experimentId": {"type": "string"}, "experimentArm": {"type": "string"}}},
        "@referredType": {"type": "string"},
    },
}
_COMMON = {
    "reactionType": {"type": "string", "enum": list(REACTION_TYPES),
                     "description": "shown (an impression), clicked, accepted, rejected"},
    "reactionDate": {"type": "string", "format": "date-time",
                     "description": "When it happened (default: when it was received): not "
                                    "in the future, nor before the answer it reacts to or "
                                    "the decision log's retention window, each give or take "
                                    "5 minutes of clock skew"},
    "channel": {"$ref": "#/definitions/ChannelRef",
                "description": "Where it happened (default: the query's first channel)"},
    "@type": {"type": "string"}, "@baseType": {"type": "string"},
    "@schemaLocation": {"type": "string"},
}
# Its own prefix: the TMF680 definitions it uses (ChannelRef, ...) are built
# again here, and the document names each schema once.
schemas = SpecSchemas(
    "TMF680-Recommendation-v4.0.0.swagger.json", "TMF680Reaction",
    added_definitions={
        "RecommendationReactionRef": _REFERENCE,
        "RecommendationReaction_Create": {
            "type": "object", "required": ["reactionType", "recommendation"],
            "description": f"{REACTION_TYPE} (this service's TMF680 extension): what happened "
                           "to one recommended item.",
            "properties": {**_COMMON, "recommendation": {
                "$ref": "#/definitions/RecommendationReactionRef"}}},
        REACTION_TYPE: {
            "type": "object", "required": ["id", "href", "reactionType", "recommendation"],
            "description": f"{REACTION_TYPE}: what happened to one recommended item.",
            "properties": {
                "id": {"type": "string"}, "href": {"type": "string"}, **_COMMON,
                "recommendation": {"$ref": "#/definitions/RecommendationReactionRef"},
                "productOffering": {"$ref": "#/definitions/ProductOfferingRef"},
                "relatedParty": {"type": "array", "items": {"$ref": "#/definitions/RelatedParty"}},
            }},
    })

KIND = ResourceKind(
    api="recommendationManagement", collection="recommendationReaction",
    type_name=REACTION_TYPE, payload_name="recommendationReaction",
    base_path=f"{URL_PREFIX}/recommendationReaction",
    resource_schema=schemas[REACTION_TYPE], create_schema=schemas["RecommendationReaction_Create"],
    state_attribute=None,
)


def reaction_id(decision_id: str, item_id: str, reaction_type: str) -> str:
    return str(uuid.uuid5(_IDS, f"{decision_id}\n{item_id}\n{reaction_type}"))


def create_reaction(service, body: dict, base_url: str, find_recommendation, *,
                    decided_at: Callable[[str], dt.datetime | None] = lambda _id: None,
                    retention: dt.timedelta | None = None) -> tuple[dict, bool]:
    """(the reaction, True if made now / False if it existed). Raises
    TMFError 400 for a bad body (also a reactionDate out of bounds: see
    :func:`_check_date`; `decided_at(id)` is when the answer was given, None
    when not known; `retention` the decision log's window), 404 for an
    unknown decision or item; nothing is stored then."""
    resource = service.new_resource(body, base_url, stored=False)
    reference = resource["recommendation"]
    decision = find_recommendation(reference["id"])
    if decision is None:
        raise TMFError(404, f"No queryProductRecommendation with id {reference['id']!r} (a "
                            "stored query, or an instant answer within the retention window)",
                       code="RECOMMENDATION_NOT_FOUND")
    item = next((i for i in decision.get("recommendationItem") or []
                 if str(i.get("id")) == reference["itemId"]), None)
    if item is None:
        raise TMFError(404, f"queryProductRecommendation {reference['id']!r} has no "
                            f"recommendationItem {reference['itemId']!r}",
                       code="RECOMMENDATION_ITEM_NOT_FOUND")
    if "reactionDate" in resource:
        _check_date(resource["reactionDate"], _earliest(decided_at(reference["id"]), _evaluated_at(decision)),
                    retention)
    new_id = reaction_id(reference["id"], reference["itemId"], resource["reactionType"])
    stored = service.store.get(KIND.collection, new_id)
    if stored is not None:
        return stored, False
    resource = {"id": new_id, "href": f"{base_url}{KIND.base_path}/{new_id}", **resource}
    resource["recommendation"] = {key: value for key, value in {
        "id": reference["id"], "href": decision.get("href"), "itemId": reference["itemId"],
        "itemPriority": item.get("priority"), "explanation": item.get("explanation"),
        "@referredType": "QueryProductRecommendation"}.items() if value is not None}
    offering = item.get("productOffering") or {}
    resource["productOffering"] = {key: offering[key] for key in
                                   ("id", "href", "name", "@referredType") if key in offering}
    party = decision.get("relatedParty")
    party = party[0] if isinstance(party, list) and party else party
    if isinstance(party, dict) and party.get("id"):
        resource["relatedParty"] = [{"id": str(party["id"]), "role": party.get("role") or "customer",
                                     "@referredType": party.get("@referredType") or "Party"}]
    channels = decision.get("channel") or []
    if "channel" not in resource and channels and isinstance(channels[0], dict) \
            and channels[0].get("id"):
        resource["channel"] = {"id": str(channels[0]["id"])}
    resource.setdefault("reactionDate", isoformat(utcnow()))
    resource["@type"] = resource.get("@type") or REACTION_TYPE
    try:
        return service.insert(resource), True
    except DuplicateId:      # the same reaction, sent twice at once
        return service.get(new_id), False


def answered_at(decision_id: str, recorded: Callable[[str], dict | None]) -> dt.datetime | None:
    """When an answer was given: the time in its id when it is a UUIDv7 (an
    instant answer: its id's time and decidedAt are one clock read), else
    its record's decidedAt (`recorded(id)`: a stored query's answer, found
    on PostgreSQL, and on the embedded store while still buffered), else
    None (then only the other bounds apply)."""
    when = decision_time(decision_id)
    if when is not None:
        return when
    record = recorded(decision_id)
    return parse_time(record["decidedAt"]) if record and record.get("decidedAt") else None


def _evaluated_at(answer: dict) -> dt.datetime | None:
    """The time the answer was evaluated for when its query asked for one
    (`validFor.startDateTime`, TMF680 QueryProductRecommendation): a
    storefront replaying a visit, or a product manager's what-if, reacts
    at that time, before the answer was recorded."""
    valid_for = answer.get("validFor")
    start = valid_for.get("startDateTime") if isinstance(valid_for, dict) else None
    try:
        # the parse the evaluation made of the same text (app/recommend/facts.py)
        return parse_request_datetime(start) if isinstance(start, str) else None
    except ValueError:              # out of range: the evaluation refused it too
        return None


def _earliest(*times: dt.datetime | None) -> dt.datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _check_date(text: str, decided: dt.datetime | None, retention: dt.timedelta | None) -> None:
    """A client's reactionDate must lie between the answer it reacts to
    (when it was given, or the earlier time its query was evaluated for), or
    the start of the retention window, whichever is later, and now, each
    give or take CLOCK_SKEW: a reaction dated in 2099 would outlive the
    retention purge and count in every future funnel; one dated before its
    answer, or before the window, is a wrong clock or a wrong answer id
    (and would be purged at once). 400 INVALID_BODY naming reactionDate."""
    try:
        when = parse_time(text)
    except ValueError:
        return                                  # the schema already refused it
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = utcnow()
    if when > now + CLOCK_SKEW:
        why = f"is in the future (now is {isoformat(now)})"
    elif decided is not None and when < decided - CLOCK_SKEW:
        why = f"is before the answer it reacts to ({isoformat(decided)})"
    elif retention is not None and when < now - retention:
        why = (f"is before the retention window of the decision log (since "
               f"{isoformat(now - retention)})")
    else:
        return
    message = f"reactionDate {text!r} {why}; give the time the reaction happened"
    raise TMFError(400, message, code="INVALID_BODY", details={"reactionDate": [message]})


def purge_reactions(store, before, batch: int = 1000) -> int:
    """Delete the reactions whose reactionDate is before `before` (an aware
    datetime): they name a party and what it did, so they go with the
    answers after the retention window (no DeleteEvent: an expiry, not a
    client's deletion). In batches of `batch`; how many were deleted."""

    query = Query(filters=(Filter(("reactionDate",), "lt", (before,), "datetime"),),
                  limit=batch)
    removed = 0
    while True:
        found, _total = store.query(KIND.collection, query)
        if not found:
            return removed
        with store.transaction(KIND.collection) as txn:
            removed += txn.delete_batch([doc["id"] for doc in found])
        if len(found) < batch:
            return removed
