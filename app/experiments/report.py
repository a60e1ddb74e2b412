"""The report of one experiment, per arm, from the decision log.

Counts per arm (over the experiment's decisions, start to end):
    decisions   answers given in the arm (a holdout's empty answers too)
    items       recommended items
    shown, clicked, leads, accepted   items with such a reaction / lead
                (accepted: an `accepted` reaction or an accepted lead),
                as the conversion funnel counts them (app/decisions/funnel.py)
    converted   {metric: decisions with at least one such item}: the
                numerators of the rates (a proportion per decision)

On PostgreSQL: two GROUP BYs over the partial indexes of migration 0006
(`decisions_experiment`, `decision_items_experiment`: only the
experiment's rows, read by index range), the items' funnel flags kept exact
by the 0005 triggers; only one row per arm leaves the database. On the
embedded store: the experiment's day files of the JSON Lines log, and the
reactions and leads collections, counted in Python.

The statistics and the method are app/experiments/stats.py (stated in
every report's `method`)."""
from __future__ import annotations

import datetime as dt

from ..decisions.funnel import LEADS, REACTIONS
from ..timeutil import isoformat
from . import stats
from .model import METRICS, Experiment

COUNTS = ("decisions", "items", "shown", "clicked", "leads", "accepted")


def _empty() -> dict:
    return {**dict.fromkeys(COUNTS, 0), "converted": dict.fromkeys(METRICS, 0)}


def arm_counts(sink, store, experiment_id: str, since: dt.datetime | None,
               until: dt.datetime | None) -> dict[str, dict]:
    """{arm name: counts} (arms without decisions are absent)."""
    if store.sql:       # sink_for gave it the PostgreSQL sink, on the same store
        return _sql_counts(sink.store, experiment_id, since, until)
    return _python_counts(sink, store, experiment_id, since, until)


def _python_counts(sink, store, experiment_id, since, until) -> dict[str, dict]:
    records = [r for r in sink.records(since, until) if r.get("experimentId") == experiment_id]
    if not records:
        return {}
    wanted = {r["id"] for r in records}
    reacted: dict[tuple[str, str], set] = {}
    for reaction in store.all(REACTIONS):
        ref = reaction.get("recommendation") or {}
        if ref.get("id") in wanted:
            reacted.setdefault((str(ref["id"]), str(ref.get("itemId"))), set()).add(reaction.get("reactionType"))
    led: dict[tuple[str, str], bool] = {}
    for lead in store.all(LEADS):
        ref = lead.get("recommendation")
        if isinstance(ref, dict) and ref.get("id") in wanted:
            key = (str(ref["id"]), str(ref.get("itemId")))
            led[key] = led.get(key, False) or lead.get("status") == "accepted"
    found: dict[str, dict] = {}
    for record in records:
        counts = found.setdefault(record.get("experimentArm") or "", _empty())
        counts["decisions"] += 1
        hit = dict.fromkeys(METRICS, False)
        for item in record.get("items") or []:
            key = (record["id"], str(item.get("id")))
            types = reacted.get(key, set())
            flags = {"shown": "shown" in types, "clicked": "clicked" in types, "leads": key in led,
                     "accepted": "accepted" in types or led.get(key, False)}
            counts["items"] += 1
            for name, value in flags.items():
                counts[name] += int(value)
                hit[name] = hit[name] or value
        for name, value in hit.items():
            counts["converted"][name] += int(value)
    return found


_DECISIONS_SQL = """
    SELECT experiment_arm, count(*) FROM decisions
    WHERE experiment_id = %s AND decided_at >= %s AND decided_at < %s
    GROUP BY 1"""
_ITEMS_SQL = """
    SELECT experiment_arm, count(*), count(*) FILTER (WHERE shown), count(*) FILTER (WHERE clicked),
           count(*) FILTER (WHERE led), count(*) FILTER (WHERE accepted),
           count(DISTINCT decision_id) FILTER (WHERE shown),
           count(DISTINCT decision_id) FILTER (WHERE clicked),
           count(DISTINCT decision_id) FILTER (WHERE led),
           count(DISTINCT decision_id) FILTER (WHERE accepted)
    FROM decision_items
    WHERE experiment_id = %s AND decided_at >= %s AND decided_at < %s
    GROUP BY 1"""
_NEVER = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc))


def report_sql() -> tuple[str, str]:
    """The report's two queries (for EXPLAIN in the tests and docs)."""
    return _DECISIONS_SQL, _ITEMS_SQL


def _sql_counts(store, experiment_id, since, until) -> dict[str, dict]:
    params = (experiment_id, since or _NEVER[0], until or _NEVER[1])
    with store.connection(write=False) as conn:
        decisions = conn.execute(_DECISIONS_SQL, params).fetchall()
        items = conn.execute(_ITEMS_SQL, params).fetchall()
    found: dict[str, dict] = {}
    for arm, count in decisions:
        found.setdefault(arm or "", _empty())["decisions"] = int(count)
    for arm, *values in items:
        counts = found.setdefault(arm or "", _empty())
        for name, value in zip(COUNTS[1:], values[:5]):
            counts[name] = int(value)
        counts["converted"] = {name: int(value) for name, value in zip(METRICS, values[5:])}
    return found


