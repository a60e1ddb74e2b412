"""Approval, activation and roll back of rule set versions from the Rule
Studio, /admin/rules and `flask rules activate|rollback|history|lock`: who
may approve (not an author of the version), what an activation needs (an
approval when RECO_RULES_REQUIRE_APPROVAL is on), and the history.
"""
from __future__ import annotations

import re
from pathlib import Path

from .keptcases import stage_cases
from .lockfile import lock_rulesets
from ..model.errors import RuleSetError
from ..model.yamlload import display_path, load_text
from ..repository.layout import check_ruleset_id, check_version, lock_path
from ..repository.ledger import ACTIVATIONS, history_entry
from ..repository.registry import rollback_target
from .saving import working_copy, working_copy_state


class StaleForm(RuleSetError):
    """An activation or roll back form made when another version served
    (e.g. re-sent with the browser's Back button): nothing is done."""


KEY_RE = re.compile(r"(?:^|\()key ([0-9a-f]{12})\)?$")


class ApprovalRequired(RuleSetError):
    """RECO_RULES_REQUIRE_APPROVAL is on and the version has no approval."""


class SameKey(RuleSetError):
    """An approval by a key that saved the version (four eyes)."""


def key_of(by: str | None) -> str | None:
    """The key fingerprint in a history `by` ("Ana (key 3f2a...)", "key 3f2a..."):
    the one at its end, never one a login name spells."""
    match = KEY_RE.search(by or "")
    return match.group(1) if match else None


def approval_of(rules, ruleset_id: str, version: str, content_hash: str | None) -> dict | None:
    """The latest approval of exactly this content of `version`, if any."""
    return next((h for h in rules.ledger.history(ruleset_id) if h.get("action") == "approve"
                 and h.get("version") == version and h.get("hash") == content_hash), None)


def review(rules, ruleset_id: str, version: str) -> dict:
    """What an approver looks at: the version's row (hash, valid, changed),
    its authors (who saved this content), its approval if any."""
    rules.refresh()
    row = next((r for r in rules.versions(ruleset_id) if r["version"] == version), None)
    if row is None:
        raise RuleSetError(f"rule set {ruleset_id!r} has no version {version!r}")
    authors = sorted({h["by"] for h in rules.ledger.history(ruleset_id) if h.get("action") == "save"
                      and h.get("version") == version and h.get("hash") == row["hash"]})
    return {"version": row, "authors": authors, "approval": approval_of(rules, ruleset_id, version, row["hash"])}


def approve(rules, ruleset_id: str, version: str, by: str, note: str = "") -> dict:
    """Approve `version` as it is now (its content hash) for activation.
    Refused: a broken or changed version; an approver whose key saved this
    content (SameKey: four eyes, the approver must be another key than the
    author). Recorded in the history (action approve, the hash approved)."""
    found = review(rules, ruleset_id, version)
    row = found["version"]
    if not row["valid"] or row["changed"]:
        raise RuleSetError(f"{ruleset_id} {version} cannot be approved: "
                           + ("it has errors" if not row["valid"] else "its file holds other content than recorded"))
    approver = key_of(by)
    author_keys = {key_of(a) for a in found["authors"]} - {None}
    if approver is None or approver in author_keys:
        raise SameKey(f"{ruleset_id} {version} was saved with key {approver}: the approver must be another "
                      "key than the author (four eyes)")
    return rules.ledger.append(history_entry(ruleset_id, "approve", by, version=version, hash=row["hash"],
                                             note=note[:500]))


def unapproved_to_serve(rules, ruleset_id: str, version: str) -> ApprovalRequired | None:
    """Why `version` may not answer customers under RECO_RULES_REQUIRE_APPROVAL
    other than by a roll back (None: it may): for an experiment arm, which
    serves a share of the traffic as an activation serves all of it. It may
    when it serves now, has served with its current content (an activation,
    roll back or pin of it in the history) or another key approved its
    current content (approve())."""
    row = next((r for r in rules.versions(ruleset_id) if r["version"] == version), None)
    if row is None or serving_version(rules, ruleset_id) == version:
        return None                       # an unknown version is refused by whoever loads it
    served = any(h.get("action") in ACTIVATIONS and h.get("version") == version and h.get("hash") == row["hash"]
                 for h in rules.ledger.history(ruleset_id))
    if served or approval_of(rules, ruleset_id, version, row["hash"]) is not None:
        return None
    return ApprovalRequired(f"{ruleset_id} {version} (hash {row['hash']}) is not approved: another key than "
                            "its author's must approve it first (RECO_RULES_REQUIRE_APPROVAL)")


def serving_version(rules, ruleset_id: str) -> str | None:
    rows = [r for r in rules.versions(ruleset_id) if r["active"]]
    return rows[0]["version"] if rows else None


