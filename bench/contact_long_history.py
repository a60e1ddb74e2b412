"""Contact policies for a party with a long history: what one instant answer
costs when the party has 0, 100, 900 or 5,000 reactions, on two code trees
side by side (a base commit and the working tree), and the reaction read's
plan at size.

    python -m bench.contact_long_history [--base 531646b] [--rounds 7] [--block 30]
                                         [--backend tinydb|postgresql|both]
                                         [--sizes 0,100,900,5000] [--size-rows 1000000]
                                         [--out FILE]

1. Latency and CPU. Two worker processes per store, one importing `app`
   from `git archive BASE` (unpacked in a temporary folder), one from this
   tree, each serving the demo rules with four contact policies (one per
   kind: maxImpressions of accessories 3 in 7 days per channel,
   pauseAfterRejected 30 days, stopAfterAccepted with its default 3,650
   days, maxOffersPerDay 1,000: its read of the party's answers is made)
   through the WSGI app (no HTTP), each on a store of
   its own holding the same reactions: per size N, a few parties with N
   reactions each over the last 365 days (a store whose retention is a
   year or more), of every type (shown 70 %, clicked 15 %, rejected 8 %,
   accepted 2 %, on 9 offerings, 3 channels), and 20,000 reactions of
   1,000 other parties. Blocks of `block` requests per (size, tree),
   alternating base/tree (the order reversed every round), on contexts
   that do not repeat (party cycles within the size's parties, cart and
   channel vary). The decision log is off: the bench's own answers would
   otherwise pile up in its few parties' last 24 hours, a cost that grows
   with the run, not with the history (maxOffersPerDay still reads the
   answers: none). Per (store, size, tree): median request latency (ms, in
   the worker, around the WSGI call), median process CPU per request over
   the blocks, and on PostgreSQL the cluster's CPU per request
   (bench/pg_cpu.py). The two trees must give the same items for the same
   request (the bench fails otherwise).
2. PostgreSQL at size: `size-rows` reactions of 100,000 parties plus a
   party with 900 and one with 5,000 reactions, loaded in SQL; EXPLAIN
   (ANALYZE, BUFFERS) and a client-side p50 over 200 reads of the base's
   reaction read (every type over 3,650 days, on 0004's (party, date)
   index) and this tree's (one branch per type, on 0007's (party, type,
   date) index), each with only its own index present.

Results: bench/results/contact-long-history.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
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
OFFERINGS = ["6542", "6543", "6550", "7002", "7003", "7102", "7202", "7301", "7402"]
TYPES = ["shown"] * 70 + ["clicked"] * 15 + ["rejected"] * 8 + ["accepted"] * 2
PHONES = ["6547", "6550"]
POLICIES = """
contactPolicies:
  - id: P1
    kind: maxImpressions
    scope: {category: accessories}
    count: 3
    days: 7
    perChannel: true
  - id: P2
    kind: pauseAfterRejected
    days: 30
  - id: P3
    kind: stopAfterAccepted
  - id: P4
    kind: maxOffersPerDay
    count: 1000
