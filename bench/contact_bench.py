"""Contact policies: their cost on the instant answer, and the history read
at production size.

    python -m bench.contact_bench [--rounds 7] [--block 300] [--backend tinydb|postgresql|both]
                                  [--parties 1000000] [--reactions 20000000] [--decisions 2000000]
                                  [--reads 2000] [--propose 1.0] [--always-ahead] [--out FILE]

1. Instant POST requests/s without and with three contact policies
   (maxImpressions on a category, pauseAfterRejected, maxOffersPerDay: the
   last reads the answers too, the most expensive read), in ONE process
   (two apps built side by side on the same rules but for `contactPolicies`,
   each on its own copy of the same data: 20,000 reactions of 1,000 parties),
   blocks of `block` requests alternating without, with, ... for `rounds`
   rounds on contexts that do not repeat (party, cart, channel vary; no
   validFor, so the evaluation time is now and the history is read for
   real; `propose`: the share of requests whose rules propose items, the
   others propose nothing; `--always-ahead`: a third app, same run, that
   reads the history with the customer on every request naming a party,
   as before app/recommend/read_ahead.py). Through the WSGI app (no HTTP): the ratio is the policies' share
   of the request's own work. Medians and ratio of requests/s, and of the
   process's CPU time per request (steadier on a shared machine), per backend;
   on PostgreSQL also the database's CPU per request (bench/pg_cpu.py) and
   `total_cpu_ratio`, the ratio of both together.
2. PostgreSQL at size: `parties` parties, `reactions` reactions (documents
   of collection recommendationReaction spread over 90 days) and
   `decisions` answers of 3 items each over the last 2 days, made in SQL
   (generate_series, triggers off: the funnel rollup is not what is
   measured), with `parties` customers, once, on a throw-away cluster
   (bin/pg). Then, for `reads` random parties each, the read the answering
   path runs (PartyFacts.look_up inside store.reading(): the customer by id
   and, when the version declares policies, the party's history in the SAME
   statement, PostgresStore.get_along) for the customer alone, with the
   reactions, and with the reactions and the answers: p50/p90/p99 in ms
   (client side: check-out, statement, rows made into a History), and
   EXPLAIN (ANALYZE, BUFFERS) of each statement; the bench fails if a plan
   has a Seq Scan. Then the last read again once the answers' tables and
   indexes are in the OS page cache (pg_prewarm 'read'), as the last 24
   hours of a service's answers are: the bulk load does not leave them there.
Results: bench/results/contact-policies.json (a part skipped with 0 keeps
its earlier figures there).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .pg_cpu import cluster_cpu_seconds, postmaster_pid

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CART = ["6547", "6550", "7101", "7102", "6542", "6543", "7002", "7003"]
OFFERINGS = ["6542", "6543", "6550", "7002", "7003", "7102", "7202", "7301", "7402"]
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
    kind: maxOffersPerDay
    count: 20
"""
PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
PARTIES = 1000


#: the demo's phones: a cart holding one makes its rules propose items (the
#: other cart offerings alone propose none, and a request with nothing
#: proposed is not what contact policies cost: they have nothing to check)
PHONES = ["6547", "6550"]


#: cart offerings no demo rule proposes from (a party without products gets nothing)
QUIET = ["6542", "6543", "7002", "7003", "7102"]


def bodies(n: int, seed: int, propose: float = 1.0):
    """Instant queries that do not repeat: party, cart and channel vary; a
    share `propose` of the carts hold a phone, so their rules propose items
    (the others hold a case or an add-on only: nothing is proposed)."""
    for i in range(n):
        k = seed * 1_000_003 + i
        items = ([{"id": "1", "quantity": 1, "productOffering": {"id": PHONES[k % 2]}},
                  {"id": "2", "quantity": 1, "productOffering": {"id": CART[k % len(CART)]}}]
                 if (k * 0.618034) % 1 < propose else
                 [{"id": "1", "quantity": 1, "productOffering": {"id": QUIET[k % len(QUIET)]}}])
        yield {"instantSyncRecommendation": True, "channel": [{"id": str(21 + k % 3)}],
               "relatedParty": {"id": f"p{k % PARTIES}", "role": "customer"},
               "shoppingCart": [{"id": f"c{k}", "@type": "ShoppingCart", "cartItem": items}]}


