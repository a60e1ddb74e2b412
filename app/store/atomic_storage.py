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

Documents the service cannot hold ("held back")
-----------------------------------------------
A hand-edited file may hold, in one document, a number no double keeps
exactly (``12345678901234567890.5``, ``1e400``: Python's json would read
them as an altered float or infinity), the non-JSON constants ``NaN`` and
``Infinity`` (which Python's json accepts), an integer longer than
Python reads (4,300 digits: json would refuse the whole file), a document whose key is not
its ``"id"``, or a value that is not an object. The API and ``flask store
load`` refuse all of these (app/exactnumbers.py, app/jsonbody.py). The
reader reads numbers by the same rule and holds such a document back
instead of refusing the whole file: it is not in the table the store
serves (a GET of it is 404, lists leave it out), a warning names it (file,
key, why) once per process, :meth:`held` lists it (for
``flask store copy`` and ``flask store check``), and every write of the
collection writes it back as it was read (its numbers exactly as written,
the rest as compact JSON), so the service neither alters nor drops it. The other documents are served as usual. A
write that stores a document under a held-back key replaces it (logged).

Readers need no lock because of the atomic rename (see above).  The cached
snapshot is treated as immutable: ``read()`` returns a fresh outer dict
(TinyDB assigns into it) and callers must never mutate the documents in it
(``TinyDBStore`` replaces documents, it never edits them in place), so
lock-free readers in other threads can never observe a half-modified
document.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, NamedTuple, Optional

from tinydb.storages import Storage

from ..atomicfile import fsync_dir, write_atomic, write_temp
from ..exactnumbers import InexactNumber, stored_float
from .base import CorruptCollection, StoreError, os_failure

log = logging.getLogger(__name__)
#: (path, key, why) of the held-back documents this process has logged
_WARNED: set[tuple[str, str, str]] = set()

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
    held: dict  # {key: (its JSON text as read, why)}: documents held back (module doc)


class _Unheld:
    """A number literal no double holds exactly (or NaN, Infinity), kept as
    the text the file has, so that the document holding it can be written
    back unchanged."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _number_problem(value) -> Optional[str]:
    """Why a parsed document cannot be held (its first unheld number in
    text order), or None."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, _Unheld):
            if node.text in ("NaN", "Infinity", "-Infinity"):
                return f"{node.text} is not a JSON number"
            if node.text.lstrip("-").isdigit():
                return (f"integer {node.text[:20]}... has {len(node.text.lstrip('-'))} digits, "
                        "more than this service reads")
            try:
                stored_float(node.text)
            except InexactNumber as exc:
                return str(exc)
            return f"number {node.text[:40]} cannot be read"      # not reached
        if isinstance(node, dict):      # reversed: the first in the text is named
            stack.extend(reversed(node.values()))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return None


def _held_text(value) -> str:
    """Compact JSON of a parsed document with its unheld numbers as read."""
    if isinstance(value, _Unheld):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(_ENCODE(k) + ":" + _held_text(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_held_text, value)) + "]"
    return _ENCODE(value)


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
        # the held-back documents the last _serialize wrote (see installed)
        self._written_held: dict = {}

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
        self._install(_Snapshot(key, data, fd, self._written_held))

    def held(self) -> dict[str, str]:
        """``{key: why}``: the documents of the current file version that
        are held back (module docstring); {} when none (or no file)."""
        snap = self.snapshot()
        return {} if snap is None else {key: why for key, (_text, why) in snap.held.items()}

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
        self._written_held = {}
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
        snap = self._snap
        held = snap.held if snap is not None else {}
        if not isinstance(table, dict):
            self._fragments = {}
            self._written_held = {}
            return _ENCODE(data).encode("ascii")
        if held:
            replaced = [key for key in held if key in table]
            for key in replaced:
                log.warning("%s: the held-back document %r is replaced by a document the "
                            "service wrote", self.path, key)
            held = {key: entry for key, entry in held.items() if key not in table}
        self._written_held = held
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
        parts.extend(_ENCODE(key) + ":" + text for key, (text, _why) in held.items())
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
            tables, held = self._parse(raw)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot read {self.path}: {exc}") from exc
            raise
        for key, (_text, why) in held.items():
            if (self.path, key, why) not in _WARNED:   # once per process, not per re-read
                _WARNED.add((self.path, key, why))
                log.warning("%s: document %r is held back (not served, kept in the file as "
                            "it is): %s", self.path, key, why)
        snap = _Snapshot(_stat_key(st), tables, fd, held)
        self._install(snap)
        return snap

    def _parse(self, raw: bytes) -> tuple[dict, dict]:
        """(the tables, the held-back documents of ``self.table``).

        Numbers are read as the API reads them (app/exactnumbers.py): a
        float is kept only when it is the number the text says; any other
        number literal, NaN/Infinity, and an integer longer than Python's
        ``int()`` reads (4,300 digits by default), becomes an ``_Unheld``
        and holds its document back. The hooks cost a Python call per float literal
        (most take the ``repr`` fast path); the documents are walked only
        when one was found."""
        if not raw:
            raise CorruptCollection(self.path, "file is empty")
        unheld = []

        def number(text: str):
            value = float(text)
            if repr(value) == text:
                return value
            try:
                return stored_float(text)
            except InexactNumber:
                unheld.append(text)
                return _Unheld(text)

        def constant(text: str):
            unheld.append(text)
            return _Unheld(text)

        def integer(text: str):
            try:
                return int(text)
            except ValueError:      # longer than Python reads (sys.get_int_max_str_digits)
                unheld.append(text)
                return _Unheld(text)

        hooks = {"parse_float": number, "parse_constant": constant}
        try:
            try:
                tables = json.loads(raw, **hooks)
            except json.JSONDecodeError:
                raise
            except ValueError:      # an integer too long for int(): read them one by one
                tables = json.loads(raw, parse_int=integer, **hooks)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise CorruptCollection(self.path, f"invalid JSON ({exc})") from None
        if not isinstance(tables, dict):
            raise CorruptCollection(self.path, "top level is not a JSON object")
        held: dict[str, tuple[str, str]] = {}
        if self.table is not None and self.table in tables:
            table = tables[self.table]
            if not isinstance(table, dict):
                raise CorruptCollection(self.path, f"table {self.table!r} is not a JSON object")
            for doc_id, doc in table.items():
                if not isinstance(doc, dict):
                    why = "not a JSON object"
                elif doc.get("id") != doc_id:
                    why = f"its 'id' ({doc.get('id')!r}) is not its key ({doc_id!r})"
                elif unheld:
                    why = _number_problem(doc)
                else:
                    why = None
                if why is not None:
                    held[doc_id] = (_held_text(doc), why)
            if held:
                tables[self.table] = {k: v for k, v in table.items() if k not in held}
        if unheld:
            outside = _number_problem(tables)    # in no document of the table
            if outside is not None:
                raise CorruptCollection(self.path, outside)
        return tables, held


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
