"""A TinyDB ``Storage`` that writes atomically and caches parsed reads.

Write path (:func:`app.atomicfile.write_atomic`)
---------------------------------
1. serialise the whole database to bytes,
2. write them to a fresh temp file *in the same directory*
   (``.<name>.json.<random hex>.tmp``, created with ``O_EXCL``),
3. ``fsync`` the temp file,
4. ``os.replace`` it onto ``<name>.json`` (atomic on POSIX: every reader sees
   either the complete old file or the complete new one, never a mix),
5. ``fsync`` the directory so the rename itself survives a power loss.

Only after step 5 does ``write()`` return, so an acknowledged write is never
only in memory.  A crash before step 4 leaves the old file intact plus an
orphan temp file (ignored by readers, removed by ``TinyDBStore`` on open).

``write()`` itself does not lock: callers (``TinyDBStore``) must hold the
collection's exclusive lock around read-modify-write, otherwise two writers
could each replace the file with their own version (lost update).

Read path and cache
-------------------
``read()`` never keeps a long-lived handle for reading: a rename replaces the
inode, so a handle opened earlier would keep showing old data.  Instead each
read ``stat()``s the path and compares ``(st_dev, st_ino, st_mtime_ns,
st_size)`` with the key of the cached snapshot; only on mismatch is the file
opened afresh, ``fstat()``-ed (the key is taken from *the descriptor we read*,
so a concurrent rename between stat and open cannot attach new data to an old
key, or vice versa) and parsed.

Why the cached version's descriptor is kept open ("pinned"): on ext4 an inode
number freed by a rename is typically reused by the very next file created in
the directory, and mtime granularity is only as good as the kernel's
timestamp clock.  Without the pin, the sequence "we cache version A (inode
X); another process writes B (inode Y, X freed) then C (inode X again, same
size, same coarse mtime)" would make C look identical to the cached A and we
would serve -- and under the lock, write back -- stale data.  Holding A's
descriptor keeps inode X allocated, so a changed file always has a different
inode number.  The pinned descriptor is never read from; it costs one fd per
collection per process and keeps one superseded file version's blocks
allocated until the next reload.

Readers need no lock because of the atomic rename (see above).  The cached
snapshot is treated as immutable: ``read()`` returns a fresh outer dict
(TinyDB assigns into it) and callers must never mutate the documents in it
(``TinyDBStore`` replaces documents, it never edits them in place), so
lock-free readers in other threads can never observe a half-modified
document.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any, NamedTuple, Optional

from tinydb.storages import Storage

from ..atomicfile import fsync_dir, write_atomic, write_temp
from .base import CorruptCollection, StoreError, os_failure

__all__ = ["AtomicJSONStorage", "TEMP_FILE_RE", "fsync_dir", "write_atomic", "write_temp"]

#: Temp files written by :func:`write_atomic` for ``<name>.json``.
#: Group 1 is ``<name>``.
TEMP_FILE_RE = re.compile(r"\.([A-Za-z][A-Za-z0-9_-]*)\.json\.[0-9a-f]{16}\.tmp")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

#: Compact, strict JSON (NaN/Infinity rejected, non-ASCII escaped).
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _read_all(fd: int, size_hint: int) -> bytes:
    chunks = []
    bufsize = max(size_hint + 1, 1 << 16)
    while True:
        chunk = os.read(fd, bufsize)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class _Snapshot(NamedTuple):
    key: tuple
    tables: dict  # {table_name: {doc_id: doc}}; never mutated once cached
    pin: int  # open fd of the file version `tables` came from (see module doc)


class AtomicJSONStorage(Storage):
    """TinyDB storage for one JSON file: atomic durable writes, cached reads.

    ``table`` (optional) names the table whose shape is validated on load:
    it must map each id to a JSON object whose ``"id"`` equals that key.
    Anything unparsable or mis-shaped raises :class:`CorruptCollection`; the
    file is never silently treated as empty (an empty *file* is corrupt too:
    this storage never writes one).

    Thread-safe for concurrent ``read()``; ``write()`` must be serialised by
    the caller (see module docstring).
    """

    def __init__(self, path: str, table: Optional[str] = None):
        self.path = path
        self.table = table
        self._swap_lock = threading.Lock()
        self._snap: Optional[_Snapshot] = None
        # {doc_id: (doc object, '"doc_id":<doc json>')} for `table`, see _serialize
        self._fragments: dict[str, tuple[object, str]] = {}

    # -- TinyDB Storage API -------------------------------------------------

    def read(self) -> Optional[dict[str, dict[str, Any]]]:
        snap = self.snapshot()
        if snap is None:
            return None
        return dict(snap.tables)  # TinyDB assigns into the outer dict

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        try:
            payload = self._serialize(data)
            fd = write_atomic(self.path, payload)
        except OSError as exc:
            self.invalidate()
            raise os_failure(f"cannot write {self.path}", exc) from exc
        except BaseException:
            self.invalidate()
            raise
        self.installed(data, fd)

    def close(self) -> None:
        self.invalidate()

    def serialize(self, data: dict) -> bytes:
        """The bytes ``write(data)`` would write (caller holds the write lock)."""
        return self._serialize(data)

    def installed(self, data: dict, fd: int) -> None:
        """``data`` is now the file's content (written here, or put in place by
        a journaled multi-file commit); ``fd``, a descriptor of the new file,
        is owned here from now on."""
        try:
            key = _stat_key(os.fstat(fd))
        except OSError:
            os.close(fd)
            self.invalidate()
            return
        self._install(_Snapshot(key, data, fd))

    # -- extras ---------------------------------------------------------------

    def snapshot(self) -> Optional[_Snapshot]:
        """Current parsed content (cached); None if the file does not exist."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.invalidate()
            return None
        except OSError as exc:
            raise StoreError(f"cannot stat {self.path}: {exc}") from exc
        snap = self._snap
        if snap is not None and snap.key == _stat_key(st):
            return snap
        return self._load()

    def invalidate(self) -> None:
        """Drop the cached snapshot (and its pinned descriptor)."""
        self._install(None)

    def after_fork_in_child(self) -> None:
        """Reset per-process state in a forked child.

        The inherited pin is a duplicate descriptor, closing it in the child
        does not affect the parent.  The swap lock may have been held by a
        parent thread at fork time, so it is replaced rather than reused.
        """
        self._swap_lock = threading.Lock()
        self._fragments = {}
        snap, self._snap = self._snap, None
        if snap is not None:
            _close_quietly(snap.pin)

    # -- internals ------------------------------------------------------------

    def _serialize(self, data: dict) -> bytes:
        """Compact JSON of ``data``, reusing per-document fragments.

        Rewriting the whole file on every write is inherent to a one-file
        store, but re-encoding every document is not: documents in the cached
        table are immutable, so a document object that was already encoded
        for the previous write (same object, checked with ``is``; the memo
        holds a reference so ids cannot be recycled) reuses its fragment.
        A write then costs O(changed docs) encoding plus an O(n) join.
        Output is byte-identical to ``json.dumps(data, separators=(",",
        ":"))``.  Only called under the caller's write lock.
        """
        table = data.get(self.table) if self.table is not None else None
        if not isinstance(table, dict):
            self._fragments = {}
            return _ENCODE(data).encode("ascii")
        memo = self._fragments
        get = memo.get

        def encode(doc_id: str, doc: object) -> str:
            frag = _ENCODE(doc_id) + ":" + _ENCODE(doc)
            memo[doc_id] = (doc, frag)
            return frag

        parts = [
            m[1] if (m := get(doc_id)) is not None and m[0] is doc else encode(doc_id, doc)
            for doc_id, doc in table.items()
        ]
        if len(memo) != len(table):  # documents were removed: drop their fragments
            self._fragments = {k: memo[k] for k in table}
        body = "{" + ",".join(parts) + "}"
        others = [
            _ENCODE(name) + ":" + (body if name == self.table else _ENCODE(value))
            for name, value in data.items()
        ]
        return ("{" + ",".join(others) + "}").encode("ascii")

    def _install(self, snap: Optional[_Snapshot]) -> None:
        with self._swap_lock:
            old, self._snap = self._snap, snap
            if old is not None:
                _close_quietly(old.pin)

    def _load(self) -> Optional[_Snapshot]:
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            self.invalidate()
            return None
        except OSError as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            st = os.fstat(fd)
            raw = _read_all(fd, st.st_size)
            tables = self._parse(raw)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot read {self.path}: {exc}") from exc
            raise
        snap = _Snapshot(_stat_key(st), tables, fd)
        self._install(snap)
        return snap

    def _parse(self, raw: bytes) -> dict:
        if not raw:
            raise CorruptCollection(self.path, "file is empty")
        try:
            tables = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise CorruptCollection(self.path, f"invalid JSON ({exc})") from None
        if not isinstance(tables, dict):
            raise CorruptCollection(self.path, "top level is not a JSON object")
        if self.table is not None and self.table in tables:
            table = tables[self.table]
            if not isinstance(table, dict):
                raise CorruptCollection(self.path, f"table {self.table!r} is not a JSON object")
            for doc_id, doc in table.items():
                if not isinstance(doc, dict) or doc.get("id") != doc_id:
                    raise CorruptCollection(
                        self.path, f"entry {doc_id!r} is not an object with a matching 'id'"
                    )
        return tables


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
