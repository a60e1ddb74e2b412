"""Storage interface used by the rest of the application.

Everything outside ``app.store`` talks to persistence only through
:class:`Store` (and :class:`Txn` inside :meth:`Store.transaction`), so a
production backend can replace the TinyDB one without touching callers.

Contract shared by all backends
-------------------------------
* A *collection* is a named set of JSON documents.  Names match
  ``[A-Za-z][A-Za-z0-9_-]*`` (at most 64 characters); anything else raises
  :class:`InvalidName`.  Collections spring into existence on first write;
  reading a collection that was never written behaves as an empty one.
* A *document* is a JSON object (``dict``) with a non-empty ``str`` field
  ``"id"`` that is unique inside its collection.  Documents must be
  JSON-serialisable (``TypeError``/``ValueError`` from :mod:`json` otherwise,
  NaN/Infinity are rejected); what is stored is the JSON round-trip of the
  given dict, e.g. tuples come back as lists.
* Every document handed out is a deep copy: mutating it never changes the
  store, and mutating a dict after passing it in never changes the store.
* A mutating call returns only once the change is durable (for TinyDB: data
  fsynced, renamed into place, directory fsynced).  If it raises, the change
  either did not happen or -- only for failures after the rename, e.g. the
  directory fsync -- it is visible but may not survive a power loss.
* ``update()`` is an atomic read-modify-write across threads *and* processes.
  ``change`` runs while the collection is locked: keep it short and do not
  call the store for the same collection from inside it.
"""

from __future__ import annotations

import contextlib
import errno
import re
from abc import ABC, abstractmethod
from typing import Callable, ContextManager, Iterator, Mapping, Sequence

from .query import CountBy, Filter, Query, SortKey, count_python, run_python, values_at

__all__ = [
    "COLLECTION_NAME_RE",
    "CorruptCollection",
    "DuplicateId",
    "InvalidName",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Txn",
    "validate_collection",
]

#: Valid collection names.  No dots or slashes, so a name can never escape the
#: data directory or collide with lock/temp files.
COLLECTION_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class StoreError(Exception):
    """Any failure of the store itself (I/O error, corrupt data, misuse)."""


class StoreUnavailable(StoreError):
    """The storage cannot take the operation now, through no fault of the
    request: the disk is full, the data directory is read-only, an I/O error
    (TinyDB), the database is unreachable or its schema is not the one this
    code knows (PostgreSQL). The API answers
    503 "storage unavailable"; nothing was written. ``reason`` is the
    operator's hint (e.g. "no space left on device")."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


#: errno values of an OSError that mean "the storage is unavailable" rather
#: than a bug: disk full, quota, read-only filesystem, permissions, I/O error.
UNAVAILABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                errno.EPERM, errno.EIO})


def os_failure(message: str, exc: OSError) -> StoreError:
    """The StoreError for an OSError: StoreUnavailable when the storage (not
    the program) is at fault, see UNAVAILABLE_ERRNOS."""
    if exc.errno in UNAVAILABLE_ERRNOS:
        return StoreUnavailable(f"{message}: {exc}", exc.strerror or str(exc))
    return StoreError(f"{message}: {exc}")


class DuplicateId(StoreError):
    """``insert()`` of an id that already exists in the collection.

    Subclass of :class:`StoreError`: catch ``DuplicateId`` first (-> 409) if
    you also handle ``StoreError`` generically.
    """

    def __init__(self, collection: str, doc_id: str):
        super().__init__(f"document with id {doc_id!r} already exists in collection {collection!r}")
        self.collection = collection
        self.doc_id = doc_id


class InvalidName(StoreError, ValueError):
    """A collection name that does not match :data:`COLLECTION_NAME_RE`."""


class CorruptCollection(StoreError):
    """A collection's file exists but cannot be parsed / has the wrong shape.

    The store never replaces such a file with an empty table; fix or remove
    the file (``path``) by hand.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"corrupt collection file {path}: {reason}")
        self.path = path
        self.reason = reason


