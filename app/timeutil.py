"""The service's one date-time parser, for request bodies, query filters, rule,
case and catalog files and the CLI, so that no two parts of the service
disagree about what a date-time is.

Accepted: ISO 8601 / RFC 3339 calendar date-times as TMF clients really send
them, parsed by the standard library's `datetime.fromisoformat` (Python 3.12,
the only version `pyproject.toml` admits, so the behaviour is the same
everywhere the service runs):
- `2026-03-01T01:00:00+01:00`, `...Z`, `+0100`, `+01` offsets, any number of
  fraction digits (more than 6 are truncated to microseconds), `,` or `.`;
- the TMF680 user guide's `2019-07-03 T04:00:00.0Z` (blanks around the `T`)
  and a blank instead of the `T`;
- a date alone (`2026-03-01`, midnight UTC) and a naive time (taken as UTC).
Refused (None): anything not starting with `YYYY-MM-DD`, e.g. ISO week dates
(`2026-W10-1`) and ordinal dates, which no TMF document uses.

A value that is a date-time but whose instant in UTC is outside Python's
range (years 1 to 9999, e.g. `0001-01-01T00:00:00+01:00`) raises
:class:`DateTimeOutOfRange` (a ValueError), so callers can name the
attribute in a 400 instead of failing with an OverflowError.
"""
from __future__ import annotations

import datetime as dt
import functools
import re

UTC = dt.timezone.utc

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOOKS_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")

#: What every out-of-range message says (Python's datetime range, in UTC).
SUPPORTED_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


class DateTimeOutOfRange(ValueError):
    """A well-formed date-time whose UTC instant is before year 1 or after 9999."""

    def __init__(self, text: str):
        super().__init__(f"{text!r} is outside the supported range of date-times "
                         f"({SUPPORTED_RANGE})")
        self.text = text


def to_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (naive ones are taken as UTC); raises
    DateTimeOutOfRange when the conversion leaves the representable range."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise DateTimeOutOfRange(moment.isoformat()) from None


def parse_datetime(value) -> dt.datetime | None:
    """An aware UTC datetime from a string (see the module docstring), a
    datetime or a date (YAML gives those); None when the value is not a
    date-time. Raises DateTimeOutOfRange (a ValueError) when it is one that
    cannot be represented in UTC."""
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _LOOKS_DATED.match(text):
        return None
    text = re.sub(r"\s*T\s*", "T", text, count=1)
    if _DATE_ONLY.match(text):
        text += "T00:00:00"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        return to_utc(parsed)
    except DateTimeOutOfRange:
        raise DateTimeOutOfRange(value) from None


def names_zone(value) -> bool | None:
    """Whether a date-time value says which zone it is in: True for a `Z` or
    an offset (`+02:00`, `-0500`), False for a date-time without one (a naive
    datetime, a date alone, or such a text), which parse_datetime reads as
    UTC; None when the value is no date-time. Lint uses it to say so at the
    value's line (app/rules/authoring/zones.py)."""
    if isinstance(value, dt.datetime):
        return value.tzinfo is not None
    if isinstance(value, dt.date):
        return False
    if not isinstance(value, str):
        return None
    try:
        if parse_datetime(value) is None:
            return None
    except DateTimeOutOfRange:
        return None
    text = re.sub(r"\s*T\s*", "T", value.strip(), count=1)
    if _DATE_ONLY.match(text):
        return False
    if text.endswith(("Z", "z")):
        return True
    try:
        return dt.datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return None


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def isoformat(moment: dt.datetime) -> str:
    """A time the service stamps (resources, events, decisions, sessions,
    the rule history), as RFC 3339 UTC with `Z` and always milliseconds:
    `2026-03-01T09:30:00.000Z`. Milliseconds: the precision of the TMF
    specs' examples and of JavaScript's Date.toISOString, finer than any
    client acts on; fixed width, so stored stamps sort as text in time order.
    Truncated, not rounded (a stamp never lies in the future)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def isoformat_as_given(moment: dt.datetime) -> str:
    """A time someone wrote (a rule's or offering's validity, a fact's value),
    as RFC 3339 UTC with `Z` at the precision it has: seconds, or
    microseconds when it has a fraction (`2026-03-01T09:30:00Z`). Not
    isoformat's milliseconds: what is shown to an author, compared in a rule
    or hashed into a rule set's fingerprint must not change with the
    service's stamping precision."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=256)
def parse_request_datetime(text: str) -> dt.datetime | None:
    """parse_datetime of a request's date-time text, remembered for the last
    256 texts: a request's date-times are read by its schema check
    (app/schemas/fast.py) and again by what uses the value (the evaluation
    time, app/recommend/facts.py), and the second read is then a look-up.
    Request texts only: rule and catalog files keep the plain parser, so
    nothing of a parsed file outlives it (rules/model/common.freeze). The
    results are immutable; an out-of-range text raises each time."""
    return parse_datetime(text)