def experiment_report(experiment: Experiment, counts: dict[str, dict], now: dt.datetime,
                      expected: dict[str, float] | None = None) -> dict:
    """The report: per arm its counts, rates with intervals, uplift of the
    primary metric against the control; the sample-ratio check; the method.
    `expected`: {arm: expected share} for the sample-ratio check when the
    weights changed during the experiment (each period's decisions times its
    weights; default: the current weights)."""
    control_counts = counts.get(experiment.control, _empty())
    metric = experiment.primary_metric
    arms = []
    for arm in experiment.arms:
        found = counts.get(arm.name, _empty())
        n = found["decisions"]
        rates = {}
        for name in METRICS:
            k = found["converted"][name]
            low, high = stats.wilson(k, n)
            rates[name] = {"decisions": k, "rate": k / n if n else None, "low": low if n else None,
                           "high": high if n else None}
        uplift = None
        if arm.name != experiment.control:
            uplift = stats.msprt_uplift(found["converted"][metric], n,
                                        control_counts["converted"][metric], control_counts["decisions"])
            if uplift is not None:
                uplift["significant"] = uplift["pValue"] < stats.ALPHA
        arms.append({"name": arm.name, "version": arm.version, "holdout": arm.holdout,
                     "weight": arm.weight, "control": arm.name == experiment.control,
                     **{name: found[name] for name in COUNTS}, "rates": rates, "uplift": uplift})
    ratio = stats.sample_ratio([a["decisions"] for a in arms],
                               [expected.get(a["name"], 0.0) if expected else a["weight"] for a in arms])
    stray = [arms[i] for i in ratio.pop("unexpected")]
    ratio["unexpectedArms"] = [a["name"] for a in stray]
    if stray:
        ratio["warning"] = ("sample ratio mismatch: "
                            + "; ".join(f"arm {a['name']} is at weight 0 but received {a['decisions']} "
                                        f"decision{'s' if a['decisions'] != 1 else ''}" for a in stray)
                            + "; check assignment, caching and logging before reading the results")
    else:
        ratio["warning"] = (f"sample ratio mismatch: the decisions per arm are off the weights "
                            f"(chi-square {ratio['chiSquare']:.1f}, p = {ratio['pValue']:.2g} < {stats.SRM_P}); "
                            "check assignment, caching and logging before reading the results"
                            if ratio["mismatch"] else None)
    return {
        "id": experiment.id, "name": experiment.name, "status": experiment.status,
        "start": isoformat(experiment.start) if experiment.start else None,
        "end": isoformat(experiment.end) if experiment.end else None,
        "channels": list(experiment.channels), "control": experiment.control,
        "primaryMetric": metric, "promoted": experiment.promoted,
        "generatedAt": isoformat(now),
        "arms": arms, "sampleRatio": ratio, "method": stats.METHOD,
    }


def report_lines(report: dict) -> list[str]:
    """The report as the CLI prints it."""
    metric = report["primaryMetric"]
    lines = [f"experiment {report['id']} ({report['status']}), primary metric: {metric} per decision, "
             f"control: {report['control']}",
             f"{'arm':<14} {'version':<9} {'weight':>6} {'decisions':>9} {'items':>6} {'shown':>6} "
             f"{'clicked':>7} {'leads':>6} {'accepted':>8}  {metric + ' rate [95% CI]':<28} uplift [always-valid 95% CI]"]
    for arm in report["arms"]:
        rate = arm["rates"][metric]
        rate_text = (f"{rate['rate']:.2%} [{rate['low']:.2%}, {rate['high']:.2%}]" if rate["rate"] is not None
                     else "-")
        uplift = arm["uplift"]
        uplift_text = "control" if arm["control"] else (
            f"{uplift['difference']:+.2%} [{uplift['low']:+.2%}, {uplift['high']:+.2%}] p={uplift['pValue']:.3g}"
            + (" significant" if uplift["significant"] else "") if uplift else "-")
        lines.append(f"{arm['name']:<14} {arm['version'] or 'holdout':<9} {arm['weight']:>5g}% "
                     f"{arm['decisions']:>9} {arm['items']:>6} {arm['shown']:>6} {arm['clicked']:>7} "
                     f"{arm['leads']:>6} {arm['accepted']:>8}  {rate_text:<28} {uplift_text}")
    ratio = report["sampleRatio"]
    lines.append(f"sample ratio: chi-square {ratio['chiSquare']:.2f}, df {ratio['df']}, p = {ratio['pValue']:.3g}"
                 + (f"  WARNING: {ratio['warning']}" if ratio["warning"] else "  (no mismatch)"))
    lines.append("method: " + report["method"])
    return lines
