"""On PostgreSQL the report per arm reads the experiment's own rows through
the partial indexes of migration 0006, never the whole decision log: with
20,000 decisions outside the experiment and 300 inside, both report queries
use `decisions_experiment` / `decision_items_experiment`, and count exactly."""
from __future__ import annotations

import datetime as dt

from app.decisions.sinks import PostgresSink
from app.experiments.report import arm_counts, report_sql
from app.store import open_store

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def record(n: int, experiment: str | None, arm: str | None, items: int) -> dict:
    when = T0 + dt.timedelta(seconds=n)
    return {"id": f"d-{n:06d}", "decidedAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "mode": "instant",
            "partyId": f"p{n}", "channelId": "21", "segment": None, "query": {},
            "items": [{"id": str(i + 1), "priority": i + 1, "offeringId": "o1", "name": "", "ruleIds": ["R1"],
                       "rulePriority": 1} for i in range(items)],
            "ruleSetId": "rs", "ruleSetVersion": "1.0.0", "ruleSetHash": "h",
            "experimentId": experiment, "experimentArm": arm}


def test_report_uses_the_experiment_indexes_and_counts_exactly(pg_url):
    store = open_store(pg_url)
    try:
        sink = PostgresSink(store)
        outside = [record(n, None, None, 2) for n in range(20000)]
        for start in range(0, len(outside), 2000):
            sink.write(outside[start:start + 2000])
        inside = [record(20000 + n, "e1", ("a", "b", "h")[n % 3], 0 if n % 3 == 2 else 1 + n % 2)
                  for n in range(300)]
        sink.write(inside)
        with store.connection() as conn:
            conn.execute("ANALYZE decisions")
            conn.execute("ANALYZE decision_items")
            plans = []
            for sql in report_sql():
                rows = conn.execute("EXPLAIN " + sql, ("e1", T0, T0 + dt.timedelta(days=1))).fetchall()
                plans.append("\n".join(row[0] for row in rows))
        assert "decisions_experiment" in plans[0] and "Seq Scan" not in plans[0], plans[0]
        assert "decision_items_experiment" in plans[1] and "Seq Scan" not in plans[1], plans[1]
        counts = arm_counts(sink, store, "e1", T0, None)
        assert {arm: c["decisions"] for arm, c in counts.items()} == {"a": 100, "b": 100, "h": 100}
        expected_items = {"a": sum(1 + n % 2 for n in range(0, 300, 3)),
                          "b": sum(1 + n % 2 for n in range(1, 300, 3)), "h": 0}
        assert {arm: c["items"] for arm, c in counts.items()} == expected_items
    finally:
        store.close()
