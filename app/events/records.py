"""The shapes stored for notifications, and how a change records its event.

Collections (all through the `Store` interface, any backend):

``event`` -- one record per acknowledged change, written by the request::

    {"id": str (uuid), "api": "customerManagement", "collection": "customer",
     "resourceId": str, "recordedAt": float (Unix s),
     "notifications": [{"eventId", "eventTime", "eventType", "event": {...}}]}

``eventLog`` -- the same records in the order every hub receives them,
moved there by the dispatcher (records sequenced, see dispatcher.py), each
with ``"seq": int`` (1, 2, ...) and ``"before": {tally_key: int}`` (the
notifications of the log before it, per API); plus one document ``{"id":
"head", "last": int, "tally": {tally_key: int}}``, the last seq given and
the notifications through it. /health reads a hub's pending count from two
tallies instead of the records (status.py). A record is kept until every hub of the
store has passed it, so a notification body is stored once, whatever the
hubs. Legacy notifications adopted on an upgrade carry ``"hubId"``: they
are for that hub only.

``eventQueue`` -- one document per hub (id = hub id), the hub's position in
the log and its delivery state::

    {"id": hubId, "api", "callback", "query", "position": int (every record
     with seq <= position is settled for this hub), "skip": int
     (notifications of record position + 1 already settled), "attempts":
     int (failed attempts of the next notification), "nextAttemptAt": float,
     "leaseUntil": float, "leaseOwner": pid, "leaseHost": str,
     "claimedThrough": int, "consecutiveFailures": int,
     "circuitOpenUntil": float, "lastError": str | None,
     "leaseId": str | None (lease.py)}

So the delivery state is O(hubs), not O(notifications x hubs).

``eventDelivery`` -- what is kept of finished notifications for their
retention: one entry per notification given up (``failed``, with its body)
and, when ``event_delivered_retention_seconds`` > 0, per notification
delivered (``delivered``, without)::

    {"id": "<eventId>.<hubId>", "hubId", "eventId", "notification": {...} | None,
     "status": "delivered" | "failed", "attempts": int, "lastError": str | None,
     "createdAt": float, "finishedAt": float}

``eventDispatcher`` -- one document per running dispatcher, its heartbeat
(status.py): ``{"id": "<host>:<pid>", "host", "pid", "beatAt": float,
"leases": int}``.

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
did not commit has none: the dispatcher sequences every record it reads.
"""
from __future__ import annotations

import time
import uuid

from ..timeutil import isoformat, utcnow

EVENTS = "event"
DELIVERIES = "eventDelivery"
LOG = "eventLog"
QUEUES = "eventQueue"
LOG_HEAD = "head"
HUBS = "hubs"
DISPATCHERS = "eventDispatcher"


def tally_key(record: dict) -> str:
    """What a log record's notifications are counted under in the log's
    tallies: its API, or ``hub:<id>`` for a record for one hub alone."""
    return f"hub:{record['hubId']}" if record.get("hubId") else str(record.get("api"))


def notification(event_type: str, payload_name: str, resource: dict) -> dict:
    """The TMF notification body; its eventId is what listeners dedupe by."""
    return {"eventId": str(uuid.uuid4()), "eventTime": isoformat(utcnow()),
            "eventType": event_type, "event": {payload_name: resource}}


def event_record(api: str, collection: str, resource_id: str, notifications: list[dict],
                 trace_headers: dict | None = None) -> dict:
    """`trace_headers`: the W3C traceparent/tracestate of the request that made
    the change, sent with each of its notifications (docs/operations.md, "Logs")."""
    return {"id": str(uuid.uuid4()), "api": api, "collection": collection,
            "resourceId": resource_id, "recordedAt": time.time(),
            "notifications": notifications, "traceHeaders": trace_headers or {}}

