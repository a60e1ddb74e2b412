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
"""
from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .analysis import TooComplex, analyse, positive_anys, with_choice
from .cases import load_cases
from .contact_lint import contact_policy_findings
from ..model.catalog import Catalog, catalog_files, load_catalog
from ..model.common import UTC, Checker, as_id, id_items, iso, parse_time
from ..model.conditions import COMBINATORS, FACT_KEYS, All, Any, Not, ScalarTest, SetTest
from ..engine.engine import compile_rules
from ..model.errors import Problem, RuleSetError
from ..model.facts import characteristics, normalise_value
from .lockfile import next_versions, read_lock, semantic_hash
from .zones import zone_less_times
from ..model.ruleset import MAX_PRIORITY, read_rule, parse_ruleset
from ..model.source import FileTooLarge, read_source
from ..model.yamlload import PosDict, PosList, display_path, load_file, load_text
from ..repository.layout import (LOCK_SUFFIX, UnsafeName, cases_file_for, check_ruleset_id, check_version,
                                 find_cases_files, in_versions_dir, is_cases_file,
                                 lock_files, lock_path, rule_files, rules_dir_of, ruleset_file_for,
                                 RULE_SUFFIXES, VERSIONS_DIR)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
IGNORE_RE = re.compile(r"#.*?\blint-ignore\b:?\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)?")
MODELINE_RE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")
README = "rules/README.md"


# --------------------------------------------------------------------------- report
@dataclass
class LintReport:
    problems: list[Problem] = field(default_factory=list)
    acknowledged: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.errors or (strict and self.warnings) else 0

    def as_dict(self) -> dict:
        return {"files": list(self.files), "errors": len(self.errors), "warnings": len(self.warnings),
                "problems": [p.as_dict() for p in self.problems],
                "acknowledged": [p.as_dict() for p in self.acknowledged]}


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file, p.line, p.column, p.severity != "error", p.code or ""))


def finding(file: str, where, code: str, message: str, hint: str, rule: str | None = None,
            severity: str = "warning") -> Problem:
    line, column = where
    return Problem(file, line, column, message, rule, severity, code, hint)


def did_you_mean(word: str, options, prefix: str = "did you mean") -> str:
    matches = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"{prefix} {matches[0]!r}?" if matches else ""


def _join(suggestion: str, advice: str) -> str:
    """'did you mean X? Otherwise, <advice>' or just the advice."""
    return f"{suggestion} Otherwise, {advice}" if suggestion else advice


# --------------------------------------------------------------------------- loader findings
class Classifier:
    """Gives the loader's problems a hint about what to do. Their check name
    (`code`) is set where each problem is found (app/rules/model, engine,
    authoring/cases.py); a problem found without one is a "schema" problem
    (a "cases" one in a cases file). The hint quotes the value the message
    names (an unknown offering, channel, field...) to be precise."""

    def __init__(self, catalog: Catalog | None, rule_ids: list[str] | None = None):
        self.catalog = catalog
        self.rule_ids = rule_ids or []

    def __call__(self, problem: Problem, default: str = "schema") -> Problem:
        code = problem.code or default
        return Problem(problem.file, problem.line, problem.column, problem.message, problem.rule,
                       problem.severity, code, problem.hint or self.hint(code, problem.message))

    def hint(self, code: str, message: str) -> str:
        quoted = re.search(r"'([^']*)'", message)
        value = quoted.group(1) if quoted else ""
        if code == "unknown-offering":
            return self.offering_hint(value)
        if code == "unknown-category":
            known = sorted(self.catalog.category_tokens) if self.catalog else []
            return _join(did_you_mean(value, known),
                         "use a category id or name of a catalog offering: " + ", ".join(known))
        if code == "unknown-channel":
            return self.channel_hint(value)
        if code == "unknown-condition":
            m = re.search(r"unknown (?:test|comparison) '([^']*)' \(use ([^)]*)\)", message)
            if m:
                options = [o.strip() for o in m.group(2).replace(" or ", ", ").split(",")]
                return _join(did_you_mean(m.group(1), options), f"use one of: {m.group(2)}")
            return _join(did_you_mean(value, sorted(FACT_KEYS | COMBINATORS)), f"see 'The when language' in {README}")
        if code == "duplicate-key":
            return "keep one of the two keys (merge their values)"
        if code == "yaml-syntax":
            if message.startswith("YAML tag not allowed"):
                return "remove the tag (`!!...`): rule and catalog files hold plain data"
            if "aliases (*name)" in message:
                return "write the value out instead of an anchor and alias (&name, *name)"
            return ("fix the YAML at this spot: indentation with spaces (no tabs), "
                    "a missing ':' or an unclosed quote or bracket")
        if code == "duplicate-rule-id":
            return ("give this rule an id of its own"
                    + (f" (e.g. {self.next_rule_id()!r})" if self.next_rule_id() else "")
                    + "; keep released ids unchanged: reports and leads refer to them")
        if code == "duplicate-recommendation":
            return "keep one entry per offering in `recommend`"
        if code == "duplicate-id":
            return "give it an id of its own, or remove the copy"
        if code == "validity-window":
            return "make the end later than the start (the end is excluded)"
        if code == "priority-range":
            return f"use a whole number from 0 to {MAX_PRIORITY}; smaller ranks first"
        if code == "too-complex":
            return "use any_of/none_of lists, or split the rule in two"
        if code == "empty-condition":
            return "write at least one test, e.g. `cart: \"6547\"`, or remove it"
        if code == "cases":
            if message.startswith("duplicate case name"):
                return "give every case a name of its own"
            return f"write the case as 'Regression cases' in {README} shows"
        m = re.search(r"unknown field '([^']*)' in (.*) \(allowed: (.*)\)$", message)
        if m:
            options = [o.strip() for o in m.group(3).split(",")]
            return _join(did_you_mean(m.group(1), options), f"remove it or use one of the fields of {m.group(2)}")
        return f"write it as {README} shows (the editor set-up there flags this while you type)"

    def offering_hint(self, value: str) -> str:
        catalog = self.catalog
        if catalog is None:
            return "use an offering id of the catalog"
        by_name = [o for o in catalog.offerings.values() if o.name.lower() == str(value).lower()]
        if by_name:
            return f"{value!r} is the name of offering {by_name[0].id}: write its id, \"{by_name[0].id}\""
        return _join(did_you_mean(value, sorted(catalog.offerings)),
                     "use the id of an offering in catalog/ (ids are text: write them in quotes)")

    def channel_hint(self, value: str) -> str:
        catalog = self.catalog
        if catalog is None:
            return "use a channel id of catalog/channels.yaml"
        for cid, channel in catalog.channels.items():
            if str(channel.get("name", "")).lower() == str(value).lower():
                return f"{value!r} is the name of channel {cid}: write its id, \"{cid}\""
        return _join(did_you_mean(value, sorted(catalog.channels)), "use a channel id of catalog/channels.yaml")

    def next_rule_id(self) -> str | None:
        numbers = [int(m.group(1)) for r in self.rule_ids if (m := re.fullmatch(r"R(\d+)", r))]
        return f"R{max(numbers) + 1}" if numbers else None


# --------------------------------------------------------------------------- acknowledgements
@dataclass
class Ignore:
    line: int            # the line the comment applies to
    column: int          # where the comment is
    comment_line: int
    codes: tuple[str, ...]
    used: set = field(default_factory=set)


def read_ignores(text: str, file: str) -> tuple[list[Ignore], list[Problem]]:
    ignores, problems = [], []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if "lint-ignore" not in line or "#" not in line:
            continue
        match = IGNORE_RE.search(line)
        if not match:
            continue
        column = match.start() + 1
        if not match.group(1):
            problems.append(finding(file, (number, column), "unused-ignore", "lint-ignore names no check",
                                    "name the check, e.g. `# lint-ignore: retired-offering -- why`"))
            continue
        target = number
        if line.lstrip().startswith("#"):
            target = number + 1
            while target <= len(lines) and (not lines[target - 1].strip()
                                            or lines[target - 1].lstrip().startswith("#")):
                target += 1
        codes = tuple(c.strip() for c in match.group(1).split(","))
        ignores.append(Ignore(target, column, number, codes))
    return ignores, problems


def apply_ignores(problems: list[Problem], ignores: list[Ignore], file: str) -> tuple[list[Problem], list[Problem]]:
    kept, acknowledged = [], []
    for problem in problems:
        hit = None
        if problem.file == file and problem.severity != "error":
            hit = next((i for i in ignores if i.line == problem.line and problem.code in i.codes), None)
        if hit is None:
            kept.append(problem)
        else:
            hit.used.add(problem.code)
            acknowledged.append(problem)
    for ignore in ignores:
        for code in ignore.codes:
            if code not in ignore.used:
                kept.append(finding(file, (ignore.comment_line, ignore.column), "unused-ignore",
                                    f"lint-ignore: {code} acknowledges no warning on line {ignore.line}",
                                    "remove it (errors cannot be ignored; the check name must match)"))
    return kept, acknowledged


def modeline_problems(text: str, path: Path, schema_name: str) -> list[Problem]:
    """The `# yaml-language-server: $schema=...` line must point at a shipped schema."""
    for number, line in enumerate(text.splitlines()[:10], start=1):
        match = MODELINE_RE.search(line)
        if not match:
            continue
        target = match.group(1)
        if target.startswith(("http://", "https://")):
            return []
        resolved = (path.parent / target).resolve()
        relative = Path(os.path.relpath(SCHEMA_DIR / schema_name, path.parent.resolve())).as_posix()
        if not resolved.is_file():
            return [finding(display_path(path), (number, match.start(1) + 1), "schema-modeline",
                            f"the editor schema {target!r} does not exist",
                            f"write `$schema={relative}` so that editors validate and complete this file")]
        if resolved.name != schema_name:
            return [finding(display_path(path), (number, match.start(1) + 1), "schema-modeline",
                            f"the editor schema is {resolved.name}, but this is a file for {schema_name}",
                            f"write `$schema={relative}`")]
        return []
    return []


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
                problems.append(classify(Problem(p.file, where[0], where[1], p.message, p.rule, p.severity,
                                                     p.code)))
        if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
            for index, item in enumerate(doc["rules"]):
                if not isinstance(item, PosDict):
                    continue
                rule = read_rule(item, doc["rules"].at(index), index, Checker(name), catalog)
                if rule is not None:
                    problems.extend(RuleChecks(rule, item, catalog, now, name).run())
        if ruleset is not None:
            problems.extend(_value_case_problems(ruleset, cases_file_for(path), name))
        problems.extend(contact_policy_findings(ruleset, catalog))
    problems.extend(modeline_problems(text, path, "ruleset.schema.json"))
    problems.extend(zone_less_times(doc, name))
    if isinstance(doc, dict):
        problems.extend(_header_checks(doc, path, name, rules_dir))
    ignores, bad = read_ignores(text, name)
    kept, acknowledged = apply_ignores(problems + bad, ignores, name)
    return kept, acknowledged


class RuleChecks:
    """The lint's own checks of one rule that loaded (warnings, contradictions are errors)."""

    def __init__(self, rule, raw: PosDict, catalog: Catalog, now: dt.datetime, file: str):
        self.rule, self.raw, self.catalog, self.now, self.file = rule, raw, catalog, now, file
        self.out: list[Problem] = []
        window = raw.get("validFor")
        self.window_pos = raw.key_at("validFor") if "validFor" in raw else raw.pos
        if isinstance(window, PosDict):
            self.window_pos = window.at("startDateTime") if "startDateTime" in window else self.window_pos
        self.window_end_pos = window.at("endDateTime") if isinstance(window, PosDict) and "endDateTime" in window \
            else self.window_pos

    def add(self, where, code, message, hint, severity="warning"):
        self.out.append(finding(self.file, where, code, message, hint, self.rule.id, severity))

    def run(self) -> list[Problem]:
        rule = self.rule
        try:
            analysis = analyse(rule.when, self.catalog, rule.valid_from, rule.valid_to, self.window_pos,
                               self.window_end_pos)
        except TooComplex:
            analysis = None
        if analysis is not None and not analysis.can_fire:
            self.contradiction(analysis)
        else:
            if analysis is not None:
                self.dead_alternatives()
                self.expired_rule(analysis)
            self.cart_offerings()
            self.recommendations(analysis)
        return self.out

    def contradiction(self, analysis) -> None:
        alternatives = analysis.alternatives
        if len(alternatives) == 1:
            conflict = alternatives[0].conflict
            self.add(conflict.pos, "contradiction", f"the rule can never fire: {conflict.describe()}",
                     "remove or change one of these tests", severity="error")
            return
        first = alternatives[0].conflict
        self.add(self.raw.key_at("when"), "contradiction",
                 f"the rule can never fire: none of its {len(alternatives)} alternatives can hold "
                 f"(the first: {first.describe()})", "remove or change the contradicting tests", severity="error")

    def dead_alternatives(self) -> None:
        rule = self.rule
        for node in positive_anys(rule.when):
            for child in node.children:
                try:
                    alone = analyse(with_choice(rule.when, node, child), self.catalog, rule.valid_from,
                                    rule.valid_to, self.window_pos, self.window_end_pos)
                except TooComplex:
                    continue
                if not alone.can_fire:
                    conflict = alone.alternatives[0].conflict
                    self.add(child.pos, "dead-alternative",
                             f"this alternative of `any` can never hold: {conflict.describe()}",
                             "remove or fix this alternative; the rest of the rule still works")

    def expired_rule(self, analysis) -> None:
        latest, lit = analysis.last_instant()
        if latest is None or latest > self.now.timestamp():
            return
        self.add(lit.pos, "expired-rule",
                 f"the rule can no longer fire: `{lit.text}` is before the lint time {iso(self.now)}",
                 "remove the rule, or move its validFor (or its time test) forward")

    def cart_offerings(self) -> None:
        for cond in _positive_leaves(self.rule.when):
            if not isinstance(cond, SetTest) or cond.fact != "cart" or cond.mode not in ("any_of", "all_of"):
                continue
            for value in cond.values:
                offering = self.catalog.get(value)
                if offering is None:
                    continue
                where = _value_pos(self.raw.get("when"), cond.pos, value)
                if not offering.is_active:
                    self.add(where, "retired-offering",
                             f"the cart test names {value} ({offering.name}), which is {offering.lifecycle_status}: "
                             "no new cart holds it", "test for its successor instead, or remove it from the test")
                elif offering.valid_to is not None and offering.valid_to <= self.now:
                    self.add(where, "expired-offering",
                             f"the cart test names {value} ({offering.name}), whose validFor ended "
                             f"{iso(offering.valid_to)}", "test for another offering, or extend its validFor")

    def recommendations(self, analysis) -> None:
        recs = self.raw.get("recommend")
        if not isinstance(recs, PosList):
            return
        in_cart = analysis.always_required("cart") if analysis else {}
        owned = analysis.always_required("owns") if analysis else {}
        for index, rec in enumerate(recs):
            if not isinstance(rec, PosDict):
                continue
            value = as_id(rec.get("offering"))
            offering = self.catalog.get(value) if value else None
            if offering is None:
                continue
            where = rec.at("offering")
            label = f"{value} ({offering.name})"
            if not offering.is_active:
                self.add(where, "retired-offering",
                         f"recommends {label}, which is {offering.lifecycle_status}: the policy always drops it",
                         "remove it from `recommend`, or recommend an Active offering instead")
                continue
            if offering.valid_to is not None and offering.valid_to <= self.now:
                self.add(where, "expired-offering",
                         f"recommends {label}, whose validFor ended {iso(offering.valid_to)}: "
                         "the policy always drops it",
                         "remove it, or extend the offering's validFor in the catalog")
                continue
            if analysis is not None and (offering.valid_from or offering.valid_to) and \
                    not analysis.time_overlaps(offering.valid_from, offering.valid_to):
                window = f"[{iso(offering.valid_from) if offering.valid_from else '…'}, " \
                         f"{iso(offering.valid_to) if offering.valid_to else '…'})"
                self.add(where, "offering-window",
                         f"recommends {label}, valid only {window}, when the rule cannot fire: "
                         "it is never recommended by this rule",
                         "align the rule's validFor (or time test) with the offering's validFor")
                continue
            for required, what in ((in_cart, "in the cart"), (owned, "owned")):
                if value in required:
                    self.add(where, "always-dropped",
                             f"recommends {label}, which the rule's own condition requires {what} "
                             f"({required[value].shown()}): the policy never recommends what is {what}",
                             "remove it from `recommend`, or change the condition")
                    break


