"""Store operation latency and errors, measured around any Store backend.

`instrument_store(open_store(...))` wraps the store the application uses;
the backend itself holds no metrics code, so a new backend (PostgreSQL) is
measured the same way without a change. The wrapper is a Store: calls it
does not time (health, close, version, backend-specific ones) pass through.
"""
from __future__ import annotations

import contextlib
import functools
import time

from ..store.base import Store, StoreError
from .metrics import STORE_ERRORS, STORE_OPERATION_SECONDS

TIMED = ("insert", "get", "all", "update", "delete", "find", "count")


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
        for name in TIMED:
            setattr(self, name, self._timed(name, getattr(inner, name)))

    @staticmethod
    def _timed(operation: str, call):
        @functools.wraps(call)
        def timed(collection, *args, **kwargs):
            started = time.perf_counter()
            try:
                result = call(collection, *args, **kwargs)
            except BaseException as exc:
                _record(operation, collection, started, exc)
                raise
            _record(operation, collection, started, None)
            return result
        return timed

    # The abstract methods, so that this is a Store; __init__ replaces the
    # timed ones on the instance.
    def insert(self, collection, doc):  # pragma: no cover - replaced in __init__
        raise NotImplementedError

    get = all = update = delete = count = insert

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
        return self.inner.version(collection)

    def health(self) -> dict:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"InstrumentedStore({self.inner!r})"
