"""The background half of notification delivery, one per worker process.

The data (records.py): the requests write change records into ``event``;
the dispatcher moves them, numbered, into one ordered log (``eventLog``)
shared by all hubs; each hub has one queue document (``eventQueue``) holding
its position in that log and its delivery state. A notification body is
stored once whatever the hubs, and the delivery state is one document per
hub: writing it costs O(hubs), never O(notifications x hubs).

Each tick (every `event_poll_seconds`, sooner when woken):

1. sequence: records of ``event`` are appended to the log with the next
   numbers and removed from ``event``, in one transaction that locks the
   log's ``head`` document, so every worker on every host numbers records
   in one order (the order their changes committed in);
2. outcomes: the results of finished attempts move each hub's position
   past what was delivered (or given up after `event_max_attempts`, kept as
   a ``failed`` entry for its retention), or schedule the retry with backoff;
   the circuit breaker counts consecutive failures;
3. claims: per hub that has records after its position, is not leased, is
   due and whose circuit is closed -- the hubs furthest behind first -- the
   next notifications it subscribed to (up to BATCH) are leased to this
   process (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers and
   hosts never take the same hub; the lease is committed before any send and
   renewed while sending, lease.py); one thread sends them in order and
   stops at the first failure or when its lease ends. So a hub's
   notifications arrive in the order they were recorded, a retry holds back
   that hub's later ones and no other hub's, a hub has at most one attempt
   in flight, and
   `event_max_in_flight` bounds the hubs served at once per process. A hub
   that subscribed to none of the new records just moves its position;
4. purge (every PURGE_EVERY_SECONDS or the shortest retention): finished
   entries past their retention, entries and queues of deleted hubs, log
   records every hub has passed, and leases and heartbeats of dead
   processes of this host.

Each tick also renews this process's leases (lease.py) and, every
status.BEAT_SECONDS, writes its heartbeat, which /health reads.

Circuit breaker: `event_circuit_failures` consecutive failed attempts to a hub
open its circuit for `event_circuit_open_seconds`: no attempt is made (none is
counted against the notification's `event_max_attempts`), then one probe
decides. The state is kept on the hub's queue, so every worker and /health
see it.
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
from dataclasses import dataclass

from ..background import Poller
from ..observability.metrics import count_delivery
from ..store import DuplicateId
from ..store.query import Filter, Query, SortKey
from .allowlist import CallbackPolicy, CallbackRejected
from .http import DeliveryError, Session, post_json
from .hubquery import wants
from .lease import CONFIRM_SECONDS, Leases, lease_seconds, new_lease, released
from .records import DELIVERIES, EVENTS, HUBS, LOG, LOG_HEAD, QUEUES, tally_key
from .status import Heartbeat

log = logging.getLogger(__name__)

HOST = socket.gethostname()
PURGE_EVERY_SECONDS = 10.0      # or the shortest retention, when shorter
#: notifications of one hub sent one after the other per claim: one write
#: claims them and one records their outcomes
BATCH = 20
NOT_SENT = object()
STEP_GAP_SECONDS = 0.02
#: PostgreSQL: log records read per query, by equality on ``seq`` (served
#: by the GIN index: 0.5 ms for 20 alternatives, EXPLAIN ANALYZE, where
#: ``seq > n`` reads every record of the log: 75 ms at 12,000, so a
#: dispatcher behind got slower the further behind it was); and the most
#: read per tick (the claims of one tick use at most BATCH per hub)
READ_CHUNK = 20
READ_MAX = 400
#: a hub's kept connection (http.Session) unused this long is closed
SESSION_IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class Item:
    """One notification of a batch: record `seq`, its `index` among the
    record's notifications."""
    seq: int
    index: int
    notification: dict
    trace_headers: dict


def new_queue(hub: dict, position: int) -> dict:
    """The queue document of a hub that starts after log record `position`."""
    return {"id": hub["id"], "api": hub.get("api"), "callback": hub.get("callback"),
            "query": hub.get("query"), "position": position, "skip": 0, "attempts": 0,
            "nextAttemptAt": 0.0, "leaseId": None, "leaseUntil": 0.0, "leaseOwner": None,
            "leaseHost": None,
            "claimedThrough": position, "consecutiveFailures": 0, "circuitOpenUntil": 0.0,
            "lastError": None}


