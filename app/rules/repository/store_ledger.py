"""The rule ledger (ledger.py beside this module) in the service's store, so
that every worker and, on PostgreSQL, every host shares one record of each
rule set version and one audit history.

Three collections (documents of the Store interface; on PostgreSQL rows of
the `documents` table, so no schema migration is needed):

* ``rulesetVersion``: one document per recorded version, id ``<rulesetId>@<version>``,
  inserted once: a second insert raises DuplicateId and the first record
  stands (two hosts recording the same version at once agree on one hash).
* ``rulesetHistory``: the audit history, append-only, in insertion order.
* ``rulesetText``: saved rule set texts by the SHA-256 of their bytes (id),
  so that a refused stale save can show the other person's change as a diff.
"""
from __future__ import annotations

import datetime as dt

from ...store.base import DuplicateId
from ...timeutil import isoformat
from ..model.common import UTC
from .polled import Polled

VERSIONS = "rulesetVersion"
HISTORY = "rulesetHistory"
TEXTS = "rulesetText"


class StoreLedger:
    """The ledger on a Store (see the module docstring)."""

    def __init__(self, store, poll_seconds: float = 1.0):
        self.store = store
        self._count = Polled(lambda: ("records", self.store.count(VERSIONS)), poll_seconds, ("records", None))
        self._token: object = ("records", None)

    def token(self):
        """A value that changes when a version is recorded, by any process
        or host (the rule service's reload signature holds it, beside the
        pointer's revision: a version recorded elsewhere without a pointer
        change, e.g. an activation that lost its compare-and-set, or one
        recorded before this host had the file, must not stay unrecorded
        here until some file changes). The store's version token of the
        collection when it has one (TinyDB: a stat), else the number of
        records (PostgreSQL: records are inserted once and never removed;
        an index-only count), read at most every ``poll_seconds``; when
        the store is unreachable the last known one."""
        try:
            version = self.store.version(VERSIONS)
        except Exception:  # noqa: BLE001 - a broken file: /health and the store commands say it
            return self._token
        self._token = ("records", version) if version is not None else self._count.get()
        return self._token

    def invalidate(self) -> None:
        """The next token() reads the store (an admin call that checks
        versions wants the records as they are now)."""
        self._count.invalidate()

    def recorded(self, ruleset_id: str) -> dict[str, dict]:
        """{version: {"rulesetId", "version", "hash", "by", "at"}} of one rule set."""
        docs = self.store.find_by(VERSIONS, ["rulesetId"], [ruleset_id])
        return {doc["version"]: {k: v for k, v in doc.items() if k != "id"} for doc in docs
                if isinstance(doc.get("version"), str)}

    def record(self, ruleset_id: str, version: str, hash: str, by: str) -> tuple[dict, bool]:  # noqa: A002
        """(the version's record, True when this call wrote it); durable when it returns."""
        doc = {"id": f"{ruleset_id}@{version}", "rulesetId": ruleset_id, "version": version, "hash": hash,
               "by": by, "at": isoformat(dt.datetime.now(UTC))}
        try:
            self.store.insert(VERSIONS, doc)
            written = True
            self._count.invalidate()     # this process sees its own record at once
        except DuplicateId:
            doc = self.store.get(VERSIONS, doc["id"]) or doc
            written = False
        return {k: v for k, v in doc.items() if k != "id"}, written

    def append(self, entry: dict) -> dict:
        """Append one history entry; durable when it returns."""
        self.store.insert(HISTORY, entry)
        return entry

    def history(self, ruleset_id: str | None = None) -> list[dict]:
        """Every entry (of one rule set), newest first."""
        docs = (self.store.all(HISTORY) if ruleset_id is None
                else self.store.find_by(HISTORY, ["rulesetId"], [ruleset_id]))
        return docs[::-1]

    def put_text(self, text_hash: str, text: str) -> None:
        try:
            self.store.insert(TEXTS, {"id": text_hash, "text": text})
        except DuplicateId:
            pass

    def text(self, text_hash: str) -> str | None:
        doc = self.store.get(TEXTS, text_hash)
        return doc.get("text") if doc else None
