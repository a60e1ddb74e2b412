"""The instant TMF680 POST through the whole Flask app in one process (no
gunicorn, no sockets): thread CPU per request, so that a change to the
per-request path (hooks, log line, metrics, body reading, ranking, decision
recording) is measured in µs, side by side with another tree, on a shared
machine where wall req/s cannot tell them apart.

    python -m bench.instant_inprocess [--base REV] [--rules 1000,demo]
                                      [--rounds 5] [--passes 2] [--profile FILE]
                                      [--answers FILE]

Per round and rule set, alternating: a fresh process of the base tree (git
archive of `app/`), then one of this tree; each builds the app as
gunicorn's worker does (wsgi.py's create_app, RECO_LOG_FORMAT=json, the
decision log on, prometheus-client in multiprocess mode, the log to
/dev/null), warms up on the 500 bodies, then replays them `--passes` times
through `app.wsgi_app`. The figure: median and mean thread CPU per request
(µs) of the request thread, and the process CPU per request (the decision
log's flusher thread included). `--profile` writes a cProfile of one pass of
this tree; `--answers` writes each answer (status, headers that do not vary,
body without the decision id and href) to compare two trees byte for byte.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"

CHILD = r"""
import io, json, os, sys, time
work, rules_dir, catalog_dir, ruleset, data, passes, profile, answers = sys.argv[1:9]
passes = int(passes)
os.environ.update({"RECO_DATA_DIR": data, "RECO_RULES_DIR": rules_dir, "RECO_CATALOG_DIR": catalog_dir,
                   "RECO_RULESET": ruleset, "RECO_LOG_FORMAT": "json", "RECO_DECISION_LOG": "1"})
null = os.open(os.devnull, os.O_WRONLY)
saved = os.dup(2)
os.dup2(null, 2)
from app import create_app
app = create_app()
bodies = [line.encode() for line in open(os.path.join(work, "bodies.jsonl"), "rb").read().decode().splitlines() if line]
PATH = %r
def environ(body):
    return {"REQUEST_METHOD": "POST", "PATH_INFO": PATH, "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*"}
seen = {}
def start_response(status, headers, exc_info=None):
    seen["status"], seen["headers"] = status, headers
def one(body):
    out = b"".join(app.wsgi_app(environ(body), start_response))
    return out
for body in bodies:          # warm up (first use of every chunk)
    one(body)
if answers != "-":
    with open(answers, "w") as handle:
        for body in bodies:
            doc = json.loads(one(body))
            doc.pop("id", None); doc.pop("href", None)
            headers = {k: v for k, v in seen["headers"] if k not in ("X-Request-ID",)}
            handle.write(json.dumps([seen["status"], headers, doc], sort_keys=False) + "\n")
costs = []
tt, pt = time.thread_time, time.process_time
p0 = pt()
for _ in range(passes):
    for body in bodies:
        t0 = tt()
        one(body)
        costs.append(tt() - t0)
p1 = pt()
if profile != "-":
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
    for body in bodies:
        one(body)
    prof.disable()
    prof.dump_stats(profile)
os.dup2(saved, 2)
costs.sort()
print(json.dumps({"median_us": costs[len(costs) // 2] * 1e6, "mean_us": sum(costs) / len(costs) * 1e6,
                  "p90_us": costs[int(len(costs) * 0.9)] * 1e6,
                  "process_us": (p1 - p0) / len(costs) * 1e6, "n": len(costs)}))
""" % PATH


def prepare(work: Path, sets: list[str]) -> dict[str, tuple]:
    """Workloads as bench.http_compare makes them (seed 680, 1,000 offerings and
    customers, 500 bodies): {rule set: (workload root, rules dir, catalog dir, ruleset id, data template)}."""
    from . import demo_workload, http_bench, workload
    out = {}
    counts = [int(s) for s in sets if s != demo_workload.DEMO_RULES]
    if counts:
        wl = workload.build(work / "gen", 680, 1000, 1000, 500, counts)
        for n in counts:
            out[str(n)] = (wl.root, wl.rules_dir(n), wl.catalog_dir, workload.RULESET_ID,
                           http_bench.parties_store(wl))
    if demo_workload.DEMO_RULES in sets:
        wl = demo_workload.build(work / "demo", 680, 1000, 500)
        out[demo_workload.DEMO_RULES] = (wl.root, wl.rules_dir(0), wl.catalog_dir, demo_workload.RULESET_ID,
                                         http_bench.parties_store(wl))
    return out


def probe(tree: Path, spec: tuple, scratch: Path, passes: int, profile: str = "-", answers: str = "-") -> dict:
    root, rules_dir, catalog_dir, ruleset, template = spec
    data = Path(tempfile.mkdtemp(prefix="data-", dir=scratch))
    shutil.rmtree(data)
    shutil.copytree(template, data)
    prom = Path(tempfile.mkdtemp(prefix="prom-", dir=scratch))
    env = dict(os.environ, PYTHONPATH=str(tree), PROMETHEUS_MULTIPROC_DIR=str(prom))
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(rules_dir), str(catalog_dir), ruleset,
                              str(data), str(passes), profile, answers], cwd=tree, env=env,
                             capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(prom, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"probe in {tree} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instant_inprocess", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="git revision to compare with (default: this tree only)")
    parser.add_argument("--rules", default="1000,demo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--work", type=Path, help="workload folder (kept; default: a temp dir)")
    parser.add_argument("--profile", help="cProfile output of this tree (one pass; first rule set)")
    parser.add_argument("--answers", help="write this tree's answers (first rule set) to this file")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from .compare import extract
    scratch = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    try:
        sets = [s.strip() for s in args.rules.split(",") if s.strip()]
        work = args.work or scratch / "work"
        specs = prepare(work, sets)
        sides = [("new", ROOT)]
        if args.base:
            sides.insert(0, ("base", extract(args.base, scratch, ("app", "wsgi.py"))))
        runs: dict[str, list[dict]] = {}
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = [os.getloadavg()[0]]
        if args.profile or args.answers:
            probe(ROOT, specs[sets[0]], scratch, 1, args.profile or "-", args.answers or "-")
        for _ in range(args.rounds):
            for rules in sets:
                for side, tree in sides:
                    one = probe(tree, specs[rules], scratch, args.passes)
                    runs.setdefault(f"{side} R={rules}", []).append(one)
                    print(f"{side} R={rules}: median {one['median_us']:.0f} us, mean {one['mean_us']:.0f} us, "
                          f"process {one['process_us']:.0f} us per request, load {os.getloadavg()[0]:.1f}",
                          flush=True)
        load.append(os.getloadavg()[0])
        medians = {key: {k: round(statistics.median(r[k] for r in rs), 1) for k in rs[0] if k != "n"}
                   for key, rs in runs.items()}
        doc = {"base": args.base, "rules": sets, "started": started, "loadavg": load, "median": medians,
               "runs": runs}
        print(json.dumps(medians, indent=1))
        if args.out:
            args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
