"""The meaning checks lint makes on each rule of a rule set that loads
(retired or expired offerings, contradictions, alternatives and rules that
can never fire, recommendations the policies always drop; authoring/analysis
does the reasoning), and the check of values that differ only in case from
one used elsewhere (`value-case`)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..model.catalog import Catalog
from ..model.common import as_id, iso
from ..model.conditions import All, Any, Not, ScalarTest, SetTest
from ..model.errors import Problem, RuleSetError
from ..model.facts import characteristics, normalise_value
from ..model.yamlload import PosDict, PosList
from .analysis import TooComplex, analyse, positive_anys, with_choice
from .cases import load_cases
from .findings import finding

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


def value_case_problems(ruleset, cases_file: Path, name: str) -> list[Problem]:
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
