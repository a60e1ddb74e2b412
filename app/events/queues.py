"""A hub's queue document (``eventQueue``): its position in the log and its
delivery state (attempts, retry time, lease, circuit). One document per hub,
created in the transaction that creates the hub (bus.py), or afterwards for
a hub stored without one (ensure_queues)."""
from __future__ import annotations

from .eventlog import ensure_head, log_head
from .records import HUBS, LOG, QUEUES


def new_queue(hub: dict, position: int) -> dict:
    """The queue document of a hub that starts after log record `position`."""
    return {"id": hub["id"], "api": hub.get("api"), "callback": hub.get("callback"),
            "query": hub.get("query"), "position": position, "skip": 0, "attempts": 0,
            "nextAttemptAt": 0.0, "leaseId": None, "leaseUntil": 0.0, "leaseOwner": None,
            "leaseHost": None,
            "claimedThrough": position, "consecutiveFailures": 0, "circuitOpenUntil": 0.0,
            "lastError": None}


def ensure_queues(store) -> int:
    """A queue for every hub without one (hubs stored by an earlier
    version, or restored): it starts after the last sequenced record,
    so it gets every change not yet sequenced. Returns how many. Two
    dispatchers at once (two hosts) wait for each other on the log's head,
    so the second finds the first's queues and does not insert them again."""
    hubs = store.all(HUBS)
    known = {q["id"] for q in store.all(QUEUES)}
    missing = [hub for hub in hubs if hub["id"] not in known]
    if not missing:
        return 0
    ensure_head(store)
    made = 0
    with store.transactions(LOG, QUEUES) as tx:
        position = log_head(tx[LOG])
        for hub in missing:
            if tx[QUEUES].get(hub["id"]) is None:
                tx[QUEUES].insert(new_queue(hub, position))
                made += 1
    return made
