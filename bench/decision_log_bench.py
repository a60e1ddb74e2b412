"""The decision log's cost and capacity.

    python -m bench.decision_log_bench [--rounds 7] [--block 300] [--pg-rows 10000000]
                                       [--file-rows 200000] [--out FILE]

1. Instant POST requests/s with the decision log on and off, in ONE process
   (two apps built side by side, the same rules and store), blocks of
   `block` requests alternating off, on, off, on ... for `rounds` rounds on
   contexts that do not repeat (cart, channel and evaluation time vary).
   Through the WSGI app (Flask's test client): no HTTP, so the ratio is the
   log's share of the request's own work, the flusher thread included (it
   runs in the same process, as in a gunicorn worker). Medians and ratio.
2. PostgreSQL: the background writer's batch insert (PostgresSink.write,
   500 records a batch, records shaped like a real answer's: 3 items) timed
   per batch on an empty table and again after `pg-rows` decisions were made
   in SQL (INSERT ... SELECT generate_series, the funnel rollup rebuilt
   after): flat means the two medians agree. Then bytes per decision, and
   the conversion funnel (rollup plus partial hours) over everything, a day
   on hour bounds and a day off them, with EXPLAIN ANALYZE of each.
3. The embedded store's JSON Lines: bytes per record and the funnel in
   Python over `file-rows` records.
0 for `--rounds`, `--file-rows` or `--pg-rows` skips that part.
Results: bench/results/decision-log.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CART = ["6547", "6550", "7101", "7102", "6542", "6543", "7002", "7003"]


def bodies(n: int, seed: int):
    """Instant queries that do not repeat: cart, channel and minute vary."""
    start = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    for i in range(n):
        k = seed * 1_000_003 + i
        when = start + dt.timedelta(minutes=k % 500_000)
        yield {"instantSyncRecommendation": True, "channel": [{"id": str(21 + k % 3)}],
               "validFor": {"startDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
               "shoppingCart": [{"id": "c", "@type": "ShoppingCart", "cartItem": [
                   {"id": "1", "quantity": 1, "productOffering": {"id": CART[k % len(CART)]}}]}]}


def instant_on_off(rounds: int, block: int) -> dict:
    os.environ.setdefault("RECO_LOG_LEVEL", "WARNING")
    from app import create_app

    work = Path(tempfile.mkdtemp(prefix="decision-bench-"))
    apps = {name: create_app(data_dir=work / name, background_workers=False, log_level="WARNING",
                             decision_log=(name == "on"))
            for name in ("off", "on")}
    clients = {name: app.test_client() for name, app in apps.items()}
    path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
    for client in clients.values():                     # warm-up
        for body in bodies(200, 999):
            client.post(path, json=body)
    rps = {"off": [], "on": []}
    seed = 0
    for _ in range(rounds):
        for name in ("off", "on"):
            seed += 1
            batch = list(bodies(block, seed))
            started = time.perf_counter()
            for body in batch:
                assert clients[name].post(path, json=body).status_code == 200
            rps[name].append(block / (time.perf_counter() - started))
    apps["on"].extensions["reco"].decisions.flush()
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    return {"rounds": rounds, "block": block, "off_rps": round(off, 1), "on_rps": round(on, 1),
            "ratio": round(on / off, 3),
            "pair_ratios": [round(b / a, 3) for a, b in zip(rps["off"], rps["on"])]}


def record(i: int, when: dt.datetime) -> dict:
    from app.decisions.ids import new_decision_id
    from app.timeutil import isoformat
    return {"id": new_decision_id(when.timestamp()), "decidedAt": isoformat(when),
            "mode": "instant", "partyId": f"party-{i % 200_000}", "channelId": str(21 + i % 3),
            "segment": ["gold", "silver", None][i % 3],
            "query": {"instantSyncRecommendation": True, "channel": [{"id": str(21 + i % 3)}],
                      "relatedParty": {"id": f"party-{i % 200_000}", "role": "customer"},
                      "shoppingCart": [{"id": "c", "@type": "ShoppingCart", "cartItem": [
                          {"id": "1", "quantity": 1, "productOffering": {"id": CART[i % 8]}}]}],
                      "@type": "QueryProductRecommendation"},
            "items": [{"id": str(n), "priority": n, "offeringId": CART[(i + n) % 8],
                       "name": "Some offering name", "ruleIds": [f"R{(i + n) % 8 + 1}"],
                       "rulePriority": 10 * n} for n in (1, 2, 3)],
            "ruleSetId": "telco-demo", "ruleSetVersion": "1.0.0",
            "ruleSetHash": "b0b6f350a202a2ba", "experimentArm": None}


# Decisions and their 3 items made in SQL, shaped like record(): the bulk
# that puts the table at its size before real batches are timed. %(first)s,
# %(last)s: the generate_series range; %(start)s: the first decidedAt;
# %(step)s: seconds between decisions; %(doc)s: a template record.
_GENERATE = """
    WITH g AS (
        SELECT n, %(start)s::timestamptz + n * %(step)s * interval '1 second' AS t
        FROM generate_series(%(first)s, %(last)s - 1) AS n),
    d AS (
        SELECT n, t, (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0')
                      || '7' || substr(md5(n::text), 1, 3) || '8' || substr(md5(n::text), 4, 15)
                     )::uuid::text AS id
        FROM g),
    ins AS (
        INSERT INTO decisions (id, decided_at, mode, party_id, channel_id, segment,
                               rule_set_id, rule_set_version, experiment_arm, doc)
        SELECT id, t, 'instant', 'party-' || n %% 200000, (21 + n %% 3)::text,
               (ARRAY['gold', 'silver', NULL])[1 + n %% 3], 'telco-demo', '1.0.0', NULL,
               %(doc)s::jsonb || jsonb_build_object('id', id, 'decidedAt', t,
                                                    'partyId', 'party-' || n %% 200000)
        FROM d)
    INSERT INTO decision_items (decision_id, item_id, decided_at, rule_set_id, rule_set_version,
                                channel_id, segment, offering_id, rule_ids)
    SELECT id, k::text, t, 'telco-demo', '1.0.0', (21 + n %% 3)::text,
           (ARRAY['gold', 'silver', NULL])[1 + n %% 3],
           (%(cart)s::text[])[1 + (n + k) %% 8], ARRAY['R' || ((n + k) %% 8 + 1)]
    FROM d CROSS JOIN generate_series(1, 3) AS k"""


def _timed_batches(sink, count: int, batch: int, first: int, start: dt.datetime) -> list[float]:
    """Seconds per batch of `batch` records through the app's writer."""
    times = []
    for b in range(count):
        records = [record(first + b * batch + i, start + dt.timedelta(milliseconds=b * batch + i))
                   for i in range(batch)]
        started = time.perf_counter()
        sink.write(records)
        times.append(time.perf_counter() - started)
    return times


