"""The funnel of every recorded decision: decisions -> items -> shown ->
clicked -> lead -> accepted, per rule set version, and per rule, offering,
channel and customer segment within each version, over a time range.

Counts, per group:
    decisions  answers with at least one item in the group
    items      recommended items
    shown, clicked   items with such a reaction
    leads      items that became a RecommendationSalesLead
    accepted   items with an `accepted` reaction or whose lead is accepted

Sources: the decision log (instant and asynchronous answers), the
recommendationReaction and salesLead collections, joined on (answer id,
item id). On PostgreSQL one query over the hourly rollup
`decision_funnel_hourly` (migration 0005: kept exact by triggers in the
transaction of every decision batch, reaction and lead) for the whole UTC
hours of the range, plus a GROUP BY over `decision_items` for the partial
hours at its ends, so only groups leave the database; on the embedded
store the same counts in Python."""
from __future__ import annotations

import datetime as dt

from ..timeutil import isoformat
from .sqlwhere import conditions

COUNTS = ("decisions", "items", "shown", "clicked", "leads", "accepted")
#: dimension -> the name of its key in a report row (None: the version itself)
DIMENSIONS = {"ruleSetVersion": None, "rule": "ruleId", "offering": "offeringId",
              "channel": "channelId", "segment": "segment"}
REACTIONS = "recommendationReaction"
LEADS = "salesLead"


def funnel_counts(sink, store, since: dt.datetime | None, until: dt.datetime | None,
                  rule_set_id: str | None = None, rule_set_version: str | None = None,
                  channel: str | None = None) -> dict:
    """{dimension: {(ruleSetId, ruleSetVersion[, key]): {count: n}}}, plus
    "total": {(): counts}."""
    if store.sql:       # sink_for gave it the PostgreSQL sink, on the same store
        return _sql_counts(store, since, until, rule_set_id, rule_set_version, channel)
    return _python_counts(sink.records(since, until, channel), store.all(REACTIONS),
                          store.all(LEADS), rule_set_id, rule_set_version)


def _python_counts(records, reactions, leads, rule_set_id, rule_set_version) -> dict:
    reacted: dict[tuple[str, str], set[str]] = {}
    for reaction in reactions:
        ref = reaction.get("recommendation") or {}
        reacted.setdefault((str(ref.get("id")), str(ref.get("itemId"))), set()).add(
            reaction.get("reactionType"))
    led: dict[tuple[str, str], bool] = {}
    for lead in leads:
        ref = lead.get("recommendation")
        if isinstance(ref, dict):
            key = (str(ref.get("id")), str(ref.get("itemId")))
            led[key] = led.get(key, False) or lead.get("status") == "accepted"
    groups: dict[str, dict[tuple, dict]] = {name: {} for name in (*DIMENSIONS, "total")}
    seen: dict[tuple, set[str]] = {}

    def add(dimension: str, key: tuple, decision_id: str, flags: dict) -> None:
        counts = groups[dimension].setdefault(key, dict.fromkeys(COUNTS, 0))
        decisions = seen.setdefault((dimension, key), set())
        if decision_id not in decisions:
            decisions.add(decision_id)
            counts["decisions"] += 1
        counts["items"] += 1
        for name, value in flags.items():
            counts[name] += int(value)

    for record in records:
        version = (record.get("ruleSetId") or "", record.get("ruleSetVersion") or "")
        if (rule_set_id is not None and version[0] != rule_set_id) or (
                rule_set_version is not None and version[1] != rule_set_version):
            continue
        for item in record.get("items") or []:
            key = (record["id"], str(item.get("id")))
            types = reacted.get(key, set())
            flags = {"shown": "shown" in types, "clicked": "clicked" in types,
                     "leads": key in led, "accepted": "accepted" in types or led.get(key, False)}
            add("total", (), record["id"], flags)
            add("ruleSetVersion", version, record["id"], flags)
            for rule in dict.fromkeys(item.get("ruleIds") or []):
                add("rule", (*version, rule), record["id"], flags)
            add("offering", (*version, item.get("offeringId")), record["id"], flags)
            add("channel", (*version, record.get("channelId")), record["id"], flags)
            add("segment", (*version, record.get("segment")), record["id"], flags)
    return groups


