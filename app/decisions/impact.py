"""The recorded answers a Studio impact comparison (POST /admin/rules/impact)
replays: the body's `recorded` (the last N answers), `recordedSince`,
`recordedUntil` (RFC 3339) and `recordedChannel`; the report then carries
`recordedTraffic` (app/decisions/replay.py, weighted_summary) and the
"of N answers, M would change" line."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TMFError
from .conversion import parse_range
from .replay import recorded_situations, summary_line, weighted_summary

#: most recorded answers one comparison reads (each distinct situation is evaluated twice)
MAX_RECORDED = 100_000

#: the attributes of an impact request that ask for recorded answers
#: (their types and ranges: app/api/rules_admin_schemas.py, ImpactBody)
RECORDED_ATTRIBUTES = ("recorded", "recordedSince", "recordedUntil", "recordedChannel")


@dataclass
class RecordedTraffic:
    situations: list = field(default_factory=list)
    weights: dict | None = None
    skipped: int = 0

    def add_to(self, report: dict) -> None:
        """recordedTraffic: answers, changed, situations, offerings, skipped, line."""
        if self.weights is None:
            return
        summary = weighted_summary(report["contexts"], self.weights)
        summary["skipped"] = self.skipped
        summary["line"] = summary_line(summary)
        report["recordedTraffic"] = summary


def recorded_traffic(services, body: dict) -> RecordedTraffic:
    """The situations the body asks for (`body`: the impact request as parsed,
    RECORDED_ATTRIBUTES of their types: `recorded` a whole number 0 to
    MAX_RECORDED, the others text, each None when not given); 400
    INVALID_BODY for times that are no date-time, or no decision log."""
    wanted = {name: body.get(name) for name in RECORDED_ATTRIBUTES}
    if all(value in (None, "", 0) for value in wanted.values()):
        return RecordedTraffic()
    last = wanted["recorded"]
    try:
        since, until = parse_range(wanted["recordedSince"] or None, wanted["recordedUntil"] or None)
    except TMFError as exc:
        raise TMFError(400, exc.message.replace("since=", "recordedSince=")
                       .replace("until=", "recordedUntil="), code="INVALID_BODY") from None
    if services.decisions is None:
        raise TMFError(400, "The decision log is off (RECO_DECISION_LOG): no recorded answers",
                       code="INVALID_BODY")
    records = services.decisions.sink.records(since, until, wanted["recordedChannel"] or None,
                                              last or MAX_RECORDED)
    situations, weights, skipped = recorded_situations(records, services.recommender.parties)
    return RecordedTraffic(situations, weights, skipped)
