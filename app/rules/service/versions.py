"""The version registry: every version of every rule set the source holds,
what was recorded for each (repository.registry: the lock file and the
ledger), which version the pointer pins, and from these which versions
should serve, in order of preference.

Which rule set is served: the `ruleset_id` given, else the only rule set
present, else `telco-demo` if present, else the first id in alphabetical
order (the note in status() says so).

Which version: the one pinned in the pointer, else the highest version that
loads without errors. A pinned version whose file changed since its
activation is not served (the activated version means what was activated),
and a version whose content is not the recorded one cannot be activated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...store.base import StoreUnavailable
from ..model.catalog import Catalog
from ..model.common import version_key
from ..model.errors import Problem, RuleSetError
from ..model.ruleset import RuleSet
from ..model.yamlload import display_path
from ..repository.ledger import history_entry
from ..repository.registry import recorded_hashes
from .source import RuleSource

DEFAULT_RULESET = "telco-demo"


@dataclass
class VersionEntry:
    ruleset_id: str
    version: str
    path: Path
    ruleset: RuleSet | None = None      # kept only while this version serves (see release_unserved)
    problems: list[Problem] = field(default_factory=list)
    hash: str | None = None             # of the checked rule set; None: it did not check
    status: str | None = None

    @property
    def valid(self) -> bool:
        return self.hash is not None and not self.problems


@dataclass
class Loaded:
    """Everything one reload found (immutable once built)."""

    catalog: Catalog | None
    versions: dict[str, dict[str, VersionEntry]]
    problems: list[Problem]
    pointer: dict
    recorded: dict = field(default_factory=dict)   # {ruleset id: {version: recorded hash}} (registry)


class VersionRegistry:
    """The versions a source holds, with their records and the pointer."""

    def __init__(self, source: RuleSource, pointer, ledger, rules_dir: Path | None):
        """`pointer`: repository.pointer's FilePointer or StorePointer; `ledger`:
        repository.ledger's; `rules_dir`: where the lock files are (None: the
        ledger's records only, as for an in-memory source)."""
        self.source = source
        self.pointer = pointer
        self.ledger = ledger
        self.rules_dir = rules_dir
        self.pointer_revision = 0                # of the pointer as last read (compare-and-set)

    def signature(self) -> tuple:
        """Equal signatures mean nothing a reload reads has changed: the
        source's files, the pointer (its file's stat in the source's
        signature; the shared pointer's revision on PostgreSQL) and the
        ledger's records (a version recorded by another worker or host;
        MemoryLedger: only this process records)."""
        return self.source.signature() + (self.pointer.token(), self.ledger.token())

    def look_now(self) -> None:
        """The next signature() reads the shared pointer and the ledger's
        records now, not as last polled (an admin call that checks
        versions: a version recorded a moment ago elsewhere is known)."""
        self.pointer.invalidate()
        self.ledger.invalidate()

    def recorded_hashes(self, ruleset_id: str) -> dict[str, str]:
        """{version: recorded hash} of one rule set."""
        if self.rules_dir is None:
            return {version: record["hash"] for version, record in self.ledger.recorded(ruleset_id).items()}
        return recorded_hashes(self.rules_dir, self.ledger, ruleset_id)

    def discover(self) -> Loaded:
        """Scan the source, read the pointer and the records: a Loaded."""
        problems: list[Problem] = []
        catalog, found = self.source.scan(problems)
        pointer = self._read_pointer(problems)
        recorded = self._recorded(problems)
        versions: dict[str, dict[str, VersionEntry]] = {}
        for parsed in found:
            path, rid, version = parsed.path, parsed.ruleset_id, parsed.version
            if rid is None or version is None:
                rid = rid or path.stem.split("@")[0]
                version = version or f"?{path.name}"
            entry = VersionEntry(rid, version, path, parsed.ruleset, list(parsed.problems), parsed.hash,
                                 parsed.status)
            existing = versions.setdefault(rid, {}).get(version)
            if existing is not None:
                same = existing.hash and entry.hash and existing.hash == entry.hash
                wanted = (recorded.get(rid) or {}).get(version)
                if not same and wanted and entry.hash == wanted != existing.hash:
                    # the file that holds what was recorded for this version wins
                    problems.append(Problem(display_path(existing.path), 1, 1,
                                            f"{rid}@{version} holds other content than recorded (hash "
                                            f"{wanted}); using {display_path(path)}"))
                    versions[rid][version] = entry
                    continue
                if not same:
                    # top-level files come first in rule_files(), so the working copy wins
                    problems.append(Problem(display_path(path), 1, 1,
                                            f"{rid}@{version} is also in {display_path(existing.path)} "
                                            f"with different content; using {display_path(existing.path)}"))
                continue
            versions[rid][version] = entry
            problems.extend(entry.problems)
        return Loaded(catalog, versions, problems, pointer, recorded)

    def _read_pointer(self, problems: list[Problem]) -> dict:
        try:
            pointer, self.pointer_revision = self.pointer.read()
        except StoreUnavailable as exc:
            # the store's own fault (down, or no schema yet), not the rule files':
            # /health and the store commands say it; logging it as a rule-file
            # error made `flask store upgrade` tell its user to run itself
            problems.append(Problem(display_path(Path(self.pointer.location)), 1, 1,
                                    f"cannot read the active pointer: {exc}", severity="warning"))
            return {}
        except Exception as exc:  # noqa: BLE001 - an unreadable pointer file
            problems.append(Problem(display_path(Path(self.pointer.location)), 1, 1,
                                    f"cannot read the active pointer: {exc}"))
            return {}
        return pointer

    def _recorded(self, problems: list[Problem]) -> dict:
        """{ruleset id: {version: recorded hash}} of every rule set in the source."""
        try:
            return {rid: self.recorded_hashes(rid) for rid in self.source.ruleset_ids()}
        except Exception as exc:  # noqa: BLE001 - the store is down: serve, and say the records are unknown
            problems.append(Problem(display_path(self.source.location), 1, 1,
                                    f"cannot read the recorded versions: {exc}", severity="warning"))
            return {}

    @staticmethod
    def choose_id(loaded: Loaded, requested: str | None) -> tuple[str | None, str | None]:
        """(the rule set id to serve, a note when the choice needs one)."""
        if requested:
            return requested, None
        ids = sorted(loaded.versions)
        if not ids:
            return None, None
        if len(ids) == 1:
            return ids[0], None
        if DEFAULT_RULESET in ids:
            return DEFAULT_RULESET, None
        return ids[0], (f"several rule sets ({', '.join(ids)}) and none named {DEFAULT_RULESET!r}: "
                        f"serving {ids[0]!r}; set the rule set id to choose")

    @staticmethod
    def entry(loaded: Loaded | None, ruleset_id: str, version: str | None) -> VersionEntry:
        """The entry of `version` (None: the highest valid one) of a rule set;
        RuleSetError for an unknown rule set or version, or one with errors."""
        entries = loaded.versions.get(ruleset_id) if loaded else None
        if not entries:
            raise RuleSetError(f"unknown rule set {ruleset_id!r}")
        if version is None:
            valid = [v for v, e in entries.items() if e.valid]
            if not valid:
                raise RuleSetError(f"rule set {ruleset_id!r} has no valid version")
            version = max(valid, key=version_key)
        entry = entries.get(version)
        if entry is None:
            known = ", ".join(sorted(entries, key=version_key))
            raise RuleSetError(f"rule set {ruleset_id!r} has no version {version!r} (known: {known})")
        if not entry.valid:
            raise RuleSetError(f"{ruleset_id}@{version} has errors", entry.problems)
        return entry

    @staticmethod
    def listing(loaded: Loaded | None, ruleset_id: str | None, served: RuleSet | None) -> list[dict]:
        """One row per version of a rule set, lowest first (GET /admin/rules)."""
        if loaded is None or ruleset_id not in loaded.versions:
            return []
        pinned = (loaded.pointer.get(ruleset_id) or {}).get("version")
        recorded = loaded.recorded.get(ruleset_id, {})
        out = []
        for version, entry in sorted(loaded.versions[ruleset_id].items(), key=lambda kv: version_key(kv[0])):
            out.append({
                "id": ruleset_id, "version": version, "file": display_path(entry.path),
                "hash": entry.hash, "status": entry.status,
                "recordedHash": recorded.get(version),
                # a recorded version whose file holds other content: never activated
                "changed": bool(recorded.get(version) and entry.hash and recorded[version] != entry.hash),
                "valid": entry.valid, "errors": [str(p) for p in entry.problems],
                "active": bool(served is not None and served.id == ruleset_id and served.version == version),
                "pinned": pinned == version,
            })
        return out

    def record_version(self, ruleset_id: str, version: str, entry: VersionEntry, by: str) -> None:
        """Refuse a version whose content is not the recorded one; record it
        (the ledger, first writer wins) when it never was."""
        recorded = self.recorded_hashes(ruleset_id).get(version)
        if recorded is None:
            record, written = self.ledger.record(ruleset_id, version, entry.hash, by)
            recorded = record["hash"]
            if written:
                self.ledger.append(history_entry(ruleset_id, "record", by, version=version, hash=entry.hash,
                                                 file=display_path(entry.path)))
        if recorded != entry.hash:
            raise RuleSetError(
                f"{ruleset_id} {version} cannot be activated: {display_path(entry.path)} (hash {entry.hash}) "
                f"is not the content recorded for {version} (hash {recorded}); a version means one thing "
                "forever: restore the recorded content or give the change a new version")

    def candidates(self, loaded: Loaded, ruleset_id: str, served: RuleSet | None,
                   problems: list[Problem]) -> list[tuple[VersionEntry, bool]]:
        """(entry, pinned) of the versions that may serve, the preferred first:
        the pinned one (or, when this host lacks it, the one serving now), then
        every version from the highest down. What stands in the way is added
        to `problems`."""
        entries = loaded.versions.get(ruleset_id, {})
        pinned_version = (loaded.pointer.get(ruleset_id) or {}).get("version")
        candidates: list[tuple[VersionEntry, bool]] = []
        not_served = None                # a pinned version whose file changed since its activation
        if pinned_version is not None:
            if pinned_version in entries:
                pinned_entry = entries[pinned_version]
                pinned_hash = (loaded.pointer.get(ruleset_id) or {}).get("hash")
                if pinned_hash and pinned_entry.hash and pinned_entry.hash != pinned_hash:
                    # the activated version means what was activated: a file
                    # changed since is not served (the last good version is)
                    changed = Problem(display_path(pinned_entry.path), 1, 1,
                                      f"{ruleset_id}@{pinned_version} was activated with hash {pinned_hash}; "
                                      f"this file now holds other content ({pinned_entry.hash}): not served; "
                                      "restore it, or give the change a new version and activate that")
                    problems.append(changed)
                    pinned_entry = VersionEntry(ruleset_id, pinned_version, pinned_entry.path, None,
                                                [changed], None, None)
                    not_served = pinned_version
                candidates.append((pinned_entry, True))
            elif served is not None and served.id == ruleset_id:
                # another host activated a version this host's rules/ lacks:
                # keep the last good one, and say so (in /health)
                candidates.append((entries.get(served.version)
                                   or VersionEntry(ruleset_id, "?", Path("?")), False))
                problems.append(Problem(display_path(Path(self.pointer.location)), 1, 1,
                                        f"pinned version {ruleset_id}@{pinned_version} is not in "
                                        f"this host's rules; still serving "
                                        f"{served.version}"))
            else:
                problems.append(Problem(display_path(Path(self.pointer.location)), 1, 1,
                                        f"pinned version {ruleset_id}@{pinned_version} not found; "
                                        "using the highest valid version"))
        recorded = loaded.recorded.get(ruleset_id, {})
        for v, e in sorted(entries.items(), key=lambda kv: version_key(kv[0]), reverse=True):
            if v == not_served:
                continue
            if recorded.get(v) and e.hash and recorded[v] != e.hash:
                # nothing pinned: the highest version serves as the files say (as
                # before), but it cannot be activated until restored or bumped
                problems.append(Problem(display_path(e.path), 1, 1,
                                        f"{ruleset_id}@{v} holds other content ({e.hash}) than recorded for "
                                        f"it ({recorded[v]}): it cannot be activated; restore it or bump its "
                                        "version", severity="warning"))
            candidates.append((e, False))
        return candidates

    @staticmethod
    def release_unserved(loaded: Loaded | None, released: set[int]) -> None:
        """Drop from the listed entries the parses the source released."""
        if loaded is None or not released:
            return
        for entries in loaded.versions.values():
            for entry in entries.values():
                if entry.ruleset is not None and id(entry.ruleset) in released:
                    entry.ruleset = None
