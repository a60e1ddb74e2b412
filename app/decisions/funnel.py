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
item id). On PostgreSQL over `decision_items` (one row per item, written
with the decision): one GROUP BY GROUPING SETS query plus one for the
rules (an item counts for each of its rules), so only the groups leave the
database; on the embedded store the same counts in Python."""
from __future__ import annotations

import datetime as dt

from .record import parse_time

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
    if getattr(sink, "backend", None) == "postgresql":
        return _sql_counts(sink.store, since, until, rule_set_id, rule_set_version, channel)
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


_ITEMS = """
    WITH items AS (
        SELECT decision_id, rule_set_id, rule_set_version, channel_id, segment, item_id,
               offering_id, rule_ids
        FROM decision_items d
        WHERE {where}),
    reactions AS (
        SELECT doc #>> '{{recommendation,id}}' AS decision_id,
               doc #>> '{{recommendation,itemId}}' AS item_id,
               bool_or(doc->>'reactionType' = 'shown') AS shown,
               bool_or(doc->>'reactionType' = 'clicked') AS clicked,
               bool_or(doc->>'reactionType' = 'accepted') AS accepted
        FROM documents WHERE collection = 'recommendationReaction'
          AND doc #>> '{{recommendation,id}}' IN (SELECT decision_id FROM items)
        GROUP BY 1, 2),
    leads AS (
        SELECT doc #>> '{{recommendation,id}}' AS decision_id,
               doc #>> '{{recommendation,itemId}}' AS item_id,
               bool_or(doc->>'status' = 'accepted') AS accepted
        FROM documents WHERE collection = 'salesLead'
          AND doc #>> '{{recommendation,id}}' IN (SELECT decision_id FROM items)
        GROUP BY 1, 2),
    flagged AS (
        SELECT items.*, coalesce(r.shown, false) AS shown, coalesce(r.clicked, false) AS clicked,
               l.decision_id IS NOT NULL AS led,
               coalesce(r.accepted, false) OR coalesce(l.accepted, false) AS accepted
        FROM items LEFT JOIN reactions r USING (decision_id, item_id)
                   LEFT JOIN leads l USING (decision_id, item_id))
"""
_AGGREGATES = ("count(DISTINCT decision_id), count(*), count(*) FILTER (WHERE shown), "
               "count(*) FILTER (WHERE clicked), count(*) FILTER (WHERE led), "
               "count(*) FILTER (WHERE accepted)")


def _sql_counts(store, since, until, rule_set_id, rule_set_version, channel) -> dict:
    where, params = ["true"], []
    for sql, value in (("d.decided_at >= %s", since), ("d.decided_at < %s", until),
                       ("d.rule_set_id = %s", rule_set_id),
                       ("d.rule_set_version = %s", rule_set_version),
                       ("d.channel_id = %s", channel)):
        if value is not None:
            where.append(sql)
            params.append(value)
    base = _ITEMS.format(where=" AND ".join(where))
    grouped = (base + f"""
        SELECT GROUPING(offering_id, channel_id, segment, rule_set_id) AS g,
               rule_set_id, rule_set_version, offering_id, channel_id, segment, {_AGGREGATES}
        FROM flagged
        GROUP BY GROUPING SETS ((), (rule_set_id, rule_set_version),
                                (rule_set_id, rule_set_version, offering_id),
                                (rule_set_id, rule_set_version, channel_id),
                                (rule_set_id, rule_set_version, segment))""")
    by_rule = (base + f"""
        SELECT rule_set_id, rule_set_version, rule, {_AGGREGATES}
        FROM (SELECT DISTINCT ON (decision_id, item_id, rule) flagged.*, rule
              FROM flagged CROSS JOIN LATERAL unnest(rule_ids) AS rule) AS x
        GROUP BY rule_set_id, rule_set_version, rule""")
    groups: dict[str, dict[tuple, dict]] = {name: {} for name in (*DIMENSIONS, "total")}
    with store.connection(write=False) as conn:
        rows = conn.execute(grouped, params).fetchall()
        rule_rows = conn.execute(by_rule, params).fetchall()
    for g, set_id, version, offering, channel_id, segment, *counts in rows:
        values = dict(zip(COUNTS, counts))
        # GROUPING bits, leftmost argument highest: offering 8, channel 4, segment 2, set 1
        if g & 1:
            groups["total"][()] = values
        elif not g & 8:
            groups["offering"][(set_id, version, offering)] = values
        elif not g & 4:
            groups["channel"][(set_id, version, channel_id)] = values
        elif not g & 2:
            groups["segment"][(set_id, version, segment)] = values
        else:
            groups["ruleSetVersion"][(set_id, version)] = values
    for set_id, version, rule, *counts in rule_rows:
        groups["rule"][(set_id, version, rule)] = dict(zip(COUNTS, counts))
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

    from .record import iso_millis
    return {
        "since": iso_millis(since) if since else None,
        "until": iso_millis(until) if until else None,
        "total": groups["total"].get((), dict.fromkeys(COUNTS, 0)),
        **{f"by{name[0].upper()}{name[1:]}": rows(name) for name in DIMENSIONS},
    }


def parse_bound(text: str | None) -> dt.datetime | None:
    return parse_time(text) if text else None
