"""Decision ids: UUID version 7 (RFC 9562, section 5.7), 48 bits of Unix
time in milliseconds then 74 random bits. Time-ordered, so a PostgreSQL
primary key on them grows at its right edge (flat insert cost), and the day
of a decision can be read from its id: the embedded store finds a decision
in its one day file without an index."""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid

# Random bytes for ids, read from the OS 4 KiB at a time: one getrandom call
# per 409 ids instead of one per id (a system call that also hands the GIL to
# the worker's other threads on every answer). Still the OS's CSPRNG, as RFC
# 9562 section 6.9 asks; emptied in a forked child, so no two processes ever
# hand out the same bytes.
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0
_pool_lock = threading.Lock()


def _random10() -> bytes:
    global _pool, _pool_at
    with _pool_lock:
        if _pool_at + 10 > len(_pool):
            _pool, _pool_at = os.urandom(_POOL_BYTES), 0
        start = _pool_at
        _pool_at = start + 10
        return _pool[start:start + 10]


def _empty_pool() -> None:
    global _pool, _pool_at, _pool_lock
    _pool, _pool_at, _pool_lock = b"", 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_empty_pool)


def new_decision_id(now: float | None = None) -> str:
    """A new UUIDv7 as text (36 characters); `now` in seconds since the epoch."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(_random10(), "big") & ((1 << 74) - 1)
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def decision_time(decision_id: str) -> dt.datetime | None:
    """When a UUIDv7 id was made (aware UTC), or None for any other text."""
    try:
        value = uuid.UUID(decision_id)
    except (ValueError, TypeError, AttributeError):
        return None
    if value.version != 7:
        return None
    return dt.datetime.fromtimestamp((value.int >> 80) / 1000.0, dt.timezone.utc)
