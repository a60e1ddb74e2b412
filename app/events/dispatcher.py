"""The background half of notification delivery, one per worker process.

Each tick (every `event_poll_seconds`, sooner when woken):

1. fan-out: expands each recorded change (written in the change's own
   transaction, see records.py) into one delivery entry per interested hub,
   then drops the record;
2. results and claims, in one write: the outcomes of finished attempts,
   then per hub the OLDEST undelivered entry (the head of that hub's queue)
   and up to BATCH entries behind it, when the head's backoff and the hub's
   circuit allow; a lease keeps other workers off, and a row another worker
   holds locked is skipped, never waited for (PostgreSQL FOR UPDATE SKIP
   LOCKED; so are the event records at fan-out). One thread sends a hub's
   batch in order and stops at the first failure. So a hub's notifications
   arrive in the order they were recorded, a retry holds back that hub's
   later ones and no other hub's, and a hub has at most one attempt in
   flight; `event_max_in_flight` bounds the hubs served at once per process;
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
from ..observability.metrics import count_delivery
from .allowlist import CallbackPolicy, CallbackRejected
from .hubquery import wants
from .http import DeliveryError, post_json
from ..store import DuplicateId, Locked
from .records import DELIVERIES, EVENTS, HUBS

log = logging.getLogger(__name__)

HOST = socket.gethostname()
PURGE_EVERY_SECONDS = 10.0      # or the shortest retention, when shorter
#: entries of one hub sent one after the other per claim: one write claims
#: them and one records their outcomes, instead of two writes per entry
BATCH = 20
LEGACY_OUTBOX = "outbox"
NOT_SENT = object()
STEP_GAP_SECONDS = 0.02


class Dispatcher:
    def __init__(self, store, settings, policy: CallbackPolicy):
        self.store = store
        self.settings = settings
        self.policy = policy
        self.poller = Poller("event-delivery", self.tick, interval=settings.event_poll_seconds)
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._unapplied: list = []      # finished attempts not yet written (entry locked)
        self._in_flight: dict[str, str] = {}       # hubId -> entry id, this process
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._fan_out_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._last_purge = 0.0
        self._last_step = 0.0
        self._adopted = False

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        with self._start_lock:
            self._start_in_this_process()
        self.poller.ensure_started()

    def _first_tick(self) -> None:
        try:
            self.adopt_legacy_outbox()
        except Exception:  # noqa: BLE001 - retried on the next start
            log.exception("could not move the old outbox")

    def _start_in_this_process(self) -> None:
        if self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.settings.event_max_in_flight,
                                            thread_name_prefix="deliver")
            self._pool_pid = os.getpid()
            self._in_flight = {}
            self._results = queue.SimpleQueue()
            self._unapplied = []

    def stop(self) -> None:
        self.poller.stop()

    def wake(self) -> None:
        self.poller.wake()

    def adopt_legacy_outbox(self) -> int:
        """Pending entries of the `outbox` collection that versions before
        this design wrote (one per notification and hub) become delivery
        entries, so an upgrade loses no notification; returns how many."""
        legacy = self.store.find(LEGACY_OUTBOX, lambda e: e.get("status") == "pending")
        if not legacy:
            return 0
        now = time.time()
        with self.store.transaction(DELIVERIES) as tx:
            for old in legacy:
                hub = {"id": old["hubId"], "callback": old["callback"]}
                entry = _entry(hub, old["notification"], now)
                if tx.get(entry["id"]) is None:
                    tx.insert(entry)
        with self.store.transaction(LEGACY_OUTBOX) as tx:
            for old in legacy:
                tx.delete(old["id"])
        log.info("moved %d pending notifications of the old outbox to the delivery queues",
                 len(legacy))
        return len(legacy)

    def tick(self) -> None:
        # a burst of finished attempts wakes the loop many times: a short gap
        # lets one write record them together
        gap = STEP_GAP_SECONDS - (time.monotonic() - self._last_step)
        if gap > 0:
            time.sleep(gap)
        self._last_step = time.monotonic()
        if not self._adopted:
            self._adopted = True
            self._first_tick()
        self.fan_out()
        self.step()
        settings = self.settings
        every = min(PURGE_EVERY_SECONDS, settings.event_failed_retention_seconds,
                    settings.event_delivered_retention_seconds or PURGE_EVERY_SECONDS)
        if time.time() - self._last_purge >= every:
            self.purge()

    # -- 1. fan-out -------------------------------------------------------
    def fan_out(self) -> int:
        """Expand the recorded changes into delivery entries; returns how
        many records were settled. A record is written in the same store
        transaction as its change (ResourceService._write), so every record
        read here belongs to a committed change: no proof is needed (the
        digest proof of the two-write design would, on PostgreSQL where a
        transaction holds no collection lock, have judged a record whose
        resource changed again meanwhile uncommitted and dropped it).
        Entry ids are `<eventId>.<hubId>`, so two workers expanding the same
        record queue each notification once."""
        if not self.store.count(EVENTS):
            return 0
        with self._fan_out_lock:
            records = self.store.all(EVENTS)
            if not records:
                return 0
            hubs_by_api: dict[str, list[dict]] = {}
            for hub in self.store.all(HUBS):
                hubs_by_api.setdefault(hub.get("api"), []).append(hub)
            now = time.time()
            try:
                # one transaction: the records this worker claims, their
                # entries, their removal. Claimed in recorded order up to the
                # first that another worker is expanding (not waited for;
                # PostgreSQL: FOR UPDATE SKIP LOCKED): records behind it wait
                # for the next tick, so a hub's entries stay in recorded order
                with self.store.transactions(EVENTS, DELIVERIES) as tx:
                    mine = []
                    for record in records:
                        try:
                            if tx[EVENTS].get(record["id"], skip_locked=True) is not None:
                                mine.append(record)
                        except Locked:
                            break
                    # read under this lock: a hub deleted since is not served
                    # (unregister_hub drops its entries after deleting it)
                    live = {hub["id"] for hub in self.store.all(HUBS)} if mine else set()
                    for record in mine:
                        for note in record["notifications"]:
                            for hub in hubs_by_api.get(record["api"], ()):
                                if hub["id"] in live and wants(hub, note):
                                    entry = _entry(hub, note, now, record.get("traceHeaders"))
                                    if tx[DELIVERIES].get(entry["id"]) is None:
                                        tx[DELIVERIES].insert(entry)   # (None: not already expanded)
                        tx[EVENTS].delete(record["id"])
            except DuplicateId:
                # entries of the same records, expanded by another worker that
                # committed first (TinyDB across processes: the records are
                # read before the collections are locked)
                return 0
            return len(mine)

    # -- 2 and 3. results and claims, in one write -------------------------
    def step(self) -> None:
        """Write the outcomes of finished attempts and claim the next batch,
        in one transaction on the delivery entries (one file write on
        TinyDB), then start the claimed batches."""
        results = []
        while True:
            try:
                results.extend(self._results.get_nowait())
            except queue.Empty:
                break
        # outcomes counted in the circuits already, whose entries were locked
        carried, self._unapplied = self._unapplied, []
        finished_hubs = {hub_id for hub_id, _entries in self._finished_batches(carried + results)}
        room = self.settings.event_max_in_flight - (len(self._in_flight) - len(finished_hubs))
        if not results and not carried and (room <= 0 or not self.store.count(DELIVERIES)):
            return
        now = time.time()
        hubs = {hub["id"]: hub for hub in self.store.all(HUBS)}
        if results:
            hubs = self._update_circuits(results, hubs, now)
        batches: list[list[dict]] = []
        fronts = self._queue_fronts(set(self._in_flight) - finished_hubs) if room > 0 else []
        with self.store.transaction(DELIVERIES) as tx:
            for result in carried + results:
                try:
                    self._apply(tx, result[0], result[2], now)
                except Locked:      # PostgreSQL: in another worker's claim; next tick,
                    self._unapplied.append(result)      # the hub still busy here
            unapplied_hubs = {hub_id for _entry, hub_id, _outcome in self._unapplied}
            for hub_id in finished_hubs - unapplied_hubs:
                self._in_flight.pop(hub_id, None)
            if room > 0:
                batches = self._claim(tx, fronts, hubs, room, now)
        for batch in batches:
            self._in_flight[batch[0]["hubId"]] = batch[0]["id"]
            self._pool.submit(self._send_batch, batch)

    @staticmethod
    def _finished_batches(results):
        seen: dict[str, list] = {}
        for entry_id, hub_id, _outcome in results:
            seen.setdefault(hub_id, []).append(entry_id)
        return seen.items()

    def _apply(self, tx, entry_id: str, outcome, now: float) -> None:
        """`outcome`: None delivered, NOT_SENT (batch stopped before it: the
        lease is released, no attempt counted) or the error text."""
        settings = self.settings
        entry = tx.get(entry_id, skip_locked=True)
        if entry is None:                    # its hub was deleted meanwhile
            count_delivery("hub_gone")
            return
        entry["leaseUntil"] = 0.0
        if outcome is NOT_SENT:
            tx.update(entry_id, lambda _old: entry)
            return
        entry["attempts"] += 1
        entry["lastError"] = outcome
        if outcome is None:
            if settings.event_delivered_retention_seconds <= 0:
                tx.delete(entry_id)
                return
            entry["status"] = "delivered"
            entry["finishedAt"] = now
            entry["notification"] = None     # kept as a record of delivery, not a copy
        elif entry["attempts"] >= settings.event_max_attempts:
            count_delivery("gave_up")
            entry["status"] = "failed"
            entry["finishedAt"] = now
        else:
            entry["nextAttemptAt"] = now + min(
                settings.event_backoff_seconds * 2 ** (entry["attempts"] - 1),
                settings.event_backoff_max_seconds)
        tx.update(entry_id, lambda _old: entry)

    def _update_circuits(self, results, hubs: dict, now: float) -> dict:
        """Consecutive failures per hub, kept on the hub record; opening the
        circuit pauses the hub. Written only when something changes."""
        settings = self.settings
        last: dict[str, object] = {}
        for _entry_id, hub_id, outcome in results:
            if outcome is not NOT_SENT:
                last.setdefault(hub_id, [])
                last[hub_id].append(outcome)
        changes = {}
        for hub_id, outcomes in last.items():
            hub = hubs.get(hub_id)
            if hub is None:
                continue
            failures = hub.get("consecutiveFailures", 0)
            for outcome in outcomes:
                failures = 0 if outcome is None else failures + 1
            if failures != hub.get("consecutiveFailures", 0):
                opened = now + settings.event_circuit_open_seconds \
                    if failures >= settings.event_circuit_failures else 0.0
                changes[hub_id] = (failures, opened)
        if changes:
            with self.store.transaction(HUBS) as tx:
                for hub_id, (failures, opened) in changes.items():
                    updated = tx.update(hub_id, lambda hub, f=failures, o=opened: {
                        **hub, "consecutiveFailures": f, "circuitOpenUntil": o})
                    if updated is not None:
                        hubs[hub_id] = updated
        return hubs

    def _claim(self, tx, fronts, hubs: dict, room: int, now: float) -> list[list[dict]]:
        """Per hub not busy here: the head of its queue and the entries right
        behind it (up to `BATCH`), if the head is due, not leased by a live
        worker, and the hub's circuit is closed."""
        queues: dict[str, list[dict]] = {}
        held: set[str] = set()
        for entry_id, hub_id in fronts:
            if hub_id in held:
                continue
            try:
                entry = tx.get(entry_id, skip_locked=True)      # as it is now, locked
            except Locked:
                # another worker holds it (PostgreSQL): not waited for, and
                # nothing behind it is taken, so the hub's order holds
                held.add(hub_id)
                queues.pop(hub_id, None)
                continue
            if entry is not None and entry.get("status") == "pending":
                queues.setdefault(hub_id, []).append(entry)
        lease = now + self.settings.event_timeout_seconds * BATCH + 30
        batches = []
        for hub_id, line in queues.items():
            if len(batches) >= room:
                break
            head = line[0]
            hub = hubs.get(hub_id)
            if hub is None or hub_id in self._in_flight \
                    or hub.get("circuitOpenUntil", 0.0) > now \
                    or head["nextAttemptAt"] > now \
                    or (head["leaseUntil"] > now and not lease_holder_gone(head)):
                continue
            batch = []
            for entry in line:
                if entry is not head and (entry["nextAttemptAt"] > now or entry["leaseUntil"] > now):
                    break
                entry.update(leaseUntil=lease, leaseOwner=os.getpid(), leaseHost=HOST)
                tx.update(entry["id"], lambda _old, entry=entry: entry)
                batch.append(entry)
            batches.append(batch)
        return batches

    def _queue_fronts(self, busy: set) -> list[tuple[str, str]]:
        """(entry id, hub id) of the first BATCH pending entries of each hub
        not `busy` in this process, in queue order; copies only those."""
        taken: dict[str, int] = {}

        def front(entry: dict) -> bool:
            hub_id = entry["hubId"]
            if entry.get("status") != "pending" or hub_id in busy \
                    or taken.get(hub_id, 0) >= BATCH:
                return False
            taken[hub_id] = taken.get(hub_id, 0) + 1
            return True
        return [(e["id"], e["hubId"]) for e in self.store.find(DELIVERIES, front)]

    def _send_batch(self, batch: list[dict]) -> None:
        """A hub's entries one after the other, stopping at the first failure
        (the rest wait behind it, unsent) or when the hub is gone; never raises."""
        outcomes = []
        failed = False
        for entry in batch:
            # a hub deleted meanwhile (any worker, any host) gets no more of
            # its batch: its queue went with it
            if failed or (entry is not batch[0] and not self._hub_still_there(entry["hubId"])):
                failed = True
                outcomes.append((entry["id"], entry["hubId"], NOT_SENT))
                continue
            error = self._attempt(entry)
            failed = error is not None
            outcomes.append((entry["id"], entry["hubId"], error))
        self._results.put(outcomes)
        self.poller.wake()

    def _hub_still_there(self, hub_id: str) -> bool:
        """False when the hub was deleted, or cannot be read now (the rest of
        the batch is then released unsent, and tried again later)."""
        try:
            return self.store.get(HUBS, hub_id) is not None
        except Exception:  # noqa: BLE001 - _send_batch never raises
            return False

    def _attempt(self, entry: dict) -> str | None:
        """One POST: None when the listener answered 2xx, else why not."""
        try:
            address = self.policy.check(entry["callback"])
            body = json.dumps(entry["notification"], separators=(",", ":")).encode("utf-8")
            status = post_json(entry["callback"], body,
                               deadline_seconds=self.settings.event_timeout_seconds,
                               max_response_bytes=self.settings.event_max_response_bytes,
                               address=address, headers=entry.get("traceHeaders"))
            if 200 <= status < 300:
                count_delivery("delivered")
                return None
            count_delivery("rejected")
            return f"listener answered {status}"
        except CallbackRejected as exc:
            count_delivery("not_allowed")
            return f"callback no longer allowed: {exc}"
        except DeliveryError as exc:
            count_delivery("error")
            return str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - keep the entry, whatever happened
            log.exception("delivery of %s failed", entry["id"])
            count_delivery("error")
            return type(exc).__name__

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
        purged = 0
        if doomed:
            with self.store.transaction(DELIVERIES) as tx:
                for entry_id in doomed:
                    try:
                        tx.get(entry_id, skip_locked=True)
                    except Locked:          # in another worker's claim: next purge
                        continue
                    purged += tx.delete(entry_id) is not None
        return purged


def _entry(hub: dict, note: dict, now: float, trace_headers: dict | None = None) -> dict:
    return {"id": f"{note['eventId']}.{hub['id']}", "hubId": hub["id"],
            "traceHeaders": trace_headers or {},
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