def activate(rules, ruleset_id: str, version: str | None, by: str, action: str = "activate",
             expected_from: str | None = None, *, require_approval: bool) -> dict:
    """rules.activate (as `flask rules activate`), recorded in the history.
    `expected_from`: the version the caller saw serving (a form's hidden
    field); when another one serves now the request is stale (StaleForm).
    `require_approval` (RECO_RULES_REQUIRE_APPROVAL): an activation needs an
    approval of the version's current content (approve()); unpinning is
    refused then (it would serve whatever version is highest). A roll back
    goes to a version that served before and needs none. layout.UnsafeName
    (a RuleSetError) for an id or version that is not one."""
    check_ruleset_id(ruleset_id)
    if version is not None:
        check_version(version)
    rules.refresh()                    # "from": what serves now, not at the last reload
    if expected_from is not None and expected_from != (serving_version(rules, ruleset_id) or ""):
        raise StaleForm(f"this form was made when {expected_from or 'no version'} served; "
                        f"{serving_version(rules, ruleset_id)} serves now: nothing was done")
    if require_approval and action == "activate":
        if version is None:
            raise ApprovalRequired("approval is required (RECO_RULES_REQUIRE_APPROVAL): activate an approved "
                                   "version instead of serving the highest one")
        row = next((r for r in rules.versions(ruleset_id) if r["version"] == version), None)
        if row is not None and serving_version(rules, ruleset_id) != version \
                and approval_of(rules, ruleset_id, version, row["hash"]) is None:
            raise ApprovalRequired(f"{ruleset_id} {version} (hash {row['hash']}) is not approved: another key "
                                   "than its author's must approve it first (RECO_RULES_REQUIRE_APPROVAL)")
    # the working copy's version goes live: its cases are kept with it,
    # written before the activation (a full disk refuses it with nothing
    # changed) and given their name after it
    working_version = _working_version(rules.rules_dir, ruleset_id)
    staged = (stage_cases(rules.rules_dir, ruleset_id, working_version)
              if working_version is not None and version in (None, working_version) else None)
    try:
        status = rules.activate(ruleset_id, version, by, action)
        entry = status.pop("activation", None)
        if staged is not None and entry is not None and entry.get("version") == working_version:
            staged.commit()
    finally:
        if staged is not None:
            staged.discard()
    return {"status": status, "activation": entry}


def _working_version(rules_dir: Path, ruleset_id: str) -> str | None:
    """The version the working copy rules/<id>.yaml holds (None: none, or
    one that cannot be read: it is then not the one activated)."""
    try:
        working_text, _tag = working_copy_state(rules_dir, ruleset_id)
        if working_text is None:
            return None
        doc = load_text(working_text, display_path(working_copy(rules_dir, ruleset_id)))
        return check_version(doc.get("version") if isinstance(doc, dict) else None)
    except RuleSetError:
        return None


def rollback_to(rules, ruleset_id: str, history: list[dict] | None = None) -> str | None:
    """The version "Roll back" goes to (registry.rollback_target): never the
    one serving, never one rolled back away from, never a broken or changed one."""
    rows = {r["version"]: r for r in rules.versions(ruleset_id)}
    history = rules.ledger.history(ruleset_id) if history is None else history

    def healthy(version: str) -> bool:
        row = rows.get(version)
        return bool(row and row["valid"] and not row["changed"])

    return rollback_target(history, serving_version(rules, ruleset_id), healthy)


def rollback(rules, ruleset_id: str, by: str, expected_from: str | None = None) -> dict:
    """Activate the version rollback_to() names."""
    rules.refresh()
    target = rollback_to(rules, ruleset_id)
    if target is None:
        raise RuleSetError(f"nothing to roll back: no earlier healthy version of {ruleset_id} "
                           "served before this one")
    return activate(rules, ruleset_id, target, by, "rollback", expected_from, require_approval=False)


def history(rules, ruleset_id: str | None = None) -> list[dict]:
    """The audit history (newest first): saves, records, approvals, activations."""
    return rules.ledger.history(ruleset_id)


def lock(rules_dir: Path, ruleset_id: str, ledger=None) -> dict:
    """Record the content hash of new versions in rules/<id>.lock.json (as
    `flask rules lock`, never --amend): a recorded version whose content
    changed stays refused (bump its version)."""
    changes = lock_rulesets(rules_dir, ruleset_id, ledger=ledger)
    return {"lockFile": display_path(lock_path(rules_dir, ruleset_id)),
            "changes": [{"version": c.version, "file": c.file, "action": c.action, "text": str(c)} for c in changes],
            "refused": [c.version for c in changes if c.action == "refused"]}
