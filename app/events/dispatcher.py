"""The background half of notification delivery, one per worker process:
its run loop, which does each step below through the module that owns it.

The data (records.py): the requests write change records into ``event``;
the dispatcher moves them, numbered, into one ordered log (``eventLog``)
shared by all hubs; each hub has one queue document (``eventQueue``) holding
its position in that log and its delivery state. A notification body is
stored once whatever the hubs, and the delivery state is one document per
hub: writing it costs O(hubs), never O(notifications x hubs).

Each tick (every `event_poll_seconds`, sooner when woken):

1. sequence (eventlog.py): records of ``event`` are appended to the log with the next
   numbers and removed from ``event``, in one transaction that locks the
   log's ``head`` document, so every worker on every host numbers records
   in one order (the order their changes committed in);
2. outcomes (outcomes.py): the results of finished attempts move each hub's position
   past what was delivered (or given up after `event_max_attempts`, kept as
   a ``failed`` entry for its retention), or schedule the retry with backoff;
   the circuit breaker counts consecutive failures;
3. claims (here; sent by sender.py): per hub that has records after its position, is not leased, is
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
4. purge (purge.py; every PURGE_EVERY_SECONDS or the shortest retention): finished
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

import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..background import Poller
from ..observability.metrics import count_delivery
from ..store.query import Filter, SortKey
from .allowlist import CallbackPolicy
from .eventlog import Item, LogCache, ensure_head, move_records, pending_items
from .lease import HOST, Leases, lease_holder_gone, lease_seconds, new_lease, release_dead_leases
from .outcomes import settle
from .purge import purge_finished, purge_orphan_queues, trim_log
from .queues import ensure_queues
from .records import DELIVERIES, EVENTS, LOG, LOG_HEAD, QUEUES
from .sender import Sender
from .status import Heartbeat

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 10.0      # or the shortest retention, when shorter
#: notifications of one hub sent one after the other per claim: one write
#: claims them and one records their outcomes
BATCH = 20
STEP_GAP_SECONDS = 0.02
#: a hub's kept connection (http.Session) unused this long is closed
SESSION_IDLE_SECONDS = 60.0


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
        # the log's head made (eventlog.ensure_head): it is never deleted, so
        # once is enough, not a store read every tick that has changes
        self._head_made = False
        self._start_lock = threading.Lock()
        self.log_cache = LogCache(store)
        self._last_purge = 0.0
        self._last_step = 0.0
        self._adopted = False
        self.leases = Leases(lease_seconds(settings), settings.event_timeout_seconds)
        self.heartbeat = Heartbeat(store)
        self.sender = Sender(store, settings, policy, self.leases)

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        with self._start_lock:
            self._start_in_this_process()
        self.poller.ensure_started()

    def _first_tick(self) -> None:
        try:
            ensure_queues(self.store)
            release_dead_leases(self.store)
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
            self.sender.forget_sessions()

    def stop(self) -> None:
        """No new attempt starts (a batch under way ends after its current
        one); the rest stays queued for the next start."""
        self.sender.stopping.set()
        self.poller.stop()
        self.heartbeat.end()
        self.sender.close_sessions(0.0, self._in_flight)

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

    # -- 1. sequence ------------------------------------------------------
    def sequence(self) -> int:
        """Move the recorded changes into the log, numbered; returns how
        many. A record is written in the same store transaction as its
        change (ResourceService._write), so every record read here belongs
        to a committed change."""
        if not self.store.count(EVENTS):
            return 0
        with self._sequence_lock:
            if not self._head_made:
                ensure_head(self.store)
                self._head_made = True
            with self.store.transactions(EVENTS, LOG) as tx:
                _last, records = move_records(tx[EVENTS], tx[LOG])
        return len(records)

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
        head = self.log_cache.refresh(head["last"])
        now = time.time()
        planned: dict[str, list[Item]] = {}

        def take(hub: dict) -> dict | None:
            if hub["id"] in self._in_flight:
                return None
            items, through = pending_items(hub, self.log_cache.records, head, BATCH)
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
                                  settle(tx[DELIVERIES], q, c, o, now, self.settings))
        for claimed, _outcomes in results:
            self._in_flight.discard(claimed["id"])
            self.leases.drop(claimed["id"])

    def _send_batch(self, hub: dict, items: list[Item]) -> None:
        """Send a claimed batch (sender.py) on a pool thread and hand its
        outcomes to the loop, which records them at its next step; never
        raises."""
        self._results.put((hub, self.sender.send_batch(hub, items)))
        self.poller.wake()

    # -- 4. purge ---------------------------------------------------------
    def purge(self) -> int:
        """Returns how many finished entries went."""
        now = time.time()
        self._last_purge = now
        gone = purge_finished(self.store, self.settings, now)
        ensure_queues(self.store)
        release_dead_leases(self.store)
        self.heartbeat.forget_dead(lease_holder_gone)
        self.sender.close_sessions(SESSION_IDLE_SECONDS, self._in_flight)
        trim_log(self.store, self.log_cache, purge_orphan_queues(self.store))
        return gone