"""
#: parties per size: requests cycle over them, so an answer's own decision
#: log entries stay few per party
PARTIES_PER_SIZE = {0: 40, 100: 20, 900: 8, 5000: 3}


def party_name(size: int, n: int) -> str:
    return f"h{size}-{n}"


def long_reactions(sizes: list[int], now: dt.datetime) -> list[dict]:
    """The parties under test: per size, PARTIES_PER_SIZE parties of `size`
    reactions each over the last 365 days (seeded: the same on both trees),
    and 20,000 reactions of 1,000 other parties."""
    rng = random.Random(21)
    docs = []

    def add(party: str, when: dt.datetime, i: int):
        docs.append({"id": f"r{len(docs)}", "reactionType": rng.choice(TYPES),
                     "reactionDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "recommendation": {"id": f"d{len(docs)}", "itemId": "1"},
                     "productOffering": {"id": rng.choice(OFFERINGS)}, "channel": {"id": str(21 + i % 3)},
                     "relatedParty": [{"id": party, "role": "customer"}], "@type": "RecommendationReaction"})
    for size in sizes:
        for n in range(PARTIES_PER_SIZE.get(size, 3)):
            for i in range(size):
                add(party_name(size, n), now - dt.timedelta(seconds=rng.randrange(365 * 86400)), i)
    for i in range(20_000):
        add(f"o{i % 1000}", now - dt.timedelta(seconds=rng.randrange(90 * 86400)), i)
    return docs


def body(size: int, k: int) -> dict:
    party = party_name(size, k % PARTIES_PER_SIZE.get(size, 3))
    return {"instantSyncRecommendation": True, "channel": [{"id": str(21 + k % 3)}],
            "relatedParty": {"id": party, "role": "customer"},
            "shoppingCart": [{"id": f"c{k}", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": PHONES[k % 2]}},
                {"id": "2", "quantity": 1, "productOffering": {"id": OFFERINGS[k % len(OFFERINGS)]}}]}]}


# ---------------------------------------------------------------- worker side

def worker(args) -> None:
    """One tree's app, driven by JSON lines on stdin (see `Worker`)."""
    sys.path.insert(0, args.root)
    os.environ["RECO_LOG_LEVEL"] = "WARNING"
    import app as app_package
    from app import create_app
    from app.store import open_store
    if args.store_url:
        from app.store.schema import upgrade
        upgrade(args.store_url)
    work = Path(args.work)
    rules = work / "rules"
    shutil.copytree(Path(args.root) / "tests" / "demo" / "rules", rules)
    path = rules / "telco-demo.yaml"
    path.write_text(path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"') + POLICIES)
    now = dt.datetime.fromisoformat(args.now)
    store = open_store(args.store_url or str(work / "data"))
    docs = long_reactions(args.sizes, now)
    for first in range(0, len(docs), 1000):     # the feedback trigger locks per answer: chunks
        store.insert_many("recommendationReaction", docs[first:first + 1000])
    store.close()
    app = create_app(data_dir=work / "data", rules_dir=rules,
                     catalog_dir=Path(args.root) / "tests" / "demo" / "catalog",
                     background_workers=False, log_level="WARNING",
                     **({"store_url": args.store_url} if args.store_url else {}))
    client = app.test_client()
    for k in range(30):                                   # warm-up
        assert client.post(PATH, json=body(0, 10_000_000 + k)).status_code == 200
    print(json.dumps({"ready": True, "app": app_package.__file__}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("stop"):
            break
        latencies, items = [], []
        cpu = time.process_time()
        for k in range(command["first"], command["first"] + command["n"]):
            started = time.perf_counter()
            response = client.post(PATH, json=body(command["size"], k))
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            items.append([i["productOffering"]["id"] for i in response.get_json()["recommendationItem"]])
        cpu = (time.process_time() - cpu) / command["n"]
        print(json.dumps({"latencies": latencies, "cpu": cpu, "items": items}), flush=True)


class Worker:
    def __init__(self, root: Path, work: Path, backend: str, store_url: str, sizes, now: dt.datetime):
        work.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.contact_long_history", "--worker", "--root", str(root),
             "--work", str(work), "--store-url", store_url, "--now", now.isoformat(),
             "--sizes", ",".join(map(str, sizes))],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "RECO_LOG_LEVEL": "WARNING", "RECO_DECISION_LOG": "false"})
        ready = json.loads(self.process.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise SystemExit(f"the worker for {root} did not start")
        if not ready["app"].startswith(str(root)):
            raise SystemExit(f"the worker for {root} imported {ready['app']}")

    def run(self, size: int, first: int, n: int) -> dict:
        self.process.stdin.write(json.dumps({"size": size, "first": first, "n": n}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.write(json.dumps({"stop": True}) + "\n")
        self.process.stdin.flush()
        self.process.wait(timeout=120)


def base_tree(commit: str, folder: Path) -> Path:
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def latency(backend: str, base: str, rounds: int, block: int, sizes: list[int]) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from .pg_cpu import cluster_cpu_seconds, postmaster_pid

    work = Path(tempfile.mkdtemp(prefix="contact-long-"))
    cluster = postmaster = None
    workers = {}
    try:
        trees = {"base": base_tree(base, work / "base-tree"), "tree": ROOT}
        urls = {"base": "", "tree": ""}
        if backend == "postgresql":
            from pgcluster import PgCluster
            cluster = PgCluster(work / "pg").start()
            for name in urls:
                cluster.execute(f"CREATE DATABASE {name}_db")
                urls[name] = cluster.database_url(f"{name}_db")
            postmaster = postmaster_pid(work / "pg")
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        for name, root in trees.items():
            workers[name] = Worker(root, work / name, backend, urls[name], sizes, now)
        found = {size: {name: {"latencies": [], "cpu": [], "db_cpu": []} for name in trees} for size in sizes}
        first = 0
        for round_ in range(rounds):
            for size in sizes:
                first += block
                answers = {}
                for name in (("base", "tree") if round_ % 2 == 0 else ("tree", "base")):
                    db = cluster_cpu_seconds(postmaster) if postmaster else 0.0
                    done = workers[name].run(size, first, block)
                    if postmaster:
                        found[size][name]["db_cpu"].append((cluster_cpu_seconds(postmaster) - db) / block)
                    found[size][name]["latencies"].extend(done["latencies"])
                    found[size][name]["cpu"].append(done["cpu"])
                    answers[name] = done["items"]
                if answers["base"] != answers["tree"]:
                    raise SystemExit(f"size {size}: the trees answered differently:\n"
                                     f"{answers['base']}\n{answers['tree']}")
        rows = []
        for size in sizes:
            row = {"reactions": size}
            for name in trees:
                got = found[size][name]
                row[f"{name}_latency_ms"] = round(statistics.median(got["latencies"]) * 1000, 3)
                row[f"{name}_cpu_ms"] = round(statistics.median(got["cpu"]) * 1000, 3)
                if postmaster:
                    row[f"{name}_db_cpu_ms"] = round(statistics.median(got["db_cpu"]) * 1000, 3)
            row["latency_ratio_base_over_tree"] = round(row["base_latency_ms"] / row["tree_latency_ms"], 2)
            rows.append(row)
            print(backend, json.dumps(row), flush=True)
        return {"backend": backend, "base": base, "rounds": rounds, "block": block, "sizes": rows}
    finally:
        for one in workers.values():
            try:
                one.stop()
            except Exception:                          # noqa: BLE001 (a worker that died: its error was shown)
                one.process.kill()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------- plan at size

_BULK_SQL = """
    INSERT INTO documents (collection, id, doc)
    SELECT 'recommendationReaction', %(prefix)s || g, jsonb_build_object(
        'id', %(prefix)s || g,
        'reactionType', (ARRAY['shown','shown','shown','shown','shown','shown','shown','clicked','rejected',
                               'accepted'])[1 + (g * 7) %% 10],
        'reactionDate', to_char(%(now)s::timestamptz
                                - ((g::bigint * 2654435761) %% (%(days)s * 86400)) * interval '1 second',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'recommendation', jsonb_build_object('id', 'd' || g, 'itemId', '1'),
        'productOffering', jsonb_build_object('id', (%(offerings)s::text[])[1 + g %% 9]),
        'channel', jsonb_build_object('id', (21 + g %% 3)::text),
        'relatedParty', jsonb_build_array(jsonb_build_object(
            'id', COALESCE(%(party)s, 'p' || (g * 104729) %% 100000), 'role', 'customer')),
        '@type', 'RecommendationReaction')
    FROM generate_series(0::bigint, %(count)s::bigint - 1) AS g"""

OLD_INDEX = """CREATE INDEX documents_reaction_party ON documents
    ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionDate')) WHERE collection = 'recommendationReaction'"""

NEW_INDEX = """CREATE INDEX documents_reaction_party_type ON documents
    ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionType'), (doc ->> 'reactionDate'))
    WHERE collection = 'recommendationReaction'"""


def plans(rows: int, reads: int = 200) -> dict:
    """Part 2 of the module docstring."""
    sys.path.insert(0, str(ROOT / "tests"))
    import psycopg
    from pgcluster import PgCluster

    from app.contact.history import PostgresHistory
    from app.rules.engine.contact import reaction_windows, window
    from app.rules.model.contact import ContactPolicy

    policies = (ContactPolicy("P1", "maxImpressions", count=3, days=7, per_channel=True, category="accessories"),
                ContactPolicy("P2", "pauseAfterRejected", days=30),
                ContactPolicy("P3", "stopAfterAccepted", days=3650))
    work = Path(tempfile.mkdtemp(prefix="contact-long-plan-"))
    cluster = PgCluster(work / "pg").start()
    try:
        url = cluster.new_database()
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        result = {"reactions": rows}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            started = time.perf_counter()
            # bulk load: triggers off, the documents' secondary indexes dropped
            # (none is read here), the two compared built after
            conn.execute("SET session_replication_role = replica")
            for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
                                        "AND indexname <> 'documents_pkey'").fetchall():
                conn.execute(f"DROP INDEX {name}")
            for prefix, count, party, days in (("r", rows, None, 90), ("b", 900, "pbig900", 365),
                                               ("c", 5000, "pbig5000", 365)):
                conn.execute(_BULK_SQL, {"prefix": prefix, "count": count, "party": party, "days": days,
                                         "now": now, "offerings": OFFERINGS})
            conn.execute("SET session_replication_role = origin")
            conn.execute(OLD_INDEX)
            conn.execute(NEW_INDEX)
            conn.execute("VACUUM ANALYZE documents")
            result["load_s"] = round(time.perf_counter() - started, 1)
            history = PostgresHistory(None)
            statements = {
                # the base commit's read: every type since the longest window
                "base": ("documents_reaction_party_type",
                         *history.request("", *window(policies, now))),
                "tree": ("documents_reaction_party",
                         *history.request("", *window(policies, now), kinds=reaction_windows(policies, now))),
            }
            for party in ("pbig900", "pbig5000", "p12345"):
                for name, (hidden, sql, params) in statements.items():
                    params = {**params, "party": party}
                    conn.execute("BEGIN")
                    conn.execute(f"DROP INDEX {hidden}")      # only the tree's own index (rolled back)
                    plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()]
                    times, count = [], 0
                    for _ in range(reads):
                        started = time.perf_counter()
                        count = len(conn.execute(sql, params).fetchall())
                        times.append(time.perf_counter() - started)
                    conn.execute("ROLLBACK")
                    result[f"{party}_{name}"] = {"rows": count, "p50_ms": round(statistics.median(times) * 1000, 3),
                                                 "plan": plan}
                    print(party, name, count, "rows", result[f"{party}_{name}"]["p50_ms"], "ms", flush=True)
                    if any("Seq Scan" in line for line in plan):
                        raise SystemExit("the reaction read scans a table:\n" + "\n".join(plan))
        return result
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="531646b")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=30)
    parser.add_argument("--backend", choices=("tinydb", "postgresql", "both"), default="both")
    parser.add_argument("--sizes", default="0,100,900,5000")
    parser.add_argument("--size-rows", type=int, default=1_000_000, help="0: skip the plan at size")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "contact-long-history.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = [int(size) for size in args.sizes.split(",") if size]
    if args.worker:
        worker(args)
        return
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result["load_average_before"] = os.getloadavg()
    result["started"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if args.rounds:
        backends = ("tinydb", "postgresql") if args.backend == "both" else (args.backend,)
        result["latency"] = [latency(b, args.base, args.rounds, args.block, args.sizes) for b in backends]
    if args.size_rows:
        result["plan_at_size"] = plans(args.size_rows)
    result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
