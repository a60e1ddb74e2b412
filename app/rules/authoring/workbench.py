"""The authoring operations the Rule Studio, its JSON endpoints (/admin/rules)
and the CLI share: the same engine and authoring functions as
`flask rules ...` (explain, lint, cases, diff, keep, activate), plus the few
operations the browser needs on top of them (lint of unsaved text, atomic save
of a working copy, activation with its history).

Every function returns plain JSON-ready data; none knows about HTTP. The CLI
uses lock_states() and activate() too, so that `flask rules versions` and
`flask rules activate` share one implementation (and one history) with it.

Here, in the authoring layer, so that the API and the CLI reach them without
importing the web UI's package; it imports the rules package's authoring tools
and repository (file layout, activation history, the one atomic writer); the
runtime never imports this.
"""
from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from .case_report import cases_report, run_matching
from .cases import load_cases
from .contexts import context_to_case, is_tmf680_query, load_contexts_jsonl, read_context
from .diff import diff_engines, summary
from .lint import SCHEMA_DIR, lint, lint_ruleset_file, modeline_problems
from .keptcases import cases_for_version, keep_cases
from .lockfile import keep_version, kept_copy_of, lock_rulesets, read_lock, version_files
from .report import explain_lines
from ..model.common import UTC, ruleset_fingerprint
from ..model.conditions import COMBINATORS, FACT_KEYS
from ..model.errors import RuleSetError
from ..model.source import FileTooLarge, UnsafeName, check_source_size, read_source
from ..model.yamlload import display_path, load_text
from ..repository.files import write_text_atomic
from ..repository.layout import (cases_file_for, check_ruleset_id, check_version, contained_path,
                                  kept_version_path, lock_path, working_copy_path)
from ..repository.ledger import ACTIVATIONS, history_entry
from ..repository.registry import VersionChanged, next_free_version, recorded_hashes, rollback_target

__all__ = ["UTC", "FileTooLarge", "RuleSetError", "UnsafeName", "VersionChanged", "context_to_case",
           "display_path", "explain_lines", "is_tmf680_query", "read_context"]



def problems_of(exc: RuleSetError) -> list[str]:
    return [str(p) for p in exc.problems] or [str(exc)]


# --------------------------------------------------------------------------- versions and lint
def lock_states(rules_dir: Path, ruleset_id: str) -> dict[str, str]:
    """version -> recorded | not recorded | CHANGED (as `flask rules versions`)."""
    try:
        recorded = read_lock(lock_path(rules_dir, ruleset_id)) or {}
    except RuleSetError:
        recorded = {}
    state = {}
    for item in version_files(rules_dir):
        if item.ruleset_id == ruleset_id:
            old = recorded.get(item.version)
            state[item.version] = "recorded" if old == item.hash else ("not recorded" if old is None else "CHANGED")
    return state


def rulesets_overview(rules, rules_dir: Path, catalog_dir: Path, more_lint=None) -> dict:
    """Every rule set with its versions (status, active, pinned, lock state,
    errors) and the lint findings of all rule, cases and lock files, plus
    what `more_lint(report, paths, rules_dir, catalog_dir)` adds (the
    experiments files' findings: app.experiments sits above this package)."""
    rules.refresh()
    status = rules.status()
    report = lint(None, rules_dir, catalog_dir)
    if more_lint is not None:
        more_lint(report, None, rules_dir, catalog_dir)
    findings = [p.as_dict() for p in report.problems]
    sets = []
    for rid in status.get("rulesets", []):
        locks = lock_states(rules_dir, rid)
        versions = [{**row, "lock": locks.get(row["version"])} for row in rules.versions(rid)]
        files = {row["file"] for row in versions} | {display_path(cases_file_of(rules_dir, rid)),
                                                    display_path(lock_path(rules_dir, rid)),
                                                    display_path(rules_dir / f"{rid}.experiments.yaml")}
        history = rules.ledger.history(rid)
        active = next((row["version"] for row in versions if row["active"]), None)
        try:
            ruleset = rules.engine_of(active, rid).ruleset
            rule_rows = [{"id": r.id, "name": r.name, "kind": r.kind, "status": r.status, "line": r.line,
                          "description": r.description, "when": r.when.describe(),
                          "recommend": [{"offering": x.offering, "priority": x.priority,
                                         "name": _offering_name(rules.catalog, x.offering)} for x in r.recommend]}
                         for r in ruleset.rules]
        except RuleSetError:
            rule_rows = []
        sets.append({"id": rid, "serving": rid == status.get("rulesetId"), "versions": versions,
                     "rules": rule_rows, "rulesVersion": active,
                     "findings": [f for f in findings if f["file"] in files],
                     "activations": [h for h in history if h.get("action") in ACTIVATIONS],
                     "history": history, "rollbackTo": rollback_to(rules, rid, history)})
    return {"status": status, "rulesets": sets, "lint": report.as_dict()}


