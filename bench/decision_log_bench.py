"""The decision log's cost and capacity.

    python -m bench.decision_log_bench [--rounds 7] [--block 300] [--pg-rows 1000000]
                                       [--file-rows 200000] [--out FILE]

1. Instant POST requests/s with the decision log on and off, in ONE process
   (two apps built side by side, the same rules and store), blocks of
   `block` requests alternating off, on, off, on ... for `rounds` rounds on
   contexts that do not repeat (cart, channel and evaluation time vary).
   Through the WSGI app (Flask's test client): no HTTP, so the ratio is the
   log's share of the request's own work, the flusher thread included (it
   runs in the same process, as in a gunicorn worker). Medians and ratio.
2. PostgreSQL: the background writer's batch insert (PostgresSink.write,
   500 records a batch, records shaped like a real answer's: 3 items) from
   0 to `pg-rows` rows: records/s per slice of the table's growth (flat means
   the insert cost does not grow), bytes per row with the indexes, and the
   conversion funnel's two GROUP BY queries over the whole table.
3. The embedded store's JSON Lines: bytes per record and the funnel in
   Python over `file-rows` records.
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
    from app.decisions.record import iso_millis
    return {"id": new_decision_id(when.timestamp()), "decidedAt": iso_millis(when),
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


def postgres(rows: int, batch: int = 500, slices: int = 10) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PgCluster

    from app.decisions.funnel import funnel_counts
    from app.decisions.sinks import PostgresSink
    from app.store import open_store

    work = Path(tempfile.mkdtemp(prefix="decision-pg-"))
    cluster = PgCluster(work / "pg").start()
    try:
        store = open_store(cluster.new_database())
        sink = PostgresSink(store)
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
        per_slice = rows // slices
        rates, written = [], 0
        for _ in range(slices):
            started = time.perf_counter()
            for first in range(written, written + per_slice, batch):
                sink.write([record(i, start + dt.timedelta(milliseconds=i * 600))
                            for i in range(first, min(first + batch, written + per_slice))])
            elapsed = time.perf_counter() - started
            written += per_slice
            rates.append({"rows_after": written, "records_per_s": round(per_slice / elapsed)})
        with store.connection() as conn:
            size = conn.execute(
                "SELECT pg_total_relation_size('decisions') + pg_total_relation_size('decision_items'), "
                "pg_relation_size('decisions')").fetchone()
        started = time.perf_counter()
        counts = funnel_counts(sink, store, None, None)
        funnel_s = time.perf_counter() - started
        return {"rows": written, "batch": batch, "slices": rates,
                "bytes_per_row_total": round(size[0] / written),
                "bytes_per_row_table": round(size[1] / written),
                "mb_per_million": round(size[0] / written * 1e6 / 2**20),
                "funnel_seconds": round(funnel_s, 2),
                "funnel_decisions": counts["total"][()]["decisions"]}
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
    parser.add_argument("--pg-rows", type=int, default=1_000_000)
    parser.add_argument("--file-rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "decision-log.json")
    args = parser.parse_args()
    result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_start": os.getloadavg()[0]}
    result["instant"] = instant_on_off(args.rounds, args.block)
    print(json.dumps(result["instant"]), flush=True)
    if args.file_rows:
        result["json_lines"] = json_lines(args.file_rows)
        print(json.dumps(result["json_lines"]), flush=True)
    if args.pg_rows:
        result["postgresql"] = postgres(args.pg_rows)
        print(json.dumps(result["postgresql"]), flush=True)
    result["loadavg_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"loadavg {result['loadavg_start']:.1f} -> {result['loadavg_end']:.1f}; {args.out}")


if __name__ == "__main__":
    main()
