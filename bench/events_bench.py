"""Benchmarks of event delivery (hubs must not slow writes): `python -m bench.events_bench`
(about 5 minutes on the 2-core machine; `--quick` about 1.5 minutes, smaller
sizes, judges nothing). Results: bench/results/events.json, events.md and
events-create-latency.png (or --out DIR); with `--store postgresql` each
server gets a fresh database of a throw-away cluster (tests/pgcluster.py, as
bench/data_plane.py), results events-postgresql.json, .md and .png.

1. Create latency, p50/p99, with 0, 10, 100 and 1,000 customer hubs
   registered, every hub subscribed to every event (the full fan-out runs in
   the background while the creates are measured); 2 workers. Goal: at 1,000
   hubs within 1.2x of 0 hubs.
2. Delivery lag, p50/p99, from the 201 of a create to the healthy listener
   having it, with 100 healthy hubs and 10 that answer 200 then trickle one
   body byte a second; 2 workers. Goal: healthy p99 under 1 s.
3. Write throughput (201s per second, 8 closed-loop clients), no hub vs one
   healthy hub, 4 workers, run alternately. Goal: ratio at least 0.8.

`--keep-up SECONDS` runs instead: 8 closed-loop clients creating customers for
SECONDS against 2 workers with one healthy hub; every 2 s the backlog and the
time /health took; at the end the pending notifications, the oldest's age and
the time to deliver the rest. Goal: nothing waits longer than a few seconds.
`--health-backlog N` runs instead: N creates with one hub whose listener is
down (so all N wait), then 20 calls of /health: their median and maximum, and
the workers' RSS before and after.

The listeners run in a separate process (`--listener`), so their work does not
share the measuring client's interpreter; the server is the project's
gunicorn configuration (bench/server.py).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from .server import Server, free_port
from .http_bench import loadavg, log

HERE = Path(__file__).resolve().parent
C = "/tmf-api/customerManagement/v4/customer"
HUB = "/tmf-api/customerManagement/v4/hub"

PROFILES = {
    # 0 hubs first and last: the first server of a run has been slower (cold
    # caches), the ratios use the last one
    "full": dict(hub_counts=[0, 10, 100, 1000, 0], creates=100, lag_creates=20, lag_rate=4.0,
                 throughput_seconds=10.0, throughput_rounds=2),
    "quick": dict(hub_counts=[0, 10, 100, 0], creates=40, lag_creates=10, lag_rate=4.0,
                  throughput_seconds=3.0, throughput_rounds=1),
}


# -- the listener process ----------------------------------------------------

def serve_listener(port: int) -> None:
    """/h/<n>: answers 200 at once and notes (customer id, hub, time received);
    /t/<n>: answers 200 with a 100 kB body sent one byte a second;
    GET /stats: the notes as JSON."""
    notes: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received = time.time()
            if self.path.startswith("/t/"):
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(1.0)
                except OSError:
                    pass
                self.close_connection = True
                return
            with lock:
                event = json.loads(body)["event"]
                notes.append((event.get("customer", {}).get("id"), self.path, received))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802
            with lock:
                data = json.dumps(notes).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # the listen() backlog, taken when the server is built: set on the
        # instance afterwards it stayed socketserver's 5, and the connections
        # beyond it waited for the kernel's 1 s SYN retransmission
        request_queue_size = 1024

    Server(("127.0.0.1", port), Handler).serve_forever()


class ListenerProcess:
    """The listeners, in a process of their own; `nice` > 0 lowers its CPU
    priority, to see how much of the create latency is the listeners' work on
    the same cores (in production they are on other machines)."""

    def __init__(self, nice: int = 0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "bench.events_bench", "--listener",
                                         str(self.port)], cwd=HERE.parent,
                                        preexec_fn=(lambda: os.nice(nice)) if nice else None)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(self.url + "/stats", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("listener did not start")

    def notes(self) -> list:
        return requests.get(self.url + "/stats", timeout=30).json()

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


# -- helpers -------------------------------------------------------------------

def customer() -> dict:
    return {"name": f"bench-{uuid.uuid4().hex[:8]}",
            "engagedParty": {"id": uuid.uuid4().hex, "@referredType": "Individual"}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


#: a fresh PostgreSQL database URL per server, when measuring that store
NEW_DATABASE = None
#: settings every server of the run gets (--dispatcher-nice)
EXTRA_ENV: dict[str, str] = {}


def start_server(workdir: Path, name: str, workers: int, **env) -> Server:
    data = workdir / f"data-{name}"
    settings = {"RECO_DATA_DIR": str(data), "RECO_MAX_HUBS_PER_API": "2000", **EXTRA_ENV, **env}
    if NEW_DATABASE is not None:
        settings["RECO_STORE_URL"] = NEW_DATABASE()
    return Server("wsgi:app", workdir, workers=workers, env=settings, name=name).start()


def register(session: requests.Session, server: Server, callbacks: list[str]) -> None:
    for callback in callbacks:
        response = session.post(server.url + HUB, json={"callback": callback}, timeout=30)
        assert response.status_code == 201, response.text


def events_report(session, server) -> dict:
    return session.get(server.url + "/health", timeout=30).json()["events"]


# -- 1. create latency against hub count --------------------------------------

def create_latency(workdir: Path, listener: ListenerProcess, hub_counts, creates: int) -> list[dict]:
    rows = []
    for hubs in hub_counts:
        server = start_server(workdir, f"hubs{hubs}", workers=2)
        session = requests.Session()
        try:
            register(session, server, [f"{listener.url}/h/{n}" for n in range(hubs)])
            for _ in range(30):                                   # warm-up
                session.post(server.url + C, json=customer(), timeout=30)
            timings = []
            for _ in range(creates):
                started = time.perf_counter()
                response = session.post(server.url + C, json=customer(), timeout=60)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
            backlog = events_report(session, server)
            row = {"hubs": hubs, "creates": creates,
                   "p50_ms": round(statistics.median(timings) * 1000, 2),
                   "p99_ms": round(pct(timings, 0.99) * 1000, 2),
                   "backlog_after": {k: backlog[k] for k in ("recorded", "pending", "delivered")},
                   "loadavg": loadavg()}
            log(f"create latency, {hubs} hubs: {row}")
            rows.append(row)
        finally:
            server.stop()
    return rows


# -- 2. delivery lag with trickling listeners ----------------------------------

def delivery_lag(workdir: Path, listener: ListenerProcess, creates: int, rate: float) -> dict:
    server = start_server(workdir, "lag", workers=2)
    session = requests.Session()
    try:
        healthy = [f"{listener.url}/h/lag{n}" for n in range(100)]
        register(session, server, [f"{listener.url}/t/{n}" for n in range(10)] + healthy)
        acked: dict[str, float] = {}
        for _ in range(creates):
            started = time.time()
            response = session.post(server.url + C, json=customer(), timeout=60)
            acked[response.json()["id"]] = time.time()
            time.sleep(max(0.0, 1.0 / rate - (time.time() - started)))
        expected = creates * len(healthy)
        deadline = time.time() + 120
        while time.time() < deadline:
            notes = [n for n in listener.notes() if n[1].startswith("/h/lag")]
            if len(notes) >= expected:
                break
            time.sleep(0.5)
        report = events_report(session, server)
    finally:
        server.stop()
    lags = [received - acked[customer_id] for customer_id, _path, received in notes
            if customer_id in acked]
    row = {"creates": creates, "rate_per_s": rate, "healthy_hubs": 100, "trickling_hubs": 10,
           "delivered": len(notes), "expected": expected,
           "p50_ms": round(statistics.median(lags) * 1000, 1) if lags else None,
           "p99_ms": round(pct(lags, 0.99) * 1000, 1) if lags else None,
           "max_ms": round(max(lags) * 1000, 1) if lags else None,
           "health_after": report, "loadavg": loadavg()}
    log(f"delivery lag: {row}")
    return row


# -- 3. write throughput, no hub vs one ----------------------------------------

def closed_loop(url: str, seconds: float, clients: int = 8) -> float:
    stop = time.time() + seconds
    counts = [0] * clients

    def run(index):
        session = requests.Session()
        while time.time() < stop:
            if session.post(url, json=customer(), timeout=60).status_code == 201:
                counts[index] += 1
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def write_throughput(workdir: Path, listener: ListenerProcess, seconds: float, rounds: int) -> dict:
    results: dict[str, list[float]] = {"no hub": [], "1 hub": []}
    for round_number in range(rounds):
        for label in ("no hub", "1 hub"):
            server = start_server(workdir, f"tp-{label.replace(' ', '')}-{round_number}", workers=4)
            try:
                if label == "1 hub":
                    register(requests.Session(), server, [f"{listener.url}/h/tp"])
                results[label].append(round(closed_loop(server.url + C, seconds), 1))
            finally:
                server.stop()
            log(f"throughput {label}: {results[label][-1]}/s")
    none, one = statistics.median(results["no hub"]), statistics.median(results["1 hub"])
    return {"seconds": seconds, "clients": 8, "workers": 4, "writes_per_s": results,
            "ratio_1hub_vs_none": round(one / none, 3) if none else None, "loadavg": loadavg()}


# -- keeping up, and /health with a backlog ----------------------------------------

def timed_health(session, server) -> tuple[float, dict]:
    started = time.perf_counter()
    events = events_report(session, server)
    return time.perf_counter() - started, events


def keep_up(workdir: Path, listener: ListenerProcess, seconds: float) -> dict:
    server = start_server(workdir, "keepup", workers=2)
    session = requests.Session()
    try:
        register(session, server, [f"{listener.url}/h/keep"])
        samples = []
        rate: list[float] = []
        loader = threading.Thread(target=lambda: rate.append(
            closed_loop(server.url + C, seconds)), daemon=True)
        started = time.time()
        loader.start()
        while loader.is_alive():
            took, events = timed_health(session, server)
            samples.append({"t": round(time.time() - started, 1), "health_s": round(took, 3),
                            "pending": events["pending"] + events["recorded"],
                            "age_s": events["backlogAgeSeconds"]})
            loader.join(2.0)
        took, end = timed_health(session, server)
        drain_started = time.time()
        while time.time() - drain_started < 300:
            events = events_report(session, server)
            if events["pending"] + events["recorded"] == 0:
                break
            time.sleep(0.5)
        drained = time.time() - drain_started
    finally:
        server.stop()
    row = {"seconds": seconds, "clients": 8, "workers": 2, "writes_per_s": round(rate[0], 1),
           "pending_at_end": end["pending"] + end["recorded"],
           "oldest_at_end_s": end["backlogAgeSeconds"], "drain_s": round(drained, 1),
           "health_s_median": round(statistics.median(s["health_s"] for s in samples), 3),
           "health_s_max": max(s["health_s"] for s in samples),
           "max_pending": max(s["pending"] for s in samples),
           "max_age_s": max(s["age_s"] for s in samples), "samples": samples,
           "loadavg": loadavg()}
    log(f"keep-up: { {k: v for k, v in row.items() if k != 'samples'} }")
    return row


def health_backlog(workdir: Path, creates: int) -> dict:
    server = start_server(workdir, "backlog", workers=2, RECO_EVENT_CIRCUIT_FAILURES="1",
                          RECO_EVENT_CIRCUIT_OPEN_SECONDS="3600")
    session = requests.Session()
    try:
        register(session, server, [f"http://127.0.0.1:{free_port()}/down"])
        clients = 8
        per = creates // clients

        def run():
            own = requests.Session()
            for _ in range(per):
                own.post(server.url + C, json=customer(), timeout=60)
        threads = [threading.Thread(target=run) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(3)
        rss_before = server.worker_rss_kib()
        timings, events = [], {}
        for _ in range(20):
            took, events = timed_health(session, server)
            timings.append(took)
        rss_after = server.worker_rss_kib()
    finally:
        server.stop()
    row = {"creates": per * clients, "pending": events.get("pending"),
           "recorded": events.get("recorded"),
           "health_ms_median": round(statistics.median(timings) * 1000, 1),
           "health_ms_max": round(max(timings) * 1000, 1),
           "rss_kib_before": rss_before, "rss_kib_after": rss_after, "loadavg": loadavg()}
    log(f"/health with a backlog: {row}")
    return row


# -- report ----------------------------------------------------------------------

def markdown(results: dict) -> str:
    lines = ["| hubs | creates | p50 ms | p99 ms | p50 vs 0 hubs (last run) | backlog after (recorded / pending / delivered) |",
             "|---:|---:|---:|---:|---:|---|"]
    base = [row for row in results["create_latency"] if row["hubs"] == 0][-1]["p50_ms"]
    for row in results["create_latency"]:
        b = row["backlog_after"]
        lines.append(f"| {row['hubs']} | {row['creates']} | {row['p50_ms']} | {row['p99_ms']} | "
                     f"{row['p50_ms'] / base:.2f}x | {b['recorded']} / {b['pending']} / {b['delivered']} |")
    lag = results["delivery_lag"]
    lines += ["", f"Delivery lag, 100 healthy + 10 trickling hubs, {lag['creates']} creates at "
              f"{lag['rate_per_s']}/s: p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms, max "
              f"{lag['max_ms']} ms ({lag['delivered']} of {lag['expected']} delivered)."]
    tp = results["write_throughput"]
    lines += ["", f"Write throughput, 4 workers, 8 clients, {tp['seconds']} s per run: no hub "
              f"{tp['writes_per_s']['no hub']}/s, 1 hub {tp['writes_per_s']['1 hub']}/s, "
              f"ratio {tp['ratio_1hub_vs_none']}."]
    return "\n".join(lines) + "\n"


def plot(results: dict, out: Path, suffix: str = "") -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = sorted({r["hubs"]: r for r in results["create_latency"]}.values(),
                  key=lambda r: r["hubs"])          # the last 0-hub run
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [max(r["hubs"], 1) for r in rows]
    ax.plot(xs, [r["p50_ms"] for r in rows], marker="o", label="p50")
    ax.plot(xs, [r["p99_ms"] for r in rows], marker="s", label="p99")
    ax.set_xscale("log")
    ax.set_xlabel("customer hubs registered (0 drawn at 1)")
    ax.set_ylabel("POST /customer latency, ms")
    ax.set_title(f"Create latency against hubs (2 workers, {results.get('store', 'tinydb')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / f"events{suffix}-create-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


@contextlib.contextmanager
def throwaway_cluster(work: Path, store: str):
    """For `--store postgresql`: a PostgreSQL cluster (bin/pg) whose fresh
    databases the servers get, destroyed at the end."""
    global NEW_DATABASE
    if store != "postgresql":
        yield
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from pgcluster import PgCluster
    cluster = PgCluster(work / "pg").start()
    NEW_DATABASE = cluster.new_database
    try:
        yield
    finally:
        NEW_DATABASE = None
        cluster.destroy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--store", choices=("tinydb", "postgresql"), default="tinydb")
    parser.add_argument("--listener-nice", type=int, default=0,
                        help="CPU niceness of the listener process (default 0)")
    parser.add_argument("--listener", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keep-up", type=float, metavar="SECONDS")
    parser.add_argument("--dispatcher-nice", type=int,
                        help="RECO_EVENT_DISPATCHER_NICE of the servers (default: the service's)")
    parser.add_argument("--health-backlog", type=int, metavar="N")
    args = parser.parse_args(argv)
    if args.listener:
        serve_listener(args.listener)
        return 0
    if args.dispatcher_nice is not None:
        EXTRA_ENV["RECO_EVENT_DISPATCHER_NICE"] = str(args.dispatcher_nice)
    if args.keep_up or args.health_backlog:
        return probe(args)
    cfg = PROFILES["quick" if args.quick else "full"]
    out = args.out or (Path(tempfile.mkdtemp(prefix="events-bench-")) if args.quick
                       else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    listener = ListenerProcess(args.listener_nice)
    results = {"listener_nice": args.listener_nice, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "store": args.store,
               "cpus": os.cpu_count(), "loadavg_before": loadavg()}
    suffix = "" if args.store == "tinydb" else f"-{args.store}"
    try:
        with tempfile.TemporaryDirectory(prefix="events-bench-") as tmp, \
                throwaway_cluster(Path(tmp), args.store):
            work = Path(tmp)
            results["create_latency"] = create_latency(work, listener, cfg["hub_counts"], cfg["creates"])
            results["delivery_lag"] = delivery_lag(work, listener, cfg["lag_creates"], cfg["lag_rate"])
            results["write_throughput"] = write_throughput(work, listener, cfg["throughput_seconds"],
                                                           cfg["throughput_rounds"])
            results["loadavg_after"] = loadavg()
    finally:
        listener.stop()
    results["plot"] = plot(results, out, suffix)
    (out / f"events{suffix}.json").write_text(json.dumps(results, indent=1))
    (out / f"events{suffix}.md").write_text(markdown(results))
    print(markdown(results))
    print(f"results in {out}")
    return 0


def probe(args) -> int:
    """--keep-up / --health-backlog: printed as JSON, nothing written."""
    listener = ListenerProcess(args.listener_nice)
    results = {"store": args.store, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "loadavg_before": loadavg(), "env": dict(EXTRA_ENV)}
    try:
        with tempfile.TemporaryDirectory(prefix="events-bench-") as tmp, \
                throwaway_cluster(Path(tmp), args.store):
            if args.keep_up:
                results["keep_up"] = keep_up(Path(tmp), listener, args.keep_up)
            if args.health_backlog:
                results["health_backlog"] = health_backlog(Path(tmp), args.health_backlog)
    finally:
        listener.stop()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