def _batch_figures(times: list[float], batch: int) -> dict:
    median = statistics.median(times)
    return {"batches": len(times), "median_ms": round(median * 1000, 1),
            "p90_ms": round(sorted(times)[int(len(times) * 0.9)] * 1000, 1),
            "records_per_s": round(batch / median)}


def _timed_funnel(sink, store, since, until, repeat: int) -> dict:
    from app.decisions.funnel import funnel_counts
    times, counts = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        counts = funnel_counts(sink, store, since, until)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "runs": repeat,
            "decisions": counts["total"][()]["decisions"] if counts["total"] else 0}


def postgres(rows: int, batch: int = 500, batches: int = 21, chunk: int = 500_000) -> dict:
    """Insert cost per real batch at an empty table and at `rows` rows (made
    in SQL, with the rollup rebuilt after), and the funnel at that size."""
    sys.path.insert(0, str(ROOT / "tests"))
    import psycopg
    from pgcluster import PgCluster

    from app.decisions.funnel import funnel_sql
    from app.decisions.sinks import PostgresSink
    from app.store import open_store

    work = Path(tempfile.mkdtemp(prefix="decision-pg-"))
    cluster = PgCluster(work / "pg").start()
    try:
        url = cluster.new_database()
        store = open_store(url)
        sink = PostgresSink(store)
        now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        result = {"rows": rows, "batch": batch}
        result["empty"] = _batch_figures(_timed_batches(sink, batches, batch, 0, now), batch)
        start = now - dt.timedelta(days=7)
        step = 7 * 86400 / max(rows, 1)       # the rows spread over the last 7 days
        template = json.dumps(record(0, start))
        started = time.perf_counter()
        # the bulk on its own connection: no statement timeout; replica role
        # skips triggers (foreign key checks, the rollup's: rebuilt after)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("TRUNCATE decisions, decision_items, decision_funnel_hourly")
            conn.execute("SET session_replication_role = replica")
            for first in range(0, rows, chunk):
                conn.execute(_GENERATE, {"first": first, "last": min(first + chunk, rows),
                                         "start": start, "step": step, "doc": template,
                                         "cart": CART})
            conn.execute("SET session_replication_role = origin")
            conn.execute("SELECT decision_funnel_rebuild()")
            result["generate_s"] = round(time.perf_counter() - started, 1)
            for table in ("decisions", "decision_items", "decision_funnel_hourly"):
                conn.execute(f"VACUUM ANALYZE {table}")
        result["full"] = _batch_figures(
            _timed_batches(sink, batches, batch, rows, now + dt.timedelta(minutes=1)), batch)
        result["full"]["rows_before"] = rows
        with store.connection() as conn:
            size = conn.execute(
                "SELECT pg_total_relation_size('decisions') + pg_total_relation_size('decision_items'), "
                "pg_relation_size('decisions'), pg_total_relation_size('decision_funnel_hourly'), "
                "(SELECT count(*) FROM decision_funnel_hourly)").fetchone()
        total = rows + 2 * batches * batch
        result.update({"bytes_per_row_total": round(size[0] / total),
                       "mb_per_million": round(size[0] / total * 1e6 / 2**20),
                       "rollup_rows": size[3], "rollup_mb": round(size[2] / 2**20, 1)})
        day = now - dt.timedelta(days=1)
        ranges = {"all": (None, None), "last_day_aligned": (day, now),
                  "last_day_unaligned": (day + dt.timedelta(minutes=17),
                                         now - dt.timedelta(minutes=13))}
        result["funnel"] = {name: _timed_funnel(sink, store, *bounds, repeat=5)
                            for name, bounds in ranges.items()}
        plans = {}
        with store.connection(write=False) as conn:
            for name, bounds in ranges.items():
                sql, params = funnel_sql(*bounds, None, None, None)
                plans[name] = [row[0] for row in conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()]
        result["plans"] = plans
        return result
    finally:
        cluster.destroy()


