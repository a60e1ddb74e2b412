"""The decision log's write path: recording never waits for the store.

`record(doc)` appends to an in-memory buffer (bounded: `capacity` records)
and returns; a background thread of the worker writes the buffer in batches
of at most `batch_size` records every `flush_interval` seconds, or at once
when a batch is full. A batch leaves the buffer only after the store took
it, so a store that is down keeps the buffer until it is full; from then on
new decisions are dropped and counted (`reco_decisions_dropped_total`), and
answers keep flowing. A batch the store refuses for its data (not for
being down) is written record by record, and a record refused alone is
dropped and counted (reason `unwritable`), so one bad record never holds up
the rest. What a SIGKILL can lose: the buffer, at most
`capacity` records and normally one `flush_interval` of traffic
(metrics.py says how to count it). A worker that exits normally flushes first.

Reads (`get`) look in the buffer first, so a lead or a reaction that names
a decision answered a moment ago works before its batch is written.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time

from ..store.base import StoreError, StoreUnavailable
from ..timeutil import utcnow
from .ids import decision_time
from .metrics import DECISIONS, DROPPED, FLUSH_FAILURES, PENDING, PURGED, RECORDED

log = logging.getLogger(__name__)


def refused(exc: BaseException) -> bool:
    """True when the store refused the data itself, so writing it again can
    never succeed: a PostgreSQL data exception or integrity violation
    (SQLSTATE classes 22 and 23, the StoreError's cause), or a record that
    cannot be encoded (ValueError, TypeError). A store that is down, slow
    or full (StoreUnavailable, OSError) is not: the batch is kept."""
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, StoreError):
        return True
    if not isinstance(exc, StoreError) or isinstance(exc, StoreUnavailable):
        return False
    state = getattr(exc.__cause__, "sqlstate", None) or ""
    return state[:2] in ("22", "23")


_DECISIONS_BY_MODE: dict = {}


class DecisionLog:
    def __init__(self, sink, *, batch_size: int, flush_interval: float, capacity: int,
                 retention_days: float | None, purge_interval: float, purge_also=None):
        """The values come from the settings (decisions/wiring.py, their one
        home): `batch_size` answers per write at most, `flush_interval`
        seconds between writes, `capacity` answers buffered per process at
        most, `retention_days` (None: kept for ever) and `purge_interval`
        seconds between purges; `purge_also(before) -> count` purges what
        goes with the answers (reactions)."""
        self.sink = sink
        #: `before -> count`: what else is purged with the answers (reactions)
        self.purge_also = purge_also
        self.retention_days = retention_days
        self.purge_interval = purge_interval
        self._next_purge = time.monotonic() + min(60.0, purge_interval)
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.capacity = max(1, capacity)
        self._buffer: list[dict] = []
        self._pending: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._last_error_logged = 0.0

    # -- writing --------------------------------------------------------------
    def record(self, doc: dict) -> bool:
        """Queue one record; False (and counted) when the buffer is full."""
        mode = doc.get("mode") or "instant"
        counter = _DECISIONS_BY_MODE.get(mode)
        if counter is None:       # labels() validates and joins its values on every call
            counter = _DECISIONS_BY_MODE[mode] = DECISIONS.labels(mode)
        counter.inc()
        self._ensure_started()
        with self._lock:
            if len(self._buffer) >= self.capacity:
                DROPPED.labels("buffer_full").inc()
                return False
            self._buffer.append(doc)
            self._pending[doc["id"]] = doc
            full = len(self._buffer) >= self.batch_size
            PENDING.set(len(self._buffer))
        if full:
            self._wake.set()
        return True

    def _ensure_started(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            if self._pid is not None and self._pid != os.getpid():
                # a forked child: the parent's buffer is the parent's to write
                self._buffer, self._pending = [], {}
                self._flush_lock = threading.Lock()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
            self._thread.start()
            atexit.register(self.flush, 5.0)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                while self.flush_once() >= self.batch_size:
                    pass
            except Exception:  # noqa: BLE001 - the flusher must outlive any one failure
                log.exception("decision log: flush failed")
            if self.retention_days is not None and time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + self.purge_interval
                self.purge()

    def flush_once(self) -> int:
        """Write one batch from the head of the buffer; how many were written
        (0 when empty or when the store refused: the batch stays)."""
        with self._flush_lock:
            with self._lock:
                batch = self._buffer[:self.batch_size]
            if not batch:
                PENDING.set(0)
                return 0
            try:
                self.sink.write(batch)
            except Exception as exc:  # noqa: BLE001 - kept and retried; counted
                FLUSH_FAILURES.labels(type(exc).__name__).inc()
                if refused(exc):
                    # one record the store will never take must not hold up
                    # the others forever: write them one by one, drop it
                    return self._write_singly(batch)
                now = time.monotonic()
                if now - self._last_error_logged > 10.0:
                    self._last_error_logged = now
                    log.warning("decision log: %d records not written yet (%s: %s)",
                                len(self._buffer), type(exc).__name__, exc)
                time.sleep(min(1.0, self.flush_interval * 5))
                return 0
            with self._lock:
                # only the flusher removes, only record() appends: the head is the batch
                del self._buffer[:len(batch)]
                for doc in batch:
                    self._pending.pop(doc["id"], None)
                PENDING.set(len(self._buffer))
            RECORDED.inc(len(batch))
            return len(batch)

    def _write_singly(self, batch: list[dict]) -> int:
        """Write `batch` record by record after the store refused it whole;
        a record refused alone is dropped (counted, reason `unwritable`,
        logged with its id). Stops at a failure that is not a refusal (the
        rest stays buffered). How many were written."""
        done = written = 0
        for doc in batch:
            try:
                self.sink.write([doc])
                written += 1
            except Exception as exc:  # noqa: BLE001 - dropped only when refused
                if not refused(exc):
                    break
                DROPPED.labels("unwritable").inc()
                log.error("decision log: record %s dropped, the store refuses it (%s: %s)",
                          doc.get("id"), type(exc).__name__, str(exc)[:300])
            done += 1
        with self._lock:
            del self._buffer[:done]
            for doc in batch[:done]:
                self._pending.pop(doc["id"], None)
            PENDING.set(len(self._buffer))
        RECORDED.inc(written)
        return written

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything buffered (worker exit, tests, CLI); True when empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._buffer:
                    return True
            self.flush_once()
        with self._lock:
            return not self._buffer

    def purge(self) -> int:
        """Remove what is older than the retention window (every
        `purge_interval` seconds in the flusher thread; on PostgreSQL one
        DELETE on the decided_at index). How many were removed (0 on error,
        logged: the next run tries again)."""
        if self.retention_days is None:
            return 0
        before = utcnow() - dt.timedelta(days=self.retention_days)
        try:
            removed = self.sink.purge(before)
            if self.purge_also is not None:
                self.purge_also(before)
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            log.warning("decision log: purge failed (%s: %s)", type(exc).__name__, exc)
            return 0
        if removed:
            PURGED.inc(removed)
        return removed

    # -- reading --------------------------------------------------------------
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def status(self, warn_bytes: float) -> dict:
        """For /health: the store's size (embedded: a warning near its limit)
        and this worker's unwritten records."""
        try:
            found = self.sink.status(warn_bytes)
        except Exception as exc:  # noqa: BLE001 - health must not raise
            found = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        found["pending"] = self.pending()
        return found

    def buffered(self, decision_id: str) -> dict | None:
        """The record of a decision not written yet, else None (no store read)."""
        with self._lock:
            return self._pending.get(decision_id)

    def buffered_of_party(self, party_id: str) -> list[dict]:
        """The unwritten records of one party in this worker (contact
        policies count answers of a moment ago; no store read)."""
        with self._lock:
            return [doc for doc in self._pending.values() if doc.get("partyId") == party_id]

    def settle_seconds(self) -> float:
        """How long after its decision a record may still be in another
        worker's buffer: a few flush intervals and a margin for a busy host."""
        return 4 * self.flush_interval + 1.0

    def get(self, decision_id: str) -> dict | None:
        """The record of a decision, from the buffer or the store.

        Another worker of the host may have answered it and not written it
        yet: while the id's own time (UUIDv7) is less than settle_seconds()
        old, a miss is read again every 50 ms until it is that old, so a
        lead, reaction or GET right after the answer finds it on any worker.
        An id of the right shape made up by a client waits at most as long."""
        with self._lock:
            doc = self._pending.get(decision_id)
        if doc is not None:
            return doc
        found = self.sink.get(decision_id)
        decided = decision_time(decision_id) if found is None else None
        if decided is None:
            return found
        # an id dated in the future (made up) waits no longer than a fresh one
        until = min(decided.timestamp(), time.time()) + self.settle_seconds()
        while found is None and time.time() < until:
            time.sleep(min(0.05, max(0.0, until - time.time())))
            found = self.sink.get(decision_id)
        return found
