"""What /health and /metrics say about notification delivery, and the
dispatchers' heartbeats they read.

Read in O(hubs), never O(notifications): the counts come from the log's
tallies (records.py: the head holds the notifications through it per API,
each record those before it), so a hub's pending count is one subtraction
after one indexed look-up of the record after its position (the distinct
positions: at most one per hub); `recorded` is a count, its oldest the
first record in insertion order; `failed` and `delivered` one aggregate
(PostgreSQL: ``count(*)``, ``GROUP BY``). Before this, /health read every
undelivered record and ran every hub's query over them: 0.27-0.51 s and
38-55 MiB kept per worker with 12,000 waiting.

A hub with a query counts every notification of its API after its position
(its query is not evaluated here): an upper bound until the dispatcher moves
its position past the ones it does not want, which it does at its next
claim. A log written by an earlier version (records without tallies) is
counted record by record, as before, until every hub has passed it.

Stalled delivery (`stalled`, with `stallReasons`) is any of:

* a dispatcher has not written its heartbeat for `event_stall_seconds`
  (hung: stopped, swapping, or its store calls hang); a dispatcher that
  stops cleanly removes its heartbeat, and one that died is forgotten by the
  next dispatcher of its host (a restarted one shows for at most
  `event_stall_seconds` first);
* a hub's lease ended more than STALL_GRACE_SECONDS + `event_poll_seconds`
  ago and no dispatcher took it over (none is running);
* a notification to a listener that is not failing (no failed attempt, no
  open circuit) has waited longer than `event_stall_seconds`, or a change
  was recorded that long ago and is not yet sequenced. A failing listener
  is not a stall of the service: it shows as `openCircuits` and `failed`."""
from __future__ import annotations

import logging
import os
import socket
import time

from ..store.query import CountBy, Filter, Query
from .eventlog import pending_items
from .process import ALIVE_ENV, touch
from .records import DELIVERIES, DISPATCHERS, EVENTS, LOG, LOG_HEAD, QUEUES, tally_key

log = logging.getLogger(__name__)

HOST = socket.gethostname()
#: how often a dispatcher writes its heartbeat
BEAT_SECONDS = 2.0
#: a heartbeat silent this long is deleted whatever its host (a host gone)
FORGET_SECONDS = 24 * 3600.0
#: how long after a lease ended a takeover may take before it is a stall
STALL_GRACE_SECONDS = 2.0


class Heartbeat:
    """One document per running dispatcher (``eventDispatcher``), its
    ``beatAt`` written at most every BEAT_SECONDS from the dispatcher's
    loop, so a loop that hangs stops beating."""

    def __init__(self, store):
        self.store = store
        self._last = 0.0

    @staticmethod
    def key() -> str:
        return f"{HOST}:{os.getpid()}"

    def beat(self, leases: int) -> None:
        now = time.time()
        if now - self._last < BEAT_SECONDS:
            return
        self._last = now
        touch(os.environ.get(ALIVE_ENV))       # the supervisor's watchdog (process.py)
        doc = {"id": self.key(), "host": HOST, "pid": os.getpid(), "beatAt": now,
               "leases": leases}
        try:
            with self.store.transaction(DISPATCHERS) as tx:
                if tx.update(doc["id"], lambda old: {**old, **doc}) is None:
                    tx.insert(doc)
        except Exception:  # noqa: BLE001 - the next beat tries again
            log.exception("could not write the dispatcher's heartbeat")

    def end(self) -> None:
        """A clean stop: this dispatcher is no longer expected to beat."""
        if not self._last:
            return                   # never beat (not started in this process)
        try:
            self.store.delete(DISPATCHERS, self.key())
        except Exception:  # noqa: BLE001 - forgotten later by its host's next dispatcher
            pass

    def forget_dead(self, holder_gone) -> int:
        """Delete the heartbeats of dead processes of this host
        (`holder_gone`, lease.lease_holder_gone) and of any host silent
        for FORGET_SECONDS; returns how many."""
        now = time.time()

        def dead(doc: dict) -> bool:
            return now - doc.get("beatAt", 0.0) > FORGET_SECONDS or holder_gone(
                {"leaseOwner": doc.get("pid"), "leaseHost": doc.get("host")})
        doomed = [doc["id"] for doc in self.store.find(DISPATCHERS, dead)]
        for doc_id in doomed:
            self.store.delete(DISPATCHERS, doc_id)
        return len(doomed)