def _offering_name(catalog, offering_id: str) -> str:
    offering = catalog.get(offering_id) if catalog is not None else None
    return offering.name if offering is not None else ""


def lint_text(text: str, ruleset_id: str, rules_dir: Path, catalog, now: dt.datetime | None = None) -> dict:
    """Lint unsaved text as if it were saved as rules/<id>.yaml: a copy of
    rules/ (cases, kept versions, lock file) in a temporary folder, so that the
    version and lock checks see what a save would make of them."""
    rules_dir = Path(rules_dir)
    working = working_copy(rules_dir, ruleset_id)
    check_source_size(len(text.encode("utf-8")), display_path(working))     # before any copy or parse
    with tempfile.TemporaryDirectory(prefix="studio-lint-") as tmp:
        copy = Path(tmp) / "rules"
        # links stay links: one leading outside the rules folder leads outside the copy too, so the
        # lint skips it as the service does (is_contained), and a linked folder is never copied
        shutil.copytree(rules_dir, copy, symlinks=True, ignore=shutil.ignore_patterns(working.name, ".*"))
        target = copy / working.name
        write_text_atomic(target, text)
        found, acknowledged = lint_ruleset_file(target, catalog, now or dt.datetime.now(UTC), copy)
        temp_name, real_name = display_path(copy), display_path(rules_dir)

        def as_dict(problem) -> dict:
            data = problem.as_dict()
            for key in ("file", "message", "hint", "text"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].replace(temp_name, real_name)
            return data

        # the editor-schema line is checked where the file really is (the copy has no ../app/)
        problems = [as_dict(p) for p in found if p.code != "schema-modeline"]
    problems += [p.as_dict() for p in modeline_problems(text, working, "ruleset.schema.json")]
    problems.sort(key=lambda p: (p["line"], p["column"]))
    errors = sum(1 for p in problems if p["severity"] == "error")
    return {"file": display_path(working), "errors": errors, "warnings": len(problems) - errors,
            "problems": problems, "acknowledged": len(acknowledged)}


def vocabulary(catalog) -> dict:
    """What the editor completes: the rule set JSON Schema's property names
    (with their descriptions), condition names, and the catalog's offerings,
    categories and channels."""
    schema = json.loads((SCHEMA_DIR / "ruleset.schema.json").read_text(encoding="utf-8"))
    keys: dict[str, str] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict):
                    keys.setdefault(name, sub.get("description") or sub.get("title") or "")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    for name in list(FACT_KEYS) + list(COMBINATORS):
        keys.setdefault(name, "condition")
    offerings = [{"id": o.id, "name": o.name, "status": o.lifecycle_status}
                 for o in (catalog.offerings.values() if catalog else [])]
    categories = sorted({c for o in (catalog.offerings.values() if catalog else []) for c in o.categories})
    channels = [{"id": cid, "name": (data or {}).get("name", "")}
                for cid, data in (catalog.channels.items() if catalog else [])]
    return {"keys": [{"name": k, "description": v} for k, v in sorted(keys.items())],
            "offerings": offerings, "categories": categories, "channels": channels}


# --------------------------------------------------------------------------- explain
def offering_details(catalog, offering_ids) -> dict:
    """id -> {name, categories, prices} for the playground's item table."""
    out = {}
    for offering_id in offering_ids:
        offering = catalog.get(offering_id) if catalog is not None else None
        if offering is None:
            continue
        prices = []
        for price in offering.data.get("productOfferingPrice") or []:
            amount = (price or {}).get("price") or {}
            prices.append({"type": price.get("priceType"), "value": amount.get("value"),
                           "unit": amount.get("unit"),
                           "period": price.get("recurringChargePeriodType") or price.get("recurringChargePeriod")})
        out[offering_id] = {"name": offering.name, "status": offering.lifecycle_status,
                            "categories": list(dict.fromkeys(c.get("name") or c.get("id") for c in
                                                             offering.data.get("category") or [])),
                            "prices": prices}
    return out


