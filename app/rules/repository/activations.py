"""The activation history: who activated which version of a rule set, when,
and which version served before (for the Rule Studio's list and its one-step
roll back, and for `flask rules activate`).

One JSON object per line in `<state_dir>/rule-activations.jsonl`, next to the
active pointer; appended with O_APPEND and fsync'd before the caller answers,
so an acknowledged activation is never missing from the history. Lines that
cannot be read (e.g. a torn last line after a crash or a full disk) are
skipped, and the next entry starts on a line of its own. An append, not a
replace (the one file the rules package does not write with app.atomicfile):
rewriting the whole history per activation would make it cost O(history).

    {"rulesetId": "telco-demo", "version": "1.1.0", "fromVersion": "1.0.0",
     "action": "activate", "by": "ana (key 3f2a...)", "at": "2026-10-01T09:00:00Z"}

`action` is `activate`, `rollback`, `unpin` (serve the highest valid version)
or `pin-before-save` (the studio pins the version in service before saving a
working copy, so that a save never changes what customers see).
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from ..model.common import UTC, iso

HISTORY_FILE = "rule-activations.jsonl"
ACTIONS = ("activate", "rollback", "unpin", "pin-before-save")


def history_path(state_dir: Path) -> Path:
    return Path(state_dir) / HISTORY_FILE


def record_activation(state_dir: Path, ruleset_id: str, version: str | None, from_version: str | None,
                      by: str, action: str = "activate", when: dt.datetime | None = None) -> dict:
    """Append one entry (durably) and return it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    entry = {"rulesetId": ruleset_id, "version": version, "fromVersion": from_version, "action": action,
             "by": by, "at": iso(when or dt.datetime.now(UTC))}
    path = history_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line        # a line cut by a full disk stays alone (and is skipped)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def read_activations(state_dir: Path, ruleset_id: str | None = None) -> list[dict]:
    """Every readable entry, newest first (optionally of one rule set)."""
    try:
        text = history_path(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and (ruleset_id is None or entry.get("rulesetId") == ruleset_id):
            out.append(entry)
    out.reverse()
    return out


def rollback_target(entries: list[dict]) -> str | None:
    """The version to roll back to: the one that served before the latest
    activation or roll back (entries newest first), if any."""
    for entry in entries:
        if entry.get("action") in ("activate", "rollback", "unpin"):
            return entry.get("fromVersion")
    return None
