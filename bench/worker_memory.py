"""RSS of one gunicorn worker serving R generated rules (default 10,000)
before and after it answered N instant POSTs (default 1,000; 500 distinct
bodies, so every chunk a body reaches has had its first use):

    python -m bench.worker_memory [--rules 10000] [--requests 1000] [--out FILE]
                                  [--base REV] [--repeat N] [--env NAME=VALUE ...]

The issue-24 goal: under 300 MiB after 1,000 requests at 10,000 rules.
durable-rules allocates session state per ruleset chunk on first use, so
the figure after traffic, not the one at start, is the one that counts.
`--base`: the tree of an earlier commit (its app/, wsgi.py, gunicorn.conf.py,
from git archive) measured too, alternating with this one, `--repeat` times.
Each run also records the worker's and the master's /proc smaps_rollup (how
much of the worker's RSS it still shares with the master).
Results: bench/results/worker-memory-R<rules>.json (RSS samples included).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from . import http_bench, workload
from .compare import extract
from .load import client_name

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=1000)
    # the Python client stops at the count; wrk's script stop (wrk.thread:stop) left wrk running
    # to its 30-minute duration after the count here (measured: 1,030 answers, then idle)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="python")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--base", help="git revision measured too, alternating with this tree")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in the server's environment (e.g. MALLOC_ARENA_MAX=2); repeatable")
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    scratch = Path(tempfile.mkdtemp(prefix="bench-worker-memory-"))
    sides: list[tuple[str, Path | None]] = [("this", None)]
    runs: dict[str, list[dict]] = {"this": []}
    try:
        if args.base:
            sides.insert(0, ("base", extract(args.base, scratch, ("app", "wsgi.py", "gunicorn.conf.py"))))
            runs["base"] = []
        wl = workload.build(scratch, 680, 1000, 1000, 500, [args.rules])
        started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
        for _ in range(args.repeat):
            for name, root in sides:
                run = http_bench.memory_growth(wl, args.rules, client=client_name(args.client),
                                               requests=args.requests, max_seconds=1800.0, warmup=0.5,
                                               extra_env=extra_env, root=root)
                run.update(loadavg=os.getloadavg(), rssStart_mib=round(run["rssStart_kib"] / 1024, 1),
                           rssEnd_mib=round(run["rssEnd_kib"] / 1024, 1))
                runs[name].append(run)
                print(f"{name}: {run['rssStart_mib']} -> {run['rssEnd_mib']} MiB after {run['requests']} requests",
                      flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = dict(runs["this"][-1])
    result.update(env=extra_env, started=started, loadavgStart=load_start, loadavgEnd=os.getloadavg(),
                  rssEndMedian_mib={name: statistics.median(r["rssEnd_mib"] for r in rs) for name, rs in runs.items()},
                  runs={name: [{k: v for k, v in r.items() if k != "samples"} for r in rs] for name, rs in runs.items()})
    if args.base:
        result["base"] = args.base
    out = args.out or HERE / "results" / f"worker-memory-R{args.rules}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "runs", "smaps_kib")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
