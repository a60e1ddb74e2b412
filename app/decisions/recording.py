"""Recording one answer: the id and href it gets and the record queued."""
from __future__ import annotations

from ..rules.model.facts import characteristics, normalise_value
from ..timeutil import utcnow
from .ids import new_decision_id
from .record import decision_record


def segment_of(context) -> str | None:
    """The customer's `segment` characteristic as the rules compare it."""
    customer = getattr(context, "customer", None)
    if customer is None:
        return None
    return normalise_value(characteristics(customer).get("segment")) or None


def record_decision(decisions, decision_id: str, query: dict, result, context,
                    mode: str = "async") -> None:
    """Queue the record of an answer that already has its id (a stored query)."""
    decisions.record(decision_record(decision_id, utcnow(), query, result, mode=mode,
                                     segment=segment_of(context)))


def record_answer(decisions, resource: dict, result, context, base_path: str,
                  base_url: str, mode: str = "instant") -> dict:
    """`resource` with a new decision id and href first (an instant answer
    then has them like a stored query), its record queued in `decisions`."""
    now = utcnow()
    decision_id = new_decision_id(now.timestamp())
    answered = {"id": decision_id, "href": f"{base_url}{base_path}/{decision_id}", **resource}
    decisions.record(decision_record(decision_id, now, resource, result, mode=mode,
                                     segment=segment_of(context)))
    return answered