def log_head(txn) -> int:
    """The last seq given, read (PostgreSQL: locked) through a Txn of LOG."""
    head = txn.get(LOG_HEAD)
    return head["last"] if head else 0


def pending_items(hub: dict, records: dict, head: int,
                  limit: int | None = None) -> tuple[list[Item], int]:
    """The notifications `hub` subscribed to after its position, in order,
    from `records` (seq -> log record): whole records until at least `limit`
    notifications (None: all up to `head`); and the seq read up to."""
    items: list[Item] = []
    seq = hub["position"]
    skip = hub.get("skip", 0)
    while seq < head and (limit is None or len(items) < limit):
        seq += 1
        record = records.get(seq)
        if record is None or record.get("hubId") not in (None, hub["id"]) \
                or (record.get("api") is not None and record["api"] != hub.get("api")):
            skip = 0                # purged (every hub had passed it), or not this hub's
            continue
        for index, note in enumerate(record["notifications"]):
            if index >= skip and wants(hub, note):
                items.append(Item(seq, index, note, record.get("traceHeaders") or {}))
        skip = 0
    return items, seq


def set_head(txn, last: int, tally: dict) -> None:
    if txn.update(LOG_HEAD, lambda head: {**head, "last": last, "tally": tally}) is None:
        txn.insert({"id": LOG_HEAD, "last": last, "tally": tally})


def append(log_txn, records: list[dict], head: dict | None) -> int:
    """Append `records` to the log with the next numbers and the tallies
    (records.py), in one statement on PostgreSQL; returns the last seq.
    `head`: the log's head document as read through `log_txn` (PostgreSQL:
    locked) before anything else, so every writer numbers in one order."""
    last = head["last"] if head else 0
    tally = dict((head or {}).get("tally") or {})
    numbered = []
    for record in records:
        last += 1
        numbered.append({**record, "seq": last, "before": dict(tally)})
        key = tally_key(record)
        tally[key] = tally.get(key, 0) + len(record["notifications"])
    if records:
        log_txn.insert_batch(numbered)
        set_head(log_txn, last, tally)
    return last


def move_records(events_txn, log_txn) -> tuple[int, list]:
    """Append the recorded changes to the log with the next numbers and
    remove them from `event` (one statement each on PostgreSQL, not two round
    trips per record); returns (the last seq, the records moved)."""
    head = log_txn.get(LOG_HEAD)
    records = events_txn.all()
    last = append(log_txn, records, head)
    events_txn.delete_batch([record["id"] for record in records])
    return last, records


def after(item: Item) -> tuple[int, int]:
    """(position, skip) once `item` is settled."""
    return item.seq - 1, item.index + 1


