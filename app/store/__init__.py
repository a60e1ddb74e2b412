"""Persistence for the service.

Use :func:`open_store` and the :class:`Store` interface only; backends are an
implementation detail::

    from app.store import open_store, DuplicateId, StoreError

    store = open_store("tinydb:///var/lib/tmf/data")   # or just a path
    store = open_store("postgresql://reco@db.internal:5432/reco")
    store.insert("recommendations", {"id": "r1", "state": "new"})
"""

from __future__ import annotations

import os

from ..addresses import store_directory
from ..config import setting_default
from .base import (
    CorruptCollection,
    DuplicateId,
    InvalidName,
    Store,
    StoreError,
    StoreUnavailable,
    Txn,
    validate_collection,
)
from .query import CountBy, Filter, Query, SortKey

#: PostgresStore's options that are settings: option -> Settings field, whose
#: default applies when open_store is not given the option (a tool, a test)
POOL_SETTINGS = {"pool_size": "store_pool_size", "pool_timeout": "store_timeout_seconds",
                 "idle_transaction_timeout": "store_idle_transaction_seconds"}

__all__ = [
    "CorruptCollection",
    "DuplicateId",
    "InvalidName",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Txn",
    "CountBy",
    "Filter",
    "Query",
    "SortKey",
    "open_configured_store",
    "open_store",
    "tinydb_directory",
    "validate_collection",
]

def tinydb_directory(url_or_path: str | os.PathLike) -> str | None:
    """The directory a TinyDB store location names (``~`` expanded), or None
    for a PostgreSQL URL: the one parser of store locations, for
    `open_store` and the CLI's checks (`flask store copy`); the parser is
    app/addresses.py's, which the settings use to refuse a bad
    RECO_STORE_URL at start.

    * ``/var/lib/tmf`` or ``data/dev`` (a path), ``tinydb:///var/lib/tmf``
      (absolute), ``tinydb://data/dev`` or ``tinydb:data/dev`` (relative to
      the CWD)                                   -> that directory
    * ``postgresql://...`` or ``postgres://...`` -> None
    * anything else with ``scheme://``, an empty location, a TinyDB URL
      without a path or with a query string      -> StoreError
    """
    try:
        return store_directory(url_or_path)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def open_store(url_or_path: str | os.PathLike, **options) -> Store:
    """Open a store from a URL or a plain directory path.

    * ``/var/lib/tmf`` or ``data/dev`` (a path)  -> TinyDB backend in that dir
    * ``tinydb:///var/lib/tmf`` (absolute) or ``tinydb://data/dev``
      (relative to the CWD)                      -> TinyDB backend
    * ``postgresql://user:pw@host:5432/db``      -> PostgreSQL backend
      (``options``: pool_size, pool_timeout, statement_timeout,
      idle_transaction_timeout; those of POOL_SETTINGS not given take the
      settings' defaults)
    * anything else with ``scheme://``           -> StoreError

    The directory is created if missing.  Opening PostgreSQL connects lazily
    (first call), so a worker can start while the database is down.
    """
    directory = tinydb_directory(url_or_path)
    if directory is None:
        from .postgres_store import PostgresStore   # light start-up: only this backend's driver loads

        defaults = {option: setting_default(field) for option, field in POOL_SETTINGS.items()}
        return PostgresStore(os.fspath(url_or_path).strip(), **{**defaults, **options})
    from .tinydb_store import TinyDBStore   # light start-up: only the backend in use loads

    return TinyDBStore(directory)


def open_configured_store(settings) -> Store:
    """The store that `settings` (app.config.Settings) names: RECO_STORE_URL,
    else TinyDB files in RECO_DATA_DIR; on PostgreSQL with the pool size and
    timeouts RECO_STORE_POOL_SIZE, RECO_STORE_TIMEOUT_SECONDS and
    RECO_STORE_IDLE_TRANSACTION_SECONDS. Here rather than on the settings, so
    that the configuration knows nothing of the store (it sits below it).
    Which backend the location names is decided by open_store alone (the
    TinyDB backend takes no pool options)."""
    return open_store(settings.store_url or str(settings.data_dir), pool_size=settings.store_pool_size,
                      pool_timeout=settings.store_timeout_seconds,
                      idle_transaction_timeout=settings.store_idle_transaction_seconds)
