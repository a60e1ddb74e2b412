"""TinyDB backend for :class:`app.store.base.Store`.

One job, kept in one module although it is long: the Store interface on
TinyDB files, whose locking, caching, journal and atomic-replace rules
(below) depend on each other; split apart, each part would need the
others' invariants restated. The query language and the atomic file
writer it uses live beside it (query.py, atomic_storage.py).

Layout: one TinyDB JSON file per collection, ``<data_dir>/<collection>.json``,
holding one TinyDB table named after the collection whose TinyDB document ids
*are* our string ids (``{"orders": {"o-1": {"id": "o-1", ...}, ...}}``), so
``get(id)`` is a dict lookup in the cached parsed table.  Key order in the file
is insertion order.  Next to it: ``<collection>.lock`` (the cross-process
lock; never delete it while processes use the directory) and, transiently,
``.<collection>.json.<hex>.tmp`` temp files (see :mod:`.atomic_storage`).

TinyDB alone is neither thread- nor process-safe and its JSONStorage rewrites
the file in place (a crash can truncate it).  This backend adds:

Locking (writes)
    Every read-modify-write (insert/update/delete/transaction) runs under a
    per-collection :class:`_CollectionLock`: a ``threading.Lock`` *and* an
    exclusive ``fcntl.flock`` on ``<collection>.lock``.  flock locks belong to
    the *open file description*: two threads flocking the same fd do not
    exclude each other (the second call is a no-op), so the per-process fd is
    paired with a thread lock -- the thread lock serialises threads, then the
    flock serialises processes.  (A fresh fd per acquisition would also work
    but costs an open/close per write and self-deadlocks on re-entry.)  The
    kernel drops flock locks when a process dies, so a SIGKILLed writer never
    leaves the collection locked.  Re-entering the lock from the owning thread
    (e.g. calling ``store.update`` from inside ``change()`` or a transaction)
    raises StoreError instead of deadlocking.

Reads (get/all/count) take no lock
    Files are only ever replaced by an atomic rename, so a reader sees either
    the complete old version or the complete new one.  A shared flock would
    add nothing but syscalls and contention.  Reads are linearizable: once a
    write has returned (rename done), any later ``stat`` sees the new inode.

Caching
    Parsed tables are cached per collection, keyed by the file's
    (dev, inode, mtime_ns, size) and revalidated with one ``stat`` per call;
    this process's writes install the written table directly.  See
    :mod:`.atomic_storage` for why the cached version's fd is pinned.  Cached
    documents are never mutated (updates replace them), returned documents
    are deep copies.

Durability
    Every mutating call returns only after fsync(temp) + rename + fsync(dir).
    Docs are canonicalised by a JSON round-trip *before* taking the lock, so
    what is cached is exactly what another process would parse.

Fork safety
    ``os.register_at_fork`` resets every live store in the child: inherited
    lock fds are closed *without* LOCK_UN (unlocking would drop the parent's
    lock, which is shared through the inherited open file description) and
    re-opened lazily, thread locks are recreated, caches dropped.  Without
    this, a gunicorn ``--preload`` parent and its workers would share one
    open file description and their flocks would not exclude each other.

Several ``TinyDBStore`` objects in one process on the same directory are
safe with respect to each other (each has its own lock fd, so they exclude
each other through flock), but one thread must not hold a transaction in one
of them while writing the same collection through another (self-deadlock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
import weakref
from typing import Callable, Iterator, Mapping, Optional, Sequence

from tinydb import TinyDB
from tinydb.table import Document, Table

from ..atomicfile import write_all
from .atomic_storage import TEMP_FILE_RE, AtomicJSONStorage, fsync_dir, write_temp
from .base import (
    COLLECTION_NAME_RE,
    DuplicateId,
    Store,
    StoreError,
    Txn,
    os_failure,
    validate_collection,
)
from .query import CountBy, Query, count_python, run_python, values_at

__all__ = ["TinyDBStore"]

#: Readiness fails below this much free space on the data directory's
#: filesystem: a write copies a whole collection file (atomic_storage), so
#: a nearly full disk turns every write into a 503 "storage unavailable".
MIN_FREE_BYTES = 1024 * 1024


def _space_problem(path: str) -> str | None:
    """Why the filesystem of `path` cannot take writes (read-only, full), or None."""
    stats = os.statvfs(path)
    if stats.f_flag & os.ST_RDONLY:
        return "data directory is on a read-only filesystem"
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        return (f"no space left for writes: {free} bytes free on the data directory's "
                f"filesystem (at least {MIN_FREE_BYTES} needed)")
    return None


#: Journal of a multi-collection commit (see TinyDBStore.transactions).
JOURNAL_RE = re.compile(r"\.txn\.[0-9a-f]{16}\.journal")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# --------------------------------------------------------------------------
# document helpers


def _copy(obj):
    """Deep copy of canonical JSON data (dict/list/str/int/float/bool/None).

    Several times faster than copy.deepcopy for this restricted shape.
    """
    if type(obj) is dict:
        return {k: _copy(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_copy(v) for v in obj]
    return obj


def _canonical(doc: object, expect_id: Optional[str] = None, what: str = "document") -> dict:
    """Validate ``doc`` and return its JSON round-trip (a private deep copy)."""
    if not isinstance(doc, dict):
        raise TypeError(f"{what} must be a dict, got {type(doc).__name__}")
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"{what} must have a non-empty str 'id', got {doc_id!r}")
    if expect_id is not None and doc_id != expect_id:
        raise ValueError(f"{what} must keep id {expect_id!r}, got {doc_id!r}")
    return json.loads(json.dumps(doc, allow_nan=False))


def _apply_change(current: dict, doc_id: str, change: Callable[[dict], dict]) -> dict:
    new = change(_copy(current))
    if new is None:
        raise TypeError("change() must return the new document, it returned None")
    return _canonical(new, expect_id=doc_id, what="document returned by change()")


# --------------------------------------------------------------------------
# TinyDB plumbing


class _IdTable(Table):
    """TinyDB table whose document ids are our string ids."""

    document_id_class = str

    def _update_table(self, updater: Callable[[dict], None]) -> None:
        # Same as Table._update_table minus its two O(n) id-conversion
        # dict comprehensions (our ids already are the str keys JSON needs).
        tables = self._storage.read() or {}
        table = dict(tables.get(self.name, {}))
        updater(table)
        tables[self.name] = table
        self._storage.write(tables)
        self.clear_cache()

    def raw(self) -> dict:
        """The cached ``{id: doc}`` mapping.  Read-only: never mutate it."""
        return self._read_table()

    def put(self, doc_id: str, doc: dict) -> None:
        """Replace (or add) one document in a single durable write."""
        self._update_table(lambda table: table.__setitem__(doc_id, doc))

    def replace_all(self, docs: dict) -> None:
        """Replace the whole table in a single durable write (order kept)."""

        def updater(table: dict) -> None:
            table.clear()
            table.update(docs)

        self._update_table(updater)


class _TinyDB(TinyDB):
    table_class = _IdTable


# --------------------------------------------------------------------------
# locking


class _CollectionLock:
    """Exclusive lock on one collection across threads and processes.

    threading.Lock (threads of this process) + flock(LOCK_EX) on a
    per-process fd of ``<collection>.lock`` (other processes).  See the
    module docstring for why both are needed.
    """

    def __init__(self, path: str, label: str):
        self.path = path
        self.label = label
        self._tlock = threading.Lock()
        self._fd: Optional[int] = None
        self.owner: Optional[int] = None

    def acquire(self) -> None:
        me = threading.get_ident()
        if self.owner == me:
            raise StoreError(
                f"collection {self.label!r} is already locked by this thread: do not call the "
                "store for the same collection from inside update()'s change() or a "
                "transaction (use the Txn object)"
            )
        self._tlock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o666)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # EINTR is retried by Python (PEP 475)
        except OSError as exc:
            self._tlock.release()
            raise os_failure(f"cannot lock {self.path}", exc) from exc
        except BaseException:
            self._tlock.release()
            raise
        self.owner = me

    def release(self) -> None:
        self.owner = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._tlock.release()

    def __enter__(self) -> "_CollectionLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def after_fork_in_child(self) -> None:
        # Close (never LOCK_UN) the inherited fd: it shares the parent's open
        # file description, and unlocking it would release the parent's lock.
        self._tlock = threading.Lock()
        self.owner = None
        self.close()


class _Collection:
    def __init__(self, data_dir: str, name: str):
        self.name = name
        self.path = os.path.join(data_dir, name + ".json")
        self.lock = _CollectionLock(os.path.join(data_dir, name + ".lock"), name)
        self.db = _TinyDB(self.path, storage=AtomicJSONStorage, table=name)
        self.storage: AtomicJSONStorage = self.db.storage  # type: ignore[assignment]
        self.table: _IdTable = self.db.table(name)  # type: ignore[assignment]
        self.indexes: dict[tuple, tuple[object, dict]] = {}  # path -> (version, {value: [ids]})

    def index(self, path: tuple) -> tuple[dict, dict]:
        """The table and ``{str value: [ids]}`` for ``path``, rebuilt when
        the file changed (any process); swapped whole, so readers see one."""
        snap = self.storage.snapshot()
        raw = self.table.raw()
        version = None if snap is None else snap.key
        cached = self.indexes.get(path)
        if cached is not None and cached[0] == version and version is not None:
            return raw, cached[1]
        index: dict[str, list[tuple[int, str]]] = {}
        for position, (doc_id, doc) in enumerate(raw.items()):
            for value in set(v for v in values_at(doc, path) if isinstance(v, str)):
                index.setdefault(value, []).append((position, doc_id))
        self.indexes[path] = (version, index)
        return raw, index

    def close(self) -> None:
        self.db.close()
        self.lock.close()

    def after_fork_in_child(self) -> None:
        self.lock.after_fork_in_child()
        self.storage.after_fork_in_child()
        self.indexes = {}


# --------------------------------------------------------------------------
# fork handling

_live_stores: "weakref.WeakSet[TinyDBStore]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_live_stores):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------
# the store


class TinyDBStore(Store):
    """Store backed by one atomically-replaced TinyDB JSON file per collection.

    Safe for the threads of a process and for several processes (e.g.
    gunicorn workers, with or without ``--preload``) on one machine sharing
    ``data_dir`` on a local filesystem (flock is not reliable on NFS).
    Throughput is bounded by rewriting the whole collection file per write:
    keep collections small (thousands, not millions, of documents).
    """

    backend = "tinydb"

    def __init__(self, data_dir: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(data_dir))
        try:
            if not os.path.isdir(self.path):
                os.makedirs(self.path, exist_ok=True)
                fsync_dir(os.path.dirname(self.path))
        except OSError as exc:
            raise StoreError(f"cannot create data directory {self.path}: {exc}") from exc
        self._mu = threading.Lock()
        self._collections: dict[str, _Collection] = {}
        self._closed = False
        _live_stores.add(self)
        self._replay_journals()
        self._remove_orphan_temp_files()

    def __repr__(self) -> str:
        return f"<TinyDBStore path={self.path!r}>"

    # -- internals ------------------------------------------------------------

    def _coll(self, name: str) -> _Collection:
        if self._closed:
            raise StoreError("store is closed")
        coll = self._collections.get(validate_collection(name))
        if coll is None:
            with self._mu:
                coll = self._collections.get(name)
                if coll is None:
                    coll = self._collections[name] = _Collection(self.path, name)
        return coll

    def _after_fork_in_child(self) -> None:
        self._mu = threading.Lock()
        for coll in list(self._collections.values()):
            coll.after_fork_in_child()

    def _replay_journals(self) -> None:
        """Finish multi-collection commits a crashed writer left half done.

        The journal is written only once every new file is durable as a temp
        file, so rolling forward (renaming the temp files still there) gives
        exactly the committed state.  Done under the collections' locks: a
        live writer's journal is gone by the time we get them.
        """
        try:
            names = [n for n in os.listdir(self.path) if JOURNAL_RE.fullmatch(n)]
        except OSError as exc:
            raise StoreError(f"cannot list data directory {self.path}: {exc}") from exc
        for name in sorted(names):
            path = os.path.join(self.path, name)
            try:
                with open(path, encoding="utf-8") as handle:
                    renames = json.load(handle)["renames"]
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError):
                # The writer died while writing the journal, so before any
                # rename: the commit did not happen (its temp files are
                # orphans, removed next).
                os.unlink(path)
                continue
            except OSError as exc:
                raise StoreError(f"cannot read commit journal {path}: {exc}") from exc
            colls = sorted({target[:-len(".json")] for _tmp, target in renames})
            with contextlib.ExitStack() as stack:
                for coll_name in colls:
                    stack.enter_context(self._coll(coll_name).lock)
                if not os.path.exists(path):
                    continue
                for tmp, target in renames:
                    src = os.path.join(self.path, tmp)
                    if os.path.exists(src):
                        os.replace(src, os.path.join(self.path, target))
                fsync_dir(self.path)
                os.unlink(path)
                fsync_dir(self.path)

    def _remove_orphan_temp_files(self) -> None:
        """Delete temp files left by writers that crashed before the rename.

        Writers create temp files only while holding the collection lock, so
        once *we* hold it every temp file of that collection is an orphan.
        """
        try:
            names = os.listdir(self.path)
        except OSError as exc:
            raise StoreError(f"cannot list data directory {self.path}: {exc}") from exc
        dirty = {m.group(1) for m in map(TEMP_FILE_RE.fullmatch, names) if m}
        for name in sorted(dirty):
            if COLLECTION_NAME_RE.fullmatch(name) is None:
                continue
            coll = self._coll(name)
            with coll.lock:
                for fname in os.listdir(self.path):
                    m = TEMP_FILE_RE.fullmatch(fname)
                    if m and m.group(1) == name:
                        try:
                            os.unlink(os.path.join(self.path, fname))
                        except FileNotFoundError:
                            pass

    def _list_collection_files(self) -> list[str]:
        out = []
        for fname in os.listdir(self.path):
            if fname.endswith(".json"):
                name = fname[: -len(".json")]
                if COLLECTION_NAME_RE.fullmatch(name):
                    out.append(name)
        return sorted(out)

    # -- Store API --------------------------------------------------------------

    def insert(self, collection: str, doc: dict) -> dict:
        coll = self._coll(collection)
        canon = _canonical(doc)
        doc_id = canon["id"]
        with coll.lock:
            if doc_id in coll.table.raw():
                raise DuplicateId(collection, doc_id)
            coll.table.insert(Document(canon, doc_id=doc_id))
        return _copy(canon)

    def get(self, collection: str, doc_id: str) -> dict | None:
        doc = self._coll(collection).table.raw().get(doc_id)
        return None if doc is None else _copy(doc)

    def all(self, collection: str) -> list[dict]:
        return [_copy(d) for d in self._coll(collection).table.raw().values()]

    def held_back(self, collection: str) -> dict[str, str]:
        return self._coll(collection).storage.held()

    def version(self, collection: str) -> object | None:
        snap = self._coll(collection).storage.snapshot()
        return ("empty",) if snap is None else snap.key

    def find(self, collection: str, match: Callable[[dict], bool]) -> list[dict]:
        return [_copy(d) for d in self._coll(collection).table.raw().values() if match(d)]

    def find_by(self, collection: str, path: Sequence[str], values: Sequence[str]) -> list[dict]:
        raw, index = self._coll(collection).index(tuple(path))
        hits = sorted({hit for value in set(map(str, values)) for hit in index.get(value, ())})
        return [_copy(raw[doc_id]) for _position, doc_id in hits]  # insertion order

    def query(self, collection: str, query: Query) -> tuple[list[dict], int]:
        page, total = run_python(self._coll(collection).table.raw().values(), query)
        return [_copy(d) for d in page], total

    def count_by(self, collection: str, count: CountBy) -> list[tuple[tuple, int]]:
        return count_python(self._coll(collection).table.raw().values(), count)  # no copies

    def count(self, collection: str) -> int:
        return len(self._coll(collection).table.raw())

    def update(self, collection: str, doc_id: str, change: Callable[[dict], dict]) -> dict | None:
        coll = self._coll(collection)
        with coll.lock:
            current = coll.table.raw().get(doc_id)
            if current is None:
                return None
            new = _apply_change(current, doc_id, change)
            coll.table.put(doc_id, new)
        return _copy(new)

    def delete(self, collection: str, doc_id: str) -> dict | None:
        coll = self._coll(collection)
        with coll.lock:
            current = coll.table.raw().get(doc_id)
            if current is None:
                return None
            coll.table.remove(doc_ids=[doc_id])
        return _copy(current)

    @contextlib.contextmanager
    def transactions(self, *collections: str) -> Iterator[Mapping[str, Txn]]:
        colls = [self._coll(name) for name in sorted(set(collections))]
        with contextlib.ExitStack() as locks:
            for coll in colls:  # name order: two transactions never deadlock
                locks.enter_context(coll.lock)
            txns = {coll.name: _TinyTxn(coll.name, coll.table.raw()) for coll in colls}
            try:
                yield txns
            finally:
                for txn in txns.values():
                    txn._active = False
            changed = [(coll, txns[coll.name]._work) for coll in colls
                       if txns[coll.name]._work is not None]
            if len(changed) == 1:
                changed[0][0].table.replace_all(changed[0][1])
            elif changed:
                self._commit_journaled(changed)

    def _commit_journaled(self, changed: list) -> None:
        """Replace several collection files all-or-nothing: every new file
        durable as a temp file, then a journal naming them (durable), then
        the renames, then the journal removed.  A crash before the journal
        leaves only orphan temp files (the old state); after it, the next
        open rolls the renames forward (the new state)."""
        staged: list[tuple[_Collection, dict, str, int]] = []
        writing = None                   # the collection whose file failed, if one did
        try:
            for coll, work in changed:
                writing = coll.name
                tables = coll.storage.read() or {}
                tables[coll.name] = work
                tmp, fd = write_temp(coll.path, coll.storage.serialize(tables))
                staged.append((coll, tables, tmp, fd))
            writing = None
            journal = os.path.join(self.path, f".txn.{secrets.token_hex(8)}.journal")
            renames = [[os.path.basename(tmp), os.path.basename(coll.path)]
                       for coll, _tables, tmp, _fd in staged]
            _write_journal(journal, json.dumps({"renames": renames}).encode())
        except BaseException as exc:
            for coll, _tables, tmp, fd in staged:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                coll.storage.invalidate()
            if isinstance(exc, OSError):
                failure = os_failure(f"cannot write {writing or 'the journal'} in {self.path}", exc)
                # which file failed: a change whose event file cannot be
                # written is answered as such (app/resources/service.py)
                failure.collection = writing
                raise failure from exc
            raise
        try:
            for coll, _tables, tmp, _fd in staged:
                os.replace(tmp, coll.path)
            fsync_dir(self.path)
        except OSError as exc:
            for coll, _tables, _tmp, fd in staged:
                os.close(fd)
                coll.storage.invalidate()
            raise StoreError(f"commit of {[c.name for c, *_ in staged]} in {self.path} was "
                             f"interrupted ({exc}); it is completed when the store is next "
                             "opened") from exc
        for coll, tables, _tmp, fd in staged:
            coll.storage.installed(tables, fd)
        with contextlib.suppress(OSError):
            os.unlink(journal)

    def health(self) -> dict:
        report: dict = {
            "ok": True,
            "backend": self.backend,
            "path": self.path,
            "collections": {},
            "errors": {},
        }
        try:
            if self._closed:
                report["errors"]["_store"] = "store is closed"
            elif not os.path.isdir(self.path):
                report["errors"]["_store"] = "data directory is missing"
            elif problem := _space_problem(self.path):
                report["errors"]["_store"] = problem
            elif not os.access(self.path, os.W_OK | os.X_OK):
                report["errors"]["_store"] = "data directory is not writable"
            else:
                for name in self._list_collection_files():
                    try:
                        report["collections"][name] = self.count(name)
                        held = len(self.held_back(name))
                    except Exception as exc:  # noqa: BLE001 - health must not raise
                        report["errors"][name] = str(exc)
                        continue
                    if held:     # served without them: a warning, not an error
                        report.setdefault("heldBack", {})[name] = held
        except Exception as exc:  # noqa: BLE001
            report["errors"]["_store"] = f"{type(exc).__name__}: {exc}"
        report["ok"] = not report["errors"]
        return report

    def close(self) -> None:
        with self._mu:
            if self._closed:
                return
            self._closed = True
            colls, self._collections = list(self._collections.values()), {}
        for coll in colls:
            coll.close()
        _live_stores.discard(self)


def _write_journal(path: str, data: bytes) -> None:
    """Create ``path`` with ``data``, durable (file and directory fsynced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o666)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(path))


