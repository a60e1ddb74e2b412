"""Requests while rule set versions are activated under load: one pinned
worker serves R generated rules (default 1,000) under a steady load (the
Python client, 4 connections on core 1, which records every request), and
the rule file is replaced `--activations` times by a new version of R
different rules (an operator's deploy: written aside, renamed over). One
activation every `--each` seconds; each is followed until the new version
answers (the `X-Ruleset` header).

    python -m bench.activation_load [--rules 1000] [--activations 10] [--each 12] [--out FILE]

Reports, over all requests that started after the first replacement and
ended before the last version answered + 0.5 s ("during"), the p50, p99 and
max latency and how many took over 100 ms, beside the same figures of the
steady state before the first replacement; and each activation's time (file
replaced -> first answer of the new version). The issue-24 goal: no request
over 100 ms during activations. Results: bench/results/activation-R<rules>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests

from . import http_bench, workload
from .engine_bench import pct
from .load import run_load
from .workload import RULESET_ID, make_rules, rules_yaml

HERE = Path(__file__).resolve().parent


def summary(latencies: list[float]) -> dict:
    return {"requests": len(latencies), "p50_ms": round(pct(latencies, 50) * 1000, 2),
            "p99_ms": round(pct(latencies, 99) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
            "over100ms": sum(1 for v in latencies if v > 0.1)}


def run(wl, n_rules: int, activations: int, before: float, each: float) -> dict:
    _workers, server_cpus, client_cpus, connections = http_bench.CONFIGS["1 worker, pinned"]
    rules_dir = wl.root / f"activation-{n_rules}"
    shutil.rmtree(rules_dir, ignore_errors=True)
    rules_dir.mkdir(parents=True)
    shutil.copy(wl.ruleset_path(n_rules), rules_dir / f"{RULESET_ID}.yaml")
    texts = [rules_yaml(make_rules(wl.catalog, n_rules, wl.seed + 1000 + i, version=f"1.{i + 1}.0"))
             for i in range(activations)]
    server = http_bench.reco_server(wl, n_rules, 1, server_cpus, f"activation-{n_rules}", rules_dir=rules_dir)
    bodies = http_bench.body_files(wl)["mix"]
    timeline = wl.root / f"activation-{n_rules}-timeline.jsonl"
    swaps: list[tuple[float, str]] = []
    stop_after = [None]
    total = before + activations * each + 2

    try:
        url = server.url + http_bench.RECO_PATH
        run_load(url, bodies, client="python", connections=connections, duration=2, cpus=client_cpus)

        def swapper() -> None:
            time.sleep(before)
            slot_start = time.time()
            for i, text in enumerate(texts):
                time.sleep(max(0.0, slot_start + i * each - time.time()))
                staged = rules_dir / f".{RULESET_ID}.yaml.new"
                staged.write_text(text, encoding="utf-8")
                swaps.append((time.time(), f"{RULESET_ID}@1.{i + 1}.0"))
                os.replace(staged, rules_dir / f"{RULESET_ID}.yaml")
                deadline = slot_start + (i + 1) * each - 0.5
                while time.time() < deadline:           # until the new version answers
                    try:
                        answer = requests.post(url, json={"instantSyncRecommendation": True}, timeout=10)
                        if answer.headers.get("X-Ruleset") == swaps[-1][1]:
                            break
                    except Exception:
                        pass
                    time.sleep(0.05)
            time.sleep(0.5)
            stop_after[0] = time.time()

        thread = threading.Thread(target=swapper, daemon=True)
        thread.start()
        result = run_load(url, bodies, client="python", connections=connections, duration=total,
                          cpus=client_cpus, timeline=timeline, header="X-Ruleset")
        thread.join()
        rss = sorted(v // 1024 for v in server.worker_rss_kib().values())
        access = server.access_entries()
        replaced = [line for line in server.tail(10 ** 7).splitlines() if "Replacing worker" in line]
    finally:
        server.stop()
    epoch = result["epoch"]
    records = [json.loads(line) for line in open(timeline, encoding="utf-8")]
    first_swap = swaps[0][0] - epoch if swaps else float("inf")
    end = (stop_after[0] or time.time()) - epoch
    steady = [r[1] for r in records if r[0] + r[1] < first_swap]
    during = [r[1] for r in records if r[0] >= first_swap and r[0] + r[1] <= end]
    times = []
    for at, version in swaps:
        first_new = min((r[0] + r[1] for r in records if r[3] == version and r[0] + r[1] >= at - epoch),
                        default=None)
        times.append(round(first_new - (at - epoch), 3) if first_new is not None else None)
    slowest = sorted(records, key=lambda r: -r[1])[:5]
    return {"rules": n_rules, "activations": len(swaps), "activation_s": times,
            "steady": summary(steady), "during": summary(during),
            "failed": sum(1 for r in records if r[2] != 200), "rss_mib": rss,
            # evidence for the slow ones: when they started (s after the first
            # replacement) and the workers that answered, beside each recycle
            "slowest": [{"start_s": round(r[0] - first_swap, 3), "ms": round(r[1] * 1000, 1), "version": r[3]}
                        for r in slowest],
            "swaps_s": [round(at - epoch - first_swap, 3) for at, _ in swaps], "firstSwapEpoch": swaps[0][0] if swaps else None,
            "workers": sorted({e[0] for e in access}), "recycles": replaced}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.activation_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--activations", type=int, default=10)
    parser.add_argument("--before", type=float, default=5.0, help="seconds of steady load first")
    parser.add_argument("--each", type=float, default=12.0,
                        help="seconds between activations (each must answer within them)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-activation-"))
    try:
        wl = workload.build(scratch, 680, 1000, 1000, 500, [args.rules])
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load_start = os.getloadavg()
        doc = run(wl, args.rules, args.activations, args.before, args.each)
        doc.update(started=started, loadavgStart=load_start, loadavgEnd=os.getloadavg())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = args.out or HERE / "results" / f"activation-R{args.rules}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in doc.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
