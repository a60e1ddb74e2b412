"""The ordered delivery log (``eventLog``) every hub reads from: numbering
the recorded changes into it, and reading a hub's pending notifications.

The requests write change records into ``event`` (records.py); the
dispatcher moves them, numbered, into one log shared by all hubs, in one
transaction that locks the log's ``head`` document, so every worker on every
host numbers records in one order (the order their changes committed in).
The head exists before anyone numbers (ensure_head): PostgreSQL cannot lock
a row that is not there yet. A
hub's queue holds its position in the log (``position``, and ``skip``: the
notifications of the next record already settled). Records never change once
written, so a process reads each at most once (LogCache)."""
from __future__ import annotations

from dataclasses import dataclass

from ..store import DuplicateId
from ..store.query import Filter, Query
from .hubquery import wants
from .records import LOG, LOG_HEAD, QUEUES, tally_key

#: PostgreSQL: log records read per query, by equality on ``seq`` (served
#: by the GIN index: 0.5 ms for 20 alternatives, EXPLAIN ANALYZE, where
#: ``seq > n`` reads every record of the log: 75 ms at 12,000, so a
#: dispatcher behind got slower the further behind it was); and the most
#: read per tick (the claims of one tick use at most BATCH per hub)
READ_CHUNK = 20
READ_MAX = 400


@dataclass(frozen=True)
class Item:
    """One notification of a batch: record `seq`, its `index` among the
    record's notifications."""
    seq: int
    index: int
    notification: dict
    trace_headers: dict


def ensure_head(store) -> None:
    """Create the log's head document (``last`` 0, no tallies) when there is
    none yet, in a write of its own, before a transaction that reads the
    head through a Txn (move_records, log_head). Inside such a transaction
    `get` locks the head (PostgreSQL: SELECT ... FOR UPDATE), which is what
    makes writers number one after the other; but a row that does not exist
    cannot be locked. Without this, on a fresh database the first two
    writers (a hub registration and the dispatcher, or two registrations in
    two workers) both read no head, both numbered from 0, and the second
    failed on a duplicate id (a record's or the head's) when the first
    committed: the client's hub registration was answered 409 CONFLICT
    (CI, 2026-12-07). The head is
    never deleted (trim_log drops records by seq), so once made it stays.
    One read when it exists (TinyDB: its transactions already run one at a
    time)."""
    if store.get(LOG, LOG_HEAD) is not None:
        return
    try:
        store.insert(LOG, {"id": LOG_HEAD, "last": 0, "tally": {}})
    except DuplicateId:
        pass                # another writer made it first: the same document


def log_head(txn) -> int:
    """The last seq given, read (PostgreSQL: locked) through a Txn of LOG
    (ensure_head first)."""
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
    trips per record); returns (the last seq, the records moved). Call
    ensure_head(store) before the transaction."""
    head = log_txn.get(LOG_HEAD)
    records = events_txn.all()
    last = append(log_txn, records, head)
    events_txn.delete_batch([record["id"] for record in records])
    return last, records


def after(item: Item) -> tuple[int, int]:
    """(position, skip) once `item` is settled."""
    return item.seq - 1, item.index + 1


class LogCache:
    """This process's copy of the log records it has read (seq -> record),
    for the claims of every tick; records are read once each, never again."""

    def __init__(self, store):
        self.store = store
        self.records: dict[int, dict] = {}
        self._seen = 0
        self._started = False

    def refresh(self, head: int) -> int:
        """Read the log records this process has not seen, up to `head`
        (they never change once written, so each is read once); returns the
        seq read up to, which the claims of this tick must not pass (a
        record not read would look purged). Every record up to `head` is
        committed: the head is written in the transaction that appends."""
        if head <= self._seen:
            return self._seen
        if not self.store.queries_in_backend:
            # in memory: one pass over the log
            records, _total = self.store.query(LOG, Query(filters=(
                Filter(("seq",), "gt", (self._seen,), "number"),)))
            for record in records:
                if record["seq"] <= head:
                    self.records[record["seq"]] = record
            self._seen = head
            return head
        if not self._started:
            # a fresh process: nothing before the hub furthest behind matters
            # (it may be long purged)
            self._started = True
            self._seen = max(self._seen, min(
                (q["position"] for q in self.store.all(QUEUES)), default=head))
        upto = min(head, self._seen + READ_MAX)
        for start in range(self._seen + 1, upto + 1, READ_CHUNK):
            seqs = tuple(range(start, min(start + READ_CHUNK, upto + 1)))
            records, _total = self.store.query(LOG, Query(filters=(
                Filter(("seq",), "eq", seqs, "number"),)))
            for record in records:
                self.records[record["seq"]] = record
        self._seen = upto
        return upto

    def forget_through(self, limit: int) -> None:
        """Drop the records up to seq `limit` (trimmed from the log)."""
        for seq in [s for s in self.records if s <= limit]:
            del self.records[seq]
