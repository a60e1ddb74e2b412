"""A small periodic worker thread, one per process.

Started explicitly when the serving process is ready (gunicorn's
post_worker_init, see app.start_background), not at import: gunicorn may fork
after the app is built and threads do not survive a fork, so
ensure_started() starts a fresh thread whenever it runs in a new process."""
from __future__ import annotations

import contextvars
import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, name: str, tick: Callable[[], None], interval: float):
        self.name = name
        self.tick = tick
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._pid == os.getpid() and self._thread and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Hurry the next tick; starting is left to ensure_started(), so a
        process configured without background workers never gets one."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread and self._pid == os.getpid():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            # each tick in an empty context: what one tick binds (a job's
            # rule set version in its log lines) is not logged by the next
            contextvars.Context().run(self._tick_once)
            self._wake.wait(self.interval)
            self._wake.clear()

    def _tick_once(self) -> None:
        """One tick; its failure is logged inside the tick's context, so the
        line carries what the tick had bound (the job's rule set version)."""
        try:
            self.tick()
        except Exception:  # a worker must outlive any one failure
            log.exception("%s: tick failed", self.name)
