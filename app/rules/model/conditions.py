"""The `when` language: its conditions, evaluated in Python here (for explain
and tests), parsed from YAML by condition_parser.py and compiled to
durable-rules expressions by engine/compiler.py.

A condition is a mapping; several keys in one mapping must all hold.

    cart: ["6547", "6550"]          # the cart holds any of these offerings
    cart_category: devices          # the cart holds an offering of this category
    owns: {all_of: ["7001", "7101"]}
    owns_category: {none_of: [tv]}
    channel: ["21", "22"]           # the request's channel is one of these
    place: "P-Paris"                # a related place has this id or name
    category: ["phones"]            # a category of the query (id or name)
    segment: premium                # customer characteristic `segment`
    customer: known | anonymous
    characteristic: {contractMonths: {at_least: 12}, churnRisk: [high, medium]}
    time: {from: 2026-11-15T00:00:00Z, before: 2027-01-01T00:00:00Z}
    cart_count / owns_count / order_count: {at_least: 2}
    all: [cond, ...]   any: [cond, ...]   not: cond

See rules/README.md for the full reference.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .common import iso
from .facts import Facts, date_value, normalise_value, number_value

SET_FACTS = {
    "cart": ("cart", "the cart"),
    "cart_category": ("cartcat", "the cart's categories"),
    "owns": ("owns", "owned offerings (active)"),
    "owns_category": ("ownscat", "owned categories (active)"),
    "channel": ("channel", "the channel"),
    "place": ("place", "the places"),
    "category": ("category", "the query's categories"),
}
NUMBER_FACTS = {"cart_count": "n_cart", "owns_count": "n_owns", "order_count": "n_orders"}
COMPARATORS = {
    "at_least": ">=", "from": ">=",
    "more_than": ">", "after": ">",
    "at_most": "<=", "until": "<=",
    "less_than": "<", "before": "<",
}
NEGATED_OP = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
DURABLE_OP = {">=": "$gte", ">": "$gt", "<=": "$lte", "<": "$lt"}
SET_MODES = {"any_of", "all_of", "none_of", "empty"}
SCALAR_MODES = {"any_of", "none_of", "exists"}
COMBINATORS = {"all", "any", "not"}
FACT_KEYS = set(SET_FACTS) | set(NUMBER_FACTS) | {"segment", "customer", "characteristic", "time"}
MAX_VALUES = 256


# --------------------------------------------------------------------------- AST
@dataclass(eq=False, slots=True)
class Cond:
    pos: tuple[int, int] = field(default=(1, 1), kw_only=True)

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(eq=False, slots=True)
class All(Cond):
    children: list[Cond]

    def describe(self) -> str:
        return "all of: " + "; ".join(c.describe() for c in self.children)


@dataclass(eq=False, slots=True)
class Any(Cond):
    children: list[Cond]

    def describe(self) -> str:
        return "any of: " + "; ".join(c.describe() for c in self.children)


@dataclass(eq=False, slots=True)
class Not(Cond):
    child: Cond

    def describe(self) -> str:
        return f"not ({self.child.describe()})"


@dataclass(eq=False, slots=True)
class SetTest(Cond):
    fact: str                 # a key of SET_FACTS
    mode: str                 # any_of | all_of | none_of | empty | not_empty
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.mode in ("empty", "not_empty"):
            return f"{self.fact} is {'empty' if self.mode == 'empty' else 'not empty'}"
        verb = {"any_of": "has any of", "all_of": "has all of", "none_of": "has none of"}[self.mode]
        return f"{self.fact} {verb} [{', '.join(self.values)}]"


@dataclass(eq=False, slots=True)
class ScalarTest(Cond):
    fact: str                 # "segment" or a characteristic name
    is_char: bool
    mode: str                 # any_of | none_of | exists | missing
    values: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"characteristic {self.fact}" if self.is_char else self.fact

    def describe(self) -> str:
        if self.mode in ("exists", "missing"):
            return f"{self.label} {'is set' if self.mode == 'exists' else 'is not set'}"
        verb = "is one of" if self.mode == "any_of" else "is none of"
        return f"{self.label} {verb} [{', '.join(self.values)}]"


@dataclass(eq=False, slots=True)
class Compare(Cond):
    fact: str                 # time | cart_count | owns_count | order_count | characteristic name
    is_char: bool
    op: str                   # >= > <= <
    value: float
    kind: str                 # number | date

    def shown(self) -> str:
        if self.kind == "date":
            return iso(dt.datetime.fromtimestamp(self.value, dt.timezone.utc))
        return f"{self.value:g}"

    def describe(self) -> str:
        label = f"characteristic {self.fact}" if self.is_char else self.fact
        return f"{label} {self.op} {self.shown()}"


@dataclass(eq=False, slots=True)
class Known(Cond):
    known: bool

    def describe(self) -> str:
        return "customer is known" if self.known else "customer is anonymous"


# --------------------------------------------------------------------------- parse
def scalar_of(facts: Facts, test) -> str | None:
    if test.is_char:
        return normalise_value(facts.characteristics.get(test.fact))
    return facts.segment


def compare_operand(facts: Facts, test: Compare) -> float | None:
    if not test.is_char:
        if test.fact == "time":
            return facts.time.timestamp()
        return float(facts.counts[test.fact])
    raw = facts.characteristics.get(test.fact)
    return number_value(raw) if test.kind == "number" else date_value(raw)


def _cmp(left: float, op: str, right: float) -> bool:
    return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[op]


def evaluate(cond: Cond, facts: Facts) -> bool:
    return explain(cond, facts)[0]


def explain(cond: Cond, facts: Facts) -> tuple[bool, list[str]]:
    """(holds, reasons): when it does not hold, the failed leaf conditions, each
    with what the facts were ("cart has any of [6547]: cart is []")."""
    ok, failed = explain_detail(cond, facts)
    return ok, [text for _leaf, text in failed]


def explain_detail(cond: Cond, facts: Facts) -> tuple[bool, list[tuple[Cond, str]]]:
    """Like explain(), each reason paired with the condition that failed (its
    `pos` is the line and column in the rule file)."""
    if isinstance(cond, All):
        for child in cond.children:
            ok, why = explain_detail(child, facts)
            if not ok:
                return False, why
        return True, []
    if isinstance(cond, Any):
        reasons = []
        for child in cond.children:
            ok, why = explain_detail(child, facts)
            if ok:
                return True, []
            reasons.extend(why)
        return False, reasons
    if isinstance(cond, Not):
        ok, _ = explain_detail(cond.child, facts)
        return (not ok), ([] if not ok else [(cond, f"{cond.describe()}: it holds")])
    if isinstance(cond, SetTest):
        have = facts.set_of(cond.fact)
        present = set(have)
        if cond.mode == "any_of":
            ok = any(v in present for v in cond.values)
        elif cond.mode == "all_of":
            ok = all(v in present for v in cond.values)
        elif cond.mode == "none_of":
            ok = not any(v in present for v in cond.values)
        elif cond.mode == "empty":
            ok = not present
        else:
            ok = bool(present)
        return ok, ([] if ok else [(cond, f"{cond.describe()}: {cond.fact} is [{', '.join(have)}]")])
    if isinstance(cond, ScalarTest):
        value = scalar_of(facts, cond)
        if cond.mode == "exists":
            ok = value is not None
        elif cond.mode == "missing":
            ok = value is None
        elif cond.mode == "any_of":
            ok = value is not None and value in cond.values
        else:
            ok = value is None or value not in cond.values
        shown = "not set" if value is None else repr(value)
        return ok, ([] if ok else [(cond, f"{cond.describe()}: {cond.label} is {shown}")])
    if isinstance(cond, Compare):
        value = compare_operand(facts, cond)
        ok = value is not None and _cmp(value, cond.op, cond.value)
        if ok:
            return True, []
        if value is None:
            shown = "not set (or not a " + cond.kind + ")"
        elif cond.kind == "date":
            shown = iso(dt.datetime.fromtimestamp(value, dt.timezone.utc))
        else:
            shown = f"{value:g}"
        return False, [(cond, f"{cond.describe()}: it is {shown}")]
    if isinstance(cond, Known):
        ok = facts.known == cond.known
        return ok, ([] if ok else [(cond, f"{cond.describe()}: customer is "
                                          f"{'known' if facts.known else 'anonymous'}")])
    raise TypeError(f"unknown condition {cond!r}")


def walk(cond: Cond):
    yield cond
    if isinstance(cond, (All, Any)):
        for child in cond.children:
            yield from walk(child)
    elif isinstance(cond, Not):
        yield from walk(cond.child)
