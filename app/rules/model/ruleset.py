"""Rule set files: read and check `rules/*.yaml` against the catalog."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Catalog
from .common import VERSION_RE, Checker, as_id, freeze, thaw, in_window, read_valid_for, ruleset_fingerprint, type_name
from .condition_parser import ConditionParser
from .conditions import Cond
from .contact import ContactPolicy, read_contact_policies
from .errors import Problem, RuleSetError
from .source import read_source
from .yamlload import PosDict, display_path, load_text, read_text_file

RULESET_STATUSES = ("experimental", "test", "stable", "deprecated")
RULE_STATUSES = ("experimental", "test", "stable", "deprecated", "disabled")
NON_FIRING_STATUSES = ("deprecated", "disabled")
KINDS = ("up-sell", "cross-sell", "down-sell", "retention", "acquisition", "bundle", "other")
RULESET_FIELDS = {"id", "name", "version", "status", "description", "limit", "owner", "rules",
                  "contactPolicies"}
RULE_FIELDS = {"id", "name", "kind", "description", "status", "validFor", "when", "recommend"}
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")   # \Z: no trailing newline; safe in a file name
DEFAULT_LIMIT = 4
MAX_PRIORITY = 1_000_000


# slots: one Rule, one Recommend per offering and a condition tree per rule are
# kept for each rule served; without a __dict__ each, 10,000 rules hold 5.5 MiB less
# of live objects (21.3 -> 15.8 MiB, tracemalloc), in every worker
@dataclass(slots=True)
class Recommend:
    offering: str
    priority: int
    line: int = 1


@dataclass(slots=True)
class Rule:
    index: int                     # order in the file (0-based)
    id: str
    name: str | None
    kind: str
    description: str
    status: str
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    when: Cond
    recommend: list[Recommend]
    line: int = 1

    @property
    def label(self) -> str:
        return f"{self.id} {self.name}" if self.name else self.id

    @property
    def fires_by_status(self) -> bool:
        return self.status not in NON_FIRING_STATUSES

    def valid_at(self, when: dt.datetime) -> bool:
        return in_window(when, self.valid_from, self.valid_to)


@dataclass
class RuleSet:
    id: str
    version: str
    status: str
    description: str
    limit: int
    rules: list[Rule]
    file: str
    hash: str                      # the lock fingerprint: common.ruleset_fingerprint of the document
    name: str | None = None
    owner: str | None = None
    meta: dict = field(default_factory=dict)
    #: offer-fatigue limits (model/contact.py); empty: no history is read
    contact_policies: tuple[ContactPolicy, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def peek_header(path: Path) -> tuple[str | None, str | None]:
    """(id, version) of a rule file without checking the rest, or (None, None)."""
    try:
        doc = load_text(*reversed(read_text_file(path)))
    except (RuleSetError, OSError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    rid, version = doc.get("id"), doc.get("version")
    return (rid if isinstance(rid, str) else None, version if isinstance(version, str) else None)


def load_ruleset(path: Path, catalog: Catalog) -> RuleSet:
    """Read and check one rule set file; raise RuleSetError listing every problem."""
    path = Path(path)
    name = display_path(path)
    try:
        data = read_source(path, name)
    except OSError as exc:
        raise RuleSetError(f"cannot read {name}", [Problem(name, 1, 1, f"cannot read file: {exc}",
                                                           code="yaml-syntax")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleSetError(f"cannot read {name}", [Problem(name, 1, 1, f"not UTF-8 text: {exc}",
                                                           code="yaml-syntax")]) from None
    return parse_ruleset(text, name, catalog)


def read_ruleset_file(path: Path, catalog: Catalog) -> tuple[str | None, str | None, RuleSet | None, list[Problem]]:
    """(id, version, rule set or None, problems) of one rule file, read and
    parsed once: the service needs the header even when the rest is broken
    (to list the broken version beside the others), and parsing a 1,000-rule
    file twice cost 0.4 s per reload (measured with a profile)."""
    path = Path(path)
    name = display_path(path)
    try:
        text = read_source(path, name).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, None, [Problem(name, 1, 1, f"cannot read file: {exc}", code="yaml-syntax")]
    except RuleSetError as exc:           # over the size limit: not read at all
        return None, None, None, exc.problems
    try:
        return _parse_checked(text, name, catalog)
    except RuleSetError as exc:
        return None, None, None, exc.problems or [Problem(name, 1, 1, str(exc))]


def parse_ruleset(text: str, file: str, catalog: Catalog) -> RuleSet:
    """Check one rule set's text. Its `hash` (X-Ruleset-Hash) is the lock
    fingerprint of what the file says, not of its bytes: a kept copy whose
    editor-schema comment points one directory up hashes like its source."""
    _rid, _version, ruleset, errors = _parse_checked(text, file, catalog)
    if ruleset is None:
        raise RuleSetError(f"rule set {file} has errors", errors)
    return ruleset


def _parse_checked(text: str, file: str, catalog: Catalog) -> tuple[str | None, str | None, RuleSet | None,
                                                                    list[Problem]]:
    """(id, version, rule set or None, errors) of one rule file's text; raises
    RuleSetError when the text is not YAML. The rule set returned is a
    compact copy (common.freeze), made once the parsed document is freed."""
    doc = load_text(text, file)
    rid = doc.get("id") if isinstance(doc, dict) else None
    version = doc.get("version") if isinstance(doc, dict) else None
    header = (rid if isinstance(rid, str) else None, version if isinstance(version, str) else None)
    check = Checker(file)
    ruleset = _read(doc, check, catalog, file, ruleset_fingerprint(doc))
    errors = [p for p in check.problems if p.severity == "error"]
    if errors or ruleset is None:
        return (*header, None, errors or [Problem(file, 1, 1, f"rule set {file} has errors")])
    frozen = freeze(ruleset)
    del doc, check, ruleset               # the document's memory is free before the copy is made
    return (*header, thaw(frozen), [])


def _text(check: Checker, doc: PosDict, key: str, what: str, required: bool = True, rule=None) -> str | None:
    if key not in doc:
        if required:
            check.add(doc.pos, f"{what}: missing required field {key!r}", rule)
        return None
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        check.add(doc.at(key), f"{what}: {key} must be text, got {type_name(value)}", rule)
        return None
    return value.strip()


def _read(doc, check: Checker, catalog: Catalog, file: str, digest: str) -> RuleSet | None:
    if not isinstance(doc, dict):
        check.add((1, 1), f"a rule set file must be a mapping with id, version and rules, got {type_name(doc)}")
        return None
    check.unknown_keys(doc, RULESET_FIELDS, "a rule set")
    rid = _text(check, doc, "id", "rule set")
    if rid is not None and not ID_RE.match(rid):
        check.add(doc.at("id"), f"rule set id {rid!r} may only use letters, digits, '.', '_' and '-'")
    version = doc.get("version")
    if "version" not in doc:
        check.add(doc.pos, "rule set: missing required field 'version' (e.g. \"1.0.0\")")
    elif not isinstance(version, str):
        check.add(doc.at("version"), f"rule set: version must be text like \"1.0.0\" (quote it), got {type_name(version)}")
    elif not VERSION_RE.match(version):
        check.add(doc.at("version"), f"rule set: version {version!r} is not a semantic version: write "
                                     "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (semver.org), e.g. \"1.0.0\"")
    status = _text(check, doc, "status", "rule set")
    if status is not None and status not in RULESET_STATUSES:
        check.add(doc.at("status"), f"rule set: status must be one of {', '.join(RULESET_STATUSES)}, got {status!r}")
    description = _text(check, doc, "description", "rule set")
    name = _text(check, doc, "name", "rule set", required=False)
    owner = _text(check, doc, "owner", "rule set", required=False)
    limit = doc.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        check.add(doc.at("limit"), f"rule set: limit must be a whole number >= 1, got {type_name(limit)}")
    rules_raw = doc.get("rules")
    rules: list[Rule] = []
    if "rules" not in doc:
        check.add(doc.pos, "rule set: missing required field 'rules'")
    elif not isinstance(rules_raw, list) or not rules_raw:
        check.add(doc.at("rules"), "rule set: rules must be a non-empty list")
    else:
        seen: dict[str, int] = {}
        for index, item in enumerate(rules_raw):
            raw_id = as_id(item.get("id")) if isinstance(item, dict) else None
            if raw_id is not None and raw_id in seen:
                check.add(rules_raw.at(index), f"duplicate rule id (first at line {seen[raw_id]})", raw_id,
                          code="duplicate-rule-id")
                continue
            if raw_id is not None:
                seen[raw_id] = rules_raw.at(index)[0]
            rule = read_rule(item, rules_raw.at(index), len(rules), check, catalog)
            if rule is not None:
                rules.append(rule)
    contact_policies = (read_contact_policies(doc["contactPolicies"], doc.at("contactPolicies"), check, catalog)
                        if "contactPolicies" in doc else ())
    if not check.ok:
        return None
    return RuleSet(id=rid, version=version, status=status, description=description, limit=limit,
                   rules=rules, file=file, hash=digest, name=name, owner=owner,
                   contact_policies=contact_policies)


def read_rule(item, where, index: int, check: Checker, catalog: Catalog) -> Rule | None:
    if not isinstance(item, dict):
        check.add(where, f"a rule must be a mapping, got {type_name(item)}")
        return None
    raw_id = item.get("id")
    rule_id = as_id(raw_id)
    label = rule_id or f"#{index + 1}"
    before = len(check.problems)
    check.unknown_keys(item, RULE_FIELDS, "a rule", label)
    if rule_id is None:
        check.add(item.at("id") if "id" in item else where, "a rule needs an id (text), e.g. `id: R1`", label)
    elif not ID_RE.match(rule_id):
        check.add(item.at("id"), f"rule id {rule_id!r} may only use letters, digits, '.', '_' and '-'", label)
    name = _text(check, item, "name", "rule", required=False, rule=label)
    kind = _text(check, item, "kind", "rule", rule=label)
    if kind is not None and kind not in KINDS:
        check.add(item.at("kind"), f"kind must be one of {', '.join(KINDS)}, got {kind!r}", label)
    description = _text(check, item, "description", "rule", rule=label)
    status = _text(check, item, "status", "rule", required=False, rule=label) or "stable"
    if status not in RULE_STATUSES:
        check.add(item.at("status"), f"status must be one of {', '.join(RULE_STATUSES)}, got {status!r}", label)
    _window_ok, valid_from, valid_to = read_valid_for(check, item, rule=label)
    when = None
    if "when" not in item:
        check.add(where, "missing required field 'when'", label)
    else:
        when = ConditionParser(check, catalog, label).parse(item["when"], item.at("when"))
    recommend: list[Recommend] = []
    if "recommend" not in item:
        check.add(where, "missing required field 'recommend'", label)
    elif not isinstance(item["recommend"], list) or not item["recommend"]:
        check.add(item.at("recommend"), "recommend must be a non-empty list of {offering, priority}", label)
    else:
        recs = item["recommend"]
        seen = set()
        for rindex, rec in enumerate(recs):
            rpos = recs.at(rindex)
            if not check.mapping(rec, rpos, "a recommendation", label):
                continue
            check.unknown_keys(rec, {"offering", "priority"}, "a recommendation", label)
            offering = as_id(rec.get("offering"))
            if offering is None:
                check.add(rec.at("offering") if "offering" in rec else rpos,
                          "a recommendation needs an offering id, e.g. `offering: \"6542\"`", label)
                continue
            if catalog.get(offering) is None:
                check.add(rec.at("offering"), f"unknown offering {offering!r}", label, code="unknown-offering")
                continue
            if offering in seen:
                check.add(rec.at("offering"), f"offering {offering!r} recommended twice by this rule", label,
                          code="duplicate-recommendation")
                continue
            seen.add(offering)
            priority = rec.get("priority")
            if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
                check.add(rec.at("priority") if "priority" in rec else rpos,
                          f"priority must be a whole number from 0 to {MAX_PRIORITY} (smaller ranks first), "
                          f"got {type_name(priority)}", label, code="priority-range")
                continue
            recommend.append(Recommend(offering, priority, rpos[0]))
    if len(check.problems) > before and any(p.severity == "error" for p in check.problems[before:]):
        return None
    return Rule(index=index, id=rule_id, name=name, kind=kind, description=description, status=status,
                valid_from=valid_from, valid_to=valid_to, when=when, recommend=recommend, line=where[0])
