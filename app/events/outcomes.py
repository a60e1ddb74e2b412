"""What the outcomes of a hub's batch do to its queue: its position moves
past what was delivered (or given up after `event_max_attempts`, kept as a
``failed`` entry for its retention), or the retry is scheduled with
exponential backoff (`event_backoff_seconds` doubled per attempt, at most
`event_backoff_max_seconds`); `event_circuit_failures` consecutive failed
attempts open the hub's circuit for `event_circuit_open_seconds`.

An outcome (sender.py) is None (the listener answered 2xx), why it failed
(a str), or NOT_SENT (the batch stopped before it)."""
from __future__ import annotations

from ..observability.metrics import count_delivery
from .eventlog import Item, after
from .lease import released

#: the outcome of a notification the batch never tried (it stopped before)
NOT_SENT = object()


def settle(entries, hub: dict, claimed: dict, outcomes, now: float, settings) -> dict:
    """The queue document `hub` (as stored now) once `outcomes` ((Item,
    outcome) in order, of the batch `claimed`) are recorded, its lease
    released; finished entries go to `entries` (a Txn of DELIVERIES)."""
    position, skip = hub["position"], hub.get("skip", 0)
    attempts, failures = hub.get("attempts", 0), hub.get("consecutiveFailures", 0)
    # the batch ran up to its first failure: what follows was not sent
    unsettled = any(outcome is NOT_SENT for _item, outcome in outcomes)
    next_attempt = 0.0
    for item, outcome in outcomes:
        if outcome is NOT_SENT:
            break
        attempts += 1
        if outcome is None:
            failures = 0
            if settings.event_delivered_retention_seconds > 0:
                keep_entry(entries, hub, item, "delivered", attempts, None, now)
            attempts = 0
            position, skip = after(item)
            continue
        failures += 1
        hub["lastError"] = outcome
        if attempts >= settings.event_max_attempts:
            count_delivery("gave_up")
            keep_entry(entries, hub, item, "failed", attempts, outcome, now)
            attempts = 0
            position, skip = after(item)
        else:
            next_attempt = now + min(settings.event_backoff_seconds * 2 ** (attempts - 1),
                                     settings.event_backoff_max_seconds)
            unsettled = True
        break                                  # the batch stopped here
    if not unsettled:
        position, skip = claimed["claimedThrough"], 0
    opened = now + settings.event_circuit_open_seconds \
        if failures >= settings.event_circuit_failures else 0.0
    return released({**hub, "position": position, "skip": skip, "attempts": attempts,
                     "nextAttemptAt": next_attempt, "consecutiveFailures": failures,
                     "circuitOpenUntil": opened})


def keep_entry(entries, hub: dict, item: Item, status: str, attempts: int,
               error: str | None, now: float) -> None:
    """The finished entry of `item` for `hub` (``delivered`` or ``failed``),
    kept for its retention (counted by /health, status.py)."""
    entry_id = f"{item.notification['eventId']}.{hub['id']}"
    if entries.get(entry_id) is not None:      # an earlier delivery, then a crash
        entries.delete(entry_id)
    entries.insert({"id": entry_id, "hubId": hub["id"],
                    "eventId": item.notification["eventId"],
                    "notification": item.notification if status == "failed" else None,
                    "status": status, "attempts": attempts, "lastError": error,
                    "createdAt": now, "finishedAt": now})
