"""Lock files: the content hash recorded for every released version of a rule set.

    rules/<id>.lock.json
    {
      "ruleset": "telco-demo",
      "versions": {
        "1.0.0": "5c1f0a9d2b7e4c11"
      }
    }

`flask rules lock` records the hash of each version found in `rules/` and
`rules/versions/`; `flask rules lint` reports a version whose content no
longer matches its recorded hash ("bump the version"). The hash is taken over
the *parsed* document without its `version` field (sorted keys, JSON), so
comments, blank lines, quoting, key order and line endings (git's autocrlf
on Windows) do not count as changes, while every value, descriptions
included, does. The file is committed with the rule set; one version per line
keeps reviews readable.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..model.common import VERSION_RE, ruleset_fingerprint, version_key
from ..model.errors import Problem, RuleSetError
from ..model.yamlload import display_path, load_file
from ..model.ruleset import ID_RE
from ..model.source import read_source
from ..repository.files import write_json_atomic, write_text_atomic
from ..repository.layout import UnsafeName, kept_version_path, lock_path, rule_files, rules_dir_of


def semantic_hash(doc) -> str:
    """Hash of a rule set's meaning: the parsed document without `version`."""
    return ruleset_fingerprint(doc)


def read_lock(path: Path) -> dict[str, str] | None:
    """{version: hash} of a lock file; None when there is none. RuleSetError when it is broken."""
    path = Path(path)
    name = display_path(path)
    try:
        text = read_source(path, name).decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"cannot read {name}", [Problem(name, 1, 1, f"cannot read the lock file: {exc}")]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        line, column = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise RuleSetError(f"cannot read {name}",
                           [Problem(name, line, column, f"invalid JSON in the lock file: {exc.msg}")]) from None
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in versions.items()):
        raise RuleSetError(f"cannot read {name}", [Problem(
            name, 1, 1, 'a lock file is {"ruleset": ID, "versions": {VERSION: HASH, ...}}')])
    return dict(versions)


def write_lock(path: Path, ruleset_id: str, versions: dict[str, str]) -> None:
    ordered = dict(sorted(versions.items(), key=lambda kv: version_key(kv[0])))
    write_json_atomic(path, {"ruleset": ruleset_id, "versions": ordered}, sort_keys=False)


@dataclass
class VersionFile:
    path: Path
    ruleset_id: str
    version: str
    hash: str


def version_files(rules_dir: Path) -> list[VersionFile]:
    """Every rule file in rules_dir and rules_dir/versions that parses as YAML with an id and a version."""
    found = []
    for path in rule_files(rules_dir):
        try:
            doc = load_file(path)
        except RuleSetError:
            continue
        if not isinstance(doc, dict):
            continue
        rid, version = doc.get("id"), doc.get("version")
        if (isinstance(rid, str) and ID_RE.match(rid) and isinstance(version, str)
                and VERSION_RE.match(version)):
            found.append(VersionFile(path, rid, version, semantic_hash(doc)))
    return found


@dataclass
class LockChange:
    ruleset_id: str
    version: str
    file: str
    action: str            # recorded | unchanged | amended | refused
    old_hash: str | None
    new_hash: str

    def __str__(self) -> str:
        text = {"recorded": "recorded", "unchanged": "already recorded", "amended": "re-recorded (--amend)",
                "refused": "CHANGED since it was recorded: bump its version (or --amend if it was never released)"
                }[self.action]
        return f"{self.ruleset_id} {self.version} ({self.file}): {text}"