def explain(engine, context) -> dict:
    """Engine.explain (as `flask rules explain --json`), with the context in
    the case format and the catalog details of every offering it names."""
    explained = engine.explain(context)
    explained["context"] = context_to_case(context)
    named = {item["offering"]["id"] for item in explained["items"]}
    named |= {r["offering"] for rule in explained["rules"] for r in rule["recommend"]}
    named |= set(explained["facts"].get("cart") or []) | set(explained["facts"].get("owns") or [])
    explained["offerings"] = offering_details(engine.catalog, sorted(named))
    channel = explained["facts"].get("channel")
    explained["channels"] = channel_names(engine.catalog, channel if isinstance(channel, list) else [channel])
    return explained


def channel_names(catalog, channel_ids) -> dict:
    """id -> name of the catalog's channels among `channel_ids` (unknown ids
    and None left out), so a page can show "21 mobile app channel"."""
    channels = catalog.channels if catalog is not None else {}
    return {cid: (channels.get(cid) or {}).get("name", "") for cid in channel_ids
            if isinstance(cid, str) and cid in channels}


# --------------------------------------------------------------------------- cases
def cases_file_of(rules_dir: Path, ruleset_id: str, version: str | None = None) -> Path:
    """The cases that judge `version` (its kept cases), else the working cases."""
    return cases_for_version(rules_dir, ruleset_id, version) if version else \
        cases_file_for(working_copy(rules_dir, ruleset_id))


def add_case(rules_dir: Path, ruleset_id: str, name: str, context: dict, expect: list[str],
             description: str = "") -> dict:
    """Append one case (e.g. a Playground situation and the answer it got,
    "save as case") to the working cases rules/<id>.cases.yaml, keeping its
    comments and order; the file is checked with the new case before it is
    replaced atomically. Refused (RuleSetError with file:line): a name already
    used, a context or expectation the cases format does not accept.
    Returns {"file", "name", "line"}."""
    name = " ".join(str(name).split())[:120]
    if not name:
        raise RuleSetError("a case needs a name")
    path = cases_file_of(rules_dir, ruleset_id)
    text = read_rule_text(path) if path.exists() else f"ruleset: {ruleset_id}\ncases:\n"
    item = [f"  - name: {json.dumps(name, ensure_ascii=False)}"]
    if description:
        item.append(f"    description: {json.dumps(' '.join(description.split())[:500], ensure_ascii=False)}")
    item += [f"    context: {json.dumps(context, ensure_ascii=False)}",
             f"    expect: {json.dumps([str(x) for x in expect], ensure_ascii=False)}"]
    new_text = text.rstrip("\n") + "\n\n" + "\n".join(item) + "\n"
    with tempfile.TemporaryDirectory(prefix="studio-case-") as tmp:
        trial = Path(tmp) / path.name
        trial.write_text(new_text, encoding="utf-8")
        try:
            cases = load_cases(trial)
        except RuleSetError as exc:
            raise RuleSetError(str(exc).replace(str(trial), display_path(path)),
                               [p.__class__(display_path(path), p.line, p.column, p.message, p.rule, p.severity,
                                            p.code, p.hint) for p in exc.problems]) from None
    write_text_atomic(path, new_text)
    return {"file": display_path(path), "name": name, "line": cases[-1].line}


