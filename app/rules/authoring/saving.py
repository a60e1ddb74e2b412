"""The working copy of a rule set (rules/<id>.yaml) and its saves from the
Rule Studio and PUT /admin/rules/<id>/working-copy: one save at a time per
rules folder, refused when it does not start from the working copy as it is
now (If-Match: its entity tag), never changing what is served.
"""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

from .keptcases import keep_cases
from .lockfile import keep_version, kept_copy_of
from ..model.common import ruleset_fingerprint
from ..model.errors import RuleSetError
from ..model.source import check_source_size, read_source
from ..model.yamlload import display_path, load_text
from ..repository.files import write_text_atomic
from ..repository.layout import check_version, kept_version_path, working_copy_path
from ..repository.ledger import history_entry
from ..repository.registry import VersionChanged, next_free_version, recorded_hashes
from ...store.base import StoreUnavailable


def working_copy(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.yaml (layout.UnsafeName, a RuleSetError, for an id that is no safe file name)."""
    return working_copy_path(rules_dir, ruleset_id)


class SaveConflict(RuleSetError):
    """A save that did not start from the working copy as it is now: someone
    else saved in between. `etag` is the current one, `diff` their change
    (unified diff from the text this save started from, when the ledger has
    it, else from the text sent to the one on disk), `last` the history
    entry of the latest save."""

    def __init__(self, message: str, etag: str, diff: str, last: dict | None):
        super().__init__(message)
        self.etag, self.diff, self.last = etag, diff, last


class BaseRequired(RuleSetError):
    """A save that does not say which working copy it started from."""


def text_tag(text: str) -> str:
    """The entity tag of a working copy text: SHA-256 of its UTF-8 bytes
    (32 hex digits); sent as the ETag of GET .../working-copy and expected
    back in If-Match (RFC 9110, 13.1.1)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def working_copy_state(rules_dir: Path, ruleset_id: str) -> tuple[str | None, str | None]:
    """(text, etag) of rules/<id>.yaml; (None, None) when there is none."""
    path = working_copy(rules_dir, ruleset_id)
    try:
        text = read_rule_text(path)
    except FileNotFoundError:
        return None, None
    return text, text_tag(text)


def _diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        old_name, new_name, n=2))


