"""Static analysis of `when` conditions, for `flask rules lint`.

Can a rule ever fire? Which `any` alternatives can never hold? Which offerings
does a rule require in the cart (so that the policy always drops them when it
recommends them)? Which evaluation times can the rule fire at?

The condition is put in disjunctive normal form (`not` pushed to the leaves,
like the compiler does); each conjunction of leaf tests is then checked for
consistency, fact by fact, with a few joins (categories come from offerings,
counts from sets, an anonymous shopper owns nothing and has no
characteristics). The analysis is *sound*: it only says "can never hold"
when no request can make it hold; it may miss some contradictions.

One job, kept in one module although it is long: the normal form, the
intervals and the consistency rules answer one question together, and each
relies on the others' conventions (a literal's sign, an interval's open ends).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from ..model.common import iso
from ..model.conditions import (NEGATED_OP, All, Any, Compare, Cond, Known, Not, ScalarTest, SetTest)
from ..model.facts import date_value, number_value

MAX_CONJUNCTS = 4096


class TooComplex(Exception):
    """The normal form would be too large to check (no finding is made)."""


@dataclass(frozen=True, eq=False)
class Lit:
    """A leaf test, or its negation; `pos` is where it is written."""

    cond: Cond | None
    positive: bool = True
    text_override: str | None = None
    pos_override: tuple[int, int] | None = None

    @property
    def pos(self) -> tuple[int, int]:
        return self.pos_override or self.cond.pos

    @property
    def text(self) -> str:
        if self.text_override:
            return self.text_override
        cond = self.cond
        if self.positive:
            return cond.describe()
        if isinstance(cond, SetTest):
            values = ", ".join(cond.values)
            return {"any_of": f"{cond.fact} has none of [{values}]",
                    "none_of": f"{cond.fact} has any of [{values}]",
                    "all_of": f"{cond.fact} lacks one of [{values}]",
                    "empty": f"{cond.fact} is not empty",
                    "not_empty": f"{cond.fact} is empty"}[cond.mode]
        if isinstance(cond, ScalarTest):
            values = ", ".join(cond.values)
            return {"any_of": f"{cond.label} is none of [{values}]",
                    "none_of": f"{cond.label} is one of [{values}]",
                    "exists": f"{cond.label} is not set",
                    "missing": f"{cond.label} is set"}[cond.mode]
        if isinstance(cond, Compare):
            if cond.is_char:      # also holds when the characteristic is missing
                return f"not ({cond.describe()})"
            return f"{cond.fact} {NEGATED_OP[cond.op]} {cond.shown()}"
        if isinstance(cond, Known):
            return "customer is anonymous" if cond.known else "customer is known"
        return f"not ({cond.describe()})"

    def shown(self) -> str:
        return f"`{self.text}` (line {self.pos[0]}:{self.pos[1]})"


@dataclass
class Conflict:
    """Why one conjunction can never hold: the test that broke it and the ones it contradicts."""

    culprit: Lit
    others: list[Lit]
    why: str = ""

    @property
    def pos(self) -> tuple[int, int]:
        return self.culprit.pos

    def describe(self) -> str:
        parts = [lit.shown() for lit in self.others] + [self.culprit.shown()]
        parts = list(dict.fromkeys(parts))
        if len(parts) == 1:
            text = f"{parts[0]} can never hold"
        else:
            text = " and ".join(parts) + " cannot all hold" if len(parts) > 2 else \
                f"{parts[0]} and {parts[1]} cannot both hold"
        return f"{text}{': ' + self.why if self.why else ''}"


# --------------------------------------------------------------------------- normal form
def dnf(cond: Cond, negate: bool = False) -> list[list[Lit]]:
    """The condition as a list of alternatives, each a list of literals."""
    if isinstance(cond, Not):
        return dnf(cond.child, not negate)
    if isinstance(cond, (All, Any)):
        conjunctive = isinstance(cond, All) != negate
        parts = [dnf(child, negate) for child in cond.children]
        if not conjunctive:
            out = [conj for part in parts for conj in part]
            if len(out) > MAX_CONJUNCTS:
                raise TooComplex()
            return out
        out = [[]]
        for part in parts:
            out = [left + right for left in out for right in part]
            if len(out) > MAX_CONJUNCTS:
                raise TooComplex()
        return out
    return [[Lit(cond, not negate)]]


# --------------------------------------------------------------------------- intervals
@dataclass
class Bound:
    value: float
    inclusive: bool
    lit: Lit


@dataclass
class Interval:
    integer: bool = False            # counts: whole numbers >= 0
    low: Bound | None = None
    high: Bound | None = None
    floor: float | None = None       # implied minimum (counts: size of required sets)
    floor_lits: list = field(default_factory=list)

    def add(self, op: str, value: float, lit: Lit) -> None:
        if op in (">=", ">"):
            bound = Bound(value, op == ">=", lit)
            if self.low is None or value > self.low.value or (value == self.low.value and not bound.inclusive):
                self.low = bound
        else:
            bound = Bound(value, op == "<=", lit)
            if self.high is None or value < self.high.value or (value == self.high.value and not bound.inclusive):
                self.high = bound

    def lowest(self) -> tuple[float | None, bool]:
        low, incl = (self.low.value, self.low.inclusive) if self.low else (None, True)
        if self.integer:
            start = 0.0 if low is None else (math.ceil(low) if incl else math.floor(low) + 1)
            start = max(start, 0.0, self.floor or 0.0)
            return start, True
        return low, incl

    def empty(self) -> bool:
        low, low_incl = self.lowest()
        if self.high is None or low is None:
            return False
        high, high_incl = self.high.value, self.high.inclusive
        if self.integer:
            return low > high or (low == high and not high_incl)
        return low > high or (low == high and not (low_incl and high_incl))

    def conflict_lits(self) -> tuple[Lit, list[Lit]]:
        """(culprit, others) for an empty interval."""
        if self.low is not None and (self.floor is None or self.low.value >= self.floor):
            others = [self.low.lit]
        else:
            others = list(self.floor_lits)
        return self.high.lit, others

    def overlaps(self, start: float | None, end: float | None) -> bool:
        """Does [start, end) meet this interval?"""
        if end is not None and self.low is not None:
            if self.low.value >= end:
                return False
        if start is not None and self.high is not None:
            if self.high.value < start or (self.high.value == start and not self.high.inclusive):
                return False
        return True


# --------------------------------------------------------------------------- consistency
@dataclass
class SetState:
    anys: list = field(default_factory=list)      # (values, lit): at least one present
    alls: list = field(default_factory=list)      # (values, lit): all present
    nones: list = field(default_factory=list)     # (values, lit): none present
    notalls: list = field(default_factory=list)   # (values, lit): at least one absent
    empties: list = field(default_factory=list)   # lit
    nonempties: list = field(default_factory=list)

    def required(self) -> dict[str, Lit]:
        out: dict[str, Lit] = {}
        for values, lit in self.alls:
            for v in values:
                out.setdefault(v, lit)
        for values, lit in self.anys:
            if len(values) == 1:
                out.setdefault(values[0], lit)
        return out

    def excluded(self) -> dict[str, Lit]:
        out: dict[str, Lit] = {}
        for values, lit in self.nones:
            for v in values:
                out.setdefault(v, lit)
        return out

    def positive_lits(self) -> list[Lit]:
        return [lit for _v, lit in self.anys] + [lit for _v, lit in self.alls] + list(self.nonempties)


@dataclass
class ScalarState:
    ins: list = field(default_factory=list)       # (values, lit)
    notins: list = field(default_factory=list)
    present: list = field(default_factory=list)   # lit
    absent: list = field(default_factory=list)
    compares: list = field(default_factory=list)  # (Compare, positive, lit)


class Conjunction:
    """The facts one alternative of a rule asks for, checked for consistency."""

    def __init__(self, catalog=None, valid_from: dt.datetime | None = None, valid_to: dt.datetime | None = None,
                 window_pos: tuple[int, int] = (1, 1), end_pos: tuple[int, int] | None = None):
        self.catalog = catalog
        self.sets: dict[str, SetState] = {}
        self.scalars: dict[str, ScalarState] = {}
        self.ranges: dict[str, Interval] = {}
        self.known: list[Lit] = []
        self.anonymous: list[Lit] = []
        self.time = self.range("time")
        if valid_from is not None:
            self.time.add(">=", valid_from.timestamp(),
                          Lit(None, text_override=f"validFor starts {iso(valid_from)}", pos_override=window_pos))
        if valid_to is not None:
            self.time.add("<", valid_to.timestamp(),
                          Lit(None, text_override=f"validFor ends {iso(valid_to)}", pos_override=end_pos or window_pos))

    def range(self, key: str) -> Interval:
        if key not in self.ranges:
            self.ranges[key] = Interval(integer=key in ("cart_count", "owns_count", "order_count"))
        return self.ranges[key]

    def set_state(self, fact: str) -> SetState:
        return self.sets.setdefault(fact, SetState())

    # ---- adding literals
    def add(self, lit: Lit) -> Conflict | None:
        cond, pos = lit.cond, lit.positive
        if isinstance(cond, SetTest):
            state = self.set_state(cond.fact)
            mode = cond.mode if pos else {"any_of": "none_of", "none_of": "any_of", "all_of": "not_all",
                                          "empty": "not_empty", "not_empty": "empty"}[cond.mode]
            values = list(cond.values)
            if mode == "any_of":
                state.anys.append((values, lit))
            elif mode == "all_of":
                state.alls.append((values, lit))
            elif mode == "none_of":
                state.nones.append((values, lit))
            elif mode == "not_all":
                state.notalls.append((values, lit))
            elif mode == "empty":
                state.empties.append(lit)
            else:
                state.nonempties.append(lit)
        elif isinstance(cond, ScalarTest):
            state = self.scalars.setdefault(cond.fact if cond.is_char else "segment", ScalarState())
            mode = cond.mode if pos else {"any_of": "none_of", "none_of": "any_of", "exists": "missing",
                                          "missing": "exists"}[cond.mode]
            if mode == "any_of":
                state.ins.append((set(cond.values), lit))
            elif mode == "none_of":
                state.notins.append((set(cond.values), lit))
            elif mode == "exists":
                state.present.append(lit)
            else:
                state.absent.append(lit)
        elif isinstance(cond, Compare):
            if cond.is_char:
                self.scalars.setdefault(cond.fact, ScalarState()).compares.append((cond, pos, lit))
            else:
                self.range(cond.fact).add(cond.op if pos else NEGATED_OP[cond.op], cond.value, lit)
        elif isinstance(cond, Known):
            (self.known if cond.known == pos else self.anonymous).append(lit)
        return self.check(lit)

    # ---- checks
    def check(self, culprit: Lit) -> Conflict | None:
        if self.known and self.anonymous:
            return self._blame(culprit, self.known + self.anonymous, "")
        for fact, state in self.sets.items():
            found = self._check_set(fact, state, culprit)
            if found:
                return found
        found = self._check_joins(culprit)
        if found:
            return found
        for key, interval in self.ranges.items():
            if interval.empty():
                high_lit, others = interval.conflict_lits()
                return self._blame(culprit, others + [high_lit], "")
        for name, state in self.scalars.items():
            found = self._check_scalar(name, state, culprit)
            if found:
                return found
        return None

    @staticmethod
    def _blame(culprit: Lit, involved: list[Lit], why: str) -> Conflict:
        others = [lit for lit in involved if lit is not culprit]
        if culprit not in involved:
            # the newest literal completed the contradiction only indirectly; name the latest one involved
            culprit = involved[-1]
            others = [lit for lit in involved[:-1]]
        return Conflict(culprit, others, why)

    def _check_set(self, fact: str, state: SetState, culprit: Lit) -> Conflict | None:
        excluded = state.excluded()
        for values, lit in state.alls:
            for v in values:
                if v in excluded:
                    return self._blame(culprit, [excluded[v], lit], f"{fact} cannot both hold and lack {v}")
        for values, lit in state.anys:
            if all(v in excluded for v in values):
                blockers = list(dict.fromkeys(excluded[v] for v in values))
                return self._blame(culprit, blockers + [lit], "every offering it accepts is excluded")
        required = {v for values, _l in state.alls for v in values}
        for values, lit in state.notalls:
            if all(v in required for v in values):
                alls = [l for vals, l in state.alls if set(vals) & set(values)]
                return self._blame(culprit, alls + [lit], "")
        if state.empties:
            positives = state.positive_lits()
            if positives:
                return self._blame(culprit, [state.empties[0], positives[0]], f"an empty {fact} holds nothing")
        if fact in ("owns", "owns_category") and self.anonymous:
            positives = state.positive_lits()
            if positives:
                return self._blame(culprit, [self.anonymous[0], positives[0]], "an anonymous shopper owns nothing")
        return None

    def _check_joins(self, culprit: Lit) -> Conflict | None:
        catalog = self.catalog
        for base, cat, count in (("cart", "cart_category", "cart_count"), ("owns", "owns_category", "owns_count")):
            items = self.sets.get(base, SetState())
            cats = self.sets.get(cat, SetState())
            # categories excluded by `*_category: {none_of}` exclude every offering of theirs
            if catalog is not None and cats.nones:
                excluded_cats = cats.excluded()
                for v, lit in items.required().items():
                    offering = catalog.get(v)
                    hit = [t for t in (offering.categories if offering else ()) if t in excluded_cats]
                    if hit:
                        return self._blame(culprit, [excluded_cats[hit[0]], lit],
                                           f"{v} is in category {hit[0]}")
            # `*_category` tests need offerings in the set
            cat_positive = cats.positive_lits()
            if cat_positive and items.empties:
                return self._blame(culprit, [items.empties[0], cat_positive[0]], f"an empty {base} has no categories")
            if catalog is not None and items.nones:
                excluded = items.excluded()
                # any_of: one offering of one of the categories; all_of: one offering per category
                needs = [(values, lit) for values, lit in cats.anys] + \
                        [([v], lit) for values, lit in cats.alls for v in values]
                for group, lit in needs:
                    candidates = [o for o in catalog.offerings.values()
                                  if set(o.categories) & set(group) and o.id not in excluded]
                    if not candidates:
                        blockers = list(dict.fromkeys(excluded.values()))
                        return self._blame(culprit, blockers + [lit],
                                           f"every offering of category {', '.join(group)} is excluded")
            # counts: the size of the set
            interval = self.ranges.get(count)
            if interval is not None:
                floor_lits = []
                floor = len({v for values, _l in items.alls for v in values})
                if floor:
                    floor_lits = [l for _v, l in items.alls]
                if not floor and (items.anys or items.nonempties or cat_positive):
                    floor = 1
                    floor_lits = (items.positive_lits() or cat_positive)[:1]
                interval.floor, interval.floor_lits = float(floor), floor_lits
                empty_lits = list(items.empties)
                if base == "owns" and self.anonymous:
                    empty_lits.append(self.anonymous[0])
                if empty_lits and interval.low is not None:
                    low, _incl = interval.lowest()
                    if low is not None and low > 0:
                        why = f"an empty {base} counts 0" if items.empties else "an anonymous shopper owns nothing"
                        return self._blame(culprit, [empty_lits[0], interval.low.lit], why)
        return None

    def _check_scalar(self, name: str, state: ScalarState, culprit: Lit) -> Conflict | None:
        label = "segment" if name == "segment" and not any(
            isinstance(l.cond, ScalarTest) and l.cond.is_char for _v, l in state.ins) else name
        positive_compares = [(c, l) for c, p, l in state.compares if p]
        requires = [l for _v, l in state.ins] + list(state.present) + [l for _c, l in positive_compares]
        if state.absent and requires:
            return self._blame(culprit, [state.absent[0], requires[0]], f"{label} cannot be both set and not set")
        if self.anonymous and requires:
            return self._blame(culprit, [self.anonymous[0], requires[0]],
                               "an anonymous shopper has no characteristics")
        allowed: set | None = None
        in_lits: list[Lit] = []
        for values, lit in state.ins:
            allowed = set(values) if allowed is None else allowed & values
            in_lits.append(lit)
            if not allowed:
                return self._blame(culprit, in_lits, f"{label} has one value")
        if allowed is not None:
            notin_lits = []
            for values, lit in state.notins:
                if allowed & values:
                    notin_lits.append(lit)
                allowed = allowed - values
                if not allowed:
                    return self._blame(culprit, in_lits + notin_lits, "")
        if allowed is not None and state.compares:
            # a finite set of values: try each against every comparison
            fits = [v for v in allowed if all(_compare_holds(c, p, v) for c, p, _l in state.compares)]
            if not fits:
                return self._blame(culprit, in_lits + [l for _c, _p, l in state.compares], "")
            return None
        kinds = {c.kind for c, _l in positive_compares}
        if len(kinds) > 1:
            return self._blame(culprit, [l for _c, l in positive_compares],
                               f"{label} cannot be both a number and a date")
        if kinds:
            kind = kinds.pop()
            interval = Interval()
            for cond, pos, lit in state.compares:
                if cond.kind == kind:
                    interval.add(cond.op if pos else NEGATED_OP[cond.op], cond.value, lit)
            if interval.empty():
                high_lit, others = interval.conflict_lits()
                return self._blame(culprit, others + [high_lit], "")
        return None


def _compare_holds(cond: Compare, positive: bool, value: str) -> bool:
    converted = number_value(value) if cond.kind == "number" else date_value(value)
    holds = converted is not None and {">=": converted >= cond.value, ">": converted > cond.value,
                                       "<=": converted <= cond.value, "<": converted < cond.value}[cond.op]
    return holds if positive else not holds


# --------------------------------------------------------------------------- rule-level questions
@dataclass
class Alternative:
    literals: list[Lit]
    conflict: Conflict | None
    state: Conjunction


@dataclass
class RuleAnalysis:
    alternatives: list[Alternative]

    @property
    def satisfiable(self) -> list[Alternative]:
        return [a for a in self.alternatives if a.conflict is None]

    @property
    def can_fire(self) -> bool:
        return bool(self.satisfiable)

    def always_required(self, fact: str) -> dict[str, Lit]:
        """Offerings every satisfiable alternative requires in `fact` (cart or owns)."""
        alts = self.satisfiable
        if not alts:
            return {}
        common = None
        first: dict[str, Lit] = {}
        for alt in alts:
            required = alt.state.sets.get(fact, SetState()).required()
            first = first or required
            common = set(required) if common is None else common & set(required)
        return {v: first[v] for v in sorted(common or ())}

    def time_overlaps(self, start: dt.datetime | None, end: dt.datetime | None) -> bool:
        """Can the rule fire at some time in [start, end)?"""
        s = start.timestamp() if start else None
        e = end.timestamp() if end else None
        return any(alt.state.time.overlaps(s, e) for alt in self.satisfiable)

    def last_instant(self) -> tuple[float | None, Lit | None]:
        """Latest time at which some alternative can hold (None: no end) and the test that ends it."""
        latest, lit = -math.inf, None
        for alt in self.satisfiable:
            high = alt.state.time.high
            if high is None:
                return None, None
            if high.value > latest:
                latest, lit = high.value, high.lit
        return (latest, lit) if lit is not None else (None, None)


def analyse(cond: Cond, catalog=None, valid_from=None, valid_to=None, window_pos=(1, 1),
            end_pos=None) -> RuleAnalysis:
    """Every alternative of `cond` (with the rule's validFor: `window_pos` is
    where it starts, `end_pos` where it ends) and whether it can hold."""
    alternatives = []
    for literals in dnf(cond):
        state = Conjunction(catalog, valid_from, valid_to, window_pos, end_pos)
        conflict = None
        if state.time.empty():
            high_lit, others = state.time.conflict_lits()
            conflict = Conflict(high_lit, others, "")
        for lit in literals:
            if conflict is not None:
                break
            conflict = state.add(lit)
        alternatives.append(Alternative(literals, conflict, state))
    return RuleAnalysis(alternatives)


def positive_anys(cond: Cond):
    """`any` nodes that are not under a `not` (their children are real alternatives)."""
    if isinstance(cond, Any):
        yield cond
        for child in cond.children:
            yield from positive_anys(child)
    elif isinstance(cond, All):
        for child in cond.children:
            yield from positive_anys(child)


def with_choice(cond: Cond, target: Any, chosen: Cond) -> Cond:
    """`cond` with the `any` node `target` replaced by one of its children."""
    if cond is target:
        return chosen
    if isinstance(cond, All):
        return All([with_choice(c, target, chosen) for c in cond.children], pos=cond.pos)
    if isinstance(cond, Any):
        return Any([with_choice(c, target, chosen) for c in cond.children], pos=cond.pos)
    return cond
