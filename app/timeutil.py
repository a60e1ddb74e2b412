"""Date-time parsing that accepts what TMF clients really send (the TMF680
user guide itself writes "2019-07-03 T04:00:00.0Z") without accepting junk."""
from __future__ import annotations

import re
from datetime import datetime, timezone

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOOKS_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")


def parse_datetime(value) -> datetime | None:
    """An aware UTC datetime, or None when the value is not an ISO 8601 date-time."""
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
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
