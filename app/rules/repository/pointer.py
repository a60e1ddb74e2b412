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

Both can take back their last write (``take_back``): an activation whose
history entry the store then refused (a full disk) must leave the pointer
as it was, or the version serves with no record of who activated it.

Pointer shape: ``{ruleset_id: {"version", "hash", "activatedAt"}}``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from ...atomicfile import fsync_dir
from ...store.base import DuplicateId
from .files import write_json_atomic, write_text_atomic
from .polled import Polled

#: errnos of a filesystem that cannot make the hard link compare_and_set keeps
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS)

__all__ = ["FilePointer", "Pointer", "StorePointer", "Superseded"]


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


@runtime_checkable
class Pointer(Protocol):
    """The interface both pointers implement, declared so that the rule
    service and the CLI call it instead of probing for what a pointer has."""

    #: where it lives, for people: a file path, or the store's URL and collection
    location: str

    def token(self):
        """Changes whenever the pointer may have changed (cheap)."""

    def invalidate(self) -> None:
        """The next token() looks again (an activation on this host said so)."""

    def read(self) -> tuple[dict, int]:
        """(pointer shape above, revision; 0 when none was written)."""

    def compare_and_set(self, expected: int, pointer: dict) -> int:
        """Write `pointer` if the revision is still `expected`; the new
        revision. Raises Superseded otherwise."""

    def take_back(self, revision: int) -> bool:
        """Undo the write that made `revision` if it is still the current one."""

    def settle(self) -> None:
        """The last write stays: forget what take_back would put back."""


class FilePointer:
    """The pointer as a JSON file, replaced atomically; compare-and-set under
    an flock on its directory (no extra file beside it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.location = str(self.path)
        self._previous_text: str | None = None    # see compare_and_set

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

    @property
    def previous_path(self) -> Path:
        """The pointer as it was before the last compare_and_set, while that
        write may still be taken back (a hard link: it needs no room)."""
        return self.path.with_name(f".{self.path.name}.previous")

    def compare_and_set(self, expected: int, pointer: dict) -> int:
        """Write `pointer` as revision `expected` + 1 (Superseded when the
        file's revision is not `expected`: nothing is written). The file it
        replaces stays as previous_path until take_back or settle."""
        with self._locked():
            current_pointer, current = self.read()
            if current != expected:
                raise Superseded(expected, current, current_pointer)
            self.previous_path.unlink(missing_ok=True)
            self._previous_text = None
            if self.path.exists():
                try:
                    os.link(self.path, self.previous_path)
                except OSError as exc:
                    if exc.errno not in _NO_HARD_LINKS:
                        raise
                    # a filesystem without hard links: kept in memory (a take
                    # back then needs room for one small file)
                    self._previous_text = self.path.read_text(encoding="utf-8")
            try:
                write_json_atomic(self.path, {"rulesets": pointer, "revision": current + 1})
            except BaseException:
                self.previous_path.unlink(missing_ok=True)
                raise
            return current + 1

    def take_back(self, revision: int) -> bool:
        """Put back the pointer that compare_and_set replaced with `revision`:
        a rename of previous_path (or the removal of a pointer that did not
        exist), so it needs no room on a full disk. False, and nothing done,
        when another write came since."""
        with self._locked():
            try:
                _pointer, current = self.read()
            except (OSError, ValueError):
                return False
            if current != revision:
                return False
            if self.previous_path.exists():
                os.replace(self.previous_path, self.path)
            elif self._previous_text is not None:
                write_text_atomic(self.path, self._previous_text)
            else:
                self.path.unlink(missing_ok=True)
            fsync_dir(str(self.path.parent))
            return True

    def settle(self) -> None:
        """The last write stays: forget the pointer it replaced."""
        self._previous_text = None
        try:
            self.previous_path.unlink(missing_ok=True)
        except OSError:
            pass

    @contextlib.contextmanager
    def _locked(self):
        """An flock on the pointer's directory (no extra file beside it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


class StorePointer:
    """The pointer as the document ``pointer`` of collection
    ``rulesetActivation`` in the shared store."""

    COLLECTION = "rulesetActivation"
    DOC_ID = "pointer"

    def __init__(self, store, poll_seconds: float = 1.0):
        self.store = store
        self.location = f"{store.display_url} ({self.COLLECTION})"
        self._revision = Polled(lambda: ("pointer", self.read()[1]), poll_seconds, ("pointer", None))

    def token(self):
        """The revision, read at most every ``poll_seconds``; when the store
        is unreachable the last known one (the service keeps serving)."""
        return self._revision.get()

    def invalidate(self) -> None:
        """The next token() reads the store: an activation on this host said
        so (its stamp file), and every worker here must see it now, not
        ``poll_seconds`` later."""
        self._revision.invalidate()

    def read(self) -> tuple[dict, int]:
        doc = self.store.get(self.COLLECTION, self.DOC_ID)
        if doc is None:
            return {}, 0
        return _clean(doc.get("rulesets")), int(doc.get("revision", 0))

    def compare_and_set(self, expected: int, pointer: dict) -> int:
        new = {"id": self.DOC_ID, "rulesets": pointer, "revision": expected + 1, "previous": {}}
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
                return {**new, "previous": _clean(doc.get("rulesets"))}     # for take_back

            if self.store.update(self.COLLECTION, self.DOC_ID, change) is None:
                raise Superseded(expected, 0, {})
        self._revision.invalidate()  # this process sees its own change at once
        return expected + 1

    def take_back(self, revision: int) -> bool:
        """Undo the compare_and_set that wrote `revision` (False: another
        write came since, or the store refused this one too). The rulesets
        before it come from the document's own history: kept in it by
        compare_and_set as ``previous``."""
        def change(doc: dict) -> dict:
            if doc.get("revision", 0) != revision:
                raise Superseded(revision, doc.get("revision", 0), _clean(doc.get("rulesets")))
            return {"id": self.DOC_ID, "rulesets": doc.get("previous") or {}, "revision": revision + 1}

        try:
            done = self.store.update(self.COLLECTION, self.DOC_ID, change) is not None
        except Exception:  # noqa: BLE001 - the caller reports the first failure
            return False
        self._revision.invalidate()
        return done

    def settle(self) -> None:
        """Nothing to forget: the document keeps one ``previous`` only."""