class Dispatcher:
    def __init__(self, store, settings, policy: CallbackPolicy):
        self.store = store
        self.settings = settings
        self.policy = policy
        self.poller = Poller("event-delivery", self.tick, interval=settings.event_poll_seconds)
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight: set[str] = set()          # hub ids, this process
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._sequence_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._log: dict[int, dict] = {}            # seq -> record; records never change
        self._log_seen = 0
        self._log_started = False
        self._last_purge = 0.0
        self._last_step = 0.0
        self._adopted = False
        self._stopping = threading.Event()
        self.leases = Leases(lease_seconds(settings), settings.event_timeout_seconds)
        self.heartbeat = Heartbeat(store)
        self._sessions: dict[str, Session] = {}    # hub id -> its kept connection

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        with self._start_lock:
            self._start_in_this_process()
        self.poller.ensure_started()

    def _first_tick(self) -> None:
        try:
            self.ensure_queues()
            self.release_dead_leases()
        except Exception:  # noqa: BLE001 - retried on the next start
            log.exception("could not take over the queues of an earlier version")

    def _start_in_this_process(self) -> None:
        if self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.settings.event_max_in_flight,
                                            thread_name_prefix="deliver")
            self._pool_pid = os.getpid()
            self._in_flight = set()
            self._results = queue.SimpleQueue()
            self.leases.clear()
            self._sessions = {}                    # the parent's sockets are not ours

    def stop(self) -> None:
        """No new attempt starts (a batch under way ends after its current
        one); the rest stays queued for the next start."""
        self._stopping.set()
        self.poller.stop()
        self.heartbeat.end()
        self.close_sessions(0.0)

    def wake(self) -> None:
        self.poller.wake()

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
        # first: a sequencing that waits for a hung process's lock must not
        # let this process's leases run out
        self.renew_leases()
        self.heartbeat.beat(len(self._in_flight))
        self.sequence()
        self.step()
        settings = self.settings
        every = min(PURGE_EVERY_SECONDS, settings.event_failed_retention_seconds,
                    settings.event_delivered_retention_seconds or PURGE_EVERY_SECONDS)
        if time.time() - self._last_purge >= every:
            self.purge()

    # -- upgrades ---------------------------------------------------------
    def ensure_queues(self) -> int:
        """A queue for every hub without one (hubs stored by an earlier
        version, or restored): it starts after the last sequenced record,
        so it gets every change not yet sequenced. Returns how many."""
        hubs = self.store.all(HUBS)
        known = {q["id"] for q in self.store.all(QUEUES)}
        missing = [hub for hub in hubs if hub["id"] not in known]
        if not missing:
            return 0
        with self.store.transactions(LOG, QUEUES) as tx:
            position = log_head(tx[LOG])
            for hub in missing:
                if tx[QUEUES].get(hub["id"]) is None:
                    tx[QUEUES].insert(new_queue(hub, position))
        return len(missing)

    # -- 1. sequence ------------------------------------------------------
    def sequence(self) -> int:
        """Move the recorded changes into the log, numbered; returns how
        many. A record is written in the same store transaction as its
        change (ResourceService._write), so every record read here belongs
        to a committed change."""
        if not self.store.count(EVENTS):
            return 0
        with self._sequence_lock:
            try:
                with self.store.transactions(EVENTS, LOG) as tx:
                    _last, records = move_records(tx[EVENTS], tx[LOG])
            except DuplicateId:
                # PostgreSQL: another worker created the head document at the
                # same moment and committed first; the next tick goes on
                return 0
        return len(records)

    def _refresh_log(self, head: int) -> int:
        """Read the log records this process has not seen, up to `head`
        (they never change once written, so each is read once); returns the
        seq read up to, which the claims of this tick must not pass (a
        record not read would look purged). Every record up to `head` is
        committed: the head is written in the transaction that appends."""
        if head <= self._log_seen:
            return self._log_seen
        if not self.store.queries_in_backend:
            # in memory: one pass over the log
            records, _total = self.store.query(LOG, Query(filters=(
                Filter(("seq",), "gt", (self._log_seen,), "number"),)))
            for record in records:
                if record["seq"] <= head:
                    self._log[record["seq"]] = record
            self._log_seen = head
            return head
        if not self._log_started:
            # a fresh process: nothing before the hub furthest behind matters
            # (it may be long purged)
            self._log_started = True
            self._log_seen = max(self._log_seen, min(
                (q["position"] for q in self.store.all(QUEUES)), default=head))
        upto = min(head, self._log_seen + READ_MAX)
        for start in range(self._log_seen + 1, upto + 1, READ_CHUNK):
            seqs = tuple(range(start, min(start + READ_CHUNK, upto + 1)))
            records, _total = self.store.query(LOG, Query(filters=(
                Filter(("seq",), "eq", seqs, "number"),)))
            for record in records:
                self._log[record["seq"]] = record
        self._log_seen = upto
        return upto

    def renew_leases(self) -> None:
        """Renew this process's leases when due (lease.py); a failed renewal
        is retried next tick, and the senders stop on their own before the
        leases end."""
        if not self.leases.due():
            return
        try:
            lost = self.leases.renew(self.store)
        except Exception:  # noqa: BLE001 - the store decides at the next renewal
            log.exception("could not renew the delivery leases")
            return
        if lost:
            log.warning("%d delivery leases were taken over or their hubs deleted", lost)

    # -- 2 and 3. outcomes and claims --------------------------------------
    def step(self) -> None:
        """Record the outcomes of finished batches, then claim the next."""
        results = []
        while True:
            try:
                results.append(self._results.get_nowait())
            except queue.Empty:
                break
        if results:
            self._record(results)
        room = self.settings.event_max_in_flight - len(self._in_flight)
        if room <= 0:
            return
        head = self.store.get(LOG, LOG_HEAD)
        if head is None:
            return
        head = self._refresh_log(head["last"])
        now = time.time()
        planned: dict[str, list[Item]] = {}

        def take(hub: dict) -> dict | None:
            if hub["id"] in self._in_flight:
                return None
            items, through = pending_items(hub, self._log, head, BATCH)
            if not items:                       # nothing it subscribed to: move on
                return {**hub, "position": through, "skip": 0, "claimedThrough": through}
            planned[hub["id"]] = items
            return new_lease({**hub, "claimedThrough": through}, self.leases.seconds,
                             os.getpid(), HOST, now)

        claimed = self.store.claim(QUEUES, (
            Filter(("position",), "lt", (head,), "number"),
            Filter(("leaseUntil",), "lte", (now,), "number"),
            Filter(("nextAttemptAt",), "lte", (now,), "number"),
            Filter(("circuitOpenUntil",), "lte", (now,), "number"),
        ), take, limit=room, sort=(SortKey(("position",), kind="number"),))
        for hub in claimed:
            items = planned.get(hub["id"])
            if items and hub.get("leaseOwner") == os.getpid():
                self._in_flight.add(hub["id"])
                self.leases.hold(hub)
                self._pool.submit(self._send_batch, hub, items)

    def _record(self, results) -> None:
        """One transaction for every finished batch: positions, retries,
        circuits, and the finished entries kept for their retention."""
        now = time.time()
        with self.store.transactions(DELIVERIES, QUEUES) as tx:
            for claimed, outcomes in results:
                current = tx[QUEUES].get(claimed["id"])
                if current is None:                  # its hub was deleted meanwhile
                    count_delivery("hub_gone")
                    continue
                if current.get("leaseId") != claimed["leaseId"]:
                    log.warning("lease of hub %s lost before its outcomes were written: "
                                "its new holder sends them again", claimed["id"])
                    continue                         # lease lost: the new holder decides
                tx[QUEUES].update(claimed["id"], lambda q, o=outcomes, c=claimed:
                                  self._settle(tx[DELIVERIES], q, c, o, now))
        for claimed, _outcomes in results:
            self._in_flight.discard(claimed["id"])
            self.leases.drop(claimed["id"])

    def _settle(self, entries, hub: dict, claimed: dict, outcomes, now: float) -> dict:
        settings = self.settings
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
                    self._keep(entries, hub, item, "delivered", attempts, None, now)
                attempts = 0
                position, skip = after(item)
                continue
            failures += 1
            hub["lastError"] = outcome
            if attempts >= settings.event_max_attempts:
                count_delivery("gave_up")
                self._keep(entries, hub, item, "failed", attempts, outcome, now)
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

    @staticmethod
    def _keep(entries, hub: dict, item: Item, status: str, attempts: int,
              error: str | None, now: float) -> None:
        entry_id = f"{item.notification['eventId']}.{hub['id']}"
        if entries.get(entry_id) is not None:      # an earlier delivery, then a crash
            entries.delete(entry_id)
        entries.insert({"id": entry_id, "hubId": hub["id"],
                        "eventId": item.notification["eventId"],
                        "notification": item.notification if status == "failed" else None,
                        "status": status, "attempts": attempts, "lastError": error,
                        "createdAt": now, "finishedAt": now})

    def _send_batch(self, hub: dict, items: list[Item]) -> None:
        """A hub's notifications one after the other, stopping at the first
        failure (the rest wait behind it, unsent) or when the lease no longer
        leaves time for an attempt (lease.py: it ran out, was taken over, or
        the hub was deleted meanwhile, found by the renewal or by the
        sender's own confirmation every CONFIRM_SECONDS); never raises."""
        outcomes = []
        failed = False
        session = self._sessions.setdefault(hub["id"], Session())
        confirmed = time.monotonic()                # the claim itself confirmed it
        for item in items:
            if not failed and time.monotonic() - confirmed >= CONFIRM_SECONDS:
                confirmed = time.monotonic()
                failed = not self.leases.confirm(self.store, hub["id"])
            if failed or self._stopping.is_set() or not self.leases.may_send(hub["id"]):
                outcomes.append((item, NOT_SENT))
                failed = True
                continue
            error = self._attempt({"id": f"{item.notification['eventId']}.{hub['id']}",
                                   "callback": hub["callback"], "notification": item.notification,
                                   "traceHeaders": item.trace_headers}, session)
            failed = error is not None
            outcomes.append((item, error))
        self._results.put((hub, outcomes))
        self.poller.wake()

    def _attempt(self, entry: dict, session: Session | None = None) -> str | None:
        """One POST of ``entry["notification"]`` to ``entry["callback"]``
        (on the hub's kept connection, `session`, when it has one): None
        when the listener answered 2xx, else why not."""
        try:
            address = self.policy.check(entry["callback"])
            body = json.dumps(entry["notification"], separators=(",", ":")).encode("utf-8")
            status = post_json(entry["callback"], body,
                               deadline_seconds=self.settings.event_timeout_seconds,
                               max_response_bytes=self.settings.event_max_response_bytes,
                               address=address, headers=entry.get("traceHeaders"),
                               session=session)
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
        except Exception as exc:  # noqa: BLE001 - keep the notification, whatever happened
            log.exception("delivery of %s failed", entry["id"])
            count_delivery("error")
            return type(exc).__name__

    def close_sessions(self, idle_seconds: float) -> None:
        """Close the kept connections unused for `idle_seconds` (0: all) of
        hubs with no batch under way."""
        now = time.monotonic()
        for hub_id, session in list(self._sessions.items()):
            if hub_id not in self._in_flight and now - session.used >= idle_seconds:
                self._sessions.pop(hub_id, None)
                session.close()

    # -- 4. purge ---------------------------------------------------------
    def purge(self) -> int:
        """Returns how many finished entries went."""
        now = time.time()
        self._last_purge = now
        hub_ids = {hub["id"] for hub in self.store.all(HUBS)}
        keep = {"delivered": self.settings.event_delivered_retention_seconds,
                "failed": self.settings.event_failed_retention_seconds}

        def expired(entry: dict) -> bool:
            if entry.get("hubId") not in hub_ids:
                return True
            retention = keep.get(entry.get("status"))
            return retention is not None and (entry.get("finishedAt") or now) + retention <= now

        doomed = [e["id"] for e in self.store.find(DELIVERIES, expired)]
        if doomed:
            with self.store.transaction(DELIVERIES) as tx:
                for entry_id in doomed:
                    tx.delete(entry_id)
        self.ensure_queues()
        self.release_dead_leases()
        self.heartbeat.forget_dead(lease_holder_gone)
        self.close_sessions(SESSION_IDLE_SECONDS)
        queues = self.store.all(QUEUES)
        # hubs read again: a hub and its queue are committed together, so a
        # queue read above whose hub is not read now has no hub
        hub_ids = {hub["id"] for hub in self.store.all(HUBS)}
        orphans = [q["id"] for q in queues if q["id"] not in hub_ids]
        if orphans:
            with self.store.transaction(QUEUES) as tx:
                for hub_id in orphans:
                    tx.delete(hub_id)
        self.trim_log(min((q["position"] for q in queues if q["id"] in hub_ids), default=None))
        return len(doomed)

    def trim_log(self, passed: int | None) -> int:
        """Drop the log records every hub has passed (`passed`: the lowest
        position; None when there is no hub: every record); returns how many."""
        head = self.store.get(LOG, LOG_HEAD)
        if head is None:
            return 0
        limit = head["last"] if passed is None else passed
        for seq in [s for s in self._log if s <= limit]:
            del self._log[seq]
        old, _total = self.store.query(LOG, Query(filters=(
            Filter(("seq",), "lte", (limit,), "number"),)))
        if old:
            with self.store.transaction(LOG) as tx:
                tx.delete_batch([record["id"] for record in old])
        return len(old)

    def release_dead_leases(self) -> int:
        """Leases held by processes of this host that no longer exist end
        now: a service killed mid-delivery redelivers as soon as it is back,
        instead of waiting out the lease. Returns how many."""
        now = time.time()
        dead = [q["id"] for q in self.store.find(
            QUEUES, lambda q: q.get("leaseUntil", 0.0) > now and lease_holder_gone(q))]
        if not dead:
            return 0
        with self.store.transaction(QUEUES) as tx:
            for hub_id in dead:
                tx.update(hub_id, lambda q: released(q) if lease_holder_gone(q) else q)
        return len(dead)


def lease_holder_gone(entry: dict) -> bool:
    """True when the process that leased the entry is known to be dead: it
    ran on this host and its pid no longer exists (or is a zombie); when in
    doubt the lease holds."""
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
