"""List queries as data: what to match, how to order, which page.

A :class:`Query` is built once (from a TMF630 query string by
``app.resources.query``, or by a worker claiming due jobs) and executed by the
backend: :func:`run_python` evaluates it in Python over the documents (TinyDB),
``app.store.postgres_query`` translates it to SQL over ``jsonb`` (PostgreSQL).
Both must give the same answer; the contract tests run every case on both.

Semantics (TMF630 REST guidelines, part 6 "Filtering"):

* A :class:`Filter` on a dotted ``path`` sees every value the path reaches,
  descending into arrays on the way and at the end, so ``relatedParty.id=34``
  matches when *any* related party has id 34.
* ``values`` are alternatives (the guideline's comma = OR).  ``ne`` is the
  negation of ``eq``: no reached value equals any of the values.
* Values are typed by ``kind``, the attribute's type in the API schema:
  ``string`` (str), ``number`` (int/float/Decimal, compared exactly as
  PostgreSQL's numeric does: app/exactnumbers.py), ``boolean`` (bool), ``datetime``
  (an aware :class:`datetime.datetime`, compared as instants) or ``any``
  (the TMF ``Any`` type: a string value, or also the number / boolean that
  the text spells).  A stored value of another type never matches, and a
  stored value that cannot be read as its kind (a ``datetime`` attribute
  holding a date outside what can be converted to UTC) never matches and
  sorts as absent: a stored value never breaks a list.
* Sort keys use the same kinds; documents without a value of the kind sort
  after all others whatever the direction; ties keep insertion order.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import timezone

from ..exactnumbers import comparable, filter_number
from ..timeutil import parse_datetime

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")
KINDS = ("string", "number", "boolean", "datetime", "any")

__all__ = ["CountBy", "Filter", "Query", "SortKey", "count_python", "instant", "run_python",
           "values_at"]


@dataclass(frozen=True)
class Filter:
    """``path`` op any of ``values`` (see the module docstring)."""

    path: tuple[str, ...]
    op: str
    values: tuple
    kind: str = "string"

    def __post_init__(self):
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if not self.path or not all(isinstance(p, str) and p for p in self.path):
            raise ValueError(f"bad path {self.path!r}")


@dataclass(frozen=True)
class SortKey:
    path: tuple[str, ...]
    descending: bool = False
    kind: str = "string"


@dataclass(frozen=True)
class Query:
    """Filters (all must hold), sort keys, and the page: ``offset`` documents
    skipped, at most ``limit`` returned (None: all)."""

    filters: tuple[Filter, ...] = ()
    sort: tuple[SortKey, ...] = ()
    offset: int = 0
    limit: int | None = None
    fields: tuple[str, ...] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CountBy:
    """An aggregate as data: how many documents -- or, with ``each``, how
    many of the values ``each`` reaches in them (the items of an array) --
    hold each combination of the values at ``keys``, among the documents
    that match every filter. A key path that begins with ``each`` is read
    from the element, any other from its document. A key that reaches
    several values (an array) counts the element once per distinct value,
    one that reaches none counts it under None. The answer is a list of
    ``(values of the keys, count)`` in no particular order.

    Used for reports over whole collections (app/sales/report.py): Python
    over the documents on TinyDB (:func:`count_python`), one ``GROUP BY``
    statement on PostgreSQL (``app.store.postgres_query.count_sql``), so no
    document leaves the database."""

    keys: tuple[tuple[str, ...], ...]
    each: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()


# -- shared helpers ----------------------------------------------------------


def values_at(node, path):
    """Every value reachable by ``path``, descending into arrays."""
    if isinstance(node, list):
        for item in node:
            yield from values_at(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from values_at(node[path[0]], path[1:])


def instant(value) -> float | None:
    """Seconds since the epoch of a stored date-time string, or None when it
    is not one or cannot be converted (out-of-range after the offset)."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except (ValueError, OverflowError):
        return None
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).timestamp()


def _typed(value, kind: str):
    """The stored value as a comparable of ``kind``, or None."""
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "datetime":
        return instant(value)
    return value if isinstance(value, (str, int, float, bool)) else None