def _value_pos(raw, key_pos: tuple[int, int], value: str) -> tuple[int, int]:
    """Where `value` is written under the key at `key_pos` in the raw `when` tree."""
    stack = [raw]
    while stack:
        node = stack.pop()
        if isinstance(node, PosDict):
            for key, sub in node.items():
                if node.key_at(key) == key_pos:
                    if isinstance(sub, PosList):
                        for index, item in enumerate(sub):
                            if as_id(item) == value:
                                return sub.at(index)
                    elif as_id(sub) == value:
                        return node.at(key)
                stack.append(sub)
        elif isinstance(node, PosList):
            stack.extend(node)
    return key_pos


def _positive_leaves(cond, negated: bool = False):
    if isinstance(cond, Not):
        yield from _positive_leaves(cond.child, not negated)
    elif isinstance(cond, (All, Any)):
        for child in cond.children:
            yield from _positive_leaves(child, negated)
    elif not negated:
        yield cond


def _scalar_tests(cond):
    if isinstance(cond, Not):
        yield from _scalar_tests(cond.child)
    elif isinstance(cond, (All, Any)):
        for child in cond.children:
            yield from _scalar_tests(child)
    elif isinstance(cond, ScalarTest):
        yield cond


def _value_case_problems(ruleset, cases_file: Path, name: str) -> list[Problem]:
    """Segment and characteristic values compare exactly (case-sensitive, as
    TMF629 characteristic values are free text): a rule's `segment: Premium`
    never matches a customer whose segment is `premium`. Deliberately not
    folded in the engine; instead this warns (`value-case`) when a value in a
    rule differs only in case from one used by another rule or by a case's
    context, the usual sign of a typo."""

    used: dict[str, dict[str, str]] = {}          # label -> value -> where it is used
    tests = [(rule, test) for rule in ruleset.rules for test in _scalar_tests(rule.when)]
    for rule, test in tests:
        for value in test.values:
            used.setdefault(test.label, {}).setdefault(value, f"rule {rule.id}")
    try:
        cases = load_cases(cases_file) if cases_file.exists() else []
    except RuleSetError:
        cases = []                                 # the cases file's own lint reports it
    for case in cases:
        customer = getattr(case.context, "customer", None)
        if customer is None:
            continue
        for key, raw in characteristics(customer).items():
            value = normalise_value(raw)
            if value is not None:
                label = "segment" if key == "segment" else f"characteristic {key}"
                used.setdefault(label, {}).setdefault(value, f"case {case.name}")
    out = []
    for rule, test in tests:
        for value in test.values:
            others = sorted(v for v in used.get(test.label, {}) if v != value and v.casefold() == value.casefold())
            if others:
                where = ", ".join(f"{v!r} ({used[test.label][v]})" for v in others)
                out.append(finding(name, (test.pos[0], test.pos[1]) if test.pos else (rule.line, 1), "value-case",
                                   f"{test.label} {value!r} differs only in case from {where}: values compare "
                                   "exactly, so they never match each other",
                                   f"write the value the same way everywhere (e.g. {others[0]!r})", rule.id))
    return out


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
        load_cases(path)
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
                                       _join(did_you_mean(rid, sorted(r for r in rule_ids if r)),
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
    report.problems = _sorted(report.problems)
    report.acknowledged = _sorted(report.acknowledged)
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
