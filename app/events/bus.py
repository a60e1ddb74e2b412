"""Durable notification delivery.

Events go to an outbox in the store before the API call returns, so a crash
cannot lose an acknowledged change's notification; a background poller in
each worker process claims due entries with a lease and posts them. Delivery
is at least once: listeners drop repeats by `eventId`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

from ..background import Poller
from ..errors import TMFError
from ..resources.query import Condition
from ..store import Filter, Query
from ..timeutil import isoformat, utcnow
from .allowlist import CallbackPolicy, CallbackRejected

log = logging.getLogger(__name__)

HUBS = "hubs"
OUTBOX = "outbox"


def parse_hub_query(query: str | None) -> list[Condition]:
    """A hub's `query` is a TMF filter over the notification, e.g.
    `eventType=CustomerCreateEvent&event.customer.status=active`."""
    if not query:
        return []
    conditions = []
    for key, value in parse_qsl(query.lstrip("?"), keep_blank_values=True, strict_parsing=True):
        path = key.split(".")
        operator = "eq"
        if len(path) > 1 and path[-1] in ("gt", "gte", "lt", "lte", "eq", "ne"):
            operator = path.pop()
        conditions.append(Condition(path, operator, value.split(",")))
    return conditions


class EventBus:
    def __init__(self, store, settings):
        self.store = store
        self.settings = settings
        self.policy = CallbackPolicy(settings.callback_allowed_hosts)
        self.session = requests.Session()
        self.session.trust_env = False  # never route callbacks through an env proxy
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._busy: set[str] = set()        # hubs with a delivery in flight (this process)
        self._busy_lock = threading.Lock()
        self.poller = Poller("event-delivery", self.deliver_due, interval=1.0)

    # -- hubs -------------------------------------------------------------
    def register_hub(self, api: str, callback, query) -> dict:
        if not isinstance(callback, str) or not callback:
            raise TMFError(400, "callback is mandatory and must be a URL string")
        if query is not None and not isinstance(query, str):
            raise TMFError(400, "query must be a string")
        try:
            self.policy.check(callback)
        except CallbackRejected as exc:
            raise TMFError(400, str(exc), code="CALLBACK_NOT_ALLOWED") from None
        try:
            parse_hub_query(query)
        except ValueError as exc:
            raise TMFError(400, f"query is not a valid filter: {exc}") from None
        hub = {"id": str(uuid.uuid4()), "callback": callback, "query": query, "api": api}
        self.store.insert(HUBS, hub)
        return self.public_hub(hub)

    def get_hub(self, api: str, hub_id: str) -> dict | None:
        hub = self.store.get(HUBS, hub_id)
        return self.public_hub(hub) if hub and hub.get("api") == api else None

    def unregister_hub(self, api: str, hub_id: str) -> bool:
        hub = self.store.get(HUBS, hub_id)
        if not hub or hub.get("api") != api:
            return False
        return self.store.delete(HUBS, hub_id) is not None

    @staticmethod
    def public_hub(hub: dict) -> dict:
        return {"id": hub["id"], "callback": hub["callback"], "query": hub.get("query")}

    # -- publishing -------------------------------------------------------
    def publish(self, api: str, event_type: str, payload_name: str, resource: dict,
                outbox=None) -> dict:
        """Queue one notification per interested hub.

        With ``outbox`` (the OUTBOX Txn of the store transaction that writes
        the change) the entries are part of that transaction: the change and
        its notifications are stored together or not at all, and a failure
        fails the change. Without it, a failure is logged and swallowed."""
        event = {
            "eventId": str(uuid.uuid4()),
            "eventTime": isoformat(utcnow()),
            "eventType": event_type,
            "event": {payload_name: resource},
        }
        insert = outbox.insert if outbox is not None else \
            (lambda entry: self.store.insert(OUTBOX, entry))
        try:
            queued = 0
            for hub in self.store.find_by(HUBS, ("api",), [api]):
                if not self._wants(hub, event):
                    continue
                insert({
                    "id": str(uuid.uuid4()), "hubId": hub["id"], "callback": hub["callback"],
                    "notification": event, "attempts": 0, "nextAttemptAt": 0.0,
                    "leaseUntil": 0.0, "status": "pending", "lastError": None,
                })
                queued += 1
            if queued:
                self.poller.wake()
        except Exception:
            if outbox is not None:
                raise
            log.exception("could not queue %s", event_type)
        return event

    @staticmethod
    def _wants(hub: dict, event: dict) -> bool:
        try:
            return all(condition.matches(event) for condition in parse_hub_query(hub.get("query")))
        except ValueError:
            return False

    # -- delivery ---------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="deliver")
            self._pool_pid = os.getpid()
            self._busy = set()
        return self._pool

    def _take(self, hub_id: str) -> bool:
        """One delivery per hub at a time in this process: a listener that
        hangs holds one delivery thread, not all of them, so the other
        hubs' notifications keep flowing (and a hub's arrive in order)."""
        with self._busy_lock:
            if hub_id in self._busy:
                return False
            self._busy.add(hub_id)
            return True

    def _release(self, hub_id: str) -> None:
        with self._busy_lock:
            self._busy.discard(hub_id)

    def deliver_due(self) -> None:
        now = time.time()
        lease = now + self.settings.event_timeout_seconds + 30
        taken: list[str] = []

        def claim(entry: dict) -> dict | None:
            if entry["leaseUntil"] > now and not lease_holder_gone(entry):
                return None
            if not self._take(entry["hubId"]):
                return None
            try:
                claimed_entry = _claim(now, lease)(entry)
            except _AlreadyClaimed:
                self._release(entry["hubId"])
                return None
            taken.append(entry["hubId"])
            return claimed_entry

        # The store takes each entry for one worker only (PostgreSQL: FOR
        # UPDATE SKIP LOCKED), whatever the number of workers and hosts.
        try:
            claimed = self.store.claim(OUTBOX, [
                Filter(("status",), "eq", ("pending",)),
                Filter(("nextAttemptAt",), "lte", (now,), "number")], claim, limit=100)
        except BaseException:
            for hub_id in taken:
                self._release(hub_id)
            raise
        executor = self._executor()
        for entry in claimed:
            executor.submit(self._deliver_and_release, entry)

    def _deliver_and_release(self, entry: dict) -> None:
        try:
            self._deliver(entry)
        finally:
            self._release(entry["hubId"])
            self.poller.wake()          # the hub's next notification, without waiting a tick

    def _deliver(self, entry: dict) -> None:
        error = None
        try:
            if self.store.get(HUBS, entry["hubId"]) is None:
                self.store.delete(OUTBOX, entry["id"])
                return
            address = self.policy.check(entry["callback"])
            session = pinned_session(address) if address else self.session
            try:
                response = session.post(
                    entry["callback"], json=entry["notification"], allow_redirects=False,
                    timeout=(2.0, self.settings.event_timeout_seconds))
            finally:
                if session is not self.session:
                    session.close()
            if 200 <= response.status_code < 300:
                self.store.delete(OUTBOX, entry["id"])
                return
            error = f"listener answered {response.status_code}"
        except CallbackRejected as exc:
            error = f"callback no longer allowed: {exc}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # keep the entry, whatever happened
            log.exception("delivery failed")
            error = f"{type(exc).__name__}"
        self.store.update(OUTBOX, entry["id"], self._after_failure(error))

    def _after_failure(self, error: str):
        settings = self.settings

        def change(entry: dict) -> dict:
            entry["attempts"] += 1
            entry["lastError"] = error
            entry["leaseUntil"] = 0.0
            if entry["attempts"] >= settings.event_max_attempts:
                entry["status"] = "failed"
            else:
                delay = min(settings.event_backoff_seconds * 2 ** (entry["attempts"] - 1),
                            settings.event_backoff_max_seconds)
                entry["nextAttemptAt"] = time.time() + delay
            return entry
        return change

    def outbox_status(self) -> dict:
        def count(status: str) -> int:  # a count, not the outbox read into memory
            return self.store.query(OUTBOX, Query((Filter(("status",), "eq", (status,)),),
                                                  limit=0))[1]
        return {"pending": count("pending"), "failed": count("failed")}

    def start(self) -> None:
        self.poller.ensure_started()

    def stop(self) -> None:
        self.poller.stop()


class _AlreadyClaimed(Exception):
    pass


def pinned_session(address: str) -> requests.Session:
    """A session whose connections go to `address` whatever the URL's host
    resolves to by then; the Host header and TLS (SNI, certificate check)
    still use the URL's host name."""
    session = requests.Session()
    session.trust_env = False
    adapter = _PinnedAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _pinned(connection_class, address: str):
    class Pinned(connection_class):
        def _new_conn(self):
            host = self._dns_host
            self._dns_host = address
            try:
                return super()._new_conn()
            finally:
                self._dns_host = host
    return Pinned


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http = type("PinnedHTTPPool", (HTTPConnectionPool,), {
            "ConnectionCls": _pinned(HTTPConnectionPool.ConnectionCls, self.address)})
        https = type("PinnedHTTPSPool", (HTTPSConnectionPool,), {
            "ConnectionCls": _pinned(HTTPSConnectionPool.ConnectionCls, self.address)})
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}


HOST = socket.gethostname()


def lease_holder_gone(entry: dict) -> bool:
    """True when the process that leased the entry is known to be dead: it
    ran on this host and its pid no longer exists (or is a zombie). A
    service killed mid-delivery then redelivers as soon as it is back,
    instead of waiting out the lease; when in doubt the lease holds."""
    pid = entry.get("leaseOwner")
    if entry.get("leaseHost") != HOST or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _claim(now: float, lease: float):
    """Take the entry only if no other live worker process holds a lease on
    it; raising makes the store write nothing."""
    def change(entry: dict) -> dict:
        if entry.get("status") != "pending" or entry["nextAttemptAt"] > now \
                or (entry["leaseUntil"] > now and not lease_holder_gone(entry)):
            raise _AlreadyClaimed()
        entry["leaseUntil"] = lease
        entry["leaseOwner"] = os.getpid()
        entry["leaseHost"] = HOST
        return entry
    return change
