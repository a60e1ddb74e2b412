"""What one decision record holds, and the TMF680 answer rebuilt from it.

A record (a plain JSON object, the same on both stores)::

    {"id": "<UUIDv7>", "decidedAt": "2026-12-06T10:00:00.123Z",
     "mode": "instant" | "async",
     "partyId": "c-1" | null, "channelId": "web" | null, "segment": "gold" | null,
     "query": {...},            # the validated TMF680 create body: what a replay needs
     "items": [{"id": "1", "priority": 1, "offeringId": "7301", "name": "...",
                "ruleIds": ["R1"], "rulePriority": 10}],
     "ruleSetId": "telco-demo", "ruleSetVersion": "3", "ruleSetHash": "sha256:...",
     "experimentId": "checkout-upsell" | null,   # the experiment that chose the version
     "experimentArm": "challenger" | null}       # and its arm (app/experiments)

The query keeps ids, not names: `relatedParty.name` is dropped before it is
recorded (GDPR data minimisation; the rules read the customer by id). A
replay builds the context again from the query and the customer and
inventory the store holds then (as `flask rules diff` does for stored
queries)."""
from __future__ import annotations

import copy
import datetime as dt

from ..recommend.items import tmf_items
from ..rules.engine.policies import Recommendation, RecommendedItem
from ..timeutil import isoformat

SERVER_SET = ("id", "href", "state", "recommendationItem")


def _first_id(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict) and value.get("id") is not None:
        return str(value["id"])
    return None


_ATOMS = (str, int, float, bool, type(None))


def _json_copy(value):
    """A copy of a JSON document (dicts, lists, text, numbers, bools, None)
    that shares nothing mutable with it; anything else goes to
    copy.deepcopy. deepcopy's memo and dispatch made it most of the cost of
    recording an instant answer (bench/request_hooks_bench.py, "decision")."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _ATOMS else _json_copy(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _ATOMS else _json_copy(item) for item in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def _without_names(query: dict) -> dict:
    query = _json_copy(query)
    party = query.get("relatedParty")
    for ref in party if isinstance(party, list) else [party]:
        if isinstance(ref, dict):
            ref.pop("name", None)
    return query


def decision_record(decision_id: str, decided_at: dt.datetime, resource: dict,
                    result: Recommendation, *, mode: str = "instant",
                    segment: str | None = None) -> dict:
    """The record of one answer: `resource` is the TMF680 query as validated
    (no id, href, state or items needed), `result` the engine's answer."""
    query = {key: value for key, value in resource.items() if key not in SERVER_SET}
    return {
        "id": decision_id,
        "decidedAt": isoformat(decided_at),
        "mode": mode,
        "partyId": _first_id(resource.get("relatedParty")),
        "channelId": _first_id(resource.get("channel")),
        "segment": segment,
        "query": _without_names(query),
        "items": [{"id": str(item.priority), "priority": item.priority,
                   "offeringId": item.offering_id, "name": item.name,
                   "ruleIds": list(item.rule_ids), "rulePriority": item.rule_priority}
                  for item in result.items],
        "ruleSetId": result.ruleset_id,
        "ruleSetVersion": result.ruleset_version,
        "ruleSetHash": result.ruleset_hash or "",
        "experimentId": (result.experiment or {}).get("id"),
        "experimentArm": (result.experiment or {}).get("arm"),
    }


def answer_of(record: dict, href: str, base_url: str) -> dict:
    """The QueryProductRecommendation a recorded decision answered, as the
    POST returned it (less relatedParty.name): id, href, the query, state
    done and the ranked recommendationItem list with explanations."""
    result = Recommendation(
        items=[RecommendedItem(offering_id=item["offeringId"], name=item.get("name", ""),
                               priority=item["priority"], rule_priority=item.get("rulePriority", 0),
                               rule_ids=list(item.get("ruleIds") or []), kinds=[])
               for item in record.get("items") or []],
        ruleset_id=record.get("ruleSetId") or "", ruleset_version=record.get("ruleSetVersion") or "",
        ruleset_hash=record.get("ruleSetHash") or "",
        experiment=({"id": record["experimentId"], "arm": record.get("experimentArm")}
                    if record.get("experimentId") else None))
    answer = {"id": record["id"], "href": href, **copy.deepcopy(record.get("query") or {}),
              "state": "done", "recommendationItem": tmf_items(result, base_url)}
    if result.experiment:
        answer["experiment"] = dict(result.experiment)
    return answer


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
