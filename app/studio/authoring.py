"""The one place where the Rule Studio and its JSON endpoints (/admin/rules)
reach into the rules package: the same engine and authoring functions as
`flask rules ...` (explain, lint, cases, diff, keep, activate), plus the few
operations the browser needs on top of them (lint of unsaved text, atomic save
of a working copy, activation with its history).

Every function returns plain JSON-ready data; none knows about HTTP. The CLI
uses lock_states() and activate() too, so that `flask rules versions` and
`flask rules activate` share one implementation (and one history) with it.

It imports the rules package's authoring tools and repository (file layout,
activation history, the one atomic writer); the runtime never imports this.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from ..rules import RuleSetError
from ..rules.authoring.cases import coverage, load_cases, run_case
from ..rules.authoring.contexts import context_to_case, is_tmf680_query, load_contexts_jsonl, read_context
from ..rules.authoring.diff import diff_engines, summary
from ..rules.authoring.lint import SCHEMA_DIR, lint, lint_ruleset_file, modeline_problems
from ..rules.authoring.lockfile import keep_version, kept_copy_of, lock_rulesets, read_lock, version_files
from ..rules.authoring.report import coverage_percent, explain_lines, failure_lines
from ..rules.model.common import UTC, ruleset_fingerprint
from ..rules.model.conditions import COMBINATORS, FACT_KEYS
from ..rules.model.source import FileTooLarge, UnsafeName, check_source_size, read_source
from ..rules.model.yamlload import display_path, load_text
from ..rules.repository.activations import read_activations, record_activation, rollback_target
from ..rules.repository.files import write_text_atomic
from ..rules.repository.layout import (cases_file_for, check_ruleset_id, check_version, contained_path,
                                       lock_path, working_copy_path)

__all__ = ["UTC", "FileTooLarge", "RuleSetError", "UnsafeName", "context_to_case", "display_path", "explain_lines",
           "is_tmf680_query", "read_activations", "read_context"]



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


def rulesets_overview(rules, rules_dir: Path, catalog_dir: Path) -> dict:
    """Every rule set with its versions (status, active, pinned, lock state,
    errors) and the lint findings of all rule, cases and lock files."""
    rules.refresh()
    status = rules.status()
    report = lint(None, rules_dir, catalog_dir)
    findings = [p.as_dict() for p in report.problems]
    sets = []
    for rid in status.get("rulesets", []):
        locks = lock_states(rules_dir, rid)
        versions = [{**row, "lock": locks.get(row["version"])} for row in rules.versions(rid)]
        files = {row["file"] for row in versions} | {display_path(cases_file_of(rules_dir, rid)),
                                                    display_path(lock_path(rules_dir, rid))}
        history = read_activations(rules.state_dir, rid)
        active = next((row["version"] for row in versions if row["active"]), None)
        try:
            ruleset = rules.engine_of(active, rid).ruleset
            rule_rows = [{"id": r.id, "name": r.name, "kind": r.kind, "status": r.status, "line": r.line,
                          "description": r.description, "when": r.when.describe(),
                          "recommend": [{"offering": x.offering, "priority": x.priority} for x in r.recommend]}
                         for r in ruleset.rules]
        except RuleSetError:
            rule_rows = []
        sets.append({"id": rid, "serving": rid == status.get("rulesetId"), "versions": versions,
                     "rules": rule_rows, "rulesVersion": active,
                     "findings": [f for f in findings if f["file"] in files],
                     "activations": history, "rollbackTo": rollback_target(history)})
    return {"status": status, "rulesets": sets, "lint": report.as_dict()}


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
    explained["offerings"] = offering_details(engine.catalog, sorted(named))
    return explained


# --------------------------------------------------------------------------- cases
def cases_file_of(rules_dir: Path, ruleset_id: str) -> Path:
    return cases_file_for(working_copy(rules_dir, ruleset_id))


def working_copy(rules_dir: Path, ruleset_id: str) -> Path:
    """rules/<id>.yaml (layout.UnsafeName, a RuleSetError, for an id that is no safe file name)."""
    return working_copy_path(rules_dir, ruleset_id)


def run_cases(engine, cases_file: Path, keyword: str | None = None) -> dict:
    """The regression cases against one engine (as `flask rules test --json`),
    with the reasons of each failure and the rule coverage."""
    cases = load_cases(cases_file)
    if keyword:
        cases = [c for c in cases if keyword.lower() in c.name.lower()]
    results = [run_case(engine, case) for case in cases]
    counts = coverage(engine, results)
    rs = engine.ruleset
    failed = sum(1 for r in results if not r.passed)
    return {
        "cases": display_path(cases_file),
        "ruleset": {"id": rs.id, "version": rs.version, "file": rs.file},
        "results": [{"name": r.case.name, "passed": r.passed, "expected": r.case.expect,
                     "absent": r.case.absent, "actual": r.actual, "messages": r.messages,
                     "line": r.case.line, "description": r.case.description,
                     "why": [] if r.passed else failure_lines(engine, r)[1:]} for r in results],
        "coverage": [{"rule": rule.id, "name": rule.name, "line": rule.line, "cases": counts.get(rule.id, 0),
                      "counted": rule.fires_by_status} for rule in rs.rules],
        "coveragePercent": round(coverage_percent(engine, counts), 1),
        "passed": len(results) - failed, "failed": failed,
    }


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
    often each offering is gained and lost, and counts per source."""
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
    sources = Counter(c.source for c in report.contexts)
    changed_sources = Counter(c.source for c in report.changed)
    data["sources"] = [{"source": s, "contexts": n, "changed": changed_sources[s]} for s, n in sorted(sources.items())]
    data["summary"] = summary(report)
    return data


