"""Experiments and contact policies together, over HTTP: the instant TMF680
POST with two running arms AND three contact policies against the same
POST without them, in the same worker, in the same run, on each store.

    python -m bench.contact_experiments_bench [--backend tinydb|postgresql|both]
                                              [--rounds 15] [--block 100] [--out FILE]

One server process (the worker) serves two apps built side by side
(werkzeug's DispatcherMiddleware under werkzeug's single-threaded HTTP
server: gunicorn runs one app per worker, and the goal is the same worker):
`/without/...` on the demo rules as they are (no experiments file, no
policy), `/with/...` on the same rules at 1.1.0 and 1.2.0, both declaring
the three contact policies of bench/contact_bench.py (maxImpressions on a
category per channel, pauseAfterRejected, maxOffersPerDay: the last reads
the party's answers too) and an experiments file running both as arms
(50/50, every channel). Each app has its own copy of the same data (20,000
reactions of 1,000 parties; on PostgreSQL a database each in one cluster).
The versions hold the same rules, so the difference is the experiment's and
the policies' own cost.

This process is the client: one keep-alive HTTP/1.1 connection, one
request at a time, blocks of `block` requests alternating without, with,
... for `rounds` rounds, on bodies that do not repeat (party, cart, channel
vary; every cart holds a phone, so every request's rules propose items and
the policies have something to check; no validFor: evaluated now, the
history read for real). Per block: requests/s, the worker's CPU time per
request (/proc), and on PostgreSQL the database's (bench/pg_cpu.py).
Medians and ratios (with / without; CPU: without / with, the requests/s
ratio an idle machine would give). Results:
bench/results/contact-experiments.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .contact_bench import PATH, PARTIES, POLICIES, ROOT, bodies, reactions
from .pg_cpu import cluster_cpu_seconds, postmaster_pid
from .server import cpu_seconds

HERE = Path(__file__).resolve().parent
EXPERIMENTS = """\
version: 1
experiments:
  - id: bench-ab
    status: running
    start: 2026-01-01T00:00:00Z
    control: control
    arms:
      - {name: challenger, version: "1.2.0", weight: 50}
      - {name: control, version: "1.1.0", weight: 50}
"""


def rules_folder(work: Path, with_both: bool) -> Path:
    """The demo rules; `with_both`: 1.1.0 (working copy) and 1.2.0
    (recorded) declaring POLICIES, and the experiments file."""
    from app.rules.authoring.lockfile import lock_rulesets
    folder = work / ("rules-with" if with_both else "rules-without")
    shutil.copytree(ROOT / "tests" / "demo" / "rules", folder)
    if with_both:
        path = folder / "telco-demo.yaml"
        text = path.read_text() + POLICIES
        (folder / "versions").mkdir(exist_ok=True)
        (folder / "versions" / "telco-demo@1.2.0.yaml").write_text(
            text.replace('version: "1.0.0"', 'version: "1.2.0"'))
        path.write_text(text.replace('version: "1.0.0"', 'version: "1.1.0"'))
        lock_rulesets(folder, "telco-demo", False)
        (folder / "telco-demo.experiments.yaml").write_text(EXPERIMENTS)
    return folder


def serve(config: Path) -> None:
    """The worker: both apps under one HTTP server; prints its port."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server

    from app import create_app
    apps = {}
    for name, options in json.loads(config.read_text()).items():
        apps["/" + name] = create_app(**options, catalog_dir=ROOT / "tests" / "demo" / "catalog",
                                      background_workers=False, log_level="WARNING")
    with_app = apps["/with"].extensions["reco"]
    with_app.recommender.experiments.refresh(force=True)
    assert with_app.recommender.experiments.status()["running"] == ["bench-ab"], \
        with_app.recommender.experiments.status()
    assert with_app.rules.engine.ruleset.contact_policies
    server = make_server("127.0.0.1", 0, DispatcherMiddleware(apps["/without"], apps))
    print(server.server_port, flush=True)
    server.serve_forever()


