"""Where the active rule set version is recorded ("the pointer"), with a
revision number for compare-and-set.

Two implementations of one small interface, used by the rule service:

* :class:`FilePointer` -- ``active-rulesets.json`` in the data directory
  (TinyDB deployments: one host; every worker sees a change at its next
  ``stat``).
* :class:`StorePointer` -- one document in the store (PostgreSQL
  deployments): every worker on every host reads it at most
  ``poll_seconds`` apart, so an activation on one host is served everywhere
  within that time plus one request.

Both refuse a write whose ``expected`` revision is no longer current
(:class:`Superseded`): of two activations started together, one wins and
the other is told so (it may retry or report it), instead of both reporting success.

Pointer shape: ``{ruleset_id: {"version", "hash", "activatedAt"}}``.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

from ...store.base import DuplicateId
from .files import write_json_atomic

__all__ = ["FilePointer", "StorePointer", "Superseded"]


class Superseded(Exception):
    """The pointer changed between reading it and writing it."""

    def __init__(self, expected: int, current: int, pointer: dict):
        super().__init__(f"the active rule set pointer changed meanwhile (revision {expected} "
                         f"expected, {current} found): another activation came first")
        self.expected = expected
        self.current = current
        self.pointer = pointer


def _clean(rulesets) -> dict:
    return {k: v for k, v in (rulesets or {}).items()
            if isinstance(v, dict) and isinstance(v.get("version"), str)}


class FilePointer:
    """The pointer as a JSON file, replaced atomically; compare-and-set under
    an flock on its directory (no extra file beside it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.location = str(self.path)

    def token(self):
        """Changes whenever the pointer may have changed (cheap: one stat)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return ("pointer", None)
        return ("pointer", st.st_ino, st.st_mtime_ns, st.st_size)

    def invalidate(self) -> None:
        """Nothing is polled: token() stats the file each time."""

    def read(self) -> tuple[dict, int]:
        """(pointer, revision); OSError/ValueError when unreadable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, 0
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        revision = data.get("revision", 0)
        return _clean(data.get("rulesets")), revision if isinstance(revision, int) else 0

    def compare_and_set(self, expected: int, pointer: dict) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current_pointer, current = self.read()
            if current != expected:
                raise Superseded(expected, current, current_pointer)
            write_json_atomic(self.path, {"rulesets": pointer, "revision": current + 1})
            return current + 1
        finally:
            os.close(fd)  # releases the flock


class StorePointer:
    """The pointer as the document ``pointer`` of collection
    ``rulesetActivation`` in the shared store."""

    COLLECTION = "rulesetActivation"
    DOC_ID = "pointer"

    def __init__(self, store, poll_seconds: float = 1.0):
        self.store = store
        self.poll_seconds = poll_seconds
        self.location = f"{store.display_url} ({self.COLLECTION})"
        self._lock = threading.Lock()
        self._checked = 0.0
        self._token: object = ("pointer", None)

    def token(self):
        """The revision, read at most every ``poll_seconds``; when the store
        is unreachable the last known one (the service keeps serving)."""
        now = time.monotonic()
        if now - self._checked < self.poll_seconds:
            return self._token
        with self._lock:
            if now - self._checked >= self.poll_seconds:
                try:
                    _pointer, revision = self.read()
                    self._token = ("pointer", revision)
                except Exception:  # noqa: BLE001 - /health reports the store itself
                    pass
                self._checked = now
        return self._token

    def invalidate(self) -> None:
        """The next token() reads the store: an activation on this host said
        so (its stamp file), and every worker here must see it now, not
        ``poll_seconds`` later."""
        self._checked = 0.0

    def read(self) -> tuple[dict, int]:
        doc = self.store.get(self.COLLECTION, self.DOC_ID)
        if doc is None:
            return {}, 0
        return _clean(doc.get("rulesets")), int(doc.get("revision", 0))

    def compare_and_set(self, expected: int, pointer: dict) -> int:
        new = {"id": self.DOC_ID, "rulesets": pointer, "revision": expected + 1}
        if expected == 0:
            try:
                self.store.insert(self.COLLECTION, new)
            except DuplicateId:
                current_pointer, current = self.read()
                raise Superseded(expected, current, current_pointer) from None
        else:
            def change(doc: dict) -> dict:
                if doc.get("revision", 0) != expected:
                    raise Superseded(expected, doc.get("revision", 0), _clean(doc.get("rulesets")))
                return new

            if self.store.update(self.COLLECTION, self.DOC_ID, change) is None:
                raise Superseded(expected, 0, {})
        self._checked = 0.0  # this process sees its own change at once
        return expected + 1
