"""`flask rules lint`: check rule sets, their cases, lock files and the catalog.

Three layers, every finding with file:line:column, the rule id, a check name
(`code`) and what to do (`hint`):

1. YAML syntax and the schema (what the loader rejects: unknown fields,
   wrong types, missing fields), reported with the loader's own positions;
2. meaning: unknown offerings, categories, channels and condition names,
   duplicate rule ids, empty conditions, validity windows that end before
   they start, priorities out of range, engine limits (errors, from the
   loader), and the lint's own analysis: retired or expired offerings,
   contradictory conditions, alternatives and rules that can never fire,
   recommendations the policies always drop (warnings, contradictions are
   errors); date-times without a zone, which are read as UTC (errors,
   app/rules/authoring/zones.py);
3. versions: a version whose content changed since it was recorded in
   `rules/<id>.lock.json` (error), unrecorded versions, file names, cases.

Errors make the exit code 1; warnings alone leave it 0. A warning can be
acknowledged where it is reported, with a reason, by a comment on its line
(or alone on the line above):

    - {offering: "7401", priority: 35}   # lint-ignore: retired-offering -- shows the Retired policy

This module walks the files and runs the checks; findings.py holds the report
and the loader's hints, acknowledgements.py the lint-ignore comments and the
editor schema line, rule_checks.py the meaning checks on each rule.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from .acknowledgements import apply_ignores, modeline_problems, read_ignores
from .cases import load_cases
from .contact_lint import contact_policy_findings
from .findings import README, Classifier, LintReport, did_you_mean, finding, join_advice, sorted_findings
from .rule_checks import RuleChecks, value_case_problems
from ..model.catalog import Catalog, catalog_files, load_catalog
from ..model.common import UTC, Checker, as_id, id_items, iso, parse_time
from ..engine.engine import compile_rules
from ..model.errors import Problem, RuleSetError
from .lockfile import next_versions, read_lock, semantic_hash
from .zones import zone_less_times
from ..model.ruleset import read_rule, parse_ruleset
from ..model.source import FileTooLarge, read_source
from ..model.yamlload import PosDict, PosList, display_path, load_file, load_text
from ..repository.layout import (EXPERIMENTS_SUFFIX, LOCK_SUFFIX, UnsafeName, cases_file_for, check_ruleset_id, check_version,
                                 find_cases_files, in_versions_dir, is_cases_file,
                                 lock_files, lock_path, rule_files, rules_dir_of, ruleset_file_for,
                                 RULE_SUFFIXES, VERSIONS_DIR)


# --------------------------------------------------------------------------- catalog
def lint_catalog(catalog_dir: Path, now: dt.datetime) -> tuple[Catalog | None, list[Problem], list[Problem]]:
    """(catalog or None, findings, acknowledged)."""
    catalog_dir = Path(catalog_dir)
    problems: list[Problem] = []
    acknowledged: list[Problem] = []
    try:
        catalog = load_catalog(catalog_dir)
    except RuleSetError as exc:
        catalog = None
        classify = Classifier(None)
        problems.extend(classify(p) for p in exc.problems)
    for path in catalog_files(catalog_dir):
        name = display_path(path)
        try:
            text = read_source(path, name).decode("utf-8")
        except (OSError, UnicodeDecodeError, RuleSetError):     # load_catalog reported it
            continue
        found = modeline_problems(text, path, "catalog.schema.json")
        try:
            found += zone_less_times(load_text(text, name), name)
        except RuleSetError:
            pass                     # reported by load_catalog above
        if catalog is not None:
            found += _expired_catalog_offerings(path, name, catalog, now)
        ignores, bad = read_ignores(text, name)
        kept, acked = apply_ignores(found + bad, ignores, name)
        problems.extend(kept)
        acknowledged.extend(acked)
    return catalog, problems, acknowledged


def _expired_catalog_offerings(path: Path, name: str, catalog: Catalog, now: dt.datetime) -> list[Problem]:
    try:
        doc = load_file(path)
    except RuleSetError:
        return []
    out = []
    offerings = doc.get("productOffering") if isinstance(doc, dict) else None
    for item in offerings if isinstance(offerings, list) else []:
        offering = catalog.get(as_id(item.get("id"))) if isinstance(item, dict) else None
        if offering is None or not offering.is_active or offering.valid_to is None or offering.valid_to > now:
            continue
        where = item["validFor"].at("endDateTime") if isinstance(item.get("validFor"), PosDict) else item.pos
        out.append(finding(name, where, "expired-offering",
                           f"offering {offering.id} ({offering.name}) is Active but its validFor ended "
                           f"{iso(offering.valid_to)}: rules can no longer recommend it",
                           "set lifecycleStatus: Retired, or extend validFor.endDateTime"))
    return out


# --------------------------------------------------------------------------- rule sets
def lint_ruleset_file(path: Path, catalog: Catalog | None, now: dt.datetime,
                      rules_dir: Path | None = None) -> tuple[list[Problem], list[Problem]]:
    """(findings, acknowledged) for one rule set file."""
    path = Path(path)
    name = display_path(path)
    rules_dir = Path(rules_dir) if rules_dir is not None else rules_dir_of(path)
    try:
        text = read_source(path, name).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [finding(name, (1, 1), "yaml-syntax", f"cannot read the file: {exc}",
                        "save it as UTF-8 text", severity="error")], []
    except FileTooLarge as exc:
        return [finding(name, (1, 1), "file-too-large", exc.problems[0].message,
                        "split the rule set, or raise RECO_MAX_RULE_FILE_BYTES", severity="error")], []
    try:
        doc = load_text(text, name)
    except RuleSetError as exc:
        return [Classifier(catalog)(p) for p in exc.problems], []
    rule_ids = []
    if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
        rule_ids = [as_id(r.get("id")) for r in doc["rules"] if isinstance(r, dict) and as_id(r.get("id"))]
    classify = Classifier(catalog, rule_ids)
    problems: list[Problem] = []
    if catalog is None:
        problems.append(finding(name, (1, 1), "catalog", "not checked against the catalog: the catalog has errors",
                                "fix the catalog first (its errors are listed too)", severity="error"))
    else:
        ruleset = None
        try:
            ruleset = parse_ruleset(text, name, catalog)
        except RuleSetError as exc:
            problems.extend(classify(p) for p in exc.problems)
        if ruleset is not None:
            for p in compile_rules(ruleset)[3]:
                raw_rule = next((r for r in doc["rules"] if isinstance(r, PosDict) and as_id(r.get("id")) == p.rule),
                                None) if p.rule else None
                where = raw_rule.key_at("when") if raw_rule is not None and "when" in raw_rule else (p.line, p.column)
                problems.append(classify(replace(p, line=where[0], column=where[1], hint=None)))
        if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
            for index, item in enumerate(doc["rules"]):
                if not isinstance(item, PosDict):
                    continue
                rule = read_rule(item, doc["rules"].at(index), index, Checker(name), catalog)
                if rule is not None:
                    problems.extend(RuleChecks(rule, item, catalog, now, name).run())
        if ruleset is not None:
            problems.extend(value_case_problems(ruleset, cases_file_for(path), name))
            problems.extend(contact_policy_findings(ruleset, catalog))
    problems.extend(modeline_problems(text, path, "ruleset.schema.json"))
    problems.extend(zone_less_times(doc, name))
    if isinstance(doc, dict):
        problems.extend(_header_checks(doc, path, name, rules_dir))
    ignores, bad = read_ignores(text, name)
    kept, acknowledged = apply_ignores(problems + bad, ignores, name)
    return kept, acknowledged


def _header_checks(doc: PosDict, path: Path, name: str, rules_dir: Path) -> list[Problem]:
    out: list[Problem] = []
    rid, version = doc.get("id"), doc.get("version")
    if not isinstance(rid, str) or not isinstance(version, str):
        return out
    try:                  # no file name is made of a bad id or version (the parser reports them)
        check_ruleset_id(rid)
        check_version(version)
    except UnsafeName:
        return out
    in_versions = in_versions_dir(path)
    id_pos = doc.at("id")
    version_pos = doc.at("version")
    expected = f"{rid}@{version}" if in_versions else rid
    if path.stem != expected:
        where = (f"rules/{VERSIONS_DIR}/" if in_versions else "") + expected + RULE_SUFFIXES[0]
        out.append(finding(name, id_pos, "file-name",
                           f"the file is named {path.name} but holds {rid}" + (f"@{version}" if in_versions else ""),
                           f"rename it to {where} so that its cases and lock file are found"))
    if not in_versions and not cases_file_for(path).exists():
        out.append(finding(name, id_pos, "no-cases", f"rule set {rid} has no regression cases",
                           f"add {display_path(cases_file_for(path))} ('Regression cases' in {README})"))
    # versions: the lock file, and other files with the same id and version
    digest = semantic_hash(doc)
    patch, minor = next_versions(version)
    lock = lock_path(rules_dir, rid)
    lock_name = display_path(lock)
    try:
        recorded = read_lock(lock)
    except RuleSetError as exc:
        # reported once (the same finding as linting the lock file); the version is not checked
        out.extend(_lock_file_problems(exc))
        recorded = False
    if recorded is False:
        pass
    elif recorded is None:
        out.append(finding(name, version_pos, "no-lock",
                           f"no lock file records the content of {rid} {version} ({lock_name} is missing)",
                           f"run `flask rules lock` and commit {lock_name}"))
    elif version in recorded and recorded[version] != digest:
        out.append(finding(name, version_pos, "version-not-bumped",
                           f"the content changed since version {version} was recorded in {lock_name}, "
                           "but the version was not bumped",
                           f"bump `version` (e.g. to \"{patch}\" or \"{minor}\") and run `flask rules lock`; "
                           "a version never activated or released may be re-recorded with "
                           "`flask rules lock --amend`", severity="error"))
    elif version not in recorded:
        same = [v for v, h in recorded.items() if h == digest]
        note = f" (same content as {same[0]})" if same else ""
        out.append(finding(name, version_pos, "version-not-recorded",
                           f"version {version} is not recorded in {lock_name}{note}",
                           f"run `flask rules lock` and commit {lock_name} with the rule set"))
    for other in rule_files(rules_dir):
        if other.resolve() == path.resolve():
            continue
        other_in_versions = in_versions_dir(other)
        if in_versions and not other_in_versions:
            continue                    # reported on the working copy
        if in_versions and other_in_versions and other.name > path.name:
            continue
        try:
            other_doc = load_file(other)
        except RuleSetError:
            continue
        if not isinstance(other_doc, dict) or other_doc.get("id") != rid or other_doc.get("version") != version:
            continue
        if semantic_hash(other_doc) != digest:
            out.append(finding(name, version_pos, "version-not-bumped",
                               f"{display_path(other)} is also {rid} {version}, with other content",
                               f"bump `version` here (e.g. to \"{patch}\" or \"{minor}\"): "
                               "one version, one content", severity="error"))
    return out


# --------------------------------------------------------------------------- cases
def lint_cases_file(path: Path, catalog: Catalog | None) -> tuple[list[Problem], list[Problem]]:
    path = Path(path)
    name = display_path(path)
    problems: list[Problem] = []
    classify = Classifier(catalog)
    try:
        load_cases(path, catalog)
    except RuleSetError as exc:
        problems.extend(classify(p, default="cases") for p in exc.problems)
        return problems, []
    rule_path = ruleset_file_for(path)
    doc = load_file(path)
    rule_ids: set[str] | None = None
    if not rule_path.exists():
        problems.append(finding(name, (1, 1), "cases-orphan", f"no rule set file {display_path(rule_path)} beside it",
                                "name the cases file after its rule set file: <id>.cases.yaml beside <id>.yaml"))
    else:
        try:
            rule_doc = load_file(rule_path)
        except RuleSetError:
            rule_doc = None
        if isinstance(rule_doc, dict):
            rid = rule_doc.get("id")
            if "ruleset" in doc and doc.get("ruleset") != rid:
                problems.append(finding(name, doc.at("ruleset"), "cases-orphan",
                                        f"`ruleset: {doc.get('ruleset')}` but {display_path(rule_path)} is {rid}",
                                        f"write `ruleset: {rid}`"))
            if isinstance(rule_doc.get("rules"), list):
                rule_ids = {as_id(r.get("id")) for r in rule_doc["rules"] if isinstance(r, dict)}
    if catalog is not None:
        for case in doc.get("cases") or []:
            if isinstance(case, PosDict):
                problems.extend(_case_refs(case, name, catalog, rule_ids))
    problems.extend(zone_less_times(doc, name))
    text = read_source(path, name).decode("utf-8")
    problems.extend(modeline_problems(text, path, "cases.schema.json"))
    ignores, bad = read_ignores(text, name)
    return apply_ignores(problems + bad, ignores, name)


def _case_refs(case: PosDict, file: str, catalog: Catalog, rule_ids: set[str] | None) -> list[Problem]:
    out = []
    label = case.get("name")
    classify = Classifier(catalog)

    def ids_at(container, key):
        if container.get(key) is not None:
            yield from id_items(container[key], container.at(key), key="offering")[0]

    context = case.get("context") if isinstance(case.get("context"), PosDict) else PosDict()
    places = [(context, "cart"), (context, "owns"), (case, "expect"), (case, "absent")]
    for container, key in places:
        for value, where in ids_at(container, key):
            if catalog.get(value) is None:
                out.append(finding(file, where, "unknown-offering",
                                   f"case {label}: unknown offering {value!r} in {key}", classify.offering_hint(value)))
    for value, where in ids_at(context, "channel"):
        if catalog.channels and value not in catalog.channels:
            out.append(finding(file, where, "unknown-channel", f"case {label}: unknown channel {value!r}",
                               classify.channel_hint(value)))
    expect_rules = case.get("expect_rules")
    if isinstance(expect_rules, PosDict) and rule_ids is not None:
        for offering, rules in expect_rules.items():
            for i, rid in enumerate(rules if isinstance(rules, list) else [rules]):
                if as_id(rid) not in rule_ids:
                    where = rules.at(i) if isinstance(rules, PosList) else expect_rules.at(offering)
                    out.append(finding(file, where, "unknown-rule", f"case {label}: unknown rule {rid!r}",
                                       join_advice(did_you_mean(rid, sorted(r for r in rule_ids if r)),
                                             "use a rule id of the rule set")))
    return out


# --------------------------------------------------------------------------- lock files
def _lock_file_problems(exc: RuleSetError) -> list[Problem]:
    return [finding(p.file, (p.line, p.column), "lock-file", p.message,
                    "fix the JSON, or delete the file and run `flask rules lock`", severity="error")
            for p in exc.problems]


def lint_lock_file(path: Path, rules_dir: Path) -> list[Problem]:
    name = display_path(path)
    try:
        recorded = read_lock(path)
    except RuleSetError as exc:
        return _lock_file_problems(exc)
    rid = path.name[: -len(LOCK_SUFFIX)]
    ids = set()
    for rule_path in rule_files(rules_dir):
        try:
            doc = load_file(rule_path)
        except RuleSetError:
            continue
        if isinstance(doc, dict):
            ids.add(doc.get("id"))
    if recorded is not None and rid not in ids:
        return [finding(name, (1, 1), "lock-file", f"no rule set {rid} in {display_path(rules_dir)}",
                        "delete the lock file, or restore the rule set")]
    return []


# --------------------------------------------------------------------------- entry point
def lint(paths: list[Path] | None, rules_dir: Path, catalog_dir: Path, now: dt.datetime | None = None) -> LintReport:
    """Lint PATHs (rule, cases, lock or catalog files, or directories); by
    default every rule set, cases file and lock file in rules_dir and the catalog."""
    now = parse_time(now) if now is not None else dt.datetime.now(UTC)
    rules_dir, catalog_dir = Path(rules_dir), Path(catalog_dir)
    report = LintReport()
    catalog, catalog_problems, catalog_acked = _guarded(lambda: lint_catalog(catalog_dir, now), catalog_dir,
                                                        (None, [], []))
    rule_paths, cases_paths, lock_paths = [], [], []
    include_catalog = not paths
    if not paths:
        paths = [rules_dir]
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            report.problems.append(finding(display_path(path), (1, 1), "not-found", "no such file or directory",
                                           "give a rule file, a cases file or a directory", severity="error"))
            continue
        if _inside(path, catalog_dir):
            include_catalog = True
            continue
        if path.is_dir():
            rule_paths += rule_files(path)
            cases_paths += find_cases_files(path)
            lock_paths += lock_files(path)
        elif is_cases_file(path):
            cases_paths.append(path)
        elif path.name.endswith(LOCK_SUFFIX):
            lock_paths.append(path)
        elif path.name.endswith(EXPERIMENTS_SUFFIX):
            continue        # not a rule set: the experiments lint (app/experiments/lint.py) checks it
        else:
            rule_paths.append(path)
    if include_catalog:
        report.files += [display_path(p) for p in catalog_files(catalog_dir)]
        report.problems += catalog_problems
        report.acknowledged += catalog_acked
    elif catalog is None:
        report.problems += [p for p in catalog_problems if p.severity == "error"]
    for path in rule_paths:
        report.files.append(display_path(path))
        found, acked = _guarded(lambda: lint_ruleset_file(path, catalog, now), path)
        report.problems += found
        report.acknowledged += acked
    for path in cases_paths:
        report.files.append(display_path(path))
        found, acked = _guarded(lambda: lint_cases_file(path, catalog), path)
        report.problems += found
        report.acknowledged += acked
    for path in lock_paths:
        report.files.append(display_path(path))
        report.problems += lint_lock_file(path, rules_dir_of(path))
    report.problems = sorted_findings(report.problems)
    report.acknowledged = sorted_findings(report.acknowledged)
    return report


def _guarded(check, path: Path, empty=None):
    """Run one file's checks; YAML nested too deeply for the reader, or a number
    too long to convert, is a finding rather than a crash of the whole lint."""
    try:
        return check()
    except (RecursionError, ValueError) as exc:
        kind = "nested too deeply" if isinstance(exc, RecursionError) else f"unreadable ({exc})"
        problem = finding(display_path(path), (1, 1), "yaml-syntax", f"the YAML is {kind}",
                          "simplify the file: no deep nesting, no numbers of thousands of digits",
                          severity="error")
        if empty is not None:
            catalog, problems, acked = empty
            return catalog, [problem], acked
        return [problem], []


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
