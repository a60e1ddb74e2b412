"""The authoring operations the Rule Studio, its JSON endpoints (/admin/rules)
and the CLI share (saves in saving.py; approval, activation, roll back and
history in governance.py): the same engine and authoring functions as
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
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

from .case_report import cases_report, run_matching
from .cases import load_cases
from .contexts import context_to_case, explain_as_case, is_tmf680_query, load_contexts_jsonl, read_context
from .diff import diff_engines, summary
from .acknowledgements import SCHEMA_DIR, modeline_problems
from .lint import lint, lint_ruleset_file
from .keptcases import cases_for_version
from .lockfile import read_lock, version_files
from .report import explain_lines
from ..model.common import UTC
from ..model.conditions import COMBINATORS, FACT_KEYS
from ..model.errors import RuleSetError
from ..model.source import FileTooLarge, UnsafeName, check_source_size
from ..model.yamlload import display_path
from ..repository.files import write_text_atomic
from ..repository.layout import cases_file_for, contained_path, experiments_path, lock_path
from ..repository.ledger import ACTIVATIONS
from ..repository.registry import VersionChanged
from .governance import rollback_to
from .saving import read_rule_text, working_copy

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


def _policy_row(policy) -> dict:
    """A contact policy as a row of the overview's "Rule or policy" table
    (the Studio listed only the rules: a rule set's policies, which drop
    items from every answer, were nowhere on its page). `limits` says what
    it suppresses, in the words of docs/contact-policies.md."""
    days = f"{policy.days:g} day" + ("" if f"{policy.days:g}" == "1" else "s")
    limits = {
        "maxImpressions": f"suppressed after {policy.count} impressions in {days}"
                          + (" on the channel asked" if policy.per_channel else ""),
        "pauseAfterRejected": f"suppressed for {days} after a rejection",
        "stopAfterAccepted": f"suppressed for {days} after an acceptance",
        "maxOffersPerDay": f"at most {policy.count} items a day to a party",
    }.get(policy.kind, policy.kind)
    return {"id": policy.id, "name": "", "kind": f"contact policy ({policy.kind})", "status": "stable",
            "line": policy.line, "description": policy.description, "when": policy.scope_text,
            "recommend": [], "limits": limits, "policy": True}


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
                                                    display_path(experiments_path(rules_dir, rid))}
        history = rules.ledger.history(rid)
        active = next((row["version"] for row in versions if row["active"]), None)
        try:
            ruleset = rules.engine_of(active, rid).ruleset
            rule_rows = [{"id": r.id, "name": r.name, "kind": r.kind, "status": r.status, "line": r.line,
                          "description": r.description, "when": r.when.describe(),
                          "recommend": [{"offering": x.offering, "priority": x.priority,
                                         "name": _offering_name(rules.catalog, x.offering)} for x in r.recommend]}
                         for r in ruleset.rules] + [_policy_row(p) for p in ruleset.contact_policies]
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
    the case format (with the history the contact policies read) and the
    catalog details of every offering it names."""
    explained, explained["context"] = explain_as_case(engine, context)
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
             description: str = "", catalog=None) -> dict:
    """Append one case (e.g. a Playground situation and the answer it got,
    "save as case") to the working cases rules/<id>.cases.yaml, keeping its
    comments and order; the file is checked with the new case before it is
    replaced atomically. Refused (RuleSetError with file:line): a name already
    used, a context or expectation the cases format does not accept, a
    history naming an offering or channel `catalog` does not have.
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
            cases = load_cases(trial, catalog)
        except RuleSetError as exc:
            raise RuleSetError(str(exc).replace(str(trial), display_path(path)),
                               [replace(p, file=display_path(path)) for p in exc.problems]) from None
    write_text_atomic(path, new_text)
    return {"file": display_path(path), "name": name, "line": cases[-1].line}


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
                               [replace(p, file=name) for p in exc.problems]) from None
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
# the fingerprint app.auth.admin_identity appends last: "Ana (key 3f2a...)" or "key 3f2a..."; a
# login name is free text and may itself spell "(key ...)", so only the end of `by` is the key's