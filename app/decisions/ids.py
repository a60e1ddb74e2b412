"""Decision ids: UUID version 7 (RFC 9562, section 5.7), 48 bits of Unix
time in milliseconds then 74 random bits. Time-ordered, so a PostgreSQL
primary key on them grows at its right edge (flat insert cost), and the day
of a decision can be read from its id: the embedded store finds a decision
in its one day file without an index."""
from __future__ import annotations

import datetime as dt
import os
import time
import uuid


def new_decision_id(now: float | None = None) -> str:
    """A new UUIDv7 as text (36 characters); `now` in seconds since the epoch."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big") & ((1 << 74) - 1)
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