def _want(value, kind: str):
    if kind == "datetime":
        return value.astimezone(timezone.utc).timestamp()
    return value


def _compare(actual, op: str, wanted) -> bool:
    if type(actual) is bool or type(wanted) is bool:
        if type(actual) is not type(wanted):
            return False
    elif isinstance(actual, str) != isinstance(wanted, str):
        return False
    elif not isinstance(actual, str) and type(actual) is not type(wanted):
        # a double against an int or Decimal: as PostgreSQL's numeric compares
        # them (two doubles order as the decimals they write as already)
        actual, wanted = comparable(actual), comparable(wanted)
    if op == "eq":
        return actual == wanted
    if op == "gt":
        return actual > wanted
    if op == "gte":
        return actual >= wanted
    if op == "lt":
        return actual < wanted
    return actual <= wanted


def any_alternatives(text: str) -> tuple:
    """What a filter value on an ``Any`` attribute may equal: the text itself,
    and the number or boolean it spells."""
    out: list = [text]
    if text in ("true", "false"):
        out.append(text == "true")
    number = filter_number(text)     # exact: an ICCID stays its 20 digits
    if number is not None:
        out.append(number)
    return tuple(out)


def _filter_matches(flt: Filter, doc: dict) -> bool:
    op = "eq" if flt.op == "ne" else flt.op
    wanted = [_want(v, flt.kind) for v in flt.values]
    if flt.kind == "any":
        wanted = [alt for v in flt.values for alt in any_alternatives(str(v))]
    hit = False
    for raw in values_at(doc, flt.path):
        actual = _typed(raw, flt.kind)
        if actual is None:
            continue
        if any(_compare(actual, op, w) for w in wanted):
            hit = True
            break
    return not hit if flt.op == "ne" else hit


def _sort_value(doc: dict, key: SortKey):
    for raw in values_at(doc, key.path):
        value = _typed(raw, key.kind)
        if key.kind == "number" and value is not None:
            value = comparable(value)
        if key.kind == "any" and value is not None:
            value = value if isinstance(value, str) else _scalar_text(value)
        return value  # the first reached value only, as SQL's jsonb_path_query_first
    return None


def _scalar_text(value) -> str:
    """A number or boolean as PostgreSQL writes it from jsonb (``#>>``):
    a double by the decimal it is stored as, without an exponent and with
    no negative zero (1e+300 is 1000...0, 1e-05 is 0.00001, -0.0 is 0.0)."""
    if isinstance(value, float):
        exact = comparable(value)
        return format(exact.copy_abs() if exact.is_zero() else exact, "f")
    return json.dumps(value)


def run_python(docs, query: Query) -> tuple[list[dict], int]:
    """Evaluate ``query`` over ``docs`` (in insertion order): the page and the
    total number of matching documents.  Documents are returned as given
    (callers copy)."""
    matching = [d for d in docs if all(_filter_matches(f, d) for f in query.filters)]
    for key in reversed(query.sort):
        present, absent = [], []
        for doc in matching:
            value = _sort_value(doc, key)
            (absent if value is None else present).append((value, doc))
        present.sort(key=lambda pair: pair[0], reverse=key.descending)
        matching = [doc for _, doc in present] + [doc for _, doc in absent]
    total = len(matching)
    end = None if query.limit is None else query.offset + query.limit
    return matching[query.offset:end], total


def _distinct(values) -> list:
    """The distinct JSON values, or [None] when there are none."""
    seen: dict[str, object] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values()) or [None]


def count_python(docs, count: CountBy) -> list[tuple[tuple, int]]:
    """Evaluate ``count`` over ``docs`` (see :class:`CountBy`)."""
    each = count.each
    tallies: dict[str, int] = {}
    for doc in docs:
        if not all(_filter_matches(f, doc) for f in count.filters):
            continue
        for element in (values_at(doc, each) if each else (doc,)):
            columns = [_distinct(values_at(element, key[len(each):]) if each and key[:len(each)] == each
                                 else values_at(doc, key))
                       for key in count.keys]
            for combination in itertools.product(*columns):
                text = json.dumps(combination)
                tallies[text] = tallies.get(text, 0) + 1
    return [(tuple(json.loads(text)), n) for text, n in tallies.items()]
