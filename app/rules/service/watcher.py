"""The watcher: reload off the request path. Requests call poll(), which
costs a clock read; at most every `check_interval` seconds it wakes this
process's watcher thread (started on first use in each process, so after a
fork too), which calls `refresh` (a stat of every file a reload reads, and
the reload itself when something changed) while the loaded version keeps
serving."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


def reload_failure(exc: Exception) -> str:
    """One line for a reload that raised (health and the log show it)."""
    return f"rule reload failed ({type(exc).__name__}): {exc}"[:500]


class Watcher:
    def __init__(self, refresh: Callable[[], None], check_interval: float):
        self.refresh = refresh
        self.check_interval = check_interval
        self.last_reload_failure: str | None = None   # why the last background reload raised, if it did
        self._next_check = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def poll(self) -> None:
        """Wake the watcher thread when `check_interval` has passed since the
        last look (a clock read otherwise)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.check_interval
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._pid = os.getpid()
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._watch, name="rules-reload", daemon=True)
            self._thread.start()
        self._wake.set()

    def refresh_now(self) -> None:
        """refresh() in the caller's thread, a failure noted as the thread's are."""
        try:
            self.refresh()
        except Exception as exc:     # keep serving the loaded version, say why (as _watch)
            self.last_reload_failure = reload_failure(exc)

    def _watch(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            wake.clear()
            try:
                self.refresh()
            except Exception as exc:     # a file that breaks the reload itself: keep serving, say why
                problem = reload_failure(exc)
                if problem != self.last_reload_failure:
                    log.error("rule reload failed, still serving the loaded rule set: %s", problem)
                self.last_reload_failure = problem
            else:
                self.last_reload_failure = None