def validate_collection(name: object) -> str:
    """Return ``name`` if it is a valid collection name, else raise InvalidName."""
    if not isinstance(name, str) or COLLECTION_NAME_RE.fullmatch(name) is None:
        raise InvalidName(
            f"invalid collection name {name!r}: must match [A-Za-z][A-Za-z0-9_-]* (max 64 chars)"
        )
    return name


class Txn(ABC):
    """Operations on one collection while its lock is held.

    Obtained from :meth:`Store.transaction`.  Reads see the transaction's own
    earlier writes.  The writes are applied all-or-nothing when the ``with``
    block exits normally (one durable write); if the block raises, nothing is
    written.  Individual Txn calls are therefore *not* durable when they
    return -- the exit of the ``with`` block is the acknowledgement.  A Txn
    must only be used by the thread that opened it, and not after the block.
    """

    collection: str

    @abstractmethod
    def insert(self, doc: dict) -> dict: ...

    @abstractmethod
    def get(self, doc_id: str) -> dict | None:
        """The document (locked until the transaction ends), None when there
        is none."""

    @abstractmethod
    def all(self) -> list[dict]: ...

    @abstractmethod
    def update(self, doc_id: str, change: Callable[[dict], dict]) -> dict | None: ...

    @abstractmethod
    def delete(self, doc_id: str) -> dict | None: ...

    @abstractmethod
    def count(self) -> int: ...

    def insert_batch(self, docs: Sequence[dict]) -> list[dict]:
        """Insert `docs` in their order, as insert() each (DuplicateId for
        an id already stored). PostgreSQL: one statement, not one round
        trip per document."""
        return [self.insert(doc) for doc in docs]

    def delete_batch(self, doc_ids: Sequence[str]) -> int:
        """Delete the documents with `doc_ids`; returns how many there were.
        PostgreSQL: one statement."""
        return sum(1 for doc_id in doc_ids if self.delete(doc_id) is not None)


