"""The file layout of a rules repository (rules/README.md, "Versions"):

    rules/<id>.yaml                  the working copy of a rule set (any version)
    rules/versions/<id>@<ver>.yaml   earlier (or later) versions kept side by side
    rules/<id>.cases.yaml            its regression cases (never loaded as rules)
    rules/<id>.lock.json             the content hash of every released version
    rules/<id>.experiments.yaml      its experiments (app/experiments; never loaded as rules)
    <state_dir>/active-rulesets.json which version is active, per rule set id
    <state_dir>/rule-files.checks.json what checking each valid rule file found (a
                                     cache; the dot keeps it out of the store's collections)

Nothing else in the package spells a folder or a suffix.

Every path built from a name (a rule set id, a version, a file found in a
folder) goes through contained_path() (model/source.py, re-exported here: the
model's catalog reader needs it too), which resolves it (symbolic links and
"..") and refuses one outside its folder; versions are checked first with
check_version() (Semantic Versioning 2.0.0, common.VERSION_RE) and ids with
check_ruleset_id(). A refused name is an UnsafeName (a RuleSetError), so every
caller that reports rule errors reports it too.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..model.common import VERSION_RE
from ..model.ruleset import ID_RE
from ..model.source import UnsafeName, contained_path, is_contained

__all__ = ["UnsafeName", "check_ruleset_id", "check_version", "contained_path", "is_contained"]

VERSIONS_DIR = "versions"
RULE_SUFFIXES = (".yaml", ".yml")
CASES_SUFFIXES = (".cases.yaml", ".cases.yml")
EXPERIMENTS_SUFFIX = ".experiments.yaml"
LOCK_SUFFIX = ".lock.json"
POINTER_FILE = "active-rulesets.json"
CHECKS_FILE = "rule-files.checks.json"


VERSION_GRAMMAR = "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (Semantic Versioning 2.0.0, e.g. \"1.0.0\", \"1.1.0-rc.1\")"


def check_version(version) -> str:
    """`version` if it is a semantic version (common.VERSION_RE), else UnsafeName
    saying what a version looks like."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise UnsafeName(f"version {version!r} is not a semantic version: write {VERSION_GRAMMAR}",
                         code="INVALID_VERSION")
    return version


def check_ruleset_id(ruleset_id) -> str:
    """`ruleset_id` if it is a rule set id (letters, digits, '.', '_', '-'), else UnsafeName."""
    if not isinstance(ruleset_id, str) or not ID_RE.match(ruleset_id):
        raise UnsafeName(f"rule set id {ruleset_id!r} may only use letters, digits, '.', '_' and '-'",
                         code="INVALID_RULESET_ID")
    return ruleset_id


def rule_files(rules_dir: Path) -> list[Path]:
    """Rule set files: rules/*.yaml and rules/versions/*.yaml, not *.cases.yaml;
    the working copies first (the service lets them win over a kept copy)."""
    rules_dir = Path(rules_dir)
    found = []
    for folder in (rules_dir, rules_dir / VERSIONS_DIR):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if (path.suffix in RULE_SUFFIXES and path.is_file() and not is_cases_file(path)
                        and not path.name.endswith(EXPERIMENTS_SUFFIX) and is_contained(rules_dir, path)):
                    found.append(path)
    return found


def is_cases_file(path: Path) -> bool:
    return Path(path).name.endswith(CASES_SUFFIXES)


def in_versions_dir(path: Path) -> bool:
    """True for a kept version (rules/versions/<id>@<ver>.yaml)."""
    return Path(path).parent.name == VERSIONS_DIR


def rules_dir_of(path: Path) -> Path:
    """The rules directory of a working copy (rules/x.yaml) or a kept version (rules/versions/x.yaml)."""
    path = Path(path)
    return path.parent.parent if in_versions_dir(path) else path.parent


def ruleset_stem(ruleset_id: str, version: str | None = None) -> str:
    """`<id>` (a working copy's name) or `<id>@<version>` (a kept version's);
    UnsafeName for a bad id or version."""
    stem = check_ruleset_id(ruleset_id)
    return f"{stem}@{check_version(version)}" if version is not None else stem


