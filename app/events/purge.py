"""What the dispatcher removes, every PURGE_EVERY_SECONDS (or the shortest
retention): finished entries past their retention
(`event_delivered_retention_seconds`, `event_failed_retention_seconds`) or of
deleted hubs, queues of deleted hubs, and the log records every hub has
passed. Each is one transaction; what one purge misses the next one takes."""
from __future__ import annotations

from ..store.query import Filter, Query
from .eventlog import LogCache
from .records import DELIVERIES, HUBS, LOG, LOG_HEAD, QUEUES


def purge_finished(store, settings, now: float) -> int:
    """Delete the finished entries past their retention, and those of hubs
    that no longer exist; returns how many went."""
    hub_ids = {hub["id"] for hub in store.all(HUBS)}
    keep = {"delivered": settings.event_delivered_retention_seconds,
            "failed": settings.event_failed_retention_seconds}

    def expired(entry: dict) -> bool:
        if entry.get("hubId") not in hub_ids:
            return True
        retention = keep.get(entry.get("status"))
        return retention is not None and (entry.get("finishedAt") or now) + retention <= now

    doomed = [e["id"] for e in store.find(DELIVERIES, expired)]
    if doomed:
        with store.transaction(DELIVERIES) as tx:
            for entry_id in doomed:
                tx.delete(entry_id)
    return len(doomed)


def purge_orphan_queues(store) -> int:
    """Delete the queues whose hub is gone; returns the seq the log may be
    trimmed through: the lowest position of the hubs left, or with no hub
    the log's head as read BEFORE the queues. A hub registered after the
    queues were read starts at the head of its registration, which is at or
    after that one; the head read later may already count changes numbered
    for that hub (another worker's dispatcher or registration), and
    trimming through it lost them."""
    head = store.get(LOG, LOG_HEAD)
    before = head["last"] if head else 0
    queues = store.all(QUEUES)
    # hubs read after the queues: a hub and its queue are committed together,
    # so a queue read above whose hub is not read now has no hub
    hub_ids = {hub["id"] for hub in store.all(HUBS)}
    orphans = [q["id"] for q in queues if q["id"] not in hub_ids]
    if orphans:
        with store.transaction(QUEUES) as tx:
            for hub_id in orphans:
                tx.delete(hub_id)
    return min((q["position"] for q in queues if q["id"] in hub_ids), default=before)


def trim_log(store, cache: LogCache, passed: int) -> int:
    """Drop the log records every hub has passed (`passed`: what
    purge_orphan_queues returns), from the store and from this process's
    `cache`; returns how many."""
    if passed <= 0:
        return 0
    cache.forget_through(passed)
    old, _total = store.query(LOG, Query(filters=(
        Filter(("seq",), "lte", (passed,), "number"),)))
    if old:
        with store.transaction(LOG) as tx:
            tx.delete_batch([record["id"] for record in old])
    return len(old)
