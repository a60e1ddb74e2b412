"""The version registry: which content each rule set version means, forever.

A version is *recorded* the first time it is locked (`flask rules lock`,
rules/<id>.lock.json) or activated (the ledger, app.rules.repository.ledger),
whichever comes first; from then on its content hash is fixed:

* saving other content under it is refused (the Studio, PUT /admin/rules/<id>/working-copy),
  with the next free version offered (:func:`next_free_version`);
* only a file whose content matches the recorded hash can be activated, and
  a pinned version whose file changed is not served (the last good version
  keeps serving, /health says why);
* `flask rules lock --amend` cannot re-record a version that was activated.

The hash is app.rules.model.common.ruleset_fingerprint (what X-Ruleset-Hash
and /health send): the parsed document without `version`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..model.common import VERSION_RE, version_key
from ..model.errors import RuleSetError
from .layout import lock_path


class VersionChanged(RuleSetError):
    """Other content under a recorded version. `next_version`: a free one to use."""

    def __init__(self, ruleset_id: str, version: str, recorded: str, found: str, next_version: str,
                 where: str = "recorded"):
        super().__init__(f"{ruleset_id} {version} is already {where} with other content "
                         f"(hash {recorded}, this text: {found}): a version means one thing forever; "
                         f"save it as {next_version} (the next free version)")
        self.ruleset_id, self.version, self.next_version = ruleset_id, version, next_version
        self.recorded, self.found = recorded, found


def _lock_versions(rules_dir: Path, ruleset_id: str) -> dict[str, str]:
    """{version: hash} of rules/<id>.lock.json ({} when it is missing or
    broken: `flask rules lint` reports a broken lock file with its line)."""
    try:
        data = json.loads(lock_path(rules_dir, ruleset_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict):
        return {}
    return {k: v for k, v in versions.items() if isinstance(k, str) and isinstance(v, str)}


def recorded_hashes(rules_dir: Path, ledger, ruleset_id: str) -> dict[str, str]:
    """{version: recorded hash}: the ledger's records (what was activated),
    then the lock file's for the versions the ledger does not know."""
    found = dict(_lock_versions(rules_dir, ruleset_id))
    if ledger is not None:
        found.update({version: record["hash"] for version, record in ledger.recorded(ruleset_id).items()})
    return found


def next_free_version(version: str, taken) -> str:
    """The next patch version after `version` that no file, lock entry or
    record uses ("1.1.0" with 1.1.1 taken -> "1.1.2"); "1.0.1" for a version
    that is not MAJOR.MINOR.PATCH."""
    taken = set(taken)
    match = VERSION_RE.match(version or "")
    major, minor, patch = (int(x) for x in match.groups()[:3]) if match else (1, 0, 0)
    candidates = sorted([v for v in taken if VERSION_RE.match(v)] + [version if match else "1.0.0"],
                        key=version_key)
    # never offer a version below one already used with the same major.minor
    for used in candidates:
        m = VERSION_RE.match(used)
        if m and (int(m.group(1)), int(m.group(2))) == (major, minor):
            patch = max(patch, int(m.group(3)))
    candidate = f"{major}.{minor}.{patch + 1}"
    while candidate in taken:
        patch += 1
        candidate = f"{major}.{minor}.{patch + 1}"
    return candidate


def rollback_target(history: list[dict], current: str | None, healthy) -> str | None:
    """Where "Roll back" goes from `current`: the most recent version that
    served before it, is not `current`, was not itself rolled back away from
    (a roll back never goes forward again), and `healthy(version)` (loads,
    matches its recorded hash). `history` newest first; None when there is
    no such version."""
    abandoned = set()
    for entry in history:
        action = entry.get("action")
        if action == "rollback" and entry.get("fromVersion"):
            abandoned.add(entry["fromVersion"])
        if action not in ("activate", "rollback", "unpin", "pin-before-save"):
            continue
        candidate = entry.get("fromVersion")
        if candidate and candidate != current and candidate not in abandoned and healthy(candidate):
            return candidate
    return None