def kept_version_path(rules_dir: Path, ruleset_id: str, version: str) -> Path:
    """rules/versions/<id>@<version>.yaml; UnsafeName for a bad id or version."""
    return contained_path(Path(rules_dir) / VERSIONS_DIR, ruleset_stem(ruleset_id, version) + RULE_SUFFIXES[0])


def kept_cases_path(rules_dir: Path, ruleset_id: str, version: str) -> Path:
    """rules/versions/<id>@<version>.cases.yaml, the cases kept with a
    version; UnsafeName for a bad id or version."""
    return contained_path(Path(rules_dir) / VERSIONS_DIR, ruleset_stem(ruleset_id, version) + CASES_SUFFIXES[0])


def working_copy_path(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.yaml; UnsafeName for a bad id."""
    return contained_path(rules_dir, ruleset_stem(ruleset_id) + RULE_SUFFIXES[0])


def cases_path(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.cases.yaml; UnsafeName for a bad id."""
    return contained_path(rules_dir, ruleset_stem(ruleset_id) + CASES_SUFFIXES[0])


def cases_file_for(rule_file: Path) -> Path:
    rule_file = Path(rule_file)
    return rule_file.with_name(rule_file.name.rsplit(".", 1)[0] + CASES_SUFFIXES[0])


def ruleset_file_for(cases_file: Path) -> Path:
    cases_file = Path(cases_file)
    stem = next((cases_file.name[: -len(suffix)] for suffix in CASES_SUFFIXES if cases_file.name.endswith(suffix)),
                cases_file.stem)
    for suffix in RULE_SUFFIXES:
        candidate = cases_file.with_name(stem + suffix)
        if candidate.exists():
            return candidate
    return cases_file.with_name(stem + RULE_SUFFIXES[0])


def find_cases_files(rules_dir: Path) -> list[Path]:
    rules_dir = Path(rules_dir)
    return sorted(p for p in rules_dir.glob("*.cases.y*ml") if p.is_file())


def lock_path(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.lock.json; UnsafeName for a bad id."""
    return contained_path(rules_dir, f"{check_ruleset_id(ruleset_id)}{LOCK_SUFFIX}")


def experiments_path(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.experiments.yaml (app/experiments); UnsafeName for a bad id."""
    return contained_path(Path(rules_dir), f"{check_ruleset_id(ruleset_id)}{EXPERIMENTS_SUFFIX}")


def experiments_files(rules_dir: Path) -> list[Path]:
    """rules/*.experiments.yaml (app/experiments)."""
    return sorted(p for p in Path(rules_dir).glob(f"*{EXPERIMENTS_SUFFIX}") if p.is_file())


def lock_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in Path(rules_dir).glob(f"*{LOCK_SUFFIX}") if p.is_file())


def pointer_path(state_dir: Path) -> Path:
    return Path(state_dir) / POINTER_FILE


def checks_path(state_dir: Path) -> Path:
    return Path(state_dir) / CHECKS_FILE


def file_stats(folder, recursive: bool = False, entries: list | None = None) -> list:
    """[(path, inode, mtime_ns, size)] of the *.yaml/*.yml files in `folder`
    (sorted; [(folder, None)] when it cannot be listed)."""
    entries = [] if entries is None else entries
    try:
        with os.scandir(folder) as it:
            items = sorted(it, key=lambda e: e.name)
    except OSError:
        entries.append((str(folder), None))
        return entries
    for item in items:
        if item.name.endswith(RULE_SUFFIXES):
            try:
                st = item.stat()
            except OSError:
                continue
            entries.append((item.path, st.st_ino, st.st_mtime_ns, st.st_size))
        elif recursive and item.is_dir(follow_symlinks=False):
            file_stats(item.path, recursive, entries)
    return entries


def stat_key(path: Path) -> tuple | None:
    """(inode, mtime_ns, size) of one file, None when it is gone: a file whose
    key is unchanged need not be read again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def stat_signature(rules_dir: Path, catalog_dir: Path, pointer: Path) -> tuple:
    """(path, inode, mtime, size) of every rule, catalog and pointer file: equal
    signatures mean nothing a reload reads has changed."""
    entries: list = []
    file_stats(rules_dir, entries=entries)
    file_stats(Path(rules_dir) / VERSIONS_DIR, entries=entries)
    file_stats(catalog_dir, recursive=True, entries=entries)
    entries.append(("pointer", stat_key(pointer)))
    return tuple(entries)