def lock_rulesets(rules_dir: Path, ruleset_id: str | None = None, amend: bool = False,
                  ledger=None) -> list[LockChange]:
    """Record the hash of every version not yet in its lock file. A recorded
    version whose content changed is refused, unless `amend` (then re-recorded).
    `ledger` (app.rules.repository.ledger): a version it recorded (activated)
    with other content is refused, `amend` or not, and never written here."""
    rules_dir = Path(rules_dir)
    by_id: dict[str, list[VersionFile]] = {}
    for item in version_files(rules_dir):
        if ruleset_id is None or item.ruleset_id == ruleset_id:
            by_id.setdefault(item.ruleset_id, []).append(item)
    if ruleset_id is not None and ruleset_id not in by_id:
        raise RuleSetError(f"no rule set with id {ruleset_id!r} in {display_path(rules_dir)}")
    changes: list[LockChange] = []
    for rid, items in sorted(by_id.items()):
        path = lock_path(rules_dir, rid)
        recorded = read_lock(path) or {}
        updated = dict(recorded)
        activated = {v: r.get("hash") for v, r in ledger.recorded(rid).items()} if ledger is not None else {}
        for item in items:
            old = updated.get(item.version)
            name = display_path(item.path)
            if activated.get(item.version, item.hash) != item.hash:
                changes.append(LockChange(rid, item.version, name, "refused", activated[item.version], item.hash))
                continue
            if old is None:
                updated[item.version] = item.hash
                action = "recorded"
            elif old == item.hash:
                action = "unchanged"
            elif amend:
                updated[item.version] = item.hash
                action = "amended"
            else:
                action = "refused"
            changes.append(LockChange(rid, item.version, name, action, old, item.hash))
        if updated != recorded or not path.exists():
            write_lock(path, rid, updated)
    return changes


def next_versions(version: str) -> tuple[str, str]:
    """(patch bump, minor bump) of "MAJOR.MINOR.PATCH"."""
    match = VERSION_RE.match(version or "")
    if not match:
        return "1.0.1", "1.1.0"
    major, minor, patch = (int(x) for x in match.groups()[:3])
    return f"{major}.{minor}.{patch + 1}", f"{major}.{minor + 1}.0"


MODELINE_RE = re.compile(r"(#\s*yaml-language-server:\s*\$schema=)(\S+)")


def kept_copy_of(working: Path, doc=None) -> Path:
    """rules/versions/<id>@<version>.yaml of a working copy's id and version
    (RuleSetError when it has none, layout.UnsafeName when they are no safe name)."""
    doc = load_file(working) if doc is None else doc
    rid, version = (doc.get("id"), doc.get("version")) if isinstance(doc, dict) else (None, None)
    if not isinstance(rid, str) or not isinstance(version, str):
        raise RuleSetError(f"{display_path(working)} has no id and version")
    try:
        return kept_version_path(rules_dir_of(working), rid, version)
    except UnsafeName as exc:       # name the line of the id or version that cannot be a file name
        name = display_path(working)
        key = "version" if exc.code == "INVALID_VERSION" else "id"
        line, column = doc.at(key) if hasattr(doc, "at") else (1, 1)
        raise UnsafeName(f"{name}:{line}:{column}: {exc}", code=exc.code) from None


def keep_version(working: Path) -> Path:
    """Copy a working copy to rules/versions/<id>@<version>.yaml (for rollback
    and diff), with its editor schema line rewritten for the new folder.
    Refuses to overwrite a kept copy with other content, and an id or version
    that is no safe file name (layout.UnsafeName). Written atomically: a
    failed write (a full disk) leaves no kept copy, never a cut one."""
    working = Path(working)
    doc = load_file(working)
    rid, version = doc.get("id"), doc.get("version")
    target = kept_copy_of(working, doc)
    text = read_source(working, display_path(working)).decode("utf-8")

    def rebase(match: re.Match) -> str:
        old = match.group(2)
        if old.startswith(("http://", "https://")):
            return match.group(0)
        resolved = (working.parent / old).resolve()
        return match.group(1) + Path(os.path.relpath(resolved, target.parent.resolve())).as_posix()

    text = MODELINE_RE.sub(rebase, text, count=1)
    if target.exists():
        if semantic_hash(load_file(target)) != semantic_hash(doc):
            raise RuleSetError(f"{display_path(target)} already holds {rid} {version} with other content: "
                               "bump the version of the working copy first")
        return target
    write_text_atomic(target, text)
    return target
