"""Data-plane benchmark (an operator's millions of customers): PostgreSQL against TinyDB as the stored
data grows.

    python -m bench.data_plane                                  # 1k, 100k, 1M (PostgreSQL)
    python -m bench.data_plane --pg-sizes 1000,100000 --tinydb-sizes 1000,100000
    python -m bench.data_plane --out bench/results/data-plane

For each store and size N: N customers and 2.5 N products (each product's
relatedParty names its customer) are written straight into the store --
PostgreSQL with COPY, TinyDB as its JSON files -- never through HTTP. The
PostgreSQL cluster is bin/pg's with a production-sized shared_buffers
(--shared-buffers, 4GB by default; bin/pg's test default is 128MB). Then one
gunicorn server (1 worker, 4 threads, the project's gunicorn.conf.py) is
measured over loopback with bench.pyclient, one request at a time:

* TMF629 customer create (POST, 201) p50/p99,
* TMF680 asynchronous create (POST instantSyncRecommendation=false, 201) p50/p99,
* instant recommendations for known customers (4 connections, req/s),

in rounds that take every size in turn (medians quoted),

and the bulk-load rate of `flask store load customer` on a JSON Lines file.
TinyDB at 100,000 customers is slow (every create rewrites the file): it is
sampled with a few creates. Results: results.json, results.md and a plot.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .pyclient import run as http_run
from .server import ROOT, Server, service_env

C = "/tmf-api/customerManagement/v4/customer"
R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
OFFERINGS = ["6542", "7001", "7002", "6543"]


def log(message: str) -> None:
    print(f"[data-plane {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def customer_doc(i: int) -> dict:
    return {"id": f"c{i}", "href": f"http://localhost:8080{C}/c{i}", "name": f"Customer {i}",
            "status": "Approved", "@type": "Customer",
            "engagedParty": {"id": f"party{i}", "@referredType": "Individual"},
            "characteristic": [{"name": "segment", "value": "premium" if i % 3 else "basic"}]}


def product_docs(i: int):
    """2 or 3 products (2.5 on average) owned by customer i."""
    for k in range(2 if i % 2 else 3):
        pid = f"p{i}-{k}"
        yield {"id": pid, "href": f"http://localhost:8080/tmf-api/productInventory/v4/product/{pid}",
               "name": "Plan", "status": "active", "@type": "Product",
               "productOffering": {"id": OFFERINGS[(i + k) % len(OFFERINGS)]},
               "relatedParty": [{"id": f"c{i}", "role": "customer", "@referredType": "Customer"}]}


# -- filling the stores -------------------------------------------------------

def fill_postgres(url: str, n: int) -> dict:
    """COPY n customers and their products into an empty database."""
    import psycopg

    from app.store.postgres_store import RECORD_STORED_ATTRIBUTES

    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn:
        # The path index takes entries one by one in service (migration 0003);
        # for a bulk COPY its pending list batches them, emptied at the end.
        conn.execute("ALTER INDEX documents_doc_path SET (fastupdate = on)")
        with conn.cursor().copy("COPY documents (collection, id, doc) FROM STDIN") as copy:
            for i in range(n):
                doc = customer_doc(i)
                copy.write_row(("customer", doc["id"], json.dumps(doc)))
                rows += 1
                for product in product_docs(i):
                    copy.write_row(("product", product["id"], json.dumps(product)))
                    rows += 1
        # COPY bypasses the store: record the attribute names as its writes do
        conn.execute(RECORD_STORED_ATTRIBUTES)
        conn.execute("SELECT gin_clean_pending_list('documents_doc_path'::regclass)")
        conn.execute("ALTER INDEX documents_doc_path SET (fastupdate = off)")
        conn.commit()
        conn.execute("ANALYZE documents")
        conn.commit()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def fill_tinydb(data_dir: Path, n: int) -> dict:
    started = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    customers = {f"c{i}": customer_doc(i) for i in range(n)}
    products = {p["id"]: p for i in range(n) for p in product_docs(i)}
    for name, table in (("customer", customers), ("product", products)):
        (data_dir / f"{name}.json").write_text(json.dumps({name: table}, separators=(",", ":")))
    seconds = time.perf_counter() - started
    rows = len(customers) + len(products)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


# -- measuring ----------------------------------------------------------------

def bodies_file(workdir: Path, name: str, bodies: list[dict]) -> list[bytes]:
    return [json.dumps(b).encode() for b in bodies]


def latency(server: Server, path: str, bodies: list[bytes], count: int) -> dict:
    summary, records = http_run(server.url + path, bodies, concurrency=1, duration=None,
                                count=count)
    ok = sum(1 for r in records if r[2] == 201)
    return {"requests": summary["requests"], "created": ok,
            "p50_ms": summary["p50_us"] / 1000, "p99_ms": summary["p99_us"] / 1000}


def throughput(server: Server, path: str, bodies: list[bytes], seconds: float) -> dict:
    summary, records = http_run(server.url + path, bodies, concurrency=4, duration=seconds,
                                count=None)
    ok = sum(1 for r in records if r[2] == 200)
    return {"requests": summary["requests"], "ok": ok,
            "req_per_s": ok / (summary["duration_us"] / 1e6),
            "p50_ms": summary["p50_us"] / 1000}


def measure(env: dict, workdir: Path, n: int, creates: int, seconds: float) -> dict:
    rng = random.Random(n)
    customers = [{"name": f"New {k}", "engagedParty": {"id": f"new{k}-{rng.random()}",
                                                     "@referredType": "Individual"}}
                 for k in range(max(creates, 1))]
    known = [rng.randrange(n) for _ in range(200)]
    asyncs = [{"instantSyncRecommendation": False,
               "relatedParty": {"id": f"c{i}", "role": "customer"},
               "channel": {"id": "21"}} for i in known]
    instants = [{**body, "instantSyncRecommendation": True} for body in asyncs]
    with Server("wsgi:app", workdir, workers=1, env=env, name=f"dp-{n}") as server:
        http_run(server.url + R, [json.dumps(b).encode() for b in instants[:20]], 1, None, 20)
        result = {
            "customer_create": latency(server, C, [json.dumps(b).encode() for b in customers],
                                       creates),
            "async_create": latency(server, R, [json.dumps(b).encode() for b in asyncs], creates),
            "instant": throughput(server, R, [json.dumps(b).encode() for b in instants], seconds),
        }
    return result


def bulk_load(env: dict, workdir: Path, lines: int) -> dict:
    path = workdir / "load.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(lines):
            doc = customer_doc(10_000_000 + i)
            del doc["href"], doc["@type"]
            handle.write(json.dumps(doc) + "\n")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "store", "load",
                           "customer", str(path)], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr[-2000:])
    # the command's own figure: validation + writes, without Python and app start-up
    inner = float(done.stdout.rsplit(" in ", 1)[1].split(" s")[0])
    return {"lines": lines, "seconds": seconds, "load_seconds": inner,
            "records_per_s": lines / inner, "output": done.stdout.strip()}


# -- the run -----------------------------------------------------------------

def summarise(measured: dict) -> str:
    return (f"create p50 {measured['customer_create']['p50_ms']:.1f} ms, async p50 "
            f"{measured['async_create']['p50_ms']:.1f} ms, instant "
            f"{measured['instant']['req_per_s']:.0f}/s")


def median_of(rounds: list[dict]) -> dict:
    """Per measure and figure, the median over the rounds."""
    import statistics

    return {measure: {key: statistics.median(r[measure][key] for r in rounds)
                      for key in rounds[0][measure]}
            for measure in ("customer_create", "async_create", "instant")}


def run(pg_sizes, tiny_sizes, out: Path, creates: int, tiny_creates: int, seconds: float,
        load_lines: int, rounds: int = 3, shared_buffers: str = "") -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PgCluster

    work = Path(tempfile.mkdtemp(prefix="data-plane-"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]},
                     "postgresql": {}, "tinydb": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                              time.gmtime())}
    base_env = service_env(work / "data", ROOT / "rules", ROOT / "catalog", "telco-demo")
    base_env["RECO_THREADS"] = "4"
    cluster = PgCluster(work / "pg").start() if pg_sizes else None
    if cluster and shared_buffers:
        # A production-sized buffer cache (bin/pg's test default is 128 MB,
        # where 1,000,000 customers' 2 GB of rows and indexes do not fit).
        cluster.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        cluster.stop()
        cluster.start()
        results["machine"]["shared_buffers"] = shared_buffers
    try:
        setups = []  # (store, n, env, creates): every store filled first, measured in rounds
        for n in pg_sizes:
            url = cluster.new_database()
            log(f"postgresql: COPY {n} customers + products")
            fill = fill_postgres(url, n)
            log(f"postgresql {n}: filled {fill['rows']} rows in {fill['seconds']:.0f} s")
            results["postgresql"][str(n)] = {"fill": fill, "rounds": []}
            setups.append(("postgresql", n, {**base_env, "RECO_STORE_URL": url,
                                             "RECO_DATA_DIR": str(work / f"pg-{n}")}, creates))
        for n in tiny_sizes:
            data_dir = work / f"tiny-{n}"
            results["tinydb"][str(n)] = {"fill": fill_tinydb(data_dir, n), "rounds": []}
            setups.append(("tinydb", n, {**base_env, "RECO_DATA_DIR": str(data_dir)},
                           creates if n <= 10_000 else tiny_creates))
        # Rounds alternate the sizes, so a change in the machine's load (it is
        # shared) affects every size alike; the medians of the rounds are quoted.
        for number in range(rounds):
            for store, n, env, count in setups:
                measured = measure(env, work, n, count, seconds)
                results[store][str(n)]["rounds"].append(measured)
                log(f"round {number + 1} {store} {n}: {summarise(measured)}")
        for store in ("postgresql", "tinydb"):
            for entry in results[store].values():
                entry.update(median_of(entry["rounds"]))
        if load_lines and cluster:
            url = cluster.new_database()
            results["bulk_load"] = {"postgresql": bulk_load(
                {**base_env, "RECO_STORE_URL": url, "RECO_DATA_DIR": str(work / "load-pg")},
                work, load_lines)}
            results["bulk_load"]["tinydb"] = bulk_load(
                {**base_env, "RECO_DATA_DIR": str(work / "load-tiny")}, work,
                min(load_lines, 20_000))
            log(f"bulk load: {results['bulk_load']}")
    finally:
        if cluster:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown(results) + "\n")
    plot(results, out / "data-plane.png")
    return results


def markdown(results: dict) -> str:
    lines = [f"Medians of {len(next(iter(results['postgresql'].values()), {}).get('rounds', [])) or 'the'} "
             "rounds; each round measures every size in turn.", "",
             "| store | customers | customer create p50 / p99 (ms) | TMF680 async create p50 / p99 (ms) "
             "| instant req/s (p50 ms) | fill rows/s |", "|---|---:|---:|---:|---:|---:|"]
    for store in ("postgresql", "tinydb"):
        for n, r in sorted(results[store].items(), key=lambda kv: int(kv[0])):
            cc, ac, inst = r["customer_create"], r["async_create"], r["instant"]
            lines.append(f"| {store} | {int(n):,} | {cc['p50_ms']:.1f} / {cc['p99_ms']:.1f} "
                         f"(n={int(cc['requests'])}) | {ac['p50_ms']:.1f} / {ac['p99_ms']:.1f} "
                         f"(n={int(ac['requests'])}) | {inst['req_per_s']:.0f} ({inst['p50_ms']:.1f}) "
                         f"| {r['fill']['rows_per_s']:,.0f} |")
    load = results.get("bulk_load")
    if load:
        lines.append("")
        for store, r in load.items():
            lines.append(f"- bulk load ({store}): {r['lines']:,} customers in {r['load_seconds']:.1f} s "
                         f"= {r['records_per_s']:,.0f} records/s (validation and writes; the "
                         f"whole command with start-up took {r['seconds']:.1f} s)")
    return "\n".join(lines)


def plot(results: dict, path: Path, previous: dict | None = None) -> None:
    """Create latency (left) and instant recommendations per second (right)
    against the stored customers; `previous` (an earlier results.json) is
    drawn in grey beside them."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("no matplotlib (pip install -e '.[bench]'): no plot")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    runs = [(results, None, "")] + ([(previous, "0.6", " (previous run)")] if previous else [])
    for run, colour, suffix in runs:
        for store, style in (("postgresql", "-o"), ("tinydb", "--s")):
            rows = sorted(run.get(store, {}).items(), key=lambda kv: int(kv[0]))
            if not rows:
                continue
            xs = [int(n) for n, _ in rows]
            extra = {"color": colour} if colour else {}
            left.plot(xs, [r["customer_create"]["p50_ms"] for _, r in rows], style,
                      label=f"{store}: customer create p50{suffix}", **extra)
            left.plot(xs, [r["async_create"]["p50_ms"] for _, r in rows], style, alpha=0.6,
                      label=f"{store}: TMF680 async create p50{suffix}", **extra)
            right.plot(xs, [r["instant"]["req_per_s"] for _, r in rows], style,
                       label=f"{store}{suffix}", **extra)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("stored customers (2.5 products each)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    left.set_yscale("log")
    left.set_ylabel("latency (ms, log)")
    left.set_title("Create latency against stored data")
    right.set_ylim(bottom=0)
    right.set_ylabel("requests/s (4 connections)")
    right.set_title("Instant recommendation, known customer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-sizes", default="1000,100000,1000000")
    parser.add_argument("--tinydb-sizes", default="1000,100000")
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--tinydb-creates", type=int, default=15,
                        help="creates sampled on TinyDB above 10,000 customers")
    parser.add_argument("--seconds", type=float, default=15.0, help="instant req/s run length")
    parser.add_argument("--load-lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-buffers", default="4GB",
                        help="PostgreSQL shared_buffers of the benchmark's cluster: a "
                             "production value for this 24 GiB host (about a sixth of "
                             "the RAM, as the service and its workers share it); '' keeps "
                             "bin/pg's 128MB test default")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "data-plane")
    parser.add_argument("--plot-only", type=Path, metavar="RESULTS_JSON",
                        help="only draw the plot of a results.json (into --out)")
    parser.add_argument("--previous", type=Path, metavar="RESULTS_JSON",
                        help="an earlier results.json to draw beside the new figures")
    args = parser.parse_args(argv)
    previous = json.loads(args.previous.read_text()) if args.previous else None
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text()), args.out / "data-plane.png", previous)
        return 0
    sizes = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    results = run(sizes(args.pg_sizes), sizes(args.tinydb_sizes), args.out, args.creates,
                  args.tinydb_creates, args.seconds, args.load_lines, args.rounds,
                  args.shared_buffers)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
