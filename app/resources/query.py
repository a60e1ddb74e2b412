"""TMF REST guideline query semantics (TMF630 part 6): attribute selection
(`fields`), filtering on first-level and dotted attributes with
`.gt/.gte/.lt/.lte`, comma for OR, `sort`, and `offset`/`limit` paging.

A list's query string becomes the store's :class:`app.store.Query` (data,
with values typed by the resource schema), which the backend runs: in
Python for TinyDB, as SQL for PostgreSQL. :class:`Condition` is the untyped
filter a hub's `query` applies to notifications (no schema types them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timezone

from marshmallow import fields as mfields

from ..errors import TMFError
from ..exactnumbers import comparable, filter_number
from ..schemas.spec import DateTimeString
from ..store.query import Filter, Query, SortKey, values_at
from ..timeutil import SUPPORTED_RANGE, DateTimeOutOfRange, parse_datetime

OPERATORS = ("gt", "gte", "lt", "lte", "eq", "ne")
#: Operator suffixes of other query dialects that clients send (TMF630 Part 1
#: v4.2.0 section 4.4 lists `regex`; REST and CAMARA clients write `neq`,
#: `in`, `like`...). Not supported: a 400 that names the supported ones,
#: rather than a filter on an attribute called `neq` that matches nothing.
FOREIGN_OPERATORS = ("neq", "not", "regex", "like", "ilike", "in", "nin", "notin", "contains",
                     "startswith", "endswith", "exists", "between", "match")
RESERVED = ("fields", "offset", "limit", "sort")
ALWAYS_KEPT = ("id", "href", "@type")


@dataclass
class Condition:
    path: list[str]
    operator: str
    values: list[str]

    def matches(self, resource: dict) -> bool:
        found = list(values_at(resource, self.path))
        if self.operator == "ne":
            return not any(_compare(v, "eq", want) for v in found for want in self.values)
        return any(_compare(v, self.operator, want) for v in found for want in self.values)


def parse_list_query(args, known_attributes, max_limit: int, schema=None) -> Query:
    """`args` is a MultiDict of the query string; `known_attributes` the
    first-level attribute names of the resource, so a misspelt filter is a 400
    instead of a silent empty list; `schema` the resource's marshmallow schema
    (an instance), whose field types type the filter values (TMF630 part 6:
    a value that is not of its attribute's type is a 400 naming both).

    Returns the store's :class:`app.store.Query`, run by the backend."""
    fields = parse_fields(args, known_attributes)
    offset = _int_arg(args, "offset", 0, minimum=0)
    limit = _int_arg(args, "limit", None, minimum=0)
    if limit is not None and limit > max_limit:
        raise TMFError(400, f"limit must be at most {max_limit}", code="INVALID_QUERY")
    sort = []
    for spec in _split(args.get("sort", "")):
        descending = spec.startswith("-")
        name = spec.lstrip("+-")
        _check_attribute(name.split(".")[0], known_attributes, "sort")
        path = tuple(step for step in name.split(".") if step)  # `name.` sorts by name
        _check_path(schema, path, "sort")
        sort.append(SortKey(path, descending, attribute_kind(schema, path)))
    filters = []
    for key in args.keys():
        if key in RESERVED:
            continue
        path = key.split(".")
        operator = "eq"
        if len(path) > 1 and path[-1] in OPERATORS:
            operator = path.pop()
        if not path or not all(path):
            raise TMFError(400, f"Malformed filter {key!r}", code="INVALID_FILTER")
        _check_attribute(path[0], known_attributes, "filter")
        _check_path(schema, path, "filter")
        kind = attribute_kind(schema, path)
        values = tuple(typed_value(".".join(path), kind, value)
                       for raw in args.getlist(key) for value in raw.split(","))
        filters.append(Filter(tuple(path), operator, values, kind))
    return Query(tuple(filters), tuple(sort), offset, limit,
                 None if fields is None else tuple(fields))


# -- attribute types ---------------------------------------------------------

def attribute_kind(schema, path) -> str:
    """The store Query kind of the attribute at a dotted path of a marshmallow
    schema instance: datetime, number, boolean, string, or any (the TMF `Any`
    type, objects, extension attributes the schema does not declare)."""
    if path and path[0] in ("id", "href", "@type"):
        return "string"
    node = schema
    field = None
    for step in path:
        while isinstance(node, mfields.List):
            node = node.inner
        if isinstance(node, mfields.Nested):
            node = node.schema
        fields = getattr(node, "fields", None)
        if not isinstance(fields, dict) or step not in fields:
            return "any"
        field = node = fields[step]
    while isinstance(field, mfields.List):
        field = field.inner
    if isinstance(field, DateTimeString):
        return "datetime"
    if isinstance(field, mfields.Boolean):
        return "boolean"
    if isinstance(field, mfields.Number):
        return "number"
    if isinstance(field, mfields.String):
        return "string"
    return "any"


def unknown_step(schema, path) -> tuple[int, bool] | None:
    """Where a dotted path leaves the resource's definition: None when every
    step is an attribute of the object it reaches (or the path enters a TMF
    `Any` value, an object of free keys, or an attribute the definition does
    not declare at the first level: a stored subclass's extension, checked
    against the stored names by the caller). Else ``(index, after_value)``:
    the index of the first unknown step and whether the step before it is a
    plain value (a string, number, boolean or date-time), after which a
    further step can only be meant as an operator (`status.neq`)."""
    if schema is None or not path:
        return None
    if path[0] in ("id", "href"):
        return (1, True) if len(path) > 1 else None
    node = schema
    for index, step in enumerate(path):
        while isinstance(node, mfields.List):
            node = node.inner
        if isinstance(node, mfields.Nested):
            node = node.schema
        fields = getattr(node, "fields", None)
        if isinstance(fields, dict):
            if step not in fields:
                return None if index == 0 else (index, False)
            node = fields[step]
        elif isinstance(node, (mfields.String, mfields.Number, mfields.Boolean)):
            return index, True
        else:                      # Raw (TMF Any), Dict: any key may follow
            return None
    return None


def _check_path(schema, path, what: str) -> None:
    """A 400 for a path the resource cannot have: a step after a plain value
    is an operator this service does not support (UNSUPPORTED_OPERATOR,
    naming the supported ones), any other unknown step an unknown attribute
    (UNKNOWN_ATTRIBUTE), as for a first-level name."""
    found = unknown_step(schema, path)
    if found is None:
        return
    index, after_value = found
    step, prefix = path[index], ".".join(path[:index])
    if what == "filter" and (after_value or step in FOREIGN_OPERATORS):
        raise TMFError(400, f"Unsupported filter operator {step!r} in {'.'.join(path)!r}; "
                            f"the supported operators are {', '.join(OPERATORS)} "
                            f"(e.g. {prefix}.ne=...)", code="UNSUPPORTED_OPERATOR",
                       details={"supportedOperators": list(OPERATORS)})
    raise TMFError(400, f"Unknown attribute {step!r} of {prefix!r} in {what}",
                   code="UNKNOWN_ATTRIBUTE", details={"attribute": ".".join(path)})


# `+01:00` sent unencoded in a query string arrives as ` 01:00`.
_SPACE_FOR_PLUS = re.compile(r"(\d) (\d{2}(?::?\d{2})?)$")


def typed_value(attribute: str, kind: str, text: str):
    """A filter value as its attribute's type, or a 400 that names both."""
    if kind == "datetime":
        candidate = _SPACE_FOR_PLUS.sub(r"\1+\2", text.strip())
        try:
            moment = parse_datetime(candidate)
        except DateTimeOutOfRange:
            raise _bad_value(attribute, text, f"a date-time within {SUPPORTED_RANGE}") from None
        if moment is None:
            raise _bad_value(attribute, text, "an ISO 8601 date-time (e.g. 2026-03-01T00:00:00Z)")
        return moment
    if kind == "number":
        number = filter_number(text)   # exact: never through a double it is not
        if number is None:
            raise _bad_value(attribute, text, "a number")
        return number
    if kind == "boolean":
        if text not in ("true", "false"):
            raise _bad_value(attribute, text, "true or false")
        return text == "true"
    return text


def _bad_value(attribute: str, text: str, expected: str) -> TMFError:
    return TMFError(400, f"Filter value {text!r} for {attribute} is not {expected}",
                    code="INVALID_FILTER_VALUE", details={"attribute": attribute, "value": text})


def parse_fields(args, known_attributes) -> list[str] | None:
    if "fields" not in args:
        return None
    selected = _split(args.get("fields", ""))
    for name in selected:
        _check_attribute(name, known_attributes, "fields")
    return selected


def select_fields(resource: dict, selected: list[str] | None) -> dict:
    if selected is None:
        return resource
    keep = set(selected) | set(ALWAYS_KEPT)
    return {key: value for key, value in resource.items() if key in keep}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_attribute(name: str, known_attributes, what: str) -> None:
    if name not in known_attributes:
        raise TMFError(400, f"Unknown attribute {name!r} in {what}", code="UNKNOWN_ATTRIBUTE",
                       details={"knownAttributes": sorted(known_attributes)})


def _int_arg(args, name, default, minimum):
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TMFError(400, f"{name} must be a whole number (got {raw!r})",
                       code="INVALID_QUERY") from None
    if value < minimum:
        raise TMFError(400, f"{name} must be at least {minimum}", code="INVALID_QUERY")
    return value


def _as_number(text):
    """The exact number a text spells (app/exactnumbers.py), as compared."""
    if not isinstance(text, str):
        return None
    number = filter_number(text)
    return None if number is None else comparable(number)


def _compare(actual, operator: str, wanted: str) -> bool:
    if isinstance(actual, (dict, list)) or actual is None:
        return False
    if isinstance(actual, bool):
        left, right = actual, wanted.lower() == "true" if wanted.lower() in ("true", "false") else None
        if right is None:
            return False
    elif isinstance(actual, (int, float)):
        left, right = comparable(actual), _as_number(wanted)
        if right is None:
            return False
    else:
        left_time, right_time = _moment(actual), _moment(wanted)
        if operator != "eq" and left_time is not None and right_time is not None:
            left, right = left_time, right_time
        elif operator == "eq":
            if left_time is not None and right_time is not None and left_time == right_time:
                return True
            return str(actual) == wanted
        else:
            left_num, right_num = _as_number(actual), _as_number(wanted)
            if left_num is not None and right_num is not None:
                left, right = left_num, right_num
            else:
                left, right = str(actual), wanted
    if operator == "eq":
        return left == right
    try:
        return {"gt": left > right, "gte": left >= right,
                "lt": left < right, "lte": left <= right}[operator]
    except TypeError:
        return False





def _moment(text):
    try:
        moment = parse_datetime(text)
        return None if moment is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
