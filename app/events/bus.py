"""Hub registrations, recording a change's notifications, and what /health
says about delivery (TMF630 REST guidelines, "Notifications": `POST /hub`).

What a listener can rely on (docs/events.md): at-least-once delivery
with an `eventId` that stays the same on every retry; a hub's notifications in
the order the changes were recorded; an attempt ends `event_timeout_seconds`
after it started (connect, send and answer together) and reads at most
`event_max_response_bytes` of the answer; a 2xx status is success."""
from __future__ import annotations

import logging
import os
import threading
import uuid

from ..errors import TMFError
from ..store import StoreUnavailable
from ..timeutil import isoformat, utcnow
from .allowlist import CallbackPolicy, CallbackRejected
from .process import WAKE_ENV, send_wake
from .dispatcher import Dispatcher
from .eventlog import ensure_head, move_records
from .queues import new_queue
from .status import delivery_status
from .hubquery import InvalidHubQuery, parse_hub_query
from .records import DELIVERIES, EVENTS, HUBS, LOG, QUEUES, event_record, notification

log = logging.getLogger(__name__)


class EventBus:
    #: the collection a change's event record is written to, in the change's
    #: own transaction (record(..., into=txns[bus.COLLECTION]))
    COLLECTION = EVENTS

    def __init__(self, store, settings, trace_headers=dict):
        """`trace_headers()`: the W3C trace context headers ({"traceparent",
        "tracestate"} or {}) of the change being recorded, kept with its
        notifications so that their delivery continues the trace; the app
        factory passes the request's (app.observability.requests), so this
        package reads no request state itself."""
        self.store = store
        self.settings = settings
        self.trace_headers = trace_headers
        self.policy = CallbackPolicy(settings.callback_allowed_hosts)
        self.dispatcher = Dispatcher(store, settings, self.policy)
        self._hub_lock = threading.Lock()
        self._last_record_error: str | None = None     # with its time, for /health

    # -- hubs -------------------------------------------------------------
    def register_hub(self, api: str, callback, query) -> dict:
        """400 for a callback outside the allowed hosts or a query that cannot
        be evaluated; 409 when the API already has `max_hubs_per_api` hubs."""
        if not isinstance(callback, str) or not callback:
            raise TMFError(400, "callback is mandatory and must be a URL string",
                           code="INVALID_BODY")
        if query is not None and not isinstance(query, str):
            raise TMFError(400, "query must be a string", code="INVALID_BODY")
        try:
            self.policy.check(callback)
        except CallbackRejected as exc:
            raise TMFError(400, str(exc), code="CALLBACK_NOT_ALLOWED") from None
        try:
            parse_hub_query(query)
        except InvalidHubQuery as exc:
            raise TMFError(400, f"query is not a valid filter: {exc}",
                           code="INVALID_HUB_QUERY") from None
        hub = {"id": str(uuid.uuid4()), "callback": callback, "query": query, "api": api}
        limit = self.settings.max_hubs_per_api
        ensure_head(self.store)         # so the transaction below locks it
        # the hub and its queue together; the changes recorded so far are
        # numbered into the log first and the queue starts after them: a hub
        # gets the changes acknowledged after its registration, not before.
        # Numbering locks the head first, so registrations on every worker
        # and host count the hubs one after the other: two at once cannot
        # both pass the limit (a 409 is rolled back with the numbering).
        with self._hub_lock, self.store.transactions(EVENTS, HUBS, LOG, QUEUES) as tx:
            last, _moved = move_records(tx[EVENTS], tx[LOG])
            if sum(1 for h in tx[HUBS].all() if h.get("api") == api) >= limit:
                raise TMFError(409, f"this API already has {limit} "
                                    f"hub{'' if limit == 1 else 's'}, the most allowed "
                                    "(RECO_MAX_HUBS_PER_API); delete one first",
                               code="TOO_MANY_HUBS")
            tx[HUBS].insert(hub)
            tx[QUEUES].insert(new_queue(hub, last))
        return self.public_hub(hub)

    def get_hub(self, api: str, hub_id: str) -> dict | None:
        hub = self.store.get(HUBS, hub_id)
        return self.public_hub(hub) if hub and hub.get("api") == api else None

    def unregister_hub(self, api: str, hub_id: str) -> bool:
        """Deletes the hub, its queue (what was not yet delivered to it) and
        the finished entries kept for it."""
        hub = self.store.get(HUBS, hub_id)
        if not hub or hub.get("api") != api:
            return False
        with self.store.transactions(HUBS, QUEUES) as tx:
            if tx[HUBS].delete(hub_id) is None:
                return False
            tx[QUEUES].delete(hub_id)
        doomed = [e["id"] for e in self.store.find(DELIVERIES, lambda e: e["hubId"] == hub_id)]
        if doomed:
            with self.store.transaction(DELIVERIES) as tx:
                for entry_id in doomed:
                    tx.delete(entry_id)
        return True

    @staticmethod
    def public_hub(hub: dict) -> dict:
        return {"id": hub["id"], "callback": hub["callback"], "query": hub.get("query")}

    # -- recording --------------------------------------------------------
    def record(self, api: str, collection: str, resource_id: str,
               events: list[tuple[str, str, dict]], into) -> None:
        """Stage one change's notifications, `events` being (eventType,
        payload name, resource) triples, in `into`: the EVENTS Txn of the
        store transaction that writes the change (`store.transactions(
        collection, EVENTS)`), so the change and its event record are stored
        together or not at all (PostgreSQL: one SQL transaction; TinyDB: the
        journal). Raises StoreUnavailable (503 STORE_UNAVAILABLE) when storage
        is full, read-only or unreachable, like any other write that meets it
        (a client may retry it), and TMFError 503 EVENT_NOT_RECORDED when the record
        cannot be staged for another reason; not_recorded() does the same for
        a commit that fails on the event collection. Call wake() after the
        commit."""
        notes = [notification(event_type, name, resource) for event_type, name, resource in events]
        try:
            into.insert(event_record(api, collection, resource_id, notes,
                                     self.trace_headers()))
        except Exception as exc:
            raise self.not_recorded(collection, resource_id, exc) from None

    def not_recorded(self, collection: str, resource_id: str, exc: BaseException) -> Exception:
        """What to raise for a change refused because its event could not be
        written (noted for /health's lastRecordError): `exc` itself when it is
        StoreUnavailable (503 STORE_UNAVAILABLE: one answer for a full disk,
        whichever write hit it), else TMFError 503 EVENT_NOT_RECORDED."""
        error = f"{type(exc).__name__}: {exc}"[:300]
        self._last_record_error = f"{isoformat(utcnow())} {error}"
        log.error("event of %s %s not recorded, change refused: %s",
                  collection, resource_id, error)
        if isinstance(exc, StoreUnavailable):
            return exc
        return TMFError(503, "The change was not made: its notification could not be "
                             "recorded (storage unavailable). Retry later.",
                        code="EVENT_NOT_RECORDED")

    def wake(self) -> None:
        """A change with its event committed: sequence it without waiting a
        tick (the dispatcher process, when there is one, gets a datagram)."""
        path = os.environ.get(WAKE_ENV)
        if path:
            send_wake(path)
        else:
            self.dispatcher.wake()

    def recordable(self) -> tuple[bool, str | None]:
        """Whether an event can be recorded now: a write to the event
        collection that leaves it unchanged (TinyDB rewrites its file, so a
        full disk shows; PostgreSQL needs its connection)."""
        try:
            probe = f"probe-{uuid.uuid4()}"
            with self.store.transaction(EVENTS) as tx:
                tx.insert({"id": probe, "probe": True})
                tx.delete(probe)
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return False, f"{type(exc).__name__}: {exc}"[:300]
        return True, None

    # -- status -----------------------------------------------------------
    def backlog(self) -> dict:
        """What waits, what failed and whether delivery is stalled, read
        without writing in O(hubs) (for /health and /metrics): see
        status.delivery_status."""
        return delivery_status(self.store, self.settings)

    def status(self) -> dict:
        """For /health: backlog() plus `recordable` with `recordError` (why
        not), and `lastRecordError` (time and reason of this process's last
        refused change, None when none)."""
        ok, error = self.recordable()
        return {**self.backlog(), "recordable": ok, "recordError": error,
                "lastRecordError": self._last_record_error}

    # -- background -------------------------------------------------------
    def start(self) -> None:
        """The dispatcher in this process, unless a dispatcher process serves
        this one (gunicorn.conf.py, app/events/process.py)."""
        if not os.environ.get(WAKE_ENV):
            self.dispatcher.start()

    def stop(self) -> None:
        self.dispatcher.stop()
