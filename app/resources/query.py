"""TMF REST guideline query semantics: attribute selection (`fields`),
filtering on first-level and dotted attributes with `.gt/.gte/.lt/.lte`,
comma for OR, `sort`, and `offset`/`limit` paging."""
from __future__ import annotations

from dataclasses import dataclass, field


from ..errors import TMFError
from ..timeutil import parse_datetime

OPERATORS = ("gt", "gte", "lt", "lte", "eq", "ne")
RESERVED = ("fields", "offset", "limit", "sort")
ALWAYS_KEPT = ("id", "href", "@type")


@dataclass
class Condition:
    path: list[str]
    operator: str
    values: list[str]

    def matches(self, resource: dict) -> bool:
        found = list(_values_at(resource, self.path))
        if self.operator == "ne":
            return not any(_compare(v, "eq", want) for v in found for want in self.values)
        return any(_compare(v, self.operator, want) for v in found for want in self.values)


@dataclass
class ListQuery:
    fields: list[str] | None = None
    conditions: list[Condition] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    offset: int = 0
    limit: int | None = None

    def matches(self, resource: dict) -> bool:
        return all(condition.matches(resource) for condition in self.conditions)


def parse_list_query(args, known_attributes, max_limit: int) -> ListQuery:
    """`args` is a MultiDict of the query string; `known_attributes` the
    first-level attribute names of the resource, so a misspelt filter is a 400
    instead of a silent empty list."""
    query = ListQuery(fields=parse_fields(args, known_attributes))
    query.offset = _int_arg(args, "offset", 0, minimum=0)
    query.limit = _int_arg(args, "limit", None, minimum=0)
    if query.limit is not None and query.limit > max_limit:
        raise TMFError(400, f"limit must be at most {max_limit}")
    for spec in _split(args.get("sort", "")):
        descending = spec.startswith("-")
        name = spec.lstrip("+-")
        _check_attribute(name.split(".")[0], known_attributes, "sort")
        query.sort.append((name, descending))
    for key in args.keys():
        if key in RESERVED:
            continue
        path = key.split(".")
        operator = "eq"
        if len(path) > 1 and path[-1] in OPERATORS:
            operator = path.pop()
        if not path or not all(path):
            raise TMFError(400, f"Malformed filter {key!r}")
        _check_attribute(path[0], known_attributes, "filter")
        values = [value for raw in args.getlist(key) for value in raw.split(",")]
        query.conditions.append(Condition(path, operator, values))
    return query


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


def page_of(matching: list[dict], query: ListQuery) -> tuple[list[dict], int]:
    """The sorted, selected page of already matching resources, and their
    total number."""
    for name, descending in reversed(query.sort):
        path = name.split(".")
        present = [r for r in matching if _first(r, path) is not None]
        absent = [r for r in matching if _first(r, path) is None]
        present.sort(key=lambda r: _sort_key(_first(r, path)), reverse=descending)
        matching = present + absent
    total = len(matching)
    end = None if query.limit is None else query.offset + query.limit
    page = matching[query.offset:end]
    return [select_fields(resource, query.fields) for resource in page], total


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_attribute(name: str, known_attributes, what: str) -> None:
    if name not in known_attributes:
        raise TMFError(400, f"Unknown attribute {name!r} in {what}",
                       details={"knownAttributes": sorted(known_attributes)})


def _int_arg(args, name, default, minimum):
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TMFError(400, f"{name} must be a whole number (got {raw!r})") from None
    if value < minimum:
        raise TMFError(400, f"{name} must be at least {minimum}")
    return value


def _values_at(node, path):
    """Every value reachable by a dotted path, descending into arrays, so that
    `relatedParty.id=34` matches when any related party has id 34."""
    if isinstance(node, list):
        for item in node:
            yield from _values_at(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values_at(node[path[0]], path[1:])


def _first(resource, path):
    return next(iter(_values_at(resource, path)), None)


def _sort_key(value):
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is not None:
        return (1, moment.timestamp(), "")
    if isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (2, 0.0, str(value))


def _as_number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _compare(actual, operator: str, wanted: str) -> bool:
    if isinstance(actual, (dict, list)) or actual is None:
        return False
    if isinstance(actual, bool):
        left, right = actual, wanted.lower() == "true" if wanted.lower() in ("true", "false") else None
        if right is None:
            return False
    elif isinstance(actual, (int, float)):
        left, right = actual, _as_number(wanted)
        if right is None:
            return False
    else:
        left_time, right_time = parse_datetime(actual), parse_datetime(wanted)
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



