"""The rule ledger: what was recorded about every rule set version, and the
audit history of every save, record, approval, activation and roll back.

It answers the questions product managers and auditors ask of
"telco-demo 1.1.0": which exact content it is (its recorded hash, fixed the
first time the version was locked or activated), who changed it, who
approved it and when it went live.

One small interface, two implementations:

* :class:`MemoryLedger` here: one process, nothing kept (a RuleService built
  by a test or a tool without a store).
* ``app.rules.repository.store_ledger.StoreLedger``: the service's store (TinyDB or
  PostgreSQL, through the Store interface), shared by every worker and, on
  PostgreSQL, every host.

Shapes (JSON-ready dicts):

    version record  {"rulesetId", "version", "hash", "by", "at"}
    history entry   {"id", "rulesetId", "action", "version", "fromVersion",
                     "hash", "by", "at", ...action-specific fields}

``action`` is one of :data:`ACTIONS`. History is append-only and listed
newest first; a version record is written once (the first writer wins:
:meth:`record` returns what was recorded before when there is one).
"""
from __future__ import annotations

import datetime as dt
import threading
import uuid

from ...timeutil import isoformat
from ..model.common import UTC

ACTIONS = ("save", "record", "approve", "activate", "rollback", "unpin", "pin-before-save",
           # app/experiments/service.py: changes of the rule set's experiments file
           "experiment-start", "experiment-stop", "experiment-weights", "experiment-promote")
# the actions that change which version serves (the Studio's "Activations" list)
ACTIVATIONS = ("activate", "rollback", "unpin", "pin-before-save")


def history_entry(ruleset_id: str, action: str, by: str, version: str | None = None,
                  from_version: str | None = None, hash: str | None = None,   # noqa: A002 - the field's name
                  when: dt.datetime | None = None, **extra) -> dict:
    """A new history entry (not yet appended). ValueError for an unknown action."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    now = when or dt.datetime.now(UTC)
    # ids sort by time, then are unique across hosts
    entry = {"id": f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}", "rulesetId": ruleset_id,
             "action": action, "version": version, "fromVersion": from_version, "hash": hash,
             "by": by, "at": isoformat(now)}
    entry.update(extra)
    return entry


class MemoryLedger:
    """The ledger in this process's memory (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], dict] = {}
        self._history: list[dict] = []
        self._texts: dict[str, str] = {}

    def token(self):
        """Only this process records here: nothing to watch (StoreLedger.token)."""
        return None

    def invalidate(self) -> None:
        """Nothing is polled (StoreLedger.invalidate)."""

    def recorded(self, ruleset_id: str) -> dict[str, dict]:
        """{version: version record} of one rule set."""
        with self._lock:
            return {v: dict(r) for (rid, v), r in self._versions.items() if rid == ruleset_id}

    def record(self, ruleset_id: str, version: str, hash: str, by: str) -> tuple[dict, bool]:  # noqa: A002
        """(the version's record, True when this call wrote it)."""
        with self._lock:
            existing = self._versions.get((ruleset_id, version))
            if existing is not None:
                return dict(existing), False
            record = {"rulesetId": ruleset_id, "version": version, "hash": hash, "by": by,
                      "at": isoformat(dt.datetime.now(UTC))}
            self._versions[(ruleset_id, version)] = record
            return dict(record), True

    def append(self, entry: dict) -> dict:
        with self._lock:
            self._history.append(dict(entry))
        return entry

    def history(self, ruleset_id: str | None = None) -> list[dict]:
        """Every entry (of one rule set), newest first."""
        with self._lock:
            found = [dict(e) for e in self._history if ruleset_id is None or e.get("rulesetId") == ruleset_id]
        return found[::-1]

    def put_text(self, text_hash: str, text: str) -> None:
        with self._lock:
            self._texts.setdefault(text_hash, text)

    def text(self, text_hash: str) -> str | None:
        with self._lock:
            return self._texts.get(text_hash)
