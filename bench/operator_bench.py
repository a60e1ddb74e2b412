"""The operator goals of BENCHMARKS.md, measured on real gunicorn servers in wall time,
side by side with an earlier commit (alternating fresh servers of both trees).

    python -m bench.operator_bench --base 6cee343 [--activations 50] [--rules 1000]
                                   [--cold-rules 10000] [--repeat 2] [--only activations,cold]

activations  One server (2 workers, the project's gunicorn.conf.py) serves a
             `--rules` rule set pinned at 1.0.0 under light load (2 client
             connections, the workload's instant bodies). `--activations` times:
             a new version file is written to rules/versions/ and
             `POST /admin/rules/activate` pins it (what `flask rules activate`
             does, without a CLI process start each time). Per activation: wall
             seconds from the POST to the first answer from the new version
             (X-Ruleset) and to the last answer from the old one; per-worker RSS
             once every worker serves the new version; failed requests; the
             slowest request. The goal (BENCHMARKS.md): every worker stays under 2x
             its RSS after the first activation, no failed request.
cold         A cold worker at `--cold-rules`: a 1-worker server is started and
             the instant endpoint polled every 20 ms; wall seconds to the first
             200 from the server's start and from the worker's fork (its start
             time in /proc); the same for the replacement gunicorn forks when
             that worker leaves (SIGTERM, as a recycled worker does). Then one
             activation of a new version of the same size under light load,
             timed as above.

Both trees are run from a `git archive` of the base commit's app/, wsgi.py and
gunicorn.conf.py, and this checkout. Results: bench/results/operator.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from .pyclient import keepalive_post
from .server import Server, service_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECO_PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
ADMIN_KEY = "bench-admin-key"
RULESET = "bench"


def log(message: str) -> None:
    print(f"[operator {time.strftime('%H:%M:%S')}] {message}", flush=True)


def uptime() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def extract(rev: str, into: Path) -> Path:
    """app/, wsgi.py and gunicorn.conf.py of `rev` (the repository is not touched)."""
    archive = into / "base.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "app", "wsgi.py", "gunicorn.conf.py"],
                       stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


class TreeServer(Server):
    """bench.server.Server run from another tree (its app, wsgi.py and gunicorn.conf.py)."""

    def __init__(self, tree: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tree = tree
        self.env["PYTHONPATH"] = str(tree)

    def spawn(self) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(self.tree / "gunicorn.conf.py"),
               "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers), self.app]
        self.log = open(self.log_path, "ab")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(cmd, cwd=self.tree, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 300.0) -> "TreeServer":
        self.spawn()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.tail()}")
            if len(self.worker_pids()) >= self.workers and all(
                    post(self.url, BODIES[0])[0] == 200 for _ in range(self.workers * 2)):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.tail()}")


BODIES: list[bytes] = []


def post(url: str, body: bytes, timeout: float = 120.0) -> tuple[int, str | None]:
    parts = url.split("//", 1)[1]
    host, port = parts.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", RECO_PATH, body=body, headers={"Content-Type": "application/json",
                                                            "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Ruleset")
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


class LightLoad:
    """`connections` keep-alive clients POSTing the bodies in turn until stopped;
    every answer recorded as (end time, latency s, status, X-Ruleset)."""

    def __init__(self, url: str, connections: int = 2):
        self.url = url
        self.connections = connections
        self.records: list[tuple[float, float, int, str | None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(connections)]

    def _run(self, offset: int) -> None:
        host, port = self.url.split("//", 1)[1].split(":")
        conn = None
        i = offset
        while not self._stop.is_set():
            body = BODIES[i % len(BODIES)]
            i += self.connections
            began = time.perf_counter()
            conn, status, version, _size = keepalive_post(conn, host, int(port), RECO_PATH, body, 120, "X-Ruleset")
            ended = time.perf_counter()
            with self._lock:
                self.records.append((ended, ended - began, status, version))
            time.sleep(0.005)           # light load: a storefront, not a stress test

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(150)

    def since(self, start: float) -> list[tuple]:
        with self._lock:
            return [r for r in self.records if r[0] >= start]


def activate(url: str, version: str) -> int:
    host, port = url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        conn.request("POST", "/admin/rules/activate", body=json.dumps({"rulesetId": RULESET, "version": version}),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def with_version(text: str, version: str) -> str:
    return re.sub(r"^version: .*$", f'version: "{version}"', text, count=1, flags=re.M)


def timed_activation(server: Server, load: LightLoad, rules_dir: Path, text: str, version: str,
                     wait: float = 600.0) -> dict:
    """Write the version file, POST the activation, wait until every worker
    answers from it; wall seconds from the POST."""
    versions = rules_dir / "versions"
    versions.mkdir(exist_ok=True)
    staged = versions / f".{RULESET}@{version}.yaml.new"
    staged.write_text(with_version(text, version), encoding="utf-8")
    os.replace(staged, versions / f"{RULESET}@{version}.yaml")
    new = f"{RULESET}@{version}"
    t0 = time.perf_counter()
    status = activate(server.url, version)
    t_post = time.perf_counter() - t0
    deadline = time.perf_counter() + wait
    first_new = None
    while time.perf_counter() < deadline:
        recent = load.since(t0)
        news = [r for r in recent if r[3] == new]
        if news and first_new is None:
            first_new = min(r[0] for r in news)
        # every worker on the new version: several answers in a row from it
        tail = recent[-4 * load.connections:]
        if first_new is not None and len(tail) >= 4 * load.connections and all(r[3] == new for r in tail):
            break
        time.sleep(0.02)
    records = load.since(t0)
    old = [r for r in records if r[3] != new and r[2] == 200]
    return {"version": version, "status": status, "post_s": round(t_post, 3),
            "firstNew_s": round(first_new - t0, 3) if first_new else None,
            "lastOld_s": round(max((r[0] for r in old), default=t0) - t0, 3),
            "failed": sum(1 for r in records if r[2] != 200),
            "max_ms": round(max((r[1] for r in records), default=0) * 1000, 1),
            "rss_mib": {str(pid): round(kib / 1024, 1) for pid, kib in server.worker_rss_kib().items()}}


def rules_dir_for(scratch: Path, name: str, text: str) -> Path:
    rules_dir = scratch / name / "rules"
    if rules_dir.parent.exists():
        shutil.rmtree(rules_dir.parent)
    rules_dir.mkdir(parents=True)
    (rules_dir / f"{RULESET}.yaml").write_text(text, encoding="utf-8")
    return rules_dir


def make_server(tree: Path, scratch: Path, name: str, rules_dir: Path, catalog_dir: Path, workers: int,
                extra_env: dict | None = None) -> TreeServer:
    data = scratch / name / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = service_env(data, rules_dir, catalog_dir, RULESET)
    env.update({"RECO_ADMIN_KEYS": ADMIN_KEY, "RECO_LOG_FORMAT": "console"})
    env.update(extra_env or {})
    return TreeServer(tree, "wsgi:app", scratch / name, workers=workers, env=env, name=name)


def activations_run(tree: Path, scratch: Path, name: str, text: str, catalog_dir: Path, count: int) -> dict:
    rules_dir = rules_dir_for(scratch, name, text)
    server = make_server(tree, scratch, name, rules_dir, catalog_dir, workers=2).start()
    steps = []
    seen_workers: set[int] = set()
    try:
        with LightLoad(server.url) as load:
            assert activate(server.url, "1.0.0") == 200         # pinned: a new file alone does not switch
            for k in range(1, count + 1):
                step = timed_activation(server, load, rules_dir, text, f"1.{k}.0")
                seen_workers |= {int(pid) for pid in step["rss_mib"]}
                steps.append(step)
                if k % 10 == 0:
                    log(f"{name}: {k} activations, last {step}")
            total = load.since(0)
    finally:
        server.stop()
    first = max(steps[0]["rss_mib"].values())
    peak = max(v for s in steps for v in s["rss_mib"].values())
    first_new = [s["firstNew_s"] for s in steps if s["firstNew_s"] is not None]
    all_new = [s["lastOld_s"] for s in steps]
    return {"activations": count, "requests": len(total), "failed": sum(1 for r in total if r[2] != 200),
            "maxLatency_ms": round(max(r[1] for r in total) * 1000, 1),
            "slower100ms": sum(1 for r in total if r[1] > 0.1),
            "firstRss_mib": first, "peakRss_mib": peak, "peakOverFirst": round(peak / first, 2),
            "workersSeen": len(seen_workers),
            "firstNew_p50_s": statistics.median(first_new) if first_new else None,
            "firstNew_max_s": max(first_new) if first_new else None,
            "allNew_p50_s": statistics.median(all_new), "allNew_max_s": max(all_new),
            "steps": steps}


def _fork_epoch(pid: int) -> float:
    """When a process started (epoch seconds, clock-tick resolution), from /proc."""
    boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    with open(f"/proc/{pid}/stat") as handle:
        start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")


def _first_200_of_new_worker(server: Server, old: set[int]) -> tuple[int, float, float]:
    """(pid, fork epoch, first-200 epoch) of the next worker not in `old`."""
    pid = None
    while pid is None:
        if server.process.poll() is not None:
            raise RuntimeError(server.tail())
        fresh = [p for p in server.worker_pids() if p not in old]
        pid = fresh[0] if fresh else None
        time.sleep(0.01)
    forked_at = _fork_epoch(pid)
    while post(server.url, BODIES[0], timeout=2)[0] != 200 or set(server.worker_pids()) - {pid} - old:
        if server.process.poll() is not None:
            raise RuntimeError(server.tail())
        time.sleep(0.02)
    return pid, forked_at, time.time()


def cold_run(tree: Path, scratch: Path, name: str, text: str, catalog_dir: Path) -> dict:
    """A cold start: the server from its start, its worker from its fork, to the
    first 200; then a replacement worker (the first one stopped, as a recycle
    does) from its fork to its first 200; then one activation of a same-size
    version under light load."""
    rules_dir = rules_dir_for(scratch, name, text)
    server = make_server(tree, scratch, name, rules_dir, catalog_dir, workers=1)
    started = time.time()
    server.spawn()
    try:
        first, forked_at, served_at = _first_200_of_new_worker(server, set())
        rss = round(max(server.worker_rss_kib().values()) / 1024, 1)
        os.kill(first, signal.SIGTERM)          # gracefully, as a recycled worker leaves
        _pid, refork_at, reserved_at = _first_200_of_new_worker(server, {first})
        activate(server.url, "1.0.0")
        with LightLoad(server.url) as load:
            time.sleep(1.0)
            step = timed_activation(server, load, rules_dir, text, "1.1.0")
    finally:
        server.stop()
    return {"serverStart_s": round(served_at - started, 2), "coldWorker_s": round(served_at - forked_at, 2),
            "replacementWorker_s": round(reserved_at - refork_at, 2), "rssAfterStart_mib": rss,
            "activation": step}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--activations", type=int, default=50)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--cold-rules", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", default="activations,cold")
    parser.add_argument("--sides", default="base,new", help="which trees to run (base, new or both)")
    parser.add_argument("--work", type=Path, help="generated workload (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "operator.json")
    args = parser.parse_args(argv)
    phases = set(args.only.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    work = args.work or scratch / "work"
    if not (work / "bodies.jsonl").exists():
        from . import workload
        workload.build(work, 680, 1000, 1000, 500, sorted({args.rules, args.cold_rules}))
    BODIES.extend(line.rstrip(b"\n") for line in open(work / "bodies.jsonl", "rb") if line.strip())
    trees = {"base": extract(args.base, scratch), "new": ROOT}
    trees = {side: tree for side, tree in trees.items() if side in args.sides.split(",")}
    results: dict = {"base": args.base, "loadavgBefore": uptime(), "runs": {"base": [], "new": []}}
    try:
        for attempt in range(args.repeat):
            for side, tree in trees.items():          # alternate: both see the same machine
                run: dict = {}
                if "cold" in phases:
                    text = (work / f"rules-{args.cold_rules}" / "bench.yaml").read_text()
                    run["cold"] = cold_run(tree, scratch, f"{side}-cold-{attempt}", text, work / "catalog")
                    log(f"{side} cold R={args.cold_rules}: {run['cold']}")
                if "activations" in phases:
                    text = (work / f"rules-{args.rules}" / "bench.yaml").read_text()
                    run["activations"] = activations_run(tree, scratch, f"{side}-act-{attempt}", text,
                                                         work / "catalog", args.activations)
                    summary = {k: v for k, v in run["activations"].items() if k != "steps"}
                    log(f"{side} {args.activations} activations R={args.rules}: {summary}")
                results["runs"][side].append(run)
    finally:
        results["loadavgAfter"] = uptime()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
