"""Recorded traffic as situations for `flask rules diff`, the Studio's
impact view and `flask decisions export`: the contexts of recorded
decisions, each distinct one once with its weight (how many answers it
stands for), so that a comparison over a week of traffic runs each
distinct situation once and still says "of 48,210 answers, 3,912 would change".

Two decisions are the same situation when their recorded queries are equal
and they were evaluated in the same UTC hour (rules are valid from dates
and may read the time; within an hour a replay at the first decision's
time stands for all). The customer and what it owns are read from the
store as they are now (a replay shows what a change would do to these
customers), like the replay of stored queries."""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from ..errors import TMFError
from ..recommend.query import context_from_query
from .record import parse_time


#: query attributes the rules never read (an answer asked instantly or not is the same situation)
NOT_CONTEXT = ("instantSyncRecommendation", "@type", "@baseType", "@schemaLocation")


def _evaluation_time(record: dict) -> dt.datetime:
    start = ((record.get("query") or {}).get("validFor") or {}).get("startDateTime")
    try:
        return parse_time(start) if start else parse_time(record["decidedAt"])
    except ValueError:
        return parse_time(record["decidedAt"])


def recorded_situations(records, parties) -> tuple[list[tuple], dict[str, int], int]:
    """(situations as (name, "recorded", Context), {name: weight}, skipped):
    one situation per distinct (query, evaluation hour); `skipped` counts
    records whose query no longer reads as a context (the catalog or the
    schema changed)."""
    groups: dict[tuple, list] = {}
    for record in records:
        when = _evaluation_time(record)
        query = {name: value for name, value in (record.get("query") or {}).items()
                 if name not in NOT_CONTEXT}
        key = (json.dumps(query, sort_keys=True),
               when.replace(minute=0, second=0, microsecond=0))
        group = groups.get(key)
        if group is None:
            groups[key] = [record, when, 1]
        else:
            group[2] += 1
    situations, weights, skipped = [], {}, 0
    for record, when, weight in groups.values():
        try:
            context = context_from_query(record.get("query") or {}, parties, when)
        except TMFError:
            skipped += weight
            continue
        name = f"decision {record['id']}" + (f" (x{weight})" if weight > 1 else "")
        situations.append((name, "recorded", context))
        weights[name] = weight
    return situations, weights, skipped


def weighted_summary(contexts, weights: dict[str, int]) -> dict:
    """Over the recorded situations of a comparison (`contexts`: the
    "contexts" of DiffReport.as_dict(), as `flask rules diff --json` prints
    them): answers and changed answers, and per offering how many answers
    gain or lose it."""
    answers = changed = 0
    gained, lost, names = Counter(), Counter(), {}
    for diff in contexts:
        weight = weights.get(diff["name"])
        if weight is None or diff["source"] != "recorded":
            continue
        answers += weight
        if not diff["changed"]:
            continue
        changed += weight
        for which, counter in (("gained", gained), ("lost", lost)):
            for item in diff[which]:
                counter[item["offering"]] += weight
                names[item["offering"]] = item.get("name", "")
    return {"answers": answers, "changed": changed, "situations": len(weights),
            "offerings": [{"offering": o, "name": names[o], "gained": gained[o], "lost": lost[o]}
                          for o in sorted(names, key=lambda o: (-(gained[o] + lost[o]), o))]}


def summary_line(weighted: dict) -> str:
    """"Of 48,210 recorded answers, 3,912 would change: 7301 gained 2,804 times, ..."."""
    text = (f"Of {weighted['answers']:,} recorded answers ({weighted['situations']:,} distinct "
            f"situations), {weighted['changed']:,} would change")
    parts = []
    for offering in weighted["offerings"]:
        if offering["gained"]:
            parts.append(f"{offering['offering']} gained {offering['gained']:,} times")
        if offering["lost"]:
            parts.append(f"{offering['offering']} lost {offering['lost']:,} times")
    return text + (": " + ", ".join(parts) if parts else "") + "."
