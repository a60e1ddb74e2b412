"""The conversion report with the funnel of every recorded decision: what
GET /tmf-api/sales/v4/conversionReport, `flask sales conversion` and the
Studio's Conversion page show."""
from __future__ import annotations

import datetime as dt

from ..errors import TMFError
from ..sales.resource import current_report
from .funnel import funnel_counts, funnel_report
from .ids import decision_time
from .record import parse_time


def parse_range(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """RFC 3339 date-times (`2026-12-01T00:00:00Z`; a date alone is midnight
    UTC) -> aware datetimes; a bad value is a 400 INVALID_QUERY naming it,
    and so is a `since` after `until` (since == until is an empty range).
    Every time range of the decision log is read here: the conversion report
    (API, `flask sales conversion`, Studio), the recorded traffic of
    `flask rules diff`, the Studio's impact view and `flask decisions
    export`."""
    bounds = []
    for name, text in (("since", since), ("until", until)):
        if text is None:
            bounds.append(None)
            continue
        try:
            value = parse_time(text if "T" in text else f"{text}T00:00:00Z")
        except ValueError:
            raise TMFError(400, f"{name}={text!r} is not a date-time such as "
                                "2026-12-01T00:00:00Z", code="INVALID_QUERY") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        bounds.append(value)
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        # an empty answer would read as "no traffic": a swapped pair is a mistake
        raise TMFError(400, f"since={since!r} is after until={until!r}: the range starts at "
                            "since and ends before until", code="INVALID_QUERY")
    return bounds[0], bounds[1]


def conversion_report(services, rule_set_id: str | None = None,
                      rule_set_version: str | None = None, since: dt.datetime | None = None,
                      until: dt.datetime | None = None, channel: str | None = None) -> dict:
    """The stored-query report (app/sales/report.py: `ruleSets`, the items
    of stored queries and the leads made from them) and, with the decision
    log on, `funnel` over every recorded decision in [since, until)."""
    # a lead on an instant answer (a UUIDv7 id, app/decisions/ids.py; a stored
    # query's is a UUIDv4) counts in the funnel, not in the stored-query section
    report = current_report(services.store, rule_set_id, rule_set_version,
                            is_instant_answer=lambda answer_id: decision_time(answer_id) is not None)
    decisions = services.decisions
    if decisions is not None:
        report["funnel"] = funnel_report(
            funnel_counts(decisions.sink, services.store, since, until, rule_set_id,
                          rule_set_version, channel), since, until)
    return report
