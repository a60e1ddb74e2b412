"""Benchmarks of the recommendation path: `python -m bench` (full, < 15 min on the
2-core machine) or `python -m bench --quick` (< 2 min, for CI: exercises every phase,
judges nothing). Results go to bench/results/ (full) or a temporary directory (quick)
unless --out is given: results.json, results.md, *.png, profile-*.txt.

Needs the `bench` extra (`pip install -e '.[bench]'`: matplotlib for the plots,
pyinstrument for the profiles; both optional) and, for the HTTP load, wrk
(`apt-get install -y wrk`; without it a Python client is used and said so).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from app.cli.output import progress_bar

from . import engine_bench, http_bench, report, store_bench, workload
from .http_bench import log, loadavg
from .load import client_name

HERE = Path(__file__).resolve().parent

PROFILES = {
    # what each mode runs; every size and duration in one place
    "full": dict(
        rules=[10, 100, 1000, 10000], offerings=1000, customers=1000, bodies=500,
        engine_evals={10: 5000, 100: 5000, 1000: 3000, 10000: 400}, recommender_calls=60,
        http_rules=[10, 100, 1000, 10000], http_configs=["1 worker, pinned", "2 workers"],
        http_duration=5.0, http_warmup=1.5, service_max_rules=1000,
        memory_rules=1000, memory_requests=100_000, memory_seconds=60.0,
        loop_rules=100, loop_evals=100_000,
        reload_rules=[1000, 10000], reload_total={1000: 14.0, 10000: 75.0}, reload_before=4.0,
        store_sizes=[1000, 10_000, 100_000], store_requests=200, store_seconds=8.0, store_completion=20.0,
        lookup_customers=[100, 1000, 10_000], profile=True,
    ),
    "quick": dict(
        rules=[10, 100], offerings=1000, customers=200, bodies=100,
        engine_evals={10: 300, 100: 300}, recommender_calls=20,
        http_rules=[100], http_configs=["1 worker, pinned", "2 workers"], http_duration=1.5, http_warmup=0.5,
        memory_rules=100, memory_requests=300, memory_seconds=5.0,
        loop_rules=100, loop_evals=2000,
        reload_rules=[100], reload_total={100: 3.5}, reload_before=1.2,
        store_sizes=[100, 1000], store_requests=8, store_seconds=2.0, store_completion=20.0,
        lookup_customers=[100], profile=False, service_max_rules=100,
    ),
}
PHASES = ["engine", "http", "memory", "reload", "store", "lookups", "profile"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (< 2 min)")
    parser.add_argument("--out", type=Path, help="results directory (default: bench/results, or a temp dir "
                                                 "with --quick)")
    parser.add_argument("--work", type=Path, help="where the generated workload and server data go "
                                                  "(default: a temp dir, removed at the end)")
    parser.add_argument("--seed", type=int, default=680)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--only", help=f"comma-separated phases among {','.join(PHASES)}")
    parser.add_argument("--rules", help="comma-separated rule counts (overrides the mode's)")
    parser.add_argument("--one-worker", action="store_true",
                        help="HTTP phase on one pinned worker only (the configuration of the instant-path goal)")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full"
    cfg = dict(PROFILES[mode])
    if args.rules:
        cfg["rules"] = cfg["http_rules"] = [int(x) for x in args.rules.split(",")]
    if args.one_worker:
        cfg["http_configs"] = ["1 worker, pinned"]
    phases = args.only.split(",") if args.only else PHASES
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    client = client_name(args.client)
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-work-"))
    keep_work = args.work is not None
    t_start = time.perf_counter()
    results: dict = {"meta": {
        "mode": mode, "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "python": platform.python_version(), "client": client, "seed": args.seed,
        "offerings": cfg["offerings"], "customers": cfg["customers"], "loadavgStart": loadavg(),
        "git": git_state(), "phases": phases, "config": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()})
                                     for k, v in cfg.items()},
    }}
    try:
        log(f"{mode} run: generating the workload in {work}")
        all_rules = sorted(set(cfg["rules"]) | set(cfg["http_rules"]) | {cfg["memory_rules"], cfg["loop_rules"]}
                           | set(cfg["reload_rules"]))
        wl = workload.build(work, args.seed, cfg["offerings"], cfg["customers"], cfg["bodies"], all_rules)
        results["meta"]["products"] = len(wl.parties.products)
        results["workload"] = {str(r): workload.describe(wl.rulesets[r]) for r in all_rules}
        results["workload"]["mix"] = workload.MIX

        # A bar over the phases on a terminal (app/cli/output.py); nothing when
        # piped. Every phase slot counts, so a skipped phase moves it at once.
        with progress_bar("Benchmark phases", total=len(PHASES)) as advance:
            if "engine" in phases:
                results["engine"] = run_engine(wl, cfg)
            advance()
            if "lookups" in phases:
                results["storeLookups"] = run_lookups(wl, cfg, args.seed)
            advance()
            if "http" in phases:
                results["http"] = http_bench.http_matrix(wl, cfg["http_rules"], client=client,
                                                         duration=cfg["http_duration"], warmup=cfg["http_warmup"],
                                                         configs=cfg["http_configs"])
            advance()
            if "memory" in phases:
                log(f"memory: up to {cfg['memory_requests']} requests or {cfg['memory_seconds']} s at "
                    f"R={cfg['memory_rules']}")
                results["memory"] = {"http": http_bench.memory_growth(
                    wl, cfg["memory_rules"], client=client, requests=cfg["memory_requests"],
                    max_seconds=cfg["memory_seconds"], warmup=cfg["http_warmup"])}
                log(f"  {results['memory']['http']['requests']} requests, growth "
                    f"{results['memory']['http']['growthAfterTenth_kib']} KiB after the first tenth")
                engine, _ = engine_bench.load_times(wl, cfg["loop_rules"])
                loop = engine_bench.memory_loop(engine, engine_bench.contexts(wl), cfg["loop_evals"])
                loop["rules"] = cfg["loop_rules"]
                results["memory"]["engineLoop"] = loop
                log(f"  engine loop: {loop['evaluations']} evaluations, RSS {loop['rss_kib'][0][1]} -> "
                    f"{loop['rss_kib'][-1][1]} KiB")
            advance()
            if "reload" in phases:
                results["reload"] = []
                for n_rules in cfg["reload_rules"]:
                    log(f"reload under load: R={n_rules}")
                    row = http_bench.reload_under_load(wl, n_rules, total=cfg["reload_total"][n_rules],
                                                       before=cfg["reload_before"])
                    results["reload"].append(row)
                    log(f"  activation {row['activation_s']} s, failed {row['failed']}, slowed "
                        f"{row['slowedDuringReload']}/{row['duringReload']}, max {row['maxDuringReload_ms']} ms")
            advance()
            if "store" in phases:
                results["store"] = store_bench.store_matrix(
                    wl, cfg["store_sizes"], n_rules=min(cfg["rules"]), max_requests=cfg["store_requests"],
                    max_seconds=cfg["store_seconds"], completion_timeout=cfg["store_completion"])
            advance()
            if "profile" in phases and cfg["profile"]:
                run_profiles(wl, cfg, out)
            advance()
    finally:
        results["meta"]["loadavgEnd"] = loadavg()
        results["meta"]["wall_s"] = round(time.perf_counter() - t_start, 1)
        report.write(results, out)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print(report.markdown(results))
    log(f"done in {results['meta']['wall_s']} s; results in {out}")
    return 0


def git_state() -> dict:
    import subprocess
    root = HERE.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "wsgi.py", "gunicorn.conf.py"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.split("\n")
        return {"head": head, "uncommittedAppFiles": sorted(line[3:] for line in dirty if line.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def run_engine(wl, cfg) -> list[dict]:
    from app.rules import RuleService
    ctxs = engine_bench.contexts(wl)
    rows = []
    data = http_bench.parties_store(wl)
    from app.store import open_store
    store = open_store(str(data))
    try:
        for n_rules in cfg["rules"]:
            log(f"engine: R={n_rules}")
            engine, load = engine_bench.load_times(wl, n_rules)
            evals = cfg["engine_evals"].get(n_rules, 500)
            row = {"rules": n_rules, "load": load,
                   "eval": engine_bench.engine_run(engine, ctxs, evals, warmup=min(200, evals))}
            engine.close()
            if n_rules > cfg["service_max_rules"]:     # (time budget: the reload runs cover it over HTTP)
                rows.append(row)
                log(f"  load {load['rulesetLoad_s']} s + compile {load['compile_s']} s, {load['chunks']} chunks; "
                    f"eval p50 {row['eval']['p50_us']} µs p99 {row['eval']['p99_us']} µs")
                continue
            # the whole reload a worker does: RuleService cold start, then a hot reload
            state = wl.root / f"state-{n_rules}"
            t0 = time.perf_counter()
            service = RuleService(wl.rules_dir(n_rules), wl.catalog_dir, state, ruleset_id="bench")
            row["coldService_s"] = round(time.perf_counter() - t0, 3)
            row["recommender"] = engine_bench.recommender_run(wl, n_rules, store, cfg["recommender_calls"], service)
            original = wl.ruleset_path(n_rules).read_text(encoding="utf-8")
            changed = original.replace('version: 1.0.0', 'version: 1.0.1', 1)
            wl.ruleset_path(n_rules).write_text(changed, encoding="utf-8")
            t0 = time.perf_counter()
            service.refresh()
            row["hotReload_s"] = round(time.perf_counter() - t0, 3)
            row["hotReloadVersion"] = service.status()["version"]
            wl.ruleset_path(n_rules).write_text(original, encoding="utf-8")
            service.reload()
            rows.append(row)
            log(f"  load {load['rulesetLoad_s']} s + compile {load['compile_s']} s, {load['chunks']} chunks; "
                f"eval p50 {row['eval']['p50_us']} µs p99 {row['eval']['p99_us']} µs; "
                f"recommender p50 {row['recommender']['p50_us']} µs; hot reload {row['hotReload_s']} s")
    finally:
        store.close()
    return rows


def run_lookups(wl, cfg, seed) -> list[dict]:
    """Recommender.recommend in-process against stores of growing size, and what an
    index on the party id would cost instead of store.all()."""
    from app.store import open_store
    rows = []
    for customers in cfg["lookup_customers"]:
        log(f"store look-ups: {customers} customers")
        parties = workload.make_parties(wl.catalog, customers, seed)
        data = wl.root / f"lookup-{customers}"
        if data.exists():
            shutil.rmtree(data)
        http_bench.populate(data, {"customer": parties.customers, "product": parties.products})
        store = open_store(str(data))
        try:
            calls = max(5, min(cfg["recommender_calls"], int(60_000 / max(1, customers))))
            bodies = workload.make_bodies(wl.catalog, parties, calls, seed)
            saved = wl.bodies
            wl.bodies = bodies
            try:
                row = engine_bench.recommender_run(wl, min(cfg["rules"]), store, calls)
            finally:
                wl.bodies = saved
            t0 = time.perf_counter_ns()
            everything = store.all("product")
            row["allProducts_us"] = round((time.perf_counter_ns() - t0) / 1000, 1)
            index: dict[str, list[dict]] = {}
            for product in everything:
                for party in product.get("relatedParty") or []:
                    index.setdefault(str(party.get("id")), []).append(product)
            ids = [c["id"] for c in parties.customers[:200]]
            t0 = time.perf_counter_ns()
            for cid in ids:
                [dict(p) for p in index.get(cid, [])]
            row["indexed_us"] = round((time.perf_counter_ns() - t0) / 1000 / len(ids), 2)
            row.update({"customers": customers, "products": len(parties.products)})
            rows.append(row)
            log(f"  recommend p50 {row['p50_us']} µs, of which build_context {row['buildContext_p50_us']} µs; "
                f"store.all(product) {row['allProducts_us']} µs")
        finally:
            store.close()
            shutil.rmtree(data, ignore_errors=True)
    return rows


def run_profiles(wl, cfg, out: Path) -> None:
    """pyinstrument profiles: the instant POST in-process (Flask test client) at
    R = 1,000, the engine at the largest R, and a cold rule set load of 1,000 rules."""
    import logging

    from app import create_app
    from app.rules import RuleService
    log("profiles (pyinstrument)")
    n_rules = 1000 if 1000 in cfg["rules"] else max(cfg["rules"])
    data = http_bench.fresh_data(wl, "profile")
    app = create_app(data_dir=data, rules_dir=wl.rules_dir(n_rules), catalog_dir=wl.catalog_dir,
                     ruleset_id="bench", background_workers=False)
    logging.disable(logging.INFO)
    client = app.test_client()
    bodies = wl.bodies
    url = http_bench.RECO_PATH
    for body in bodies[:10]:
        client.post(url, json=body)

    def posts():
        for body in bodies[:60]:
            client.post(url, json=body)

    (out / f"profile-instant-post-R{n_rules}.txt").write_text(engine_bench.profile_text(posts), encoding="utf-8")

    def anonymous_posts():
        for body in bodies[:200]:
            client.post(url, json={k: v for k, v in body.items() if k != "relatedParty"})

    (out / f"profile-instant-post-anonymous-R{n_rules}.txt").write_text(engine_bench.profile_text(anonymous_posts),
                                                                      encoding="utf-8")
    biggest = max(cfg["rules"])
    engine, _ = engine_bench.load_times(wl, biggest)
    ctxs = engine_bench.contexts(wl)

    def evaluations():
        for i in range(150):
            engine.recommend(ctxs[i % len(ctxs)])

    (out / f"profile-engine-R{biggest}.txt").write_text(engine_bench.profile_text(evaluations), encoding="utf-8")
    engine.close()

    def cold_load():
        RuleService(wl.rules_dir(n_rules), wl.catalog_dir, wl.root / "state-profile", ruleset_id="bench")

    (out / f"profile-reload-R{n_rules}.txt").write_text(engine_bench.profile_text(cold_load, 0.001),
                                                         encoding="utf-8")
    logging.disable(logging.NOTSET)


if __name__ == "__main__":
    sys.exit(main())
