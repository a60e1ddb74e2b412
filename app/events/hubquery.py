"""A hub's `query`: the TMF REST guideline filter (TMF630 part 1, "Filtering")
applied to the notification, e.g.
`eventType=CustomerCreateEvent&event.customer.status=active`.

Checked completely when the hub is registered, so a query that cannot be
evaluated is the client's 400 then, not a failure of every later fan-out; and
evaluated with `wants()`, which never raises, so one stored query (from an
older version, say) costs at most its own hub's notifications."""
from __future__ import annotations

import functools
import logging
from urllib.parse import parse_qsl

from ..resources.query import FOREIGN_OPERATORS, OPERATORS, Condition
from ..timeutil import parse_datetime

log = logging.getLogger(__name__)

#: first-level attributes of a notification (TMF630 event structure); a filter
#: on anything else could never match, so it is refused at registration.
NOTIFICATION_ATTRIBUTES = ("eventId", "eventTime", "eventType", "event")
MAX_QUERY_CHARS = 2048
MAX_CONDITIONS = 20

SAMPLE_EVENT = {"eventId": "sample", "eventTime": "2024-01-01T00:00:00Z",
                "eventType": "SampleEvent", "event": {"sample": {"id": "1", "n": 1}}}


class InvalidHubQuery(ValueError):
    """The reason a client can act on, worded to follow "query is not a
    valid filter: " (register_hub's message)."""


def parse_hub_query(query: str | None) -> list[Condition]:
    """Conditions of `query` (empty: every notification). Raises
    InvalidHubQuery for anything the evaluation could trip on."""
    if query is None or query == "":
        return []
    if not isinstance(query, str):
        raise InvalidHubQuery("it must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidHubQuery(f"it is longer than {MAX_QUERY_CHARS} characters")
    try:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InvalidHubQuery(str(exc)) from None
    if len(pairs) > MAX_CONDITIONS:
        raise InvalidHubQuery(f"it has more than {MAX_CONDITIONS} conditions")
    conditions = []
    for key, value in pairs:
        path = key.split(".")
        operator = "eq"
        if len(path) > 1 and path[-1] in OPERATORS:
            operator = path.pop()
        if not all(path):
            raise InvalidHubQuery(f"malformed attribute path {key!r}")
        if len(path) > 1 and path[-1] in FOREIGN_OPERATORS:
            raise InvalidHubQuery(f"unsupported operator {path[-1]!r} in {key!r}; the "
                                  f"supported operators are {', '.join(OPERATORS)}")
        if path[0] not in NOTIFICATION_ATTRIBUTES:
            raise InvalidHubQuery(
                f"{path[0]!r} is not an attribute of a notification; "
                f"filter on {', '.join(NOTIFICATION_ATTRIBUTES)}")
        for item in value.split(","):
            try:
                parse_datetime(item)
            except (OverflowError, ValueError):
                raise InvalidHubQuery(
                    f"{key}={item!r}: the date-time is out of range once converted to UTC"
                ) from None
        conditions.append(Condition(path, operator, value.split(",")))
    for condition in conditions:   # whatever else could raise shows up here, once
        try:
            condition.matches(SAMPLE_EVENT)
        except Exception as exc:  # noqa: BLE001 - any failure is the query's fault
            raise InvalidHubQuery(f"it cannot be evaluated ({type(exc).__name__})") from None
    return conditions


@functools.lru_cache(maxsize=4096)
def _conditions(query: str | None) -> tuple:
    # parsed once per distinct query: the dispatcher asks for every hub and
    # every notification (a failure is not cached, and is logged each time)
    return tuple(parse_hub_query(query))


def wants(hub: dict, notification: dict) -> bool:
    """Whether the hub subscribed to this notification; False (and a log
    line) when its stored query cannot be evaluated: never raises."""
    try:
        return all(c.matches(notification) for c in _conditions(hub.get("query")))
    except Exception:  # noqa: BLE001 - one bad hub must not stop the others
        log.warning("hub %s: query %r cannot be evaluated; notification skipped",
                    hub.get("id"), hub.get("query"))
        return False
