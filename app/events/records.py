"""The shapes stored for notifications, and how a change records its event.

Collections (all through the `Store` interface, any backend):

``event`` -- one record per acknowledged change, written by the request::

    {"id": str (uuid), "api": "customerManagement", "collection": "customer",
     "resourceId": str, "recordedAt": float (Unix s),
     "before": str | None, "after": str | None,   # state digests, see below
     "notifications": [{"eventId", "eventTime", "eventType", "event": {...}}]}

``eventDelivery`` -- one entry per notification and hub, written by the
dispatcher when it fans a record out::

    {"id": "<eventId>.<hubId>", "hubId", "callback", "eventId",
     "notification": {...}, "status": "pending" | "delivered" | "failed",
     "createdAt": float, "attempts": int, "nextAttemptAt": float,
     "leaseUntil": float, "leaseOwner": pid, "leaseHost": str,
     "lastError": str | None, "finishedAt": float | None}

Why the event is written *before* the change, inside the resource's lock
-------------------------------------------------------------------------
A change and its event must be all or nothing. On PostgreSQL both rows go in
one transaction. The TinyDB backend keeps each collection in its own file, so
no single write can hold both; instead (and the same code runs on any
backend):

1. the writer takes the resource collection's transaction (its lock),
   computes the new state, then records the event durably -- if that fails
   (disk full, database down) the exception leaves the transaction, nothing
   of the change is written and the client gets a 503;
2. the change is committed when the transaction ends; only then is it
   acknowledged. So an acknowledged change always has its event.

The one gap -- event recorded, then the commit failed or the process died --
would be a notification of a change that never happened. The record holds
digests of the resource before and after the change, and the dispatcher only
fans out a record it has proven committed: it takes the collection's lock (so
no write that recorded an event is still in flight), then a record is real
iff the next record of the same resource starts from its `after` state, or,
for the newest one, the stored resource is in its `after` state. Writes to
one resource are serialised by that lock, so `before` is always the true
prior state and the test is exact. A resource-side marker would have needed
every reader of every collection to skip it; this needs nothing of them.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid

from ..timeutil import isoformat, utcnow

EVENTS = "event"
DELIVERIES = "eventDelivery"
HUBS = "hubs"


def digest(doc: dict | None) -> str | None:
    """SHA-256 of the document's canonical JSON; None for an absent one."""
    if doc is None:
        return None
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def notification(event_type: str, payload_name: str, resource: dict) -> dict:
    """The TMF notification body; its eventId is what listeners dedupe by."""
    return {"eventId": str(uuid.uuid4()), "eventTime": isoformat(utcnow()),
            "eventType": event_type, "event": {payload_name: resource}}


def event_record(api: str, collection: str, resource_id: str, before: dict | None,
                 after: dict | None, notifications: list[dict],
                 trace_headers: dict | None = None) -> dict:
    """`trace_headers`: the W3C traceparent/tracestate of the request that made
    the change, sent with each of its notifications (README, Operating)."""
    return {"id": str(uuid.uuid4()), "api": api, "collection": collection,
            "resourceId": resource_id, "recordedAt": time.time(),
            "before": digest(before), "after": digest(after),
            "notifications": notifications, "traceHeaders": trace_headers or {}}


def committed(records: list[dict], current: dict[tuple[str, str], str | None]) -> list[bool]:
    """Which of `records` (all records of the collections concerned, in the
    order they were written) belong to committed changes; `current` maps
    (collection, resourceId) to the digest of the stored resource, read while
    no write to that collection was in flight."""
    verdicts = [False] * len(records)
    later: dict[tuple[str, str], str | None] = {}
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        key = (record["collection"], record["resourceId"])
        following = later[key] if key in later else current.get(key)
        verdicts[index] = following == record["after"]
        later[key] = record["before"]
    return verdicts