class Store(ABC):
    """Abstract document store.  See the module docstring for the contract.

    What a backend can do beyond the contract is declared here, so callers
    ask for a feature instead of probing attributes or comparing names."""

    #: the backend's name in messages, /health and metrics ("tinydb", "postgresql")
    backend: str = ""
    #: one store every host reaches (a database server), not one host's files:
    #: state all workers on all hosts must agree on (the active rule set
    #: version: app/rules/repository/pointer.py) lives in it
    shared: bool = False
    #: speaks SQL through ``connection()`` (psycopg): features with tables and
    #: aggregate queries of their own (the decision log, its funnel counts)
    sql: bool = False
    #: a query's filters run in the backend (indexes); False: every query reads
    #: the whole collection in memory, so one pass is as cheap as a narrow one
    queries_in_backend: bool = False

    @property
    def display_url(self) -> str:
        """Where the data lives, for messages and /health, without secrets."""
        return self.backend

    def held_back(self, collection: str) -> dict[str, str]:
        """``{key: why}``: documents the collection holds that this store
        does not serve because it cannot hold them as they are (a
        hand-edited TinyDB file: app/store/atomic_storage.py); they are
        kept as they are, and `flask store copy` and `store check` name
        them. PostgreSQL: the documents holding a decimal this service
        would read altered (stored by an older version or by hand), found
        by reading every document."""
        return {}

    def check_schema(self) -> None:
        """Raise :class:`StoreUnavailable` when the stored schema is not the
        one this code knows (or cannot be read); backends without a schema
        version (TinyDB's JSON files) have nothing to check."""

    @abstractmethod
    def insert(self, collection: str, doc: dict) -> dict:
        """Store ``doc`` (must have a str ``'id'``).

        Raises :class:`DuplicateId` if the id exists.  Returns a deep copy of
        what was stored.
        """

    @abstractmethod
    def get(self, collection: str, doc_id: str) -> dict | None:
        """Deep copy of the document, or None."""

    @abstractmethod
    def all(self, collection: str) -> list[dict]:
        """Deep copies of all documents, in insertion order."""

    @abstractmethod
    def update(self, collection: str, doc_id: str, change: Callable[[dict], dict]) -> dict | None:
        """Atomic read-modify-write of one document.

        ``change`` gets a deep copy of the current document and returns the new
        document (it may mutate and return its argument).  The returned doc
        must keep the same ``'id'`` (ValueError otherwise).  If ``change``
        raises, nothing is written and the exception propagates.  Returns a
        deep copy of the new document, or None if ``doc_id`` does not exist
        (``change`` is then not called).
        """

    @abstractmethod
    def delete(self, collection: str, doc_id: str) -> dict | None:
        """Remove the document; returns it, or None if it did not exist."""

    def find(self, collection: str, match: Callable[[dict], bool]) -> list[dict]:
        """Copies of the documents for which ``match`` is true, in insertion
        order. ``match`` sees the stored document and must not change it;
        backends filter before copying, so a selective lookup costs no copy
        of the whole collection."""
        return [doc for doc in self.all(collection) if match(doc)]

    def find_by(self, collection: str, path: Sequence[str], values: Sequence[str]) -> list[dict]:
        """Documents in which a value reached by ``path`` (descending into
        arrays, as list filters do) is one of the strings ``values``, in
        insertion order: customer by ``engagedParty.id``, products by
        ``relatedParty.id``, leads by ``recommendation.id``.  Backends answer
        from an index (TinyDB: one kept per process and path, rebuilt when
        the collection changes; PostgreSQL: the GIN index on the document)."""
        wanted = {str(v) for v in values}
        path = tuple(path)
        return self.find(collection, lambda doc: any(
            isinstance(v, str) and v in wanted for v in values_at(doc, path)))

    def query(self, collection: str, query: Query) -> tuple[list[dict], int]:
        """The page of documents that ``query`` selects (filters, sort,
        offset/limit; see :mod:`app.store.query`) and the total number that
        match.  PostgreSQL runs it as one SQL statement."""
        return run_python(self.all(collection), query)

    def count_by(self, collection: str, count: CountBy) -> list[tuple[tuple, int]]:
        """The aggregate ``count`` (see :class:`app.store.query.CountBy`):
        ``[(values of its keys, number), ...]`` in no particular order.
        Python over the documents here (TinyDB, in memory); PostgreSQL runs
        it as one ``GROUP BY`` statement and returns only the groups."""
        return count_python(self.scan(collection), count)

    def attribute_names(self, collection: str,
                        shapes: Callable[[str | None, bool], bool]) -> set[str]:
        """The top-level attribute names of the stored documents whose shape
        ``shapes(type, located)`` accepts: ``type`` the document's ``@type``
        when it is a string (else None), ``located`` whether it carries a
        non-empty ``@schemaLocation``. A list uses it to learn the extension
        attributes of stored TMF subclasses (TMF630 part 2, polymorphism and
        extension: a ResidentialCustomer's loyaltyTier) for filters, sort
        and ``fields=``. This default looks at every document without
        copying it (TinyDB: in memory); PostgreSQL answers from the names
        recorded with each write, without reading the collection."""
        names: set[str] = set()

        def collect(doc: dict) -> bool:
            declared = doc.get("@type")
            if shapes(declared if isinstance(declared, str) else None,
                      bool(doc.get("@schemaLocation"))):
                names.update(key for key in doc if isinstance(key, str))
            return False

        self.find(collection, collect)
        return names

    def claim(self, collection: str, filters: Sequence[Filter],
              change: Callable[[dict], dict | None], limit: int = 100,
              sort: Sequence[SortKey] = ()) -> list[dict]:
        """Take up to ``limit`` documents matching ``filters`` that no other
        worker is taking, in the order of ``sort`` (then insertion order):
        ``change`` gets each (a copy) and returns the new document, or None
        to leave it; the changes are written atomically and returned.
        PostgreSQL: ``SELECT ... ORDER BY ... FOR UPDATE SKIP LOCKED``, so
        workers on any number of hosts never take the same document."""
        claimed: list[dict] = []
        with self.transaction(collection) as tx:
            _page, _total = run_python(tx.all(), Query(filters=tuple(filters), sort=tuple(sort)))
            for doc in _page:
                if len(claimed) >= limit:
                    break
                new = change(doc)
                if new is not None:
                    claimed.append(tx.update(doc["id"], lambda _current, new=new: new))
        return claimed

    def scan(self, collection: str) -> Iterator[dict]:
        """Every document, in insertion order, without holding the collection
        in memory where the backend can avoid it (PostgreSQL: a server-side
        cursor read in batches), for reports that aggregate a collection."""
        yield from self.all(collection)

    def insert_many(self, collection: str, docs: Sequence[dict]) -> list[int]:
        """Bulk load: store every document whose id is not yet in the
        collection, in one durable write; returns the positions in ``docs``
        of those not stored (id already there, or earlier in ``docs``).  PostgreSQL: one INSERT ... ON CONFLICT DO NOTHING
        per call.  No notifications: a load is not a change clients made."""
        skipped: list[int] = []
        with self.transaction(collection) as tx:
            for position, doc in enumerate(docs):
                try:
                    tx.insert(doc)
                except DuplicateId:
                    skipped.append(position)
        return skipped

    def reading(self) -> ContextManager[None]:
        """Group several reads of this thread (``with store.reading(): ...``)
        where the backend gains from it: PostgreSQL runs them on one pooled
        connection in one transaction; TinyDB reads from memory and needs
        nothing."""
        return contextlib.nullcontext()

    def collections(self) -> list[str]:
        """Names of the collections that hold documents."""
        return sorted(self.health().get("collections", {}))

    def version(self, collection: str) -> object | None:
        """A token that changes whenever the collection changes (in any
        process), so callers can keep derived indexes; None when the backend
        cannot tell cheaply, and then nothing may be cached."""
        return None

    @abstractmethod
    def count(self, collection: str) -> int:
        """Number of documents in the collection."""

    def transaction(self, collection: str) -> ContextManager[Txn]:
        """Hold the collection lock for several operations (see :class:`Txn`).

        Example -- claim up to 10 pending delivery entries atomically::

            with store.transaction("eventDelivery") as tx:
                for ev in tx.all():
                    if ev["state"] == "pending" and n < 10:
                        tx.update(ev["id"], lambda d: {**d, "state": "claimed", "by": me})

        While a thread holds a transaction, calling the store's own
        insert/update/delete for the same collection from that thread raises
        :class:`StoreError` (it would deadlock or be overwritten).
        """
        return _single(self.transactions(collection), collection)

    @abstractmethod
    def transactions(self, *collections: str) -> ContextManager[Mapping[str, Txn]]:
        """One transaction over several collections: ``{name: Txn}``; all the
        writes of all of them are applied together, or none.  Used so that a
        resource change and its event record (app/events/records.py) are
        written at once.  PostgreSQL: one SQL transaction; TinyDB: the
        collections' locks in name order and a journal that makes the
        replacement of several files all-or-nothing, also across a crash.
        """

    @abstractmethod
    def health(self) -> dict:
        """Never raises.  Shape::

            {"ok": bool,                      # False if any entry in "errors"
             "backend": "tinydb",
             "path": "/abs/data/dir",
             "collections": {name: count},    # readable collections only
             "heldBack": {name: count},       # TinyDB, when any: documents not served
             "errors": {name_or_"_store": "message (incl. the file path)"}}
        """

    @abstractmethod
    def close(self) -> None:
        """Release resources.  Further calls raise StoreError."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _single:
    """``transaction(c)`` as ``transactions(c)[c]``."""

    def __init__(self, manager, collection):
        self._manager = manager
        self._collection = collection

    def __enter__(self) -> Txn:
        return self._manager.__enter__()[self._collection]

    def __exit__(self, *exc):
        return self._manager.__exit__(*exc)