# The funnel rows of [since, until): whole UTC hours from the rollup that
# migration 0005 keeps exact in the write transactions, the partial hours at
# either end from decision_items (its flag columns, same shape). Rows:
# (rule_set_id, version, channel_id, dimension 'v'|'r'|'o'|'s', key, counts).
_ROLLUP_PART = """
    SELECT rule_set_id, rule_set_version, channel_id, dimension, key,
           sum(decisions), sum(items), sum(shown), sum(clicked), sum(leads), sum(accepted)
    FROM decision_funnel_hourly
    WHERE {where}
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(items) > 0"""
_RAW_PART = """
    SELECT x.rule_set_id, x.rule_set_version, x.channel_id, x.dim, x.key,
           count(DISTINCT x.decision_id), count(*), count(*) FILTER (WHERE x.shown),
           count(*) FILTER (WHERE x.clicked), count(*) FILTER (WHERE x.led),
           count(*) FILTER (WHERE x.accepted)
    FROM (SELECT {narrow}, 'v'::text AS dim, NULL::text AS key FROM src s
          UNION ALL SELECT {narrow}, 'o', s.offering_id FROM src s
          UNION ALL SELECT {narrow}, 's', s.segment FROM src s
          UNION ALL SELECT {narrow}, 'r', r.rule FROM src s
              CROSS JOIN LATERAL (SELECT DISTINCT u AS rule FROM unnest(s.rule_ids) u) r) x
    GROUP BY 1, 2, 3, 4, 5""".format(narrow="s.decision_id, s.rule_set_id, s.rule_set_version, "
                                      "s.channel_id, s.shown, s.clicked, s.led, s.accepted")
_BY_DIMENSION = {"v": "ruleSetVersion", "r": "rule", "o": "offering", "s": "segment"}


def _hour_floor(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.timezone.utc)
    return when.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(when: dt.datetime) -> dt.datetime:
    floor = _hour_floor(when)
    return floor if floor == when else floor + dt.timedelta(hours=1)


def funnel_sql(since, until, rule_set_id, rule_set_version, channel) -> tuple[str, list]:
    """The one query of the report and its parameters (for EXPLAIN too)."""
    filters, filter_params = conditions(("rule_set_id = %s", rule_set_id),
                                        ("rule_set_version = %s", rule_set_version),
                                        ("channel_id = %s", channel))
    first = _hour_ceil(since) if since is not None else None
    last = _hour_floor(until) if until is not None else None
    parts, params = [], []
    if first is not None and last is not None and first >= last:
        raw = [(since, until)]                  # within one hour: no whole hour
    else:
        hours, hour_params = conditions(("hour >= %s", first), ("hour < %s", last))
        where = filters + hours
        parts.append(_ROLLUP_PART.format(where=" AND ".join(where) or "true"))
        params += filter_params + hour_params
        raw = [(since, first)] if since is not None and since < first else []
        if until is not None and last < until:
            raw.append((last, until))
    for low, high in raw:
        where = [*filters, "decided_at >= %s", "decided_at < %s"]
        parts.append("WITH src AS MATERIALIZED (SELECT decision_id, rule_set_id, "
                     "rule_set_version, channel_id, segment, offering_id, rule_ids, shown, "
                     "clicked, led, accepted FROM decision_items WHERE "
                     + " AND ".join(where) + ")" + _RAW_PART)
        params += [*filter_params, low, high]
    return " UNION ALL ".join(f"({part})" for part in parts), params


def _sql_counts(store, since, until, rule_set_id, rule_set_version, channel) -> dict:
    sql, params = funnel_sql(since, until, rule_set_id, rule_set_version, channel)
    with store.connection(write=False) as conn:
        rows = conn.execute(sql, params).fetchall()
    groups: dict[str, dict[tuple, dict]] = {name: {} for name in (*DIMENSIONS, "total")}

    def add(dimension: str, key: tuple, counts) -> None:
        found = groups[dimension].setdefault(key, dict.fromkeys(COUNTS, 0))
        for name, value in zip(COUNTS, counts):
            found[name] += int(value)

    # a decision has one hour, version and channel: sums of the parts stay
    # exact distinct counts
    for set_id, version, channel_id, dimension, key, *counts in rows:
        if dimension == "v":
            add("total", (), counts)
            add("ruleSetVersion", (set_id, version), counts)
            add("channel", (set_id, version, channel_id), counts)
        else:
            add(_BY_DIMENSION[dimension], (set_id, version, key), counts)
    return groups


def funnel_report(groups: dict, since: dt.datetime | None, until: dt.datetime | None) -> dict:
    """The report's `funnel` object: the time range, `total` and one list
    per dimension, rows sorted by version then key."""
    def rows(dimension: str) -> list[dict]:
        key_name = DIMENSIONS[dimension]
        out = []
        for key in sorted(groups[dimension], key=lambda k: tuple("" if v is None else str(v)
                                                                  for v in k)):
            row = {"ruleSetId": key[0], "ruleSetVersion": key[1]}
            if key_name:
                row[key_name] = key[2]
            row.update(groups[dimension][key])
            out.append(row)
        return out

    return {
        "since": isoformat(since) if since else None,
        "until": isoformat(until) if until else None,
        "total": groups["total"].get((), dict.fromkeys(COUNTS, 0)),
        **{f"by{name[0].upper()}{name[1:]}": rows(name) for name in DIMENSIONS},
    }
