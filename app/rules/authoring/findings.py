"""A lint finding (app.rules.model.errors.Problem with its check name,
`code`, and what to do, `hint`), the report that collects them, and the
hints for the problems the loader finds (their codes are set where they are
found: see Classifier)."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

from ..model.catalog import Catalog
from ..model.conditions import COMBINATORS, FACT_KEYS
from ..model.errors import Problem
from ..model.ruleset import MAX_PRIORITY

README = "rules/README.md"


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


def sorted_findings(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file, p.line, p.column, p.severity != "error", p.code or ""))


def finding(file: str, where, code: str, message: str, hint: str, rule: str | None = None,
            severity: str = "warning") -> Problem:
    line, column = where
    return Problem(file, line, column, message, rule, severity, code, hint)


def did_you_mean(word: str, options, prefix: str = "did you mean") -> str:
    matches = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"{prefix} {matches[0]!r}?" if matches else ""


def join_advice(suggestion: str, advice: str) -> str:
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
        return replace(problem, code=code, hint=problem.hint or self.hint(code, problem.message))

    def hint(self, code: str, message: str) -> str:
        quoted = re.search(r"'([^']*)'", message)
        value = quoted.group(1) if quoted else ""
        if code == "unknown-offering":
            return self.offering_hint(value)
        if code == "unknown-category":
            known = sorted(self.catalog.category_tokens) if self.catalog else []
            return join_advice(did_you_mean(value, known),
                         "use a category id or name of a catalog offering: " + ", ".join(known))
        if code == "unknown-channel":
            return self.channel_hint(value)
        if code == "unknown-condition":
            m = re.search(r"unknown (?:test|comparison) '([^']*)' \(use ([^)]*)\)", message)
            if m:
                options = [o.strip() for o in m.group(2).replace(" or ", ", ").split(",")]
                return join_advice(did_you_mean(m.group(1), options), f"use one of: {m.group(2)}")
            return join_advice(did_you_mean(value, sorted(FACT_KEYS | COMBINATORS)), f"see 'The when language' in {README}")
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
            return join_advice(did_you_mean(m.group(1), options), f"remove it or use one of the fields of {m.group(2)}")
        return f"write it as {README} shows (the editor set-up there flags this while you type)"

    def offering_hint(self, value: str) -> str:
        catalog = self.catalog
        if catalog is None:
            return "use an offering id of the catalog"
        by_name = [o for o in catalog.offerings.values() if o.name.lower() == str(value).lower()]
        if by_name:
            return f"{value!r} is the name of offering {by_name[0].id}: write its id, \"{by_name[0].id}\""
        return join_advice(did_you_mean(value, sorted(catalog.offerings)),
                     "use the id of an offering in catalog/ (ids are text: write them in quotes)")

    def channel_hint(self, value: str) -> str:
        catalog = self.catalog
        if catalog is None:
            return "use a channel id of catalog/channels.yaml"
        for cid, channel in catalog.channels.items():
            if str(channel.get("name", "")).lower() == str(value).lower():
                return f"{value!r} is the name of channel {cid}: write its id, \"{cid}\""
        return join_advice(did_you_mean(value, sorted(catalog.channels)), "use a channel id of catalog/channels.yaml")

    def next_rule_id(self) -> str | None:
        numbers = [int(m.group(1)) for r in self.rule_ids if (m := re.fullmatch(r"R(\d+)", r))]
        return f"R{max(numbers) + 1}" if numbers else None
