"""The background half of notification delivery, one per worker process.

Each tick (every `event_poll_seconds`, sooner when woken):

1. fan-out: proves recorded changes committed (see records.py), expands each
   into one delivery entry per interested hub, then drops the record;
2. results: writes the outcome of finished attempts, all in one write;
3. claims: per hub, only the OLDEST undelivered entry (the head of that hub's
   queue) may be attempted, and only when its backoff and the hub's circuit
   allow; a lease on it keeps other workers off. So a hub's notifications
   arrive in the order they were recorded, a retry holds back that hub's
   later ones and no other hub's, and a hub has at most one attempt in
   flight; `event_max_in_flight` bounds the attempts of the process;
4. purge: delivered and failed entries older than their retention go, and so
   do entries whose hub was deleted.

Circuit breaker: `event_circuit_failures` consecutive failed attempts to a hub
open its circuit for `event_circuit_open_seconds`: no attempt is made (none is
counted against the entry's `event_max_attempts`), then one probe decides.
The state is kept on the hub record, so every worker and /health see it.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..background import Poller
from .allowlist import CallbackPolicy, CallbackRejected
from .hubquery import wants
from .http import DeliveryError, post_json
from .records import DELIVERIES, EVENTS, HUBS, committed, digest

log = logging.getLogger(__name__)

HOST = socket.gethostname()
PURGE_EVERY_SECONDS = 10.0      # or the shortest retention, when shorter


class Dispatcher:
    def __init__(self, store, settings, policy: CallbackPolicy):
        self.store = store
        self.settings = settings
        self.policy = policy
        self.poller = Poller("event-delivery", self.tick, interval=settings.event_poll_seconds)
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight: dict[str, str] = {}       # hubId -> entry id, this process
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._fan_out_lock = threading.Lock()
        self._last_purge = 0.0

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        if self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.settings.event_max_in_flight,
                                            thread_name_prefix="deliver")
            self._pool_pid = os.getpid()
            self._in_flight = {}
            self._results = queue.SimpleQueue()
        self.poller.ensure_started()

    def stop(self) -> None:
        self.poller.stop()

    def wake(self) -> None:
        self.poller.wake()

    def tick(self) -> None:
        self.fan_out()
        self.apply_results()
        self.claim_and_send()
        settings = self.settings
        every = min(PURGE_EVERY_SECONDS, settings.event_delivered_retention_seconds,
                    settings.event_failed_retention_seconds)
        if time.time() - self._last_purge >= every:
            self.purge()

    # -- 1. fan-out -------------------------------------------------------
    def fan_out(self) -> int:
        """Expand committed records into delivery entries; returns how many
        records were settled (expanded or discarded as never committed)."""
        if not self.store.count(EVENTS):
            return 0
        with self._fan_out_lock:
            records, current = self._proven_snapshot()
            if not records:
                return 0
            verdicts = committed(records, current)
            hubs_by_api: dict[str, list[dict]] = {}
            for hub in self.store.all(HUBS):
                hubs_by_api.setdefault(hub.get("api"), []).append(hub)
            now = time.time()
            entries = []
            for record, real in zip(records, verdicts):
                if not real:
                    log.warning("event record %s: its change was never committed; dropped",
                                record["id"])
                    continue
                for note in record["notifications"]:
                    for hub in hubs_by_api.get(record["api"], ()):
                        if wants(hub, note):
                            entries.append(_entry(hub, note, now))
            if entries:
                with self.store.transaction(DELIVERIES) as tx:
                    for entry in entries:
                        if tx.get(entry["id"]) is None:   # another worker got there first
                            tx.insert(entry)
            with self.store.transaction(EVENTS) as tx:
                for record in records:
                    tx.delete(record["id"])
            return len(records)

    def _proven_snapshot(self):
        """All records, and the digest of each concerned resource, read while
        holding each collection's lock: a writer records its event and commits
        inside that lock, so no recorded change is still in flight."""
        collections = sorted({r["collection"] for r in self.store.all(EVENTS)})
        records: list[dict] = []
        current: dict[tuple[str, str], str | None] = {}
        for collection in collections:
            with self.store.transaction(collection) as tx:
                mine = [r for r in self.store.all(EVENTS) if r["collection"] == collection]
                for record in mine:
                    key = (collection, record["resourceId"])
                    if key not in current:
                        current[key] = digest(tx.get(record["resourceId"]))
            records.extend(mine)
        order = {r["id"]: i for i, r in enumerate(self.store.all(EVENTS))}
        records.sort(key=lambda r: order.get(r["id"], len(order)))
        return records, current

    # -- 2. results -------------------------------------------------------
    def apply_results(self) -> None:
        results = []
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                break
        if not results:
            return
        settings = self.settings
        now = time.time()
        with self.store.transaction(DELIVERIES) as tx:
            for entry_id, _hub_id, error in results:
                def change(entry, error=error):
                    entry["attempts"] += 1
                    entry["leaseUntil"] = 0.0
                    entry["lastError"] = error
                    if error is None:
                        entry["status"] = "delivered"
                        entry["finishedAt"] = now
                    elif entry["attempts"] >= settings.event_max_attempts:
                        entry["status"] = "failed"
                        entry["finishedAt"] = now
                    else:
                        entry["nextAttemptAt"] = now + min(
                            settings.event_backoff_seconds * 2 ** (entry["attempts"] - 1),
                            settings.event_backoff_max_seconds)
                    return entry
                tx.update(entry_id, change)
        # one attempt per hub in flight per process: at most one result per hub here
        outcome = {hub_id: error for _entry_id, hub_id, error in results}
        with self.store.transaction(HUBS) as tx:
            for hub_id, last_error in outcome.items():
                def circuit(hub, hub_id=hub_id, last_error=last_error):
                    if last_error is None:
                        hub["consecutiveFailures"] = 0
                        hub["circuitOpenUntil"] = 0.0
                    else:
                        hub["consecutiveFailures"] = hub.get("consecutiveFailures", 0) + 1
                        if hub["consecutiveFailures"] >= settings.event_circuit_failures:
                            hub["circuitOpenUntil"] = now + settings.event_circuit_open_seconds
                    return hub
                hub = tx.get(hub_id)
                if hub is not None and (last_error is not None
                                        or hub.get("consecutiveFailures")):
                    tx.update(hub_id, circuit)
        for _entry_id, hub_id, _error in results:
            self._in_flight.pop(hub_id, None)

    # -- 3. claims --------------------------------------------------------
    def claim_and_send(self) -> None:
        room = self.settings.event_max_in_flight - len(self._in_flight)
        if room <= 0 or not self.store.count(DELIVERIES):
            return
        now = time.time()
        hubs = {hub["id"]: hub for hub in self.store.all(HUBS)}
        heads: dict[str, dict] = {}
        for entry in self.store.find(DELIVERIES, lambda e: e.get("status") == "pending"):
            heads.setdefault(entry["hubId"], entry)
        candidates = [
            entry for hub_id, entry in heads.items()
            if hub_id in hubs and hub_id not in self._in_flight
            and hubs[hub_id].get("circuitOpenUntil", 0.0) <= now
            and entry["nextAttemptAt"] <= now
            and (entry["leaseUntil"] <= now or lease_holder_gone(entry))][:room]
        if not candidates:
            return
        lease = now + self.settings.event_timeout_seconds + 30
        claimed = []
        with self.store.transaction(DELIVERIES) as tx:
            for candidate in candidates:
                entry = tx.get(candidate["id"])
                if entry is None or entry["status"] != "pending" or (
                        entry["leaseUntil"] > now and not lease_holder_gone(entry)):
                    continue
                entry.update(leaseUntil=lease, leaseOwner=os.getpid(), leaseHost=HOST)
                tx.update(entry["id"], lambda _old, entry=entry: entry)
                claimed.append(entry)
        for entry in claimed:
            self._in_flight[entry["hubId"]] = entry["id"]
            self._pool.submit(self._attempt, entry)

    def _attempt(self, entry: dict) -> None:
        """One POST; never raises (the outcome goes to the results queue)."""
        error = None
        try:
            address = self.policy.check(entry["callback"])
            body = json.dumps(entry["notification"], separators=(",", ":")).encode("utf-8")
            status = post_json(entry["callback"], body,
                               deadline_seconds=self.settings.event_timeout_seconds,
                               max_response_bytes=self.settings.event_max_response_bytes,
                               address=address)
            if not 200 <= status < 300:
                error = f"listener answered {status}"
        except CallbackRejected as exc:
            error = f"callback no longer allowed: {exc}"
        except DeliveryError as exc:
            error = str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - keep the entry, whatever happened
            log.exception("delivery of %s failed", entry["id"])
            error = type(exc).__name__
        self._results.put((entry["id"], entry["hubId"], error))
        self.poller.wake()

    # -- 4. purge ---------------------------------------------------------
    def purge(self) -> int:
        now = time.time()
        self._last_purge = now
        hub_ids = {hub["id"] for hub in self.store.all(HUBS)}
        keep = {"delivered": self.settings.event_delivered_retention_seconds,
                "failed": self.settings.event_failed_retention_seconds}

        def expired(entry: dict) -> bool:
            if entry["hubId"] not in hub_ids:
                return True
            retention = keep.get(entry["status"])
            return retention is not None and (entry.get("finishedAt") or now) + retention <= now

        doomed = [e["id"] for e in self.store.find(DELIVERIES, expired)]
        if doomed:
            with self.store.transaction(DELIVERIES) as tx:
                for entry_id in doomed:
                    tx.delete(entry_id)
        return len(doomed)


def _entry(hub: dict, note: dict, now: float) -> dict:
    return {"id": f"{note['eventId']}.{hub['id']}", "hubId": hub["id"],
            "callback": hub["callback"], "eventId": note["eventId"], "notification": note,
            "status": "pending", "createdAt": now, "attempts": 0, "nextAttemptAt": 0.0,
            "leaseUntil": 0.0, "leaseOwner": None, "leaseHost": None, "lastError": None,
            "finishedAt": None}


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
