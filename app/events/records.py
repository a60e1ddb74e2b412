"""The shapes stored for notifications, and how a change records its event.

Collections (all through the `Store` interface, any backend):

``event`` -- one record per acknowledged change, written by the request::

    {"id": str (uuid), "api": "customerManagement", "collection": "customer",
     "resourceId": str, "recordedAt": float (Unix s),
     "notifications": [{"eventId", "eventTime", "eventType", "event": {...}}]}

``eventDelivery`` -- one entry per notification and hub, written by the
dispatcher when it fans a record out::

    {"id": "<eventId>.<hubId>", "hubId", "callback", "eventId",
     "notification": {...}, "status": "pending" | "delivered" | "failed",
     "createdAt": float, "attempts": int, "nextAttemptAt": float,
     "leaseUntil": float, "leaseOwner": pid, "leaseHost": str,
     "lastError": str | None, "finishedAt": float | None}

A change and its event record: one transaction
---------------------------------------------
A change and its event must be all or nothing. ResourceService._write opens
one store transaction over the resource's collection and ``event``
(``store.transactions(collection, EVENTS)``), stages the change, then the
record (EventBus.record(..., into=txns[EVENTS])). PostgreSQL commits both
rows in one SQL transaction; TinyDB, which keeps each collection in its own
file, writes both new files, then a journal naming them, then renames them
(a crash after the journal is rolled forward when the store is next
opened). So an acknowledged change always has its event, and a change that
did not commit has none: the dispatcher fans out every record it reads.
"""
from __future__ import annotations

import time
import uuid

from ..timeutil import isoformat, utcnow

EVENTS = "event"
DELIVERIES = "eventDelivery"
HUBS = "hubs"


def notification(event_type: str, payload_name: str, resource: dict) -> dict:
    """The TMF notification body; its eventId is what listeners dedupe by."""
    return {"eventId": str(uuid.uuid4()), "eventTime": isoformat(utcnow()),
            "eventType": event_type, "event": {payload_name: resource}}


def event_record(api: str, collection: str, resource_id: str, notifications: list[dict],
                 trace_headers: dict | None = None) -> dict:
    """`trace_headers`: the W3C traceparent/tracestate of the request that made
    the change, sent with each of its notifications (README, Operating)."""
    return {"id": str(uuid.uuid4()), "api": api, "collection": collection,
            "resourceId": resource_id, "recordedAt": time.time(),
            "notifications": notifications, "traceHeaders": trace_headers or {}}