def json_lines(rows: int) -> dict:
    from app.decisions.funnel import _python_counts
    from app.decisions.sinks import JsonLinesSink

    sink = JsonLinesSink(Path(tempfile.mkdtemp(prefix="decision-file-")))
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    started = time.perf_counter()
    for first in range(0, rows, 500):
        sink.write([record(i, start + dt.timedelta(milliseconds=i * 300))
                    for i in range(first, min(first + 500, rows))])
    write_s = time.perf_counter() - started
    size = sum(path.stat().st_size for path in sink.directory.glob("*.jsonl"))
    started = time.perf_counter()
    _python_counts(sink.records(), [], [], None, None)
    funnel_s = time.perf_counter() - started
    return {"rows": rows, "records_per_s": round(rows / write_s),
            "bytes_per_record": round(size / rows), "mb_per_million": round(size / rows * 1e6 / 2**20),
            "funnel_seconds": round(funnel_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--file-rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "decision-log.json")
    args = parser.parse_args()
    result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_start": os.getloadavg()[0]}
    if args.rounds:
        result["instant"] = instant_on_off(args.rounds, args.block)
        print(json.dumps(result["instant"]), flush=True)
    if args.file_rows:
        result["json_lines"] = json_lines(args.file_rows)
        print(json.dumps(result["json_lines"]), flush=True)
    if args.pg_rows:
        result["postgresql"] = postgres(args.pg_rows)
        print(json.dumps({k: v for k, v in result["postgresql"].items() if k != "plans"}),
              flush=True)
    result["loadavg_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"loadavg {result['loadavg_start']:.1f} -> {result['loadavg_end']:.1f}; {args.out}")


if __name__ == "__main__":
    main()