# --------------------------------------------------------------------------- save, activate
def same_content(path: Path, doc) -> bool:
    """Whether the rule file at `path` holds what `doc` (parsed) holds, by
    the content hash that identifies a version (the lock file's, lint's and
    X-Ruleset-Hash's: app/rules/model/common.py ruleset_fingerprint), so that
    line endings (a browser's textarea posts CRLF, git's autocrlf writes it),
    comments and quoting are no change; an unreadable file is a change."""
    try:
        return ruleset_fingerprint(load_text(read_rule_text(path), display_path(path))) \
            == ruleset_fingerprint(doc)
    except (OSError, UnicodeDecodeError, RuleSetError):
        return False


def save_working_copy(rules, rules_dir: Path, ruleset_id: str, text: str, by: str) -> dict:
    """Save rules/<id>.yaml; never changes what is served.

    Refused (RuleSetError): text that is not YAML or names another rule set;
    new content under the version in service (bump the version). Before the
    write: the old working copy is kept in rules/versions/ (as `flask rules
    keep`) when its version changes, and the version in service is pinned
    when nothing is pinned (else a higher saved version would serve at once).
    Returns what was done and the lint findings of the saved file."""
    working = working_copy(rules_dir, ruleset_id)
    name = display_path(working)
    check_source_size(len(text.encode("utf-8")), name)     # the one limit of rule files, before parsing
    doc = load_text(text, name)                       # RuleSetError with line and column
    if not isinstance(doc, dict) or doc.get("id") != ruleset_id or not isinstance(doc.get("version"), str):
        raise RuleSetError(f"{name} must hold `id: {ruleset_id}` and a text `version`")
    version = check_version(doc["version"])          # it names the kept copy of this text one day
    rules.refresh()
    status = rules.status()
    in_service = status.get("version") if status.get("rulesetId") == ruleset_id else None
    if in_service is None:
        rows = [r for r in rules.versions(ruleset_id) if r["active"]]
        in_service = rows[0]["version"] if rows else None
    if working.exists() and version == in_service and not same_content(working, doc):
        served = [r for r in rules.versions(ruleset_id) if r["version"] == in_service]
        if served and served[0]["file"] == name:
            raise RuleSetError(f"version {version} is in service: bump `version` before saving changes to it")
    done, kept = [], None
    if working.exists():
        old = load_text(read_rule_text(working), name)
        if isinstance(old, dict) and old.get("version") != version:
            existed = kept_copy_of(working).exists()
            kept = keep_version(working)
            done.append(f"kept {name} as {display_path(kept)}")
            kept = None if existed else kept
    pinned_here = False
    try:
        pinned = any(r["pinned"] for r in rules.versions(ruleset_id))
        if not pinned and in_service is not None:
            rules.activate(ruleset_id, in_service)
            pinned_here = True
        write_text_atomic(working, text)
    except OSError:
        # a failed save (a full disk) leaves nothing it did behind: no kept copy, no pin
        if pinned_here:
            rules.activate(ruleset_id, None)
        if kept is not None:
            kept.unlink(missing_ok=True)
        raise
    if pinned_here:                   # recorded once the save is done, as what it was for
        record_activation(rules.state_dir, ruleset_id, in_service, in_service, by, "pin-before-save")
        done.append(f"pinned {ruleset_id} {in_service} (in service) so that saving changes nothing served")
    done.append(f"saved {name} ({ruleset_id} {version}); nothing was activated")
    return {"file": name, "version": version, "done": done}


def read_rule_text(path: Path) -> str:
    """The text of a rule file (FileTooLarge, before reading, over the size limit)."""
    return read_source(path, display_path(path)).decode("utf-8")


def activate(rules, ruleset_id: str, version: str | None, by: str, action: str = "activate") -> dict:
    """rules.activate (as `flask rules activate`), recorded in the history.
    layout.UnsafeName (a RuleSetError) for an id or version that is not one."""
    check_ruleset_id(ruleset_id)
    if version is not None:
        check_version(version)
    rules.refresh()                    # "from": what serves now, not at the last reload
    rows = [r for r in rules.versions(ruleset_id) if r["active"]]
    before = rows[0]["version"] if rows else None
    status = rules.activate(ruleset_id, version)
    served = [r for r in rules.versions(ruleset_id) if r["active"]]
    entry = record_activation(rules.state_dir, ruleset_id, served[0]["version"] if served else version,
                              before, by, action if version is not None else "unpin")
    return {"status": status, "activation": entry}


def rollback(rules, ruleset_id: str, by: str) -> dict:
    """Activate the version that served before the latest activation."""
    target = rollback_target(read_activations(rules.state_dir, ruleset_id))
    if target is None:
        raise RuleSetError(f"nothing to roll back: no activation of {ruleset_id} is recorded")
    return activate(rules, ruleset_id, target, by, "rollback")


def lock(rules_dir: Path, ruleset_id: str) -> dict:
    """Record the content hash of new versions in rules/<id>.lock.json (as
    `flask rules lock`, never --amend): a recorded version whose content
    changed stays refused (bump its version)."""
    changes = lock_rulesets(rules_dir, ruleset_id)
    return {"lockFile": display_path(lock_path(rules_dir, ruleset_id)),
            "changes": [{"version": c.version, "file": c.file, "action": c.action, "text": str(c)} for c in changes],
            "refused": [c.version for c in changes if c.action == "refused"]}