class _TinyTxn(Txn):
    """Staged operations on one collection; committed by ``transaction()``.

    Copy-on-write: ``_work`` is None until the first mutation, then a shallow
    copy of the table in which changed documents are *replaced* (the cached
    documents themselves are never mutated).
    """

    def __init__(self, collection: str, base: dict):
        self.collection = collection
        self._base = base
        self._work: Optional[dict] = None
        self._active = True
        self._owner = threading.get_ident()

    def _view(self) -> dict:
        if not self._active:
            raise StoreError("transaction is finished")
        if threading.get_ident() != self._owner:
            raise StoreError("a transaction must only be used by the thread that opened it")
        return self._base if self._work is None else self._work

    def _writable(self) -> dict:
        self._view()
        if self._work is None:
            self._work = dict(self._base)
        return self._work

    def insert(self, doc: dict) -> dict:
        canon = _canonical(doc)
        if canon["id"] in self._view():
            raise DuplicateId(self.collection, canon["id"])
        self._writable()[canon["id"]] = canon
        return _copy(canon)

    def get(self, doc_id: str) -> dict | None:
        doc = self._view().get(doc_id)
        return None if doc is None else _copy(doc)

    def all(self) -> list[dict]:
        return [_copy(d) for d in self._view().values()]

    def count(self) -> int:
        return len(self._view())

    def update(self, doc_id: str, change: Callable[[dict], dict]) -> dict | None:
        current = self._view().get(doc_id)
        if current is None:
            return None
        new = _apply_change(current, doc_id, change)
        self._writable()[doc_id] = new
        return _copy(new)

    def delete(self, doc_id: str) -> dict | None:
        current = self._view().get(doc_id)
        if current is None:
            return None
        del self._writable()[doc_id]
        return _copy(current)