def reactions(n: int, now: dt.datetime):
    """Reaction documents of PARTIES parties over the last 30 days."""
    rng = random.Random(7)
    for i in range(n):
        when = now - dt.timedelta(seconds=rng.randrange(30 * 86400))
        yield {"id": f"r{i}", "reactionType": rng.choice(["shown"] * 6 + ["clicked", "rejected"]),
               "reactionDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "recommendation": {"id": f"d{i}", "itemId": "1"},
               "productOffering": {"id": rng.choice(OFFERINGS)}, "channel": {"id": str(21 + i % 3)},
               "relatedParty": [{"id": f"p{i % PARTIES}", "role": "customer"}],
               "@type": "RecommendationReaction"}


def rules_copy(work: Path, with_policies: bool, name: str = "") -> Path:
    folder = work / (("rules-policies" if with_policies else "rules-plain") + f"-{name}")
    shutil.copytree(ROOT / "tests" / "demo" / "rules", folder)
    if with_policies:
        path = folder / "telco-demo.yaml"
        text = path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"')
        path.write_text(text + POLICIES)
    return folder


def instant_with_without(rounds: int, block: int, backend: str, propose: float = 1.0,
                         always_ahead: bool = False) -> dict:
    os.environ.setdefault("RECO_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT / "tests"))
    from app import create_app
    from app.store import open_store

    work = Path(tempfile.mkdtemp(prefix="contact-bench-"))
    cluster = None
    try:
        urls = {}
        if backend == "postgresql":
            from pgcluster import PgCluster
            cluster = PgCluster(work / "pg").start()
            urls = {name: cluster.new_database() for name in ("without", "with")}
        now = dt.datetime.now(dt.timezone.utc)
        names = ("without", "with") + (("with_always_ahead",) if always_ahead else ())
        if backend == "postgresql" and always_ahead:
            urls["with_always_ahead"] = cluster.new_database()
        apps = {}
        for name in names:
            store_url = urls.get(name) or str(work / name)
            store = open_store(store_url)
            store.insert_many("recommendationReaction", list(reactions(20 * PARTIES, now)))
            store.close()
            apps[name] = create_app(data_dir=work / name, rules_dir=rules_copy(work, name != "without", name),
                                    catalog_dir=ROOT / "tests" / "demo" / "catalog",
                                    background_workers=False, log_level="WARNING",
                                    **({"store_url": urls[name]} if urls else {}))
        assert apps["with"].extensions["reco"].rules.engine.ruleset.contact_policies
        if always_ahead:
            # the earlier code path: the history read with the customer on every
            # request naming a party (app/recommend/read_ahead.py, threshold 0)
            apps["with_always_ahead"].extensions["reco"].recommender.read_ahead.threshold = 0.0
        clients = {name: app.test_client() for name, app in apps.items()}
        for client in clients.values():                     # warm-up
            for body in bodies(200, 999):
                assert client.post(PATH, json=body).status_code == 200
        rps = {name: [] for name in names}
        cpu = {name: [] for name in names}
        db_cpu = {name: [] for name in names}
        postmaster = postmaster_pid(work / "pg") if cluster is not None else None
        seed = 0
        for round_ in range(rounds):
            for name in (names if round_ % 2 == 0 else names[::-1]):
                seed += 1
                batch = list(bodies(block, seed, propose))
                db_started = cluster_cpu_seconds(postmaster) if postmaster else 0.0
                started, cpu_started = time.perf_counter(), time.process_time()
                for body in batch:
                    assert clients[name].post(PATH, json=body).status_code == 200
                rps[name].append(block / (time.perf_counter() - started))
                cpu[name].append((time.process_time() - cpu_started) / block)
                if postmaster:
                    db_cpu[name].append((cluster_cpu_seconds(postmaster) - db_started) / block)
        for app in apps.values():
            app.extensions["reco"].decisions.flush()
        without, with_ = statistics.median(rps["without"]), statistics.median(rps["with"])
        extra = {}
        if always_ahead:
            ahead = statistics.median(rps["with_always_ahead"])
            extra = {"with_always_ahead_rps": round(ahead, 1), "ratio_always_ahead": round(ahead / without, 3),
                     "with_always_ahead_cpu_ms": round(statistics.median(cpu["with_always_ahead"]) * 1000, 3)}
            if postmaster:
                extra["with_always_ahead_db_cpu_ms"] = round(statistics.median(db_cpu["with_always_ahead"]) * 1000, 3)
                extra["total_cpu_ratio_always_ahead"] = _with_database(
                    {"without": cpu["without"], "with": cpu["with_always_ahead"]},
                    {"without": db_cpu["without"], "with": db_cpu["with_always_ahead"]})["total_cpu_ratio"]
        return {"backend": backend, "rounds": rounds, "block": block, "propose": propose, **extra,
                "without_rps": round(without, 1), "with_rps": round(with_, 1),
                "ratio": round(with_ / without, 3),
                "pair_ratios": [round(b / a, 3) for a, b in zip(rps["without"], rps["with"])],
                # CPU time of the process per request (all its threads): steadier
                # than requests/s when other processes share the cores
                "without_cpu_ms": round(statistics.median(cpu["without"]) * 1000, 3),
                "with_cpu_ms": round(statistics.median(cpu["with"]) * 1000, 3),
                "cpu_ratio": round(statistics.median(cpu["without"]) / statistics.median(cpu["with"]), 3),
                **(_with_database(cpu, db_cpu) if postmaster else {})}
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def _with_database(cpu: dict, db_cpu: dict) -> dict:
    """The database's CPU per request too (bench/pg_cpu.py), and the ratio
    of the whole cost, this process's CPU + the database's per request
    (without / with: the requests/s ratio an idle machine would give)."""
    total = {name: statistics.median(a + b for a, b in zip(cpu[name], db_cpu[name])) for name in cpu}
    return {"without_db_cpu_ms": round(statistics.median(db_cpu["without"]) * 1000, 3),
            "with_db_cpu_ms": round(statistics.median(db_cpu["with"]) * 1000, 3),
            "total_cpu_ratio": round(total["without"] / total["with"], 3)}


_REACTIONS_SQL = """
    INSERT INTO documents (collection, id, doc)
    SELECT 'recommendationReaction', 'r' || g, jsonb_build_object(
        'id', 'r' || g,
        'reactionType', (ARRAY['shown','shown','shown','shown','shown','shown','clicked','rejected',
                               'accepted'])[1 + (g * 7) %% 9],
        'reactionDate', to_char(%(now)s::timestamptz - ((g * 7919) %% (90 * 86400)) * interval '1 second',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'recommendation', jsonb_build_object('id', 'd' || g, 'itemId', '1'),
        'productOffering', jsonb_build_object('id', (%(offerings)s::text[])[1 + g %% 9]),
        'channel', jsonb_build_object('id', (21 + g %% 3)::text),
        'relatedParty', jsonb_build_array(jsonb_build_object('id', 'p' || (g * 104729) %% %(parties)s,
                                                             'role', 'customer')),
        '@type', 'RecommendationReaction')
    FROM generate_series(%(first)s::bigint, %(last)s::bigint - 1) AS g"""

_CUSTOMERS_SQL = """
    INSERT INTO documents (collection, id, doc)
    SELECT 'customer', 'p' || g, jsonb_build_object(
        'id', 'p' || g, 'name', 'Customer ' || g, 'status', 'Approved',
        'engagedParty', jsonb_build_object('id', 'p' || g, '@referredType', 'Individual'),
        'characteristic', jsonb_build_array(jsonb_build_object('name', 'segment',
                                                               'value', (ARRAY['gold','silver','bronze'])[1 + g %% 3])),
        '@type', 'Customer')
    FROM generate_series(%(first)s::bigint, %(last)s::bigint - 1) AS g"""

_DECISIONS_SQL = """
    WITH d AS (
        SELECT g, 'd' || g AS id,
               %(now)s::timestamptz - ((g * 7919) %% (2 * 86400)) * interval '1 second' AS t,
               'p' || (g * 104729) %% %(parties)s AS party
        FROM generate_series(%(first)s::bigint, %(last)s::bigint - 1) AS g),
    ins AS (
        INSERT INTO decisions (id, decided_at, mode, party_id, channel_id, segment, rule_set_id,
                               rule_set_version, experiment_arm, doc)
        SELECT id, t, 'instant', party, (21 + g %% 3)::text, NULL, 'telco-demo', '1.0.0', NULL,
               jsonb_build_object('id', id, 'partyId', party)
        FROM d)
    INSERT INTO decision_items (decision_id, item_id, decided_at, rule_set_id, rule_set_version,
                                channel_id, segment, offering_id, rule_ids)
    SELECT id, k::text, t, 'telco-demo', '1.0.0', (21 + g %% 3)::text, NULL,
           (%(offerings)s::text[])[1 + (g + k) %% 9], ARRAY['R1']
    FROM d CROSS JOIN generate_series(1, 3) AS k"""


#: the reads measured at size, by name: the customer alone (what a version
#: without policies reads), with the reactions two policies read
#: (maxImpressions over 7 days, pauseAfterRejected over 30: a 30-day window,
#: as in the earlier runs) and with the last 24 hours' answers too
#: (maxOffersPerDay, the most expensive read)
READS = ("customer", "customer_reactions", "customer_reactions_offers")
#: the last read again once the answers' tables are in the OS page cache (pg_prewarm)
CACHED = "customer_reactions_offers_answers_cached"


def _reads() -> dict:
    from app.rules.model.contact import ContactPolicy
    reactions = (ContactPolicy("P1", "maxImpressions", count=3, days=7, per_channel=True,
                               category="accessories"),
                 ContactPolicy("P2", "pauseAfterRejected", days=30))
    return dict(zip(READS, ((), reactions, reactions + (ContactPolicy("P3", "maxOffersPerDay", count=20),))))


def _percentiles(times: list[float]) -> dict:
    times = sorted(times)
    pick = lambda q: round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 3)  # noqa: E731
    return {"reads": len(times), "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99)}


def postgres_read(parties: int, reactions_n: int, decisions_n: int, reads: int,
                  chunk: int = 1_000_000) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import psycopg
    from pgcluster import PgCluster

    from app.contact.history import PostgresHistory
    from app.recommend.facts import PartyFacts
    from app.rules.engine.contact import reaction_windows, window
    from app.store import open_store

    work = Path(tempfile.mkdtemp(prefix="contact-pg-"))
    cluster = PgCluster(work / "pg").start()
    try:
        url = cluster.new_database()
        store = open_store(url)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        result = {"parties": parties, "reactions": reactions_n, "decisions": decisions_n,
                  "items": 3 * decisions_n}
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("SET maintenance_work_mem = '256MB'")
            # bulk load: triggers off (rollup, feedback flags), the documents'
            # secondary indexes dropped and the one this read uses built after
            conn.execute("SET session_replication_role = replica")
            kept = ("documents_pkey", "documents_reaction_party_type")
            indexes = [row[0] for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents'").fetchall()]
            dropped = [name for name in indexes if name not in kept]
            for name in dropped:
                conn.execute(f"DROP INDEX {name}")
            conn.execute("DROP INDEX documents_reaction_party_type")
            conn.execute("ALTER TABLE documents DROP CONSTRAINT documents_pkey")
            for first in range(0, reactions_n, chunk):
                conn.execute(_REACTIONS_SQL, {"first": first, "last": min(first + chunk, reactions_n),
                                              "now": now, "offerings": OFFERINGS, "parties": parties})
            for first in range(0, parties, chunk):
                conn.execute(_CUSTOMERS_SQL, {"first": first, "last": min(first + chunk, parties)})
            for first in range(0, decisions_n, chunk):
                conn.execute(_DECISIONS_SQL, {"first": first, "last": min(first + chunk, decisions_n),
                                              "now": now, "offerings": OFFERINGS, "parties": parties})
            conn.execute("SET session_replication_role = origin")
            result["load_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            conn.execute("ALTER TABLE documents ADD PRIMARY KEY (collection, id)")
            conn.execute("""CREATE INDEX documents_reaction_party_type ON documents
                            ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionType'),
                             (doc ->> 'reactionDate'))
                            WHERE collection = 'recommendationReaction'""")
            for table in ("documents", "decisions", "decision_items"):
                conn.execute(f"VACUUM ANALYZE {table}")
            result["index_s"] = round(time.perf_counter() - started, 1)
            result["documents_indexes_not_rebuilt"] = dropped
            result["mb"] = {t: round(conn.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0]
                                     / 2**20) for t in ("documents", "decisions", "decision_items")}
        result["read_path"] = ("PartyFacts.look_up inside store.reading(), as build_context runs it: "
                               "the customer by id and, with policies, the party's history in ONE "
                               "statement (PostgresStore.get_along)")
        parties_facts = PartyFacts(store, PostgresHistory(store))
        example = f"p{12345 % parties}"          # a party that exists, for EXPLAIN
        rng = random.Random(11)
        reads_by_name = _reads()
        reads_by_name[CACHED] = reads_by_name["customer_reactions_offers"]
        for name, policies in reads_by_name.items():
            if name == CACHED:
                # the answers of the last 24 hours as a service has them: written
                # minutes before they are read, so in the OS page cache, which
                # the bulk load here does not leave them in
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
                    result["prewarmed_blocks"] = sum(
                        conn.execute("SELECT pg_prewarm(%s, 'read')", (rel,)).fetchone()[0]
                        for rel in ("decisions", "decisions_party", "decision_items", "decision_items_pkey"))
            times, events = [], []
            for _ in range(reads):
                party = {"id": f"p{rng.randrange(parties)}", "role": "customer"}
                started = time.perf_counter()
                with store.reading():
                    customer, source = parties_facts.look_up(party, now, policies)
                    found = (source.read(party["id"], *window(policies, now),
                                         kinds=reaction_windows(policies, now)) if policies else None)
                times.append(time.perf_counter() - started)
                assert customer is not None and customer["id"] == party["id"]
                if found is not None:
                    assert type(source).__name__ == "ReadAhead"   # answered from the one statement
                    events.append(len(found.reactions) + len(found.offers))
            result[name] = {**_percentiles(times), "events_median": statistics.median(events or [0])}
            if policies:
                (sql, params, columns), _ = PostgresHistory(store).ahead(
                    example, *window(policies, now), kinds=reaction_windows(policies, now))
                statement = store.along_statement(sql, columns)
                params = {**params, "_collection": "customer", "_id": example}
            else:
                statement = "SELECT doc FROM documents WHERE collection = %(c)s AND id = %(i)s"
                params = {"c": "customer", "i": example}
            with store.connection(write=False) as conn:
                plan = [row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement,
                                                       params).fetchall()]
            result[name]["plan"] = plan
            if any("Seq Scan" in line for line in plan):
                raise SystemExit("the policy read scans a table:\n" + "\n".join(plan))
        store.close()
        return result
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--backend", choices=("tinydb", "postgresql", "both"), default="both")
    parser.add_argument("--parties", type=int, default=1_000_000)
    parser.add_argument("--reactions", type=int, default=20_000_000)
    parser.add_argument("--decisions", type=int, default=2_000_000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--propose", type=float, default=1.0,
                        help="share of the requests whose rules propose items (the others propose nothing)")
    parser.add_argument("--always-ahead", action="store_true",
                        help="a third app that reads the history with the customer on every request "
                             "(the code path before app/recommend/read_ahead.py), same run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "contact-policies.json")
    args = parser.parse_args()
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result["load_average_before"] = os.getloadavg()
    if args.rounds:
        backends = ("tinydb", "postgresql") if args.backend == "both" else (args.backend,)
        result["instant"] = [instant_with_without(args.rounds, args.block, b, args.propose, args.always_ahead)
                             for b in backends]
        print(json.dumps(result["instant"]), flush=True)
    if args.reactions:
        result["postgres_read"] = postgres_read(args.parties, args.reactions, args.decisions, args.reads)
        print(json.dumps({k: v for k, v in result["postgres_read"].items() if k not in READS + (CACHED,)}),
              flush=True)
        for name in READS + (CACHED,):
            print(name, json.dumps({k: v for k, v in result["postgres_read"][name].items() if k != "plan"}))
    result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