def _record_at(store, seq: int) -> dict | None:
    """The log record numbered `seq` (an indexed equality look-up)."""
    found, _total = store.query(LOG, Query(filters=(
        Filter(("seq",), "eq", (seq,), "number"),), limit=1))
    return found[0] if found else None


def _counted(queue: dict, record: dict, tally: dict) -> int:
    """The notifications of the hub of `queue` from `record` (the one after
    its position) through the head, from the tallies."""
    keys = {str(queue.get("api")), f"hub:{queue['id']}"}
    count = sum(tally.get(key, 0) - record["before"].get(key, 0) for key in keys)
    if tally_key(record) in keys:
        count -= queue.get("skip", 0)
    return max(count, 0)


def _counted_one_by_one(store, queues: list[dict], head: int) -> dict[str, tuple[int, float]]:
    """hub id -> (pending, recordedAt of its first) by reading the records:
    for a log written before tallies existed."""
    low = min(q["position"] for q in queues)
    found, _total = store.query(LOG, Query(filters=(
        Filter(("seq",), "gt", (low,), "number"),)))
    records = {r["seq"]: r for r in found}
    counts = {}
    for queue in queues:
        items, _through = pending_items(queue, records, head)
        if items:
            counts[queue["id"]] = (len(items), records[items[0].seq].get("recordedAt", 0.0))
    return counts


def delivery_status(store, settings) -> dict:
    """`recorded` (changes not yet sequenced), `pending` (notifications not
    yet delivered, per hub), `failed` and `delivered` (kept within their
    retention), `backlogAgeSeconds` (the oldest of those waiting, 0 when
    none), `openCircuits`, `dispatchers` (heartbeats younger than
    `event_stall_seconds`), `stalled` and `stallReasons` (module doc).
    Costs O(hubs + dispatchers) store reads, each indexed."""
    now = time.time()
    stall = settings.event_stall_seconds
    reasons: list[str] = []
    recorded = store.count(EVENTS)
    first, _total = store.query(EVENTS, Query(limit=1)) if recorded else ([], 0)
    oldest = min((r.get("recordedAt", now) for r in first), default=now)
    if now - oldest > stall:
        reasons.append(f"a change recorded {now - oldest:.0f} s ago is not yet sequenced")
    queues = store.all(QUEUES)
    head_doc = store.get(LOG, LOG_HEAD) or {}
    head, tally = head_doc.get("last", 0), head_doc.get("tally")
    behind = [q for q in queues if q["position"] < head]
    nexts = {seq: _record_at(store, seq) for seq in {q["position"] + 1 for q in behind}}
    untallied = [q for q in behind
                 if tally is None or "before" not in (nexts[q["position"] + 1] or {})]
    counts = _counted_one_by_one(store, untallied, head) if untallied else {}
    by_records = {q["id"] for q in untallied}
    for queue in behind:
        if queue["id"] not in by_records:
            record = nexts[queue["position"] + 1]
            pending = _counted(queue, record, tally)
            if pending:
                counts[queue["id"]] = (pending, record.get("recordedAt", now))
    pending = sum(count for count, _at in counts.values())
    for queue in behind:
        if queue["id"] not in counts:
            continue
        at = counts[queue["id"]][1]
        oldest = min(oldest, at)
        failing = queue.get("attempts", 0) or queue.get("circuitOpenUntil", 0.0) > now
        if not failing and now - at > stall:
            reasons.append(f"a notification for hub {queue['id']} has waited {now - at:.0f} s "
                           "and its listener is not failing")
        lease_end = queue.get("leaseUntil", 0.0)
        if lease_end and now - lease_end > STALL_GRACE_SECONDS + settings.event_poll_seconds:
            reasons.append(f"the lease of hub {queue['id']} ended {now - lease_end:.0f} s ago "
                           "and no dispatcher took it over")
    beating = 0
    for beat in sorted(store.all(DISPATCHERS), key=lambda d: d["id"]):
        silent = now - beat.get("beatAt", 0.0)
        if silent > stall:
            reasons.append(f"dispatcher {beat['id']} has not reported for {silent:.0f} s")
        else:
            beating += 1
    finished = {"failed": 0, "delivered": 0}
    for (status,), number in store.count_by(DELIVERIES, CountBy(keys=(("status",),))):
        if status in finished:
            finished[status] = number
    return {"recorded": recorded, "pending": pending, **finished,
            "backlogAgeSeconds": round(now - oldest, 3),
            "openCircuits": sum(1 for q in queues if q.get("circuitOpenUntil", 0.0) > now),
            "dispatchers": beating, "stalled": bool(reasons), "stallReasons": reasons}

