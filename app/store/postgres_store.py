"""PostgreSQL backend for :class:`app.store.base.Store` (psycopg 3 + psycopg_pool).

One job, kept in one module although it is long: the Store interface in
SQL, where pooling, transactions and the error mapping (below) share one
connection discipline; the SQL for list queries is apart
(postgres_query.py), as are the migrations (schema.py, migrations/).

Layout: one table ``documents(collection, id, seq, doc jsonb)`` for every
collection (see ``migrations/versions``), primary key ``(collection, id)``,
``seq`` the insertion order, a GIN ``jsonb_path_ops`` index on ``doc`` for
look-ups by path.  List queries run as SQL (:mod:`.postgres_query`); no
operation but :meth:`all`, :meth:`scan` and :meth:`find` reads a whole
collection.  Every write also records the document's top-level attribute
names per shape in ``document_attributes`` (same statement, same
transaction), from which :meth:`attribute_names` answers.

Connections
    One :class:`psycopg_pool.ConnectionPool` per process, created on first
    use in that process, so a gunicorn worker forked from a ``--preload``
    parent never shares the parent's sockets.  A connection idle for more
    than two seconds is checked when taken from the pool (one round trip),
    so that connections broken by a database restart are replaced rather
    than failing a request.  Waiting
    for a connection is bounded (``pool_timeout``), statements are bounded
    (``statement_timeout``): an unreachable or stuck database becomes
    :class:`StoreUnavailable` (a 503) in bounded time, never a hang.  The pool
    reconnects in the background, so the service recovers by itself.

Durability
    Each mutating call is one transaction committed before it returns
    (``synchronous_commit`` is the server's, on by default): an acknowledged
    write survives a crash of the server.

Concurrency
    ``update`` and transactions lock the rows they change
    (``SELECT ... FOR UPDATE``); :meth:`claim` skips rows locked by others
    (``FOR UPDATE SKIP LOCKED``), so any number of workers on any number of
    hosts share jobs without taking the same one twice.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from typing import Callable, Iterator, Sequence

from .base import DuplicateId, Store, StoreError, StoreUnavailable, Txn, validate_collection
from .postgres_query import count_sql, jsonpath, select_sql, sort_sql, where_sql
from .query import CountBy, Filter, Query, SortKey
from .schema import schema_problem as revision_problem

# psycopg and psycopg_pool are imported inside the functions that use them, to keep
# start-up light: a TinyDB deployment never loads the driver.

__all__ = ["PostgresStore"]

_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: The escape of a NUL in _ENCODE's text: `\u0000` after an even number of
#: backslashes (`\\u0000` is a backslash and the five characters `u0000`).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _canonical(doc: object, expect_id: str | None = None, what: str = "document") -> tuple[dict, str]:
    """Validated document and its JSON text."""
    if not isinstance(doc, dict):
        raise TypeError(f"{what} must be a dict, got {type(doc).__name__}")
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"{what} must have a non-empty str 'id', got {doc_id!r}")
    if expect_id is not None and doc_id != expect_id:
        raise ValueError(f"{what} must keep id {expect_id!r}, got {doc_id!r}")
    text = _ENCODE(doc)
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise ValueError(f"{what} contains a NUL character, which PostgreSQL jsonb cannot store")
    return json.loads(text), text


#: (id, the first number literal of its doc, in document order, that a
#: double does not hold exactly): only a decimal with a fraction can be one
#: (jsonb prints numeric without an exponent; an integer reads as an exact
#: int); beyond a double's range (or below its smallest subnormal) it is
#: not, else when the double's shortest text is another number.
_INEXACT_SQL = """
SELECT id, inexact FROM documents,
LATERAL (SELECT t FROM jsonb_path_query(doc, 'strict $.** ? (@.type() == "number")') AS n,
                LATERAL (SELECT n #>> '{}' AS t) AS literal
         WHERE strpos(t, '.') > 0 AND CASE
             WHEN abs(t::numeric) >= 1.7976931348623157e308 OR abs(t::numeric) < 2.5e-324
                 THEN t::numeric <> 0
             ELSE t::float8::text::numeric <> t::numeric END
         LIMIT 1) AS found(inexact)
WHERE collection = %s ORDER BY seq"""


def _apply(current: dict, doc_id: str, change: Callable[[dict], dict]) -> tuple[dict, str]:
    new = change(current)
    if new is None:
        raise TypeError("change() must return the new document, it returned None")
    return _canonical(new, expect_id=doc_id, what="document returned by change()")


class PostgresStore(Store):
    """Store in a PostgreSQL database named by a ``postgresql://`` URL."""

    backend = "postgresql"
    shared = True
    sql = True
    queries_in_backend = True

    def __init__(self, url: str, *, pool_size: int, pool_timeout: float,
                 idle_transaction_timeout: float,
                 connect_timeout: float = 3.0, statement_timeout: float = 30.0):
        """``pool_size``, ``pool_timeout`` and ``idle_transaction_timeout``
        are settings (RECO_STORE_POOL_SIZE, RECO_STORE_TIMEOUT_SECONDS,
        RECO_STORE_IDLE_TRANSACTION_SECONDS), given by open_store.
        ``pool_size``: connections per process at most; ``pool_timeout``: seconds a call waits for a connection before
        :class:`StoreUnavailable`; ``statement_timeout``: seconds a statement
        may run (PostgreSQL ``statement_timeout``); ``idle_transaction_timeout``:
        seconds a transaction may wait for its client between statements
        before the server ends the session and its locks
        (``idle_in_transaction_session_timeout``): no transaction of this
        service waits for anything but the database."""
        self.url = url
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.idle_transaction_timeout = idle_transaction_timeout
        self._pool = None
        self._pool_pid: int | None = None
        self._mu = threading.Lock()
        self._closed = False
        self._schema_checked_pid: int | None = None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<PostgresStore {self.display_url}>"

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages and /health."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(self.url)
        except Exception:  # noqa: BLE001 - a message must not fail
            return "postgresql://?"
        params.pop("password", None)
        host, port, db = params.get("host", ""), params.get("port", ""), params.get("dbname", "")
        user = params.get("user")
        return f"postgresql://{user + '@' if user else ''}{host}{':' + port if port else ''}/{db}" \
            if host else make_conninfo(**params)

    # -- connections ----------------------------------------------------------

    def _get_pool(self):
        if self._closed:
            raise StoreError("store is closed")
        pid = os.getpid()
        if self._pool is not None and self._pool_pid == pid:
            return self._pool
        with self._mu:
            if self._pool is None or self._pool_pid != pid:
                from psycopg_pool import ConnectionPool

                # a transaction left open by a process that hangs (SIGSTOP,
                # swapping) ends after idle_transaction_timeout, freeing the
                # rows it locked (the log's head, a hub's queue) for others
                options = (f"-c timezone=UTC -c statement_timeout="
                           f"{int(self.statement_timeout * 1000)} "
                           f"-c idle_in_transaction_session_timeout="
                           f"{int(self.idle_transaction_timeout * 1000)}")
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.pool_size, open=False,
                    timeout=self.pool_timeout, check=_check_if_idle, reset=_mark_returned,
                    reconnect_timeout=24 * 3600.0, name=f"reco-{pid}",
                    kwargs={"connect_timeout": max(1, int(self.connect_timeout)),
                            "options": options, "application_name": "tmf-recommender"})
                pool.open(wait=False)
                # The parent's pool (if any) is not closed here: its threads do
                # not exist in this child, and closing would touch its sockets.
                self._pool, self._pool_pid = pool, pid
        return self._pool

    @contextlib.contextmanager
    def connection(self, write: bool = True, collections: Sequence[str] = ()) -> Iterator:
        """A pooled connection in a transaction, committed on normal exit.
        Database errors become StoreError; unreachable ones StoreUnavailable.
        A write from a thread inside update()'s change() or a transaction is
        refused, as on TinyDB (it would wait for its own row locks)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        busy_pid, busy = getattr(self._local, "busy", (None, ()))
        if write and busy_pid == os.getpid() and not busy.isdisjoint(collections):
            raise StoreError("the store is already locked by this thread's transaction or "
                             "update(): use the Txn object, not the store, until it ends")
        try:
            reader = getattr(self._local, "reader", None)
            if not write and reader is not None and reader[0] == os.getpid():
                yield reader[1]  # inside reading(): its connection and transaction
                return
            with self._get_pool().connection() as conn:
                self._check_schema_once(conn)
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.display_url} did not give a connection within "
                f"{self.pool_timeout:g} s: {exc}") from exc
        except psycopg.Error as exc:
            raise _store_error(exc, self.display_url) from exc

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """The reads of this thread until the end share one pooled
        connection and one transaction: an instant
        recommendation's customer and products take one check-out and one
        COMMIT instead of two of each. Writes still take their own."""
        if getattr(self._local, "reader", None) is not None:
            yield
            return
        with self.connection(write=False) as conn:
            self._local.reader = (os.getpid(), conn)
            try:
                yield
            finally:
                self._local.reader = None

    def _check_schema_once(self, conn) -> None:
        if self._schema_checked_pid == os.getpid():
            return
        problem = self.schema_problem(conn)
        if problem:
            raise SchemaMismatch(problem)
        self._schema_checked_pid = os.getpid()

    @staticmethod
    def schema_problem(conn) -> str | None:
        row = conn.execute(
            "SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        current = None
        if row[0]:
            found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            current = found[0] if found else None
        conn.rollback()
        return revision_problem(current)

    def check_schema(self) -> None:
        """Raise :class:`SchemaMismatch` when the database schema is not the
        one this code knows; StoreUnavailable when it cannot be reached."""
        with self.connection(write=False):
            pass

    # -- Store API ------------------------------------------------------------

    def insert(self, collection: str, doc: dict) -> dict:
        validate_collection(collection)
        canon, text = _canonical(doc)
        with self.connection(collections=[collection]) as conn:
            _insert(conn, collection, canon["id"], text)
        return canon

    def get(self, collection: str, doc_id: str) -> dict | None:
        validate_collection(collection)
        if "\x00" in doc_id:  # PostgreSQL text cannot hold NUL: no stored id has one
            return None
        with self.connection(write=False) as conn:
            row = conn.execute("SELECT doc FROM documents WHERE collection = %s AND id = %s",
                               (collection, doc_id)).fetchone()
        return None if row is None else row[0]

    def get_along(self, collection: str, doc_id: str, sql: str, params: dict,
                  columns: int) -> tuple[dict | None, list[tuple]]:
        """get() and another read in ONE statement: (the document or None,
        the rows of `sql`). `sql` is a SELECT of `columns` columns with
        named parameters (`params`; the names `_collection` and `_id` are
        this method's). Why: an instant answer reads the customer and, with
        contact policies, the party's history (app/contact/history.py)
        before anything else, and on a loaded host every statement is a
        round trip that waits for the scheduler (psycopg's pipeline mode
        was measured slower here: more system calls for the same
        exchange). The two are joined by UNION ALL, each branch planned
        with its own indexes; the document is told from the other rows by
        its non-NULL first column. Inside reading() it runs on its
        connection and transaction."""
        validate_collection(collection)
        with self.connection(write=False) as conn:
            if "\x00" in doc_id:  # PostgreSQL text cannot hold NUL: no stored id has one
                return None, conn.execute(sql, params).fetchall()
            rows = conn.execute(self.along_statement(sql, columns),
                                {**params, "_collection": collection, "_id": doc_id}).fetchall()
        found = None
        others = []
        for row in rows:
            if row[0] is not None:
                found = row[0]
            else:
                others.append(row[1:])
        return found, others

    @staticmethod
    def along_statement(sql: str, columns: int) -> str:
        """The statement get_along runs (for EXPLAIN in the bench and tests)."""
        return (f"SELECT doc{', NULL' * columns} FROM documents "
                f"WHERE collection = %(_collection)s AND id = %(_id)s "
                f"UNION ALL SELECT NULL, along.* FROM ({sql}) AS along")

    def all(self, collection: str) -> list[dict]:
        validate_collection(collection)
        with self.connection(write=False) as conn:
            rows = conn.execute("SELECT doc FROM documents WHERE collection = %s ORDER BY seq",
                                (collection,)).fetchall()
        return [row[0] for row in rows]

    def held_back(self, collection: str) -> dict[str, str]:
        """``{id: why}``: the documents holding a number that this service
        would read altered (jsonb keeps exact decimals; Python's json reads
        one with a fraction as a double: ``12345678901234567890.5`` becomes
        12345678901234567000, ``1e-400`` 0.0), as an older version or a
        hand-made SQL statement may have stored. The same rule as the API's
        (app/exactnumbers.py): an integer is exact, a decimal when the
        double it becomes writes back as the same number. Reads every
        document of the collection (for `flask store copy`); the service
        serves such a document as Python reads it."""
        validate_collection(collection)
        with self.connection(write=False) as conn:
            rows = conn.execute(_INEXACT_SQL, (collection,)).fetchall()
        return {doc_id: (f"number {text[:60]} cannot be kept exactly (as JSON read by this "
                         "service it would become another number)")
                for doc_id, text in rows}

    def scan(self, collection: str) -> Iterator[dict]:
        validate_collection(collection)
        with self.connection(write=False) as conn:
            with conn.cursor(name="reco_scan") as cursor:
                cursor.itersize = 2000
                cursor.execute("SELECT doc FROM documents WHERE collection = %s ORDER BY seq",
                               (collection,))
                for row in cursor:
                    yield row[0]

    def find(self, collection: str, match: Callable[[dict], bool]) -> list[dict]:
        # A Python predicate cannot run in SQL: this reads the collection.
        # Hot paths use find_by() and query() instead.
        return [doc for doc in self.all(collection) if match(doc)]

    def find_by(self, collection: str, path: Sequence[str], values: Sequence[str]) -> list[dict]:
        validate_collection(collection)
        values = [str(v) for v in values if "\x00" not in str(v)]  # never stored
        if not values:
            return []
        tests = " || ".join(f"@ == {json.dumps(v)}" for v in values)
        with self.connection(write=False) as conn:
            rows = conn.execute(
                "SELECT doc FROM documents WHERE collection = %s AND doc @? %s::jsonpath "
                "ORDER BY seq", (collection, f"{jsonpath(path)} ? ({tests})")).fetchall()
        return [row[0] for row in rows]

    def query(self, collection: str, query: Query) -> tuple[list[dict], int]:
        validate_collection(collection)
        sql, params = select_sql(collection, query)
        with self.connection(write=False) as conn:
            rows = conn.execute(sql, params).fetchall()
            if rows:
                return [row[0] for row in rows], rows[0][1]
            where, where_params = where_sql(collection, query.filters)
            total = conn.execute(f"SELECT count(*) FROM documents WHERE {where}",
                                 where_params).fetchone()[0]
        return [], total

    def count_by(self, collection: str, count: CountBy) -> list[tuple[tuple, int]]:
        validate_collection(collection)
        sql, params = count_sql(collection, count)
        with self.connection(write=False) as conn:
            # The planner guesses 1,000 rows per jsonb_path_query: it would
            # spend a second compiling the statement (JIT) and spill the
            # grouping to disk. Both measured on 60,000 items (1.0-1.6 s
            # instead of 2.1-2.4 s); the settings end with the transaction.
            conn.execute("SET LOCAL jit = off")
            conn.execute("SET LOCAL work_mem = '64MB'")
            rows = conn.execute(sql, params).fetchall()
        return [(tuple(row[:-1]), row[-1]) for row in rows]

    def attribute_names(self, collection: str,
                        shapes: Callable[[str | None, bool], bool]) -> set[str]:
        """From ``document_attributes`` (written with each document): two
        small statements on one connection, whatever the collection's size.
        A shape whose @type no longer matches any stored document (its last
        ResidentialCustomer was deleted) is left out, checked with the GIN
        index (``doc @> '{"@type": ...}'``); names a shape's documents no
        longer hold, and shapes without a string @type, stay known (the
        recorded names are only ever added)."""
        validate_collection(collection)
        with self.connection(write=False) as conn:
            rows = conn.execute(
                "SELECT type, located, array_agg(name) FROM document_attributes "
                "WHERE collection = %s GROUP BY type, located", (collection,)).fetchall()
            wanted = [(declared, names) for declared, located, names in rows
                      if shapes(declared if isinstance(declared, str) else None, located)]
            typed = sorted({declared for declared, _names in wanted if isinstance(declared, str)})
            stored = {row[0] for row in conn.execute(
                "SELECT t FROM unnest(%s::text[]) AS t WHERE EXISTS (SELECT 1 FROM documents "
                "WHERE collection = %s AND doc @> jsonb_build_object('@type', t))",
                (typed, collection)).fetchall()} if typed else set()
        return {name for declared, names in wanted
                if not isinstance(declared, str) or declared in stored for name in names}

    def insert_many(self, collection: str, docs: Sequence[dict]) -> list[int]:
        validate_collection(collection)
        texts, ids = [], []
        for doc in docs:
            _canon, text = _canonical(doc)
            texts.append(text)
            ids.append(doc["id"])
        if not texts:
            return []
        with self.connection(collections=[collection]) as conn:
            # Duplicates inside the batch: the first one wins, as with inserts.
            rows = conn.execute(_recorded(
                "INSERT INTO documents (collection, id, doc) "
                "SELECT %s, d.doc->>'id', d.doc FROM unnest(%s::jsonb[]) WITH ORDINALITY AS d(doc, n) "
                "ORDER BY d.n ON CONFLICT DO NOTHING RETURNING id, collection, doc"),
                (collection, texts)).fetchall()
        stored = {row[0] for row in rows}
        skipped, seen = [], set()
        for position, doc_id in enumerate(ids):
            if doc_id not in stored or doc_id in seen:
                skipped.append(position)
            seen.add(doc_id)
        return skipped

    def claim(self, collection: str, filters: Sequence[Filter], change: Callable[[dict], dict | None],
              limit: int = 100, sort: Sequence[SortKey] = ()) -> list[dict]:
        validate_collection(collection)
        where, params = where_sql(collection, filters)
        order = []
        for key in sort:
            sql, more = sort_sql(key)
            order.append(sql)
            params = [*params, *more]
        order.append("seq")
        claimed = []
        with self.connection(collections=[collection]) as conn:
            rows = conn.execute(
                f"SELECT id, doc FROM documents WHERE {where} ORDER BY {', '.join(order)} "
                "LIMIT %s FOR UPDATE SKIP LOCKED", [*params, limit]).fetchall()
            for doc_id, doc in rows:
                new = change(doc)
                if new is None:
                    continue
                canon, text = _canonical(new, expect_id=doc_id, what="document returned by change()")
                conn.execute(_UPDATE, (text, collection, doc_id))
                claimed.append(canon)
        return claimed

    def count(self, collection: str) -> int:
        validate_collection(collection)
        with self.connection(write=False) as conn:
            return conn.execute("SELECT count(*) FROM documents WHERE collection = %s",
                                (collection,)).fetchone()[0]

    def update(self, collection: str, doc_id: str, change: Callable[[dict], dict]) -> dict | None:
        validate_collection(collection)
        if "\x00" in doc_id:
            return None
        with self.connection(collections=[collection]) as conn:
            row = conn.execute("SELECT doc FROM documents WHERE collection = %s AND id = %s "
                               "FOR UPDATE", (collection, doc_id)).fetchone()
            if row is None:
                return None
            # a write of this collection from change() could wait for its own lock
            self._local.busy = (os.getpid(), frozenset([collection]))
            try:
                canon, text = _apply(row[0], doc_id, change)
            finally:
                self._local.busy = (None, ())
            conn.execute(_UPDATE, (text, collection, doc_id))
        return canon

    def delete(self, collection: str, doc_id: str) -> dict | None:
        validate_collection(collection)
        if "\x00" in doc_id:
            return None
        with self.connection(collections=[collection]) as conn:
            row = conn.execute("DELETE FROM documents WHERE collection = %s AND id = %s "
                               "RETURNING doc", (collection, doc_id)).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transactions(self, *collections: str) -> Iterator[dict[str, Txn]]:
        for name in collections:
            validate_collection(name)
        with self.connection(collections=collections) as conn:
            txns = {name: _PgTxn(name, conn, self.display_url) for name in collections}
            self._local.busy = (os.getpid(), frozenset(collections))
            try:
                yield txns
            finally:
                self._local.busy = (None, ())
                for txn in txns.values():
                    txn._active = False

    def health(self) -> dict:
        report: dict = {"ok": True, "backend": self.backend, "url": self.display_url,
                        "collections": {}, "errors": {}}
        try:
            with self.connection(write=False) as conn:
                rows = conn.execute("SELECT collection, count(*) FROM documents "
                                    "GROUP BY collection ORDER BY collection").fetchall()
                report["collections"] = {name: n for name, n in rows}
                # a database that reads but refuses writes (disk full, SQLSTATE
                # 53100; read-only) is not a working store: TinyDB's health
                # says so for a full disk too. The probe row is rolled back.
                conn.execute("INSERT INTO documents (collection, id, doc) "
                             "VALUES ('_health', gen_random_uuid()::text, '{}'::jsonb)")
                conn.rollback()
        except Exception as exc:  # noqa: BLE001 - health must not raise
            report["errors"]["_store"] = str(exc)
        report["ok"] = not report["errors"]
        return report

    def close(self) -> None:
        with self._mu:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close(timeout=5.0)


def _store_error(exc: Exception, where: str) -> StoreError:
    """A psycopg error as the Store interface's error: StoreUnavailable (a
    503) when the database cannot serve now (a timed-out statement; SQLSTATE
    classes 08, 53, 57, 58 such as 53100 disk_full, which psycopg raises as
    OperationalError; 25006 read_only_sql_transaction, a hot standby or
    default_transaction_read_only: TinyDB's read-only data directory), else
    StoreError."""
    import psycopg

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StoreUnavailable(f"PostgreSQL statement timed out: {exc}")
    if isinstance(exc, (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)):
        return StoreUnavailable(f"PostgreSQL at {where} is unavailable: {str(exc).strip()}")
    return StoreError(f"PostgreSQL error: {str(exc).strip()}")


#: A pooled connection idle for longer is checked (one round trip) before use.
IDLE_CHECK_SECONDS = 2.0


def _mark_returned(conn) -> None:
    conn._reco_returned = time.monotonic()


def _check_if_idle(conn) -> None:
    """Liveness check of a connection taken from the pool, only when it has
    been idle a while: one that served a request a moment ago is alive, and a
    round trip per check-out would double the cost of a short query. A
    connection broken by a database restart in that moment fails its
    request with StoreUnavailable (503) and is replaced by the pool."""
    from psycopg_pool import ConnectionPool

    if time.monotonic() - getattr(conn, "_reco_returned", 0.0) >= IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


class SchemaMismatch(StoreUnavailable):
    """The database's schema is not the one this code knows (see app.store.schema)."""


def _recorded(statement: str) -> str:
    """`statement`, an INSERT or UPDATE of ``documents`` ending in
    ``RETURNING id, collection, doc``, with the top-level attribute names of
    what it wrote added to ``document_attributes`` in the same statement (so
    in the same transaction): the names a list needs for a stored subclass's
    extension attributes (:meth:`PostgresStore.attribute_names`). Returns
    the written ids. Names already recorded cost a primary-key probe and
    take no lock; the rows are inserted in key order, so two transactions
    recording the same new names wait for each other instead of deadlocking."""
    return (f"WITH written AS ({statement}), recorded AS ("
            "INSERT INTO document_attributes (collection, type, located, name) "
            "SELECT DISTINCT w.collection, coalesce(w.doc->'@type', 'null'::jsonb), "
            "reco_located(w.doc->'@schemaLocation'), name "
            "FROM written AS w, jsonb_object_keys(w.doc) AS name ORDER BY 1, 2, 3, 4 "
            "ON CONFLICT DO NOTHING) SELECT id FROM written")


#: What the writes record, for documents written around the store (a bulk
#: ``COPY`` such as bench/data_plane.py's): one pass over the table.
RECORD_STORED_ATTRIBUTES = (
    "INSERT INTO document_attributes (collection, type, located, name) "
    "SELECT DISTINCT collection, coalesce(doc->'@type', 'null'::jsonb), "
    "reco_located(doc->'@schemaLocation'), name FROM documents, jsonb_object_keys(doc) AS name "
    "ON CONFLICT DO NOTHING")

_INSERT = _recorded("INSERT INTO documents (collection, id, doc) VALUES (%s, %s, %s::jsonb) "
                    "ON CONFLICT DO NOTHING RETURNING id, collection, doc")
_UPDATE = _recorded("UPDATE documents SET doc = %s::jsonb WHERE collection = %s AND id = %s "
                    "RETURNING id, collection, doc")
class _Translating:
    """A connection whose execute() raises the Store's errors (see
    _store_error), for statements inside a transaction: the caller (e.g. the
    event bus recording a change's event) sees a full disk as
    StoreUnavailable, as on TinyDB, not as a psycopg error."""

    def __init__(self, conn, where: str):
        self._conn = conn
        self._where = where

    def execute(self, *args, **kwargs):
        import psycopg

        try:
            return self._conn.execute(*args, **kwargs)
        except psycopg.Error as exc:
            raise _store_error(exc, self._where) from exc


def _insert(conn, collection: str, doc_id: str, text: str) -> None:
    row = conn.execute(_INSERT, (collection, doc_id, text)).fetchone()
    if row is None:
        raise DuplicateId(collection, doc_id)


class _PgTxn(Txn):
    """Operations of one collection inside the store's open SQL transaction.

    ``get`` and ``update`` lock the row (``FOR UPDATE``) until the end of the
    transaction, so a read-modify-write through the Txn is atomic (claims
    that must not wait go through :meth:`PostgresStore.claim`)."""

    def __init__(self, collection: str, conn, where: str):
        self.collection = collection
        self._conn = conn
        self._where = where
        self._active = True
        self._owner = threading.get_ident()

    def _c(self):
        if not self._active:
            raise StoreError("transaction is finished")
        if threading.get_ident() != self._owner:
            raise StoreError("a transaction must only be used by the thread that opened it")
        return _Translating(self._conn, self._where)

    def insert(self, doc: dict) -> dict:
        canon, text = _canonical(doc)
        _insert(self._c(), self.collection, canon["id"], text)
        return canon

    def get(self, doc_id: str) -> dict | None:
        if "\x00" in doc_id:  # PostgreSQL text cannot hold NUL: no stored id has one
            return None
        row = self._c().execute("SELECT doc FROM documents WHERE collection = %s AND id = %s "
                                "FOR UPDATE", (self.collection, doc_id)).fetchone()
        return None if row is None else row[0]

    def all(self) -> list[dict]:
        rows = self._c().execute("SELECT doc FROM documents WHERE collection = %s ORDER BY seq",
                                 (self.collection,)).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        return self._c().execute("SELECT count(*) FROM documents WHERE collection = %s",
                                 (self.collection,)).fetchone()[0]

    def update(self, doc_id: str, change: Callable[[dict], dict]) -> dict | None:
        current = self.get(doc_id)
        if current is None:
            return None
        canon, text = _apply(current, doc_id, change)
        self._c().execute(_UPDATE, (text, self.collection, doc_id))
        return canon

    def delete(self, doc_id: str) -> dict | None:
        if "\x00" in doc_id:
            return None
        row = self._c().execute("DELETE FROM documents WHERE collection = %s AND id = %s "
                                "RETURNING doc", (self.collection, doc_id)).fetchone()
        return None if row is None else row[0]

    def insert_batch(self, docs: Sequence[dict]) -> list[dict]:
        canons, texts = [], []
        for doc in docs:
            canon, text = _canonical(doc)
            canons.append(canon)
            texts.append(text)
        if not texts:
            return []
        # in their order: the seq column numbers them as inserts one by one would
        rows = self._c().execute(_recorded(
            "INSERT INTO documents (collection, id, doc) "
            "SELECT %s, d.doc->>'id', d.doc FROM unnest(%s::jsonb[]) WITH ORDINALITY AS d(doc, n) "
            "ORDER BY d.n ON CONFLICT DO NOTHING RETURNING id, collection, doc"),
            (self.collection, texts)).fetchall()
        stored = {row[0] for row in rows}
        for canon in canons:
            if canon["id"] not in stored:
                raise DuplicateId(self.collection, canon["id"])
            stored.discard(canon["id"])          # the same id twice in the batch
        return canons

    def delete_batch(self, doc_ids: Sequence[str]) -> int:
        ids = [doc_id for doc_id in doc_ids if "\x00" not in doc_id]
        if not ids:
            return 0
        return self._c().execute("DELETE FROM documents WHERE collection = %s AND id = ANY(%s)",
                                 (self.collection, ids)).rowcount
