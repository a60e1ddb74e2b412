"""The activator: pins a version in the pointer (compare-and-set, so of two
activations started together one wins and the other gets Superseded),
records the activation in the ledger's history, and tells the other
workers of this host through the stamp file, which each worker stats before
each request (RuleService.poll): the request that follows an activation is
answered by the activated version, in every worker. Other hosts see the
pointer change within their pointer's poll time.

What may be activated (the version loads, compiles and is the recorded
content) is the rule service's and the version registry's to check first."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from ..model.common import UTC, iso, version_key
from ..repository.files import write_json_atomic
from ..repository.layout import stat_key
from ..repository.ledger import history_entry
from .versions import Loaded, VersionRegistry

log = logging.getLogger(__name__)

# written by every activation on this host: each worker stats it before each
# request and, when it changed, reloads before answering (see poll)
ACTIVATED_STAMP = "rules-activated.stamp"


class Activator:
    def __init__(self, registry: VersionRegistry, state_dir: Path):
        self.registry = registry
        self.stamp_path = Path(state_dir) / ACTIVATED_STAMP
        self._seen_stamp = stat_key(self.stamp_path)
        self._catch_up_lock = threading.Lock()

    def catch_up(self, reload) -> None:
        """Call `reload()` (in this thread) when an activation on this host
        changed the stamp file since this worker last caught up (one stat
        when nothing changed). The stamp counts as seen only once the reload
        is done, and the worker's other threads that arrive meanwhile wait
        for it: none of them answers with the old version after the
        activation has answered. The pointer's cached revision is dropped
        first, so the reload reads it."""
        stamp = stat_key(self.stamp_path)
        if stamp == self._seen_stamp:
            return
        with self._catch_up_lock:
            stamp = stat_key(self.stamp_path)
            if stamp == self._seen_stamp:
                return                     # another thread caught up while this one waited
            self.registry.pointer.invalidate()
            reload()
            self._seen_stamp = stamp

    def pin(self, loaded: Loaded, ruleset_id: str, version: str | None, content_hash: str | None) -> int:
        """Write the pointer with `version` pinned (None: unpinned) over the
        revision last read; the new revision. Raises Superseded when another
        activation changed the pointer meanwhile: nothing is written."""
        pointer = dict(loaded.pointer)
        if version is None:
            pointer.pop(ruleset_id, None)
        else:
            pointer[ruleset_id] = {"version": version, "hash": content_hash,
                                   "activatedAt": iso(dt.datetime.now(UTC))}
        return self.registry.pointer.compare_and_set(self.registry.pointer_revision, pointer)

    def take_back(self, revision: int, reload) -> None:
        """Undo the pin that wrote `revision` (its history entry was refused),
        then `reload()`. The file pointer puts its previous file back by a
        rename, so a full disk does not stop it; when it cannot (another
        activation came since, the store refused), it is logged: the pin
        stays, and the caller's error is what the client gets."""
        try:
            undone = self.registry.pointer.take_back(revision)
        except Exception:  # noqa: BLE001 - the caller raises the first failure
            log.exception("could not take back the pin of pointer revision %s", revision)
            undone = False
        if not undone:
            log.error("the pin of pointer revision %s stays although its activation failed", revision)
        try:
            reload()
        except Exception:  # noqa: BLE001 - as above
            log.exception("reload after taking back a pin failed")

    def settle(self) -> None:
        """The pin stays: the pointer forgets what it replaced."""
        self.registry.pointer.settle()

    def history_entry(self, ruleset_id: str, version: str | None, action: str, by: str,
                      before: str | None, served, record: bool) -> dict:
        """The history entry of an activation (appended to the ledger when
        `record`): `served` is the rule set serving after it."""
        if action == "activate" and version is not None and before is not None \
                and version_key(version) < version_key(before):
            action = "rollback"       # back to an older version: roll back never offers the way forward
        serves = served is not None and served.id == ruleset_id
        entry = history_entry(ruleset_id, action if version is not None else "unpin", by,
                              version=served.version if serves else version,
                              from_version=before, hash=served.hash if serves else None)
        return self.registry.ledger.append(entry) if record else entry

    def announce(self, revision: int, ruleset_id: str, version: str | None, at: str) -> None:
        """Touch the stamp file: every worker of this host reloads before its
        next answer (when it cannot be written they switch within their
        check interval)."""
        try:
            write_json_atomic(self.stamp_path, {"revision": revision, "rulesetId": ruleset_id,
                                                "version": version, "at": at})
            self._seen_stamp = stat_key(self.stamp_path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.stamp_path, exc)

