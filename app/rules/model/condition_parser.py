"""The `when` language read from YAML (conditions.py says what it means):
every key checked against the catalog and the fact names, every value typed,
every problem with its line, column and lint check name, so that a rule
file with errors is refused with all of them at once."""
from __future__ import annotations

import math

from .common import Checker, id_items, id_problem, parse_time, retyped, type_name
from .conditions import (COMBINATORS, COMPARATORS, FACT_KEYS, MAX_VALUES, NUMBER_FACTS, SCALAR_MODES, SET_FACTS,
                         SET_MODES, All, Any, Compare, Cond, Known, Not, ScalarTest, SetTest)
from .facts import normalise_value
from .yamlload import typed_text


class ConditionParser:
    """Parses a `when` mapping, reporting problems with positions."""

    def __init__(self, check: Checker, catalog, rule_id: str | None):
        self.check = check
        self.catalog = catalog
        self.rule = rule_id

    def error(self, where, message: str, code: str | None = None) -> None:
        self.check.add(where, message, self.rule, code=code)

    def parse(self, value, where) -> Cond | None:
        if not isinstance(value, dict):
            self.error(where, f"a condition must be a mapping like `cart: \"6547\"`, got {type_name(value)}")
            return None
        if not value:
            self.error(where, "empty condition", "empty-condition")
            return None
        parts: list[Cond] = []
        ok = True
        for key, sub in value.items():
            kpos = value.key_at(key)
            vpos = value.at(key)
            part = self.parse_key(key, sub, kpos, vpos, typed_text(value, key))
            if part is None:
                ok = False
            else:
                parts.append(part)
        if not ok:
            return None
        return parts[0] if len(parts) == 1 else All(parts, pos=getattr(value, "pos", where))

    def parse_key(self, key, sub, kpos, vpos, typed: str | None = None) -> Cond | None:
        if key in ("all", "any"):
            if not isinstance(sub, list) or not sub:
                self.error(vpos, f"`{key}` needs a non-empty list of conditions", "empty-condition")
                return None
            children = [self.parse(item, sub.at(i)) for i, item in enumerate(sub)]
            if any(c is None for c in children):
                return None
            return All(children, pos=kpos) if key == "all" else Any(children, pos=kpos)
        if key == "not":
            if isinstance(sub, list):
                self.error(vpos, "`not` takes one condition (a mapping); for several use "
                                 "`not: {any: [...]}` or `not: {all: [...]}`")
                return None
            child = self.parse(sub, vpos)
            return None if child is None else Not(child, pos=kpos)
        if key in SET_FACTS:
            return self.parse_set(key, sub, kpos, vpos)
        if key == "segment":
            return self.parse_scalar("segment", False, sub, kpos, vpos, typed)
        if key == "customer":
            if sub in ("known", "anonymous"):
                return Known(sub == "known", pos=kpos)
            self.error(vpos, f"customer must be `known` or `anonymous`, got {type_name(sub)}")
            return None
        if key == "characteristic":
            if not isinstance(sub, dict) or not sub:
                self.error(vpos, "characteristic needs a mapping of characteristic name to test, "
                                 "e.g. `characteristic: {contractMonths: {at_least: 12}}`")
                return None
            parts = []
            for name, test in sub.items():
                if not isinstance(name, str) or not name.strip():
                    self.error(sub.key_at(name), "a characteristic name must be text")
                    return None
                part = self.parse_scalar(name, True, test, sub.key_at(name), sub.at(name),
                                         typed_text(sub, name))
                if part is None:
                    return None
                parts.append(part)
            return parts[0] if len(parts) == 1 else All(parts, pos=kpos)
        if key == "time" or key in NUMBER_FACTS:
            kind = "date" if key == "time" else "number"
            if not isinstance(sub, dict) or not sub:
                example = "{from: 2026-11-15T00:00:00Z}" if kind == "date" else "{at_least: 2}"
                self.error(vpos, f"{key} needs comparisons, e.g. `{key}: {example}`")
                return None
            return self.parse_compare(key, False, sub, kind, kpos)
        allowed = ", ".join(sorted(FACT_KEYS | COMBINATORS))
        self.error(kpos, f"unknown condition {key!r} (known: {allowed})", "unknown-condition")
        return None

    # ---- set facts
    def values_list(self, raw, where, what: str) -> list[str] | None:
        out, bad = id_items(raw, where)
        if bad:
            item, ipos = bad[0]
            self.error(ipos, id_problem(what, item))
            return None
        return out if self.sized(out, where, what) else None

    def sized(self, values: list, where, what: str) -> bool:
        """A value list holds 1 to MAX_VALUES values."""
        if not values:
            self.error(where, f"{what}: the list is empty", "empty-condition")
            return False
        if len(values) > MAX_VALUES:
            self.error(where, f"{what}: at most {MAX_VALUES} values in one list")
            return False
        return True

    def check_known(self, fact: str, values) -> bool:
        ok = True
        for value, where in values:
            if fact in ("cart", "owns") and self.catalog.get(value) is None:
                self.error(where, f"unknown offering {value!r}", "unknown-offering")
                ok = False
            elif fact in ("cart_category", "owns_category") and value not in self.catalog.category_tokens:
                self.error(where, f"unknown category {value!r} (no catalog offering has it)", "unknown-category")
                ok = False
            elif fact == "channel" and self.catalog.channels and value not in self.catalog.channels:
                known = ", ".join(sorted(self.catalog.channels))
                self.error(where, f"unknown channel {value!r} (known: {known})", "unknown-channel")
                ok = False
        return ok

    def parse_set(self, fact, sub, kpos, vpos) -> Cond | None:
        if not isinstance(sub, dict):
            values = self.values_list(sub, vpos, fact)
            if values is None or not self.check_known(fact, values):
                return None
            return SetTest(fact, "any_of", tuple(_dedupe(v for v, _ in values)), pos=kpos)
        if not sub:
            self.error(vpos, f"{fact}: empty test", "empty-condition")
            return None
        parts = []
        for mode, raw in sub.items():
            mpos = sub.at(mode)
            if mode not in SET_MODES:
                self.error(sub.key_at(mode), f"{fact}: unknown test {mode!r} (use any_of, all_of, none_of or empty)",
                           "unknown-condition")
                return None
            if mode == "empty":
                if not isinstance(raw, bool):
                    self.error(mpos, f"{fact}: empty must be true or false")
                    return None
                parts.append(SetTest(fact, "empty" if raw else "not_empty", (), pos=sub.key_at(mode)))
                continue
            values = self.values_list(raw, mpos, f"{fact}.{mode}")
            if values is None or not self.check_known(fact, values):
                return None
            parts.append(SetTest(fact, mode, tuple(_dedupe(v for v, _ in values)), pos=sub.key_at(mode)))
        return parts[0] if len(parts) == 1 else All(parts, pos=kpos)

    # ---- scalar facts (segment, characteristics)
    def parse_scalar(self, name, is_char, sub, kpos, vpos, typed: str | None = None) -> Cond | None:
        label = f"characteristic {name}" if is_char else name
        if not isinstance(sub, dict):
            values = self.scalar_values(sub, vpos, label, typed)
            if values is None:
                return None
            return ScalarTest(name, is_char, "any_of", values, pos=kpos)
        if not sub:
            self.error(vpos, f"{label}: empty test", "empty-condition")
            return None
        parts = []
        compares = {k: v for k, v in sub.items() if k in COMPARATORS or k == "between"}
        for mode, raw in sub.items():
            if mode in compares:
                continue
            mpos = sub.at(mode)
            if mode not in SCALAR_MODES:
                allowed = ", ".join(sorted(SCALAR_MODES | set(COMPARATORS) | {"between"}))
                self.error(sub.key_at(mode), f"{label}: unknown test {mode!r} (use {allowed})", "unknown-condition")
                return None
            if mode == "exists":
                if not isinstance(raw, bool):
                    self.error(mpos, f"{label}: exists must be true or false")
                    return None
                parts.append(ScalarTest(name, is_char, "exists" if raw else "missing", (), pos=sub.key_at(mode)))
                continue
            values = self.scalar_values(raw, mpos, label, typed_text(sub, mode))
            if values is None:
                return None
            parts.append(ScalarTest(name, is_char, mode, values, pos=sub.key_at(mode)))
        if compares:
            if not is_char:
                self.error(kpos, f"{label} is text: compare it with any_of / none_of")
                return None
            cmp_map = type(sub)()
            cmp_map.update(compares)
            cmp_map.key_pos = {k: sub.key_at(k) for k in compares}
            cmp_map.value_pos = {k: sub.at(k) for k in compares}
            kind = self.compare_kind(compares, label, sub)
            if kind is None:
                return None
            cond = self.parse_compare(name, True, cmp_map, kind, kpos)
            if cond is None:
                return None
            parts.append(cond)
        return parts[0] if len(parts) == 1 else All(parts, pos=kpos)

    def scalar_values(self, raw, where, label, typed: str | None = None) -> tuple[str, ...] | None:
        """Segment and characteristic values, compared as text. A plain scalar
        that YAML 1.1 read as something whose text differs from what was typed
        (`NO` -> false, `0701` -> 449, `~` -> null) is an error with the fix:
        `true` or `12` compare as typed and pass; `NO` might be Norway or the
        boolean, so the author says which."""
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for index, item in enumerate(items):
            value = normalise_value(item)
            source = typed_text(raw, index) if isinstance(raw, list) else typed
            if source is not None and value != source:
                ipos = raw.at(index) if isinstance(raw, list) else where
                self.error(ipos, f"{label}: {retyped(source, item)}")
                return None
            if value is None or value == "":
                ipos = raw.at(index) if isinstance(raw, list) else where
                self.error(ipos, f"{label}: expected a text or number value, got {type_name(item)}")
                return None
            out.append(value)
        return tuple(_dedupe(out)) if self.sized(out, where, label) else None

    def compare_kind(self, compares: dict, label: str, sub) -> str | None:
        kinds = set()
        for key, raw in compares.items():
            for item in (raw if key == "between" and isinstance(raw, list) else [raw]):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    kinds.add("number")
                elif parse_time(item) is not None:
                    kinds.add("date")
                else:
                    self.error(sub.at(key), f"{label}: {key} needs a number or a date, got {type_name(item)}")
                    return None
        if len(kinds) > 1:
            self.error(sub.pos if hasattr(sub, "pos") else (1, 1), f"{label}: do not mix numbers and dates")
            return None
        return kinds.pop()

    # ---- comparisons
    def parse_compare(self, name, is_char, sub, kind, kpos) -> Cond | None:
        label = f"characteristic {name}" if is_char else name
        parts: list[Cond] = []
        for key, raw in sub.items():
            where = sub.at(key)
            if key == "between":
                if not isinstance(raw, list) or len(raw) != 2:
                    self.error(where, f"{label}: between needs [low, high]")
                    return None
                low = self.compare_value(raw[0], kind, raw.at(0), label)
                high = self.compare_value(raw[1], kind, raw.at(1), label)
                if low is None or high is None:
                    return None
                if high < low:
                    self.error(where, f"{label}: between [low, high] has high < low", "validity-window")
                    return None
                parts.append(Compare(name, is_char, ">=", low, kind, pos=sub.key_at(key)))
                parts.append(Compare(name, is_char, "<=", high, kind, pos=sub.key_at(key)))
                continue
            if key not in COMPARATORS:
                allowed = ", ".join(sorted(set(COMPARATORS) | {"between"}))
                self.error(sub.key_at(key), f"{label}: unknown comparison {key!r} (use {allowed})",
                           "unknown-condition")
                return None
            value = self.compare_value(raw, kind, where, label)
            if value is None:
                return None
            parts.append(Compare(name, is_char, COMPARATORS[key], value, kind, pos=sub.key_at(key)))
        return parts[0] if len(parts) == 1 else All(parts, pos=kpos)

    def compare_value(self, raw, kind, where, label) -> float | None:
        if kind == "number":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                self.error(where, f"{label}: expected a number, got {type_name(raw)}")
                return None
            try:
                number = float(raw)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):  # .inf, .nan, 1.0e+400, a 400-digit integer
                self.error(where, f"{label}: {str(raw)[:20]} is not a number the engine can compare "
                                  "(use one between -1.7e308 and 1.7e308)")
                return None
            return number
        when = parse_time(raw)
        if when is None or (isinstance(raw, (int, float)) and not isinstance(raw, bool)):
            self.error(where, f"{label}: expected a date-time like 2026-11-15T00:00:00Z, got {type_name(raw)}")
            return None
        return when.timestamp()


def _dedupe(values) -> list[str]:
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------- evaluate in Python