@contextmanager
def _saving(rules_dir: Path):
    """One save at a time in this rules folder (an exclusive flock on the
    folder itself, shared by every worker and thread of the host): the check
    that a save starts from the current working copy and its write are one
    step, so of two saves sent at once from the same base one is refused as
    a conflict instead of both succeeding (a lost update)."""
    fd = os.open(rules_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                  # releases the flock


def save_working_copy(rules, rules_dir: Path, ruleset_id: str, text: str, by: str,
                      base: str | tuple[str, ...] | None = None) -> dict:
    """Save rules/<id>.yaml (see _save_working_copy), one save at a time.
    `base` may be several tags (an If-Match list): the save starts from the
    one that is the working copy now, if any."""
    with _saving(Path(rules_dir)):
        if base is not None and not isinstance(base, str):
            _text, current_tag = working_copy_state(rules_dir, ruleset_id)
            base = current_tag if current_tag in base else (base[0] if base else None)
        return _save_working_copy(rules, rules_dir, ruleset_id, text, by, base)


def _save_working_copy(rules, rules_dir: Path, ruleset_id: str, text: str, by: str,
                       base: str | None = None) -> dict:
    """Save rules/<id>.yaml; never changes what is served.

    `base`: the etag (text_tag) of the working copy this edit started from.
    Refused (RuleSetError): no base (BaseRequired); a base that is no longer
    the working copy (SaveConflict, with the other change as a diff); text
    that is not YAML or names another rule set; other content under a version
    already recorded, kept or in service (VersionChanged, with the next free
    version). Before the write: the old working copy is kept in
    rules/versions/ (as `flask rules keep`) when its version changes, and the
    version in service is pinned when nothing is pinned (else a higher saved
    version would serve at once). Recorded in the ledger's history (who,
    when, which version and hash). Returns what was done and the new etag."""
    working = working_copy(rules_dir, ruleset_id)
    name = display_path(working)
    check_source_size(len(text.encode("utf-8")), name)     # the one limit of rule files, before parsing
    doc = load_text(text, name)                       # RuleSetError with line and column
    if not isinstance(doc, dict) or doc.get("id") != ruleset_id or not isinstance(doc.get("version"), str):
        raise RuleSetError(f"{name} must hold `id: {ruleset_id}` and a text `version`")
    version = check_version(doc["version"])          # it names the kept copy of this text one day
    ledger = rules.ledger
    current_text, current_tag = working_copy_state(rules_dir, ruleset_id)
    if base is None:
        raise BaseRequired("say which working copy this edit started from: send its ETag in If-Match "
                           f"(now {current_tag}); GET the working copy to get it")
    if base != current_tag:
        saves = [h for h in ledger.history(ruleset_id) if h.get("action") == "save"]
        started = ledger.text(base)
        if started is not None and current_text is not None:
            diff = _diff(started, current_text, f"{name} (when you started)", f"{name} (saved since)")
        else:
            diff = _diff(text, current_text or "", f"{name} (yours)", f"{name} (saved since)")
        last = saves[0] if saves else None
        who = f" by {last['by']} at {last['at']}" if last else ""
        raise SaveConflict(f"{name} was changed since you opened it{who}: nothing was saved; "
                           "merge their change (the diff) into yours and save again", current_tag or "", diff, last)
    rules.refresh()
    content_hash = ruleset_fingerprint(doc)
    recorded = recorded_hashes(rules_dir, ledger, ruleset_id)
    rows = rules.versions(ruleset_id)
    taken = set(recorded) | {r["version"] for r in rows}
    kept = kept_version_path(rules_dir, ruleset_id, version)
    if version in recorded and recorded[version] != content_hash:
        raise VersionChanged(ruleset_id, version, recorded[version], content_hash,
                             next_free_version(version, taken))
    kept_row = next((r for r in rows if r["version"] == version and r["file"] == display_path(kept)), None)
    if kept_row is not None and kept_row["hash"] and kept_row["hash"] != content_hash:
        raise VersionChanged(ruleset_id, version, kept_row["hash"], content_hash,
                             next_free_version(version, taken), where=f"kept in {display_path(kept)}")
    status = rules.status()
    in_service = status.get("version") if status.get("rulesetId") == ruleset_id else None
    if in_service is None:
        active_rows = [r for r in rows if r["active"]]
        in_service = active_rows[0]["version"] if active_rows else None
    if current_text is not None and version == in_service and current_text != text:
        served = [r for r in rows if r["version"] == in_service]
        if served and served[0]["file"] == name and served[0]["hash"] != content_hash:
            raise VersionChanged(ruleset_id, version, served[0]["hash"], content_hash,
                                 next_free_version(version, taken), where="in service")
    done, made, made_cases = [], None, None
    old_version = None
    new_tag = text_tag(text)
    pin = None
    try:
        if current_text is not None:
            old = load_text(current_text, name)
            old_version = old.get("version") if isinstance(old, dict) else None
            if isinstance(old, dict) and old_version != version:
                old_hash = ruleset_fingerprint(old)
                if isinstance(old_version, str) and recorded.get(old_version, old_hash) != old_hash:
                    done.append(f"not kept: {name} held {ruleset_id} {old_version} with other content than "
                                "recorded for it")
                else:
                    existed = kept_copy_of(working).exists()
                    kept = keep_version(working)
                    made = None if existed else kept
                    done.append(f"kept {name} as {display_path(kept)}")
                    made_cases = keep_cases(rules_dir, ruleset_id, old_version)
                    if made_cases is not None:
                        done.append(f"kept its cases as {display_path(made_cases)}")
        pinned = any(r["pinned"] for r in rows)
        if not pinned and in_service is not None:
            pin = rules.activate(ruleset_id, in_service, by, action="pin-before-save",
                                 record_history=False)["activation"]
            done.append(f"pinned {ruleset_id} {in_service} (in service) so that saving changes nothing served")
        if current_text is not None:
            ledger.put_text(current_tag, current_text)
        ledger.put_text(new_tag, text)
        write_text_atomic(working, text)
    except (OSError, StoreUnavailable):
        # a failed save (a full disk: the rule files' or the store's) leaves
        # nothing it did behind: no kept copy or cases, no pin (neither is in
        # the history: the pin is recorded below, once the save it was for is done)
        _take_back(rules, ruleset_id, by, pin, (made, made_cases))
        raise
    try:
        if pin is not None:
            ledger.append(pin)
        ledger.append(history_entry(ruleset_id, "save", by, version=version,
                                    from_version=old_version if isinstance(old_version, str) else None,
                                    hash=content_hash, textHash=new_tag, baseHash=base))
    except StoreUnavailable:
        # the history refused it (the store's disk full): the saved file goes
        # back as it was (its old text fits where the new one was), or a
        # change would stand with no record of who made it
        if current_text is None:
            working.unlink(missing_ok=True)
        else:
            write_text_atomic(working, current_text)
        _take_back(rules, ruleset_id, by, pin, (made, made_cases))
        raise
    done.append(f"saved {name} ({ruleset_id} {version}); nothing was activated")
    return {"file": name, "version": version, "hash": content_hash, "etag": new_tag, "done": done}


def _take_back(rules, ruleset_id: str, by: str, pin: dict | None, made: tuple) -> None:
    """Undo a failed save's steps: its pin (unpinned again, unrecorded) and
    the kept copy and cases it made."""
    if pin is not None:
        rules.activate(ruleset_id, None, by, record_history=False)
    for path in made:
        if path is not None:
            path.unlink(missing_ok=True)


def read_rule_text(path: Path) -> str:
    """The text of a rule file (FileTooLarge, before reading, over the size limit)."""
    return read_source(path, display_path(path)).decode("utf-8")
