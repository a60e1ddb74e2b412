"""A value read from the shared store at most every few seconds.

The rule service compares a signature of what it serves on every reload
check; on PostgreSQL two parts of it (the pointer's revision, the ledger's
record count) are a round trip each, so each is read at most every
``poll_seconds`` and, while the store is unreachable, the last known value
stands (the service keeps serving; /health reports the store itself)."""
from __future__ import annotations

import threading
import time
from typing import Callable


class Polled:
    """``get()``: ``read()``'s last value, read again once ``poll_seconds``
    have passed (or after ``invalidate()``); ``initial`` until a read succeeds."""

    def __init__(self, read: Callable[[], object], poll_seconds: float, initial: object):
        self._read = read
        self.poll_seconds = poll_seconds
        self.value = initial
        self._lock = threading.Lock()
        self._checked = 0.0

    def get(self) -> object:
        now = time.monotonic()
        if now - self._checked < self.poll_seconds:
            return self.value
        with self._lock:
            if now - self._checked >= self.poll_seconds:
                try:
                    self.value = self._read()
                except Exception:  # noqa: BLE001 - see the module docstring
                    pass
                self._checked = now
        return self.value

    def invalidate(self) -> None:
        """The next get() reads (this process's own change, or an admin call
        that wants the value as it is now)."""
        self._checked = 0.0