def post(conn, path: str, body: dict) -> dict:
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    assert response.status == 200, data[:500]
    return json.loads(data)


def run(backend: str, rounds: int, block: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from app.store import open_store

    work = Path(tempfile.mkdtemp(prefix="contact-experiments-bench-"))
    cluster = worker = None
    try:
        now = dt.datetime.now(dt.timezone.utc)
        config = {}
        if backend == "postgresql":
            from pgcluster import PgCluster
            cluster = PgCluster(work / "pg").start()
        for name in ("without", "with"):
            options = {"data_dir": str(work / f"data-{name}"),
                       "rules_dir": str(rules_folder(work, name == "with"))}
            if cluster is not None:
                options["store_url"] = cluster.new_database()
            store = open_store(options.get("store_url") or options["data_dir"])
            store.insert_many("recommendationReaction", list(reactions(20 * PARTIES, now)))
            store.close()
            config[name] = options
        (work / "apps.json").write_text(json.dumps(config))
        env = {**os.environ, "RECO_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        worker = subprocess.Popen([sys.executable, "-m", "bench.contact_experiments_bench", "--serve",
                                   str(work / "apps.json")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=open(work / "worker.log", "wb"), text=True)
        line = worker.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"worker did not start: {(work / 'worker.log').read_text()[-2000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", int(line))
        postmaster = postmaster_pid(work / "pg") if cluster is not None else None
        arms = {}
        for name in ("without", "with"):                  # warm-up: every party once
            for body in bodies(PARTIES, 999):
                answer = post(conn, f"/{name}{PATH}", body)
                if name == "with":
                    arm = (answer.get("experiment") or {}).get("arm")
                    arms[arm] = arms.get(arm, 0) + 1
        rps = {"without": [], "with": []}
        cpu = {"without": [], "with": []}
        db_cpu = {"without": [], "with": []}
        seed = 0
        for _ in range(rounds):
            for name in ("without", "with"):
                seed += 1
                batch = list(bodies(block, seed))
                db_started = cluster_cpu_seconds(postmaster) if postmaster else 0.0
                cpu_started, started = cpu_seconds(worker.pid), time.perf_counter()
                for body in batch:
                    post(conn, f"/{name}{PATH}", body)
                rps[name].append(block / (time.perf_counter() - started))
                cpu[name].append((cpu_seconds(worker.pid) - cpu_started) / block)
                if postmaster:
                    db_cpu[name].append((cluster_cpu_seconds(postmaster) - db_started) / block)
        median = statistics.median
        result = {"backend": backend, "rounds": rounds, "block": block, "arms_in_warmup": arms,
                  "without_rps": round(median(rps["without"]), 1), "with_rps": round(median(rps["with"]), 1),
                  "ratio": round(median(rps["with"]) / median(rps["without"]), 3),
                  "pair_ratios": [round(b / a, 3) for a, b in zip(rps["without"], rps["with"])],
                  "without_cpu_ms": round(median(cpu["without"]) * 1000, 3),
                  "with_cpu_ms": round(median(cpu["with"]) * 1000, 3),
                  "cpu_ratio": round(median(cpu["without"]) / median(cpu["with"]), 3)}
        if postmaster:
            total = {n: median(a + b for a, b in zip(cpu[n], db_cpu[n])) for n in cpu}
            result.update({"without_db_cpu_ms": round(median(db_cpu["without"]) * 1000, 3),
                           "with_db_cpu_ms": round(median(db_cpu["with"]) * 1000, 3),
                           "total_cpu_ratio": round(total["without"] / total["with"], 3)})
        return result
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=("tinydb", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "contact-experiments.json")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    result = {"load_average_before": os.getloadavg()}
    backends = ("tinydb", "postgresql") if args.backend == "both" else (args.backend,)
    result["instant"] = []
    for backend in backends:
        result["instant"].append(run(backend, args.rounds, args.block))
        print(json.dumps(result["instant"][-1]), flush=True)
    result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