def working_copy(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.yaml (layout.UnsafeName, a RuleSetError, for an id that is no safe file name)."""
    return working_copy_path(rules_dir, ruleset_id)


def run_cases(engine, cases_file: Path, keyword: str | None = None) -> dict:
    """The regression cases against one engine, reported as `flask rules test
    --json` reports them (app/rules/authoring/case_report.py)."""
    return cases_report(engine, cases_file, run_matching(engine, cases_file, keyword))


# --------------------------------------------------------------------------- impact
def case_contexts(rules_dir: Path, ruleset_id: str) -> list[tuple]:
    path = cases_file_of(rules_dir, ruleset_id)
    return [(c.name, "case", c.context) for c in load_cases(path)] if path.exists() else []


def uploaded_contexts(text: str, name: str = "upload.jsonl") -> list[tuple]:
    """A JSON Lines file of contexts (as `flask rules diff --contexts`)."""
    with tempfile.TemporaryDirectory(prefix="studio-contexts-") as tmp:
        try:                                        # the client's name, only as a name inside tmp
            path = contained_path(tmp, Path(name).name)
        except UnsafeName:
            path = Path(tmp) / "upload.jsonl"
        write_text_atomic(path, text)
        try:
            found = load_contexts_jsonl(path, dt.datetime.now(UTC))
        except RuleSetError as exc:
            raise RuleSetError(str(exc).replace(str(path), name),
                               [p.__class__(name, p.line, p.column, p.message, p.rule, p.severity, p.code, p.hint)
                                for p in exc.problems]) from None
    return [(context_name.replace(str(path), name), "upload", ctx) for context_name, ctx in found]


def impact(old_engine, new_engine, contexts: list[tuple]) -> dict:
    """diff_engines (as `flask rules diff --json`) plus, for the chart, how
    often each offering is gained and lost, counts per source, and `names`
    (offering id -> catalog name, "" when unknown) of every offering a changed
    situation lists before or after."""
    report = diff_engines(old_engine, new_engine, contexts)
    data = report.as_dict()
    gained, lost, names = Counter(), Counter(), {}
    for change in report.changed:
        for item in change.gained:
            gained[item.offering] += 1
            names[item.offering] = item.name
        for item in change.lost:
            lost[item.offering] += 1
            names[item.offering] = item.name
    data["offerings"] = [{"offering": o, "name": names[o], "gained": gained[o], "lost": lost[o]}
                         for o in sorted(names, key=lambda o: (-(gained[o] + lost[o]), o))]
    listed = {o for c in report.changed for o in [*c.old, *c.new]}
    data["names"] = {o: _offering_name(new_engine.catalog, o) or _offering_name(old_engine.catalog, o)
                     for o in sorted(listed)}
    sources = Counter(c.source for c in report.contexts)
    changed_sources = Counter(c.source for c in report.changed)
    data["sources"] = [{"source": s, "contexts": n, "changed": changed_sources[s]} for s, n in sorted(sources.items())]
    data["summary"] = summary(report)
    return data


# --------------------------------------------------------------------------- save, activate
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


class StaleForm(RuleSetError):
    """An activation or roll back form made when another version served
    (e.g. re-sent with the browser's Back button): nothing is done."""


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
    done, made = [], None
    old_version = None
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
                kept_cases = keep_cases(rules_dir, ruleset_id, old_version)
                if kept_cases is not None:
                    done.append(f"kept its cases as {display_path(kept_cases)}")
    new_tag = text_tag(text)
    pin = None
    try:
        pinned = any(r["pinned"] for r in rows)
        if not pinned and in_service is not None:
            pin = rules.activate(ruleset_id, in_service, by, action="pin-before-save",
                                 record_history=False)["activation"]
            done.append(f"pinned {ruleset_id} {in_service} (in service) so that saving changes nothing served")
        if current_text is not None:
            ledger.put_text(current_tag, current_text)
        ledger.put_text(new_tag, text)
        write_text_atomic(working, text)
    except OSError:
        # a failed save (a full disk) leaves nothing it did behind: no kept
        # copy, no pin (neither is in the history: the pin is recorded below,
        # once the save it was for is done)
        if pin is not None:
            rules.activate(ruleset_id, None, by, record_history=False)
        if made is not None:
            made.unlink(missing_ok=True)
        raise
    if pin is not None:
        ledger.append(pin)
    ledger.append(history_entry(ruleset_id, "save", by, version=version,
                                from_version=old_version if isinstance(old_version, str) else None,
                                hash=content_hash, textHash=new_tag, baseHash=base))
    done.append(f"saved {name} ({ruleset_id} {version}); nothing was activated")
    return {"file": name, "version": version, "hash": content_hash, "etag": new_tag, "done": done}


# the fingerprint app.auth.admin_identity appends last: "Ana (key 3f2a...)" or "key 3f2a..."; a
# login name is free text and may itself spell "(key ...)", so only the end of `by` is the key's
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


def serving_version(rules, ruleset_id: str) -> str | None:
    rows = [r for r in rules.versions(ruleset_id) if r["active"]]
    return rows[0]["version"] if rows else None


def read_rule_text(path: Path) -> str:
    """The text of a rule file (FileTooLarge, before reading, over the size limit)."""
    return read_source(path, display_path(path)).decode("utf-8")


def activate(rules, ruleset_id: str, version: str | None, by: str, action: str = "activate",
             expected_from: str | None = None, require_approval: bool = False) -> dict:
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
    status = rules.activate(ruleset_id, version, by, action)
    entry = status.pop("activation", None)
    if entry is not None and entry.get("version"):
        # the working copy's version goes live: its cases are kept with it
        working_text, _tag = working_copy_state(rules.rules_dir, ruleset_id)
        if working_text is not None:
            doc = load_text(working_text, display_path(working_copy(rules.rules_dir, ruleset_id)))
            if isinstance(doc, dict) and doc.get("version") == entry["version"]:
                keep_cases(rules.rules_dir, ruleset_id, entry["version"])
    return {"status": status, "activation": entry}


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
    return activate(rules, ruleset_id, target, by, "rollback", expected_from)


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
