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


def purge_orphan_queues(store) -> int | None:
    """Delete the queues whose hub is gone; returns the lowest position of
    the hubs left (None: no hub), which the log may be trimmed to."""
    queues = store.all(QUEUES)
    # hubs read after the queues: a hub and its queue are committed together,
    # so a queue read above whose hub is not read now has no hub
    hub_ids = {hub["id"] for hub in store.all(HUBS)}
    orphans = [q["id"] for q in queues if q["id"] not in hub_ids]
    if orphans:
        with store.transaction(QUEUES) as tx:
            for hub_id in orphans:
                tx.delete(hub_id)
    return min((q["position"] for q in queues if q["id"] in hub_ids), default=None)


def trim_log(store, cache: LogCache, passed: int | None) -> int:
    """Drop the log records every hub has passed (`passed`: the lowest
    position; None when there is no hub: every record), from the store and
    from this process's `cache`; returns how many."""
    head = store.get(LOG, LOG_HEAD)
    if head is None:
        return 0
    limit = head["last"] if passed is None else passed
    cache.forget_through(limit)
    old, _total = store.query(LOG, Query(filters=(
        Filter(("seq",), "lte", (limit,), "number"),)))
    if old:
        with store.transaction(LOG) as tx:
            tx.delete_batch([record["id"] for record in old])
    return len(old)
