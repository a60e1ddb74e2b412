"""The instant-path goal over HTTP (BENCHMARKS.md), side by side with an earlier commit: the
instant TMF680 POST against the bare Flask endpoint on ONE gunicorn worker
pinned to core 0, wrk (or the Python client) with 4 connections on core 1,
the bare endpoint measured right before each instant run.

    python -m bench.http_compare [--base 6cee343] [--rules 1000,demo]
                                 [--decision-log on,off] [--repeat 3]
                                 [--duration 5] [--warmup 1.5] [--out FILE]

`--rules`: generated rule counts and/or `demo` (rules/telco-demo.yaml over
catalog/, bodies drawn from the demo's offerings: bench/demo_workload.py).
`--decision-log`: the service with RECO_DECISION_LOG on (the default: every
answer recorded) and/or off. Without `--base` only this tree is measured.

Per repeat, rule set and decision-log setting, alternating: bare, then the
base tree's service; bare, then this tree's service (a fresh server each
time, on a fresh copy of the same data). The figure is the ratio instant /
bare of each pair (taken seconds apart, so what else runs on the machine
weighs on both); medians over the repeats. Also the worker's CPU time per
request of each (`cpu_ratio` = bare CPU / instant CPU: the requests/s ratio
one idle core would give), steadier than requests/s when other processes
share core 0.
Results: bench/results/http-compare-R<rules>.json and a plot beside it (.png).
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

from . import demo_workload, http_bench, report, workload
from .compare import extract
from .load import client_name, run_load
from .server import Server, cpu_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = "1 worker, pinned"


def with_cpu(server: Server, url: str, bodies: Path, *, warmup: float, **options) -> dict:
    """http_bench.measured, plus the worker's CPU microseconds per request
    served in the measured window (/proc: user + system): on a shared machine
    a steadier figure than requests/s, which other processes on core 0 lower."""
    if warmup:
        run_load(url, bodies, client=options["client"], connections=options["connections"],
                 duration=warmup, cpus=options["cpus"])
    pid = server.worker_pids()[0]
    before = cpu_seconds(pid)
    result = http_bench.measured(server, url, bodies, warmup=0, **options)
    after = cpu_seconds(pid)
    served = result["server"]["requests"]
    result["cpu_us_per_request"] = (round((after - before) * 1e6 / served, 1)
                                    if served and before is not None and after is not None else None)
    return result


def pair(wl, bare: Server, root: Path, n_rules: int, name: str, *, client: str, duration: float,
         warmup: float, extra_env: dict | None = None) -> dict:
    """Bare, then the instant POST of the tree at `root`, on one pinned worker."""
    workers, server_cpus, client_cpus, connections = http_bench.CONFIGS[CONFIG]
    bodies = http_bench.body_files(wl)["mix"]
    options = dict(client=client, connections=connections, cpus=client_cpus, duration=duration, warmup=warmup)
    bare_run = with_cpu(bare, bare.url + "/bare", bodies, **options)
    server = http_bench.reco_server(wl, n_rules, workers, server_cpus, name, root=root, extra_env=extra_env)
    try:
        instant = with_cpu(server, server.url + http_bench.RECO_PATH, bodies, **options)
        rss = sorted(server.worker_rss_kib().values())
    finally:
        server.stop()
    cpu_bare, cpu_instant = bare_run["cpu_us_per_request"], instant["cpu_us_per_request"]
    return {"bare_rps": bare_run["rps"], "instant_rps": instant["rps"],
            "ratio": round(instant["rps"] / bare_run["rps"], 4) if bare_run["rps"] else None,
            "bare_cpu_us": cpu_bare, "instant_cpu_us": cpu_instant,
            "cpu_ratio": round(cpu_bare / cpu_instant, 4) if cpu_bare and cpu_instant else None,
            "instant_p50_ms": instant["p50_ms"], "instant_p99_ms": instant["p99_ms"],
            "instant_server_p50_ms": instant["server"]["p50_ms"],
            "instant_server_p99_ms": instant["server"]["p99_ms"],
            "instant_non200": instant["server"]["non200"] + instant.get("errors", 0),
            "bare_server_p50_ms": bare_run["server"]["p50_ms"], "rss_mib": [v // 1024 for v in rss],
            "loadavg": [bare_run["loadavg"][0], instant["loadavg"][1]]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="git revision to compare with (default: this tree only)")
    parser.add_argument("--rules", default="1000", help="comma-separated rule counts and/or 'demo'")
    parser.add_argument("--decision-log", default="on", help="comma-separated among on,off")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--work", type=Path, help="generated workload (default: a temp dir)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    client = client_name(args.client)
    scratch = Path(tempfile.mkdtemp(prefix="bench-http-compare-"))
    try:
        return run(args, client, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)      # the base tree, server data, a generated workload


def run(args, client: str, scratch: Path) -> int:
    work = args.work or scratch / "work"
    sets = [r.strip() for r in args.rules.split(",") if r.strip()]
    counts = [int(r) for r in sets if r != demo_workload.DEMO_RULES]
    workloads = {str(n): workload.build(work, 680, 1000, 1000, 500, counts) for n in counts[:1]}
    for n in counts[1:]:
        workloads[str(n)] = workloads[str(counts[0])]
    if demo_workload.DEMO_RULES in sets:
        workloads[demo_workload.DEMO_RULES] = demo_workload.build(work / "demo", 680, 1000, 500)
    logs = [v.strip() for v in args.decision_log.split(",") if v.strip()]
    sides = [("new", ROOT)]
    if args.base:
        sides.insert(0, ("base", extract(args.base, scratch, ("app", "wsgi.py", "gunicorn.conf.py"))))
    out = args.out or HERE / "results" / f"http-compare-R{'-'.join(sets)}.json"
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()
    workers, server_cpus, _client_cpus, _connections = http_bench.CONFIGS[CONFIG]
    runs: dict[str, list[dict]] = {}
    bare = Server("bench.bare_app:app", work, workers=workers, cpus=server_cpus, name="bare").start()
    try:
        for repeat in range(args.repeat):
            for rules in sets:
                wl = workloads[rules]
                n_rules = int(rules) if rules != demo_workload.DEMO_RULES else 0
                for log_setting in logs:
                    env = {"RECO_DECISION_LOG": "1" if log_setting == "on" else "0"}
                    for side, root in sides:
                        key = f"{side} R={rules} log={log_setting}"
                        one = pair(wl, bare, root, n_rules, f"{side}-{rules}-{log_setting}-{repeat}",
                                   client=client, duration=args.duration, warmup=args.warmup, extra_env=env)
                        runs.setdefault(key, []).append(one)
                        http_bench.log(f"{key}: bare {one['bare_rps']} req/s, instant "
                                       f"{one['instant_rps']} req/s, ratio {one['ratio']}, server p50/p99 "
                                       f"{one['instant_server_p50_ms']}/{one['instant_server_p99_ms']} ms, "
                                       f"CPU/request {one['instant_cpu_us']} us (bare {one['bare_cpu_us']} us), "
                                       f"non-200 {one['instant_non200']}, load {one['loadavg']}")
    finally:
        bare.stop()
    medians = {}
    for key, rs in runs.items():
        numbers = [k for k, v in rs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        medians[key] = {k: statistics.median(r[k] for r in rs if r[k] is not None) for k in numbers}
    result = {"base": args.base, "rules": sets, "decisionLog": logs, "config": CONFIG, "client": client,
              "duration_s": args.duration, "started": started, "loadavgStart": load_start,
              "loadavgEnd": os.getloadavg(), "median": medians, "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    report.http_compare_plot(result, out.with_suffix(".png"))
    for key, m in medians.items():
        print(f"{key}: ratio {m['ratio']:.3f} (instant {m['instant_rps']:.0f} / bare {m['bare_rps']:.0f} req/s), "
              f"server p50 {m['instant_server_p50_ms']} ms p99 {m['instant_server_p99_ms']} ms; CPU per request "
              f"{m['instant_cpu_us']} us (bare {m['bare_cpu_us']} us): cpu_ratio {m['cpu_ratio']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
