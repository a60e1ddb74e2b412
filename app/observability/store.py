"""Store operation latency and errors, measured around any Store backend.

`instrument_store(open_store(...))` wraps the store the application uses;
the backend itself holds no metrics code, so a new backend (PostgreSQL) is
measured the same way without a change. The wrapper is a Store: the calls
it does not time (health, close, version, backend-specific ones such as a
bulk insert) pass through; version's failures are counted all the same.
`transaction` is timed as a whole.
"""
from __future__ import annotations

import contextlib
import time

from ..store.base import Store, StoreError
from .metrics import STORE_ERRORS, STORE_OPERATION_SECONDS

def instrument_store(store: Store) -> Store:
    return InstrumentedStore(store)


def _record(operation: str, collection: str, started: float, error: BaseException | None) -> None:
    STORE_OPERATION_SECONDS.labels(operation, collection).observe(time.perf_counter() - started)
    # An exception raised by an update's change callback (a lost claim race,
    # say) is the caller's decision, not a store failure: only the store's own.
    if isinstance(error, (StoreError, OSError)):
        STORE_ERRORS.labels(operation, collection, type(error).__name__).inc()


class InstrumentedStore(Store):
    def __init__(self, inner: Store):
        self.inner = inner

    @staticmethod
    def _timed(operation: str, collection: str, call, *args):
        started = time.perf_counter()
        try:
            result = call(collection, *args)
        except BaseException as exc:
            _record(operation, collection, started, exc)
            raise
        _record(operation, collection, started, None)
        return result

    def insert(self, collection: str, doc: dict) -> dict:
        return self._timed("insert", collection, self.inner.insert, doc)

    def get(self, collection: str, doc_id: str) -> dict | None:
        return self._timed("get", collection, self.inner.get, doc_id)

    def all(self, collection: str) -> list[dict]:
        return self._timed("all", collection, self.inner.all)

    def update(self, collection: str, doc_id: str, change) -> dict | None:
        return self._timed("update", collection, self.inner.update, doc_id, change)

    def delete(self, collection: str, doc_id: str) -> dict | None:
        return self._timed("delete", collection, self.inner.delete, doc_id)

    def find(self, collection: str, match) -> list[dict]:
        return self._timed("find", collection, self.inner.find, match)

    def count(self, collection: str) -> int:
        return self._timed("count", collection, self.inner.count)

    @contextlib.contextmanager
    def transaction(self, collection: str):
        """Timed as a whole, from taking the lock to the durable write."""
        started = time.perf_counter()
        try:
            with self.inner.transaction(collection) as txn:
                yield txn
        except BaseException as exc:
            _record("transaction", collection, started, exc)
            raise
        _record("transaction", collection, started, None)

    def version(self, collection: str):
        """Not timed (a cheap, cached look on every list), but its failures
        count: a list reads it first (the stored subclasses' attributes), so a
        corrupt collection file fails there before any timed call."""
        try:
            return self.inner.version(collection)
        except (StoreError, OSError) as exc:
            STORE_ERRORS.labels("version", collection, type(exc).__name__).inc()
            raise

    def health(self) -> dict:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"InstrumentedStore({self.inner!r})"
