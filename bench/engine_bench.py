"""In-process figures: the rules engine alone, the recommender (store look-ups +
engine), rule set load and compile times, and profiles."""
from __future__ import annotations

import gc
import json
import statistics
import time
from pathlib import Path

from app.recommend.facts import build_context
from app.rules import Context
from app.rules.model.catalog import load_catalog
from app.rules.engine.compiler import context_atoms
from app.rules.engine.engine import Engine
from app.rules.model.facts import build_facts
from app.rules.model.ruleset import load_ruleset
from app.timeutil import parse_datetime

from .server import rss_kib
from .workload import Workload


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summary_us(samples_ns: list[int]) -> dict:
    us = [s / 1000 for s in samples_ns]
    return {"n": len(us), "p50_us": round(pct(us, 50), 1), "p90_us": round(pct(us, 90), 1),
            "p99_us": round(pct(us, 99), 1), "max_us": round(max(us), 1) if us else 0.0,
            "mean_us": round(statistics.fmean(us), 1) if us else 0.0}


def contexts(workload: Workload) -> list[Context]:
    """The same requests as the HTTP bodies, as engine contexts (customer and products
    joined directly from the generated data, without a store)."""
    customers = {c["id"]: c for c in workload.parties.customers}
    by_party = {c["engagedParty"]["id"]: c for c in workload.parties.customers}
    owned: dict[str, list[dict]] = {}
    for product in workload.parties.products:
        owned.setdefault(product["relatedParty"][0]["id"], []).append(product)
    out = []
    for body in workload.bodies:
        party = (body.get("relatedParty") or {}).get("id")
        customer = customers.get(party) or by_party.get(party)
        cart = [item["productOffering"]["id"] for cart in body.get("shoppingCart") or []
                for item in cart.get("cartItem") or []]
        out.append(Context(time=parse_datetime(body["validFor"]["startDateTime"]),
                           channels=[c["id"] for c in body.get("channel") or []], cart=cart,
                           customer=customer, products=owned.get(customer["id"], []) if customer else []))
    return out


def load_times(workload: Workload, n_rules: int) -> tuple[Engine, dict]:
    """Times of the three steps, and how much this process's RSS grew in each (a rough
    split of a worker's memory between the parsed rule set, Python, and the compiled
    engine, mostly durable-rules' C structures)."""
    import os
    pid = os.getpid()
    gc.collect()
    r0 = rss_kib(pid)
    t0 = time.perf_counter()
    catalog = load_catalog(workload.catalog_dir)
    t1 = time.perf_counter()
    ruleset = load_ruleset(workload.ruleset_path(n_rules), catalog)
    t2 = time.perf_counter()
    gc.collect()
    r1 = rss_kib(pid)
    engine = Engine(ruleset, catalog)
    t3 = time.perf_counter()
    gc.collect()
    r2 = rss_kib(pid)
    return engine, {"catalogLoad_s": round(t1 - t0, 3), "rulesetLoad_s": round(t2 - t1, 3),
                    "compile_s": round(t3 - t2, 3), "rssLoad_kib": r1 - r0, "rssCompile_kib": r2 - r1,
                    "chunks": len(engine.plans),
                    "alwaysChunks": sum(p.always for p in engine.plans),
                    "fileBytes": workload.ruleset_path(n_rules).stat().st_size}


def engine_run(engine: Engine, ctxs: list[Context], evaluations: int, warmup: int) -> dict:
    """Engine.recommend per context, and its parts: facts, durable, policies."""
    for i in range(warmup):
        engine.recommend(ctxs[i % len(ctxs)])
    total, facts_ns, fire_ns, fired_counts, chunk_counts, items = [], [], [], [], [], []
    gc_was = gc.isenabled()
    for i in range(evaluations):
        ctx = ctxs[i % len(ctxs)]
        t0 = time.perf_counter_ns()
        result = engine.recommend(ctx)
        total.append(time.perf_counter_ns() - t0)
        fired_counts.append(len(result.fired_rules))
        items.append(len(result.items))
    # the parts, on a sample (the same code path as Engine.recommend, timed step by step)
    for i in range(min(evaluations, 2000)):
        ctx = ctxs[i % len(ctxs)]
        t0 = time.perf_counter_ns()
        facts = build_facts(ctx, engine.catalog)
        t1 = time.perf_counter_ns()
        engine.fired_indexes(facts)
        t2 = time.perf_counter_ns()
        facts_ns.append(t1 - t0)
        fire_ns.append(t2 - t1)
        chunk_counts.append(len(engine.chunks_for(facts)))
    if gc_was:
        gc.enable()
    out = summary_us(total)
    out.update({
        "facts_p50_us": summary_us(facts_ns)["p50_us"],
        "durable_p50_us": summary_us(fire_ns)["p50_us"],
        "durable_p99_us": summary_us(fire_ns)["p99_us"],
        "chunksEvaluated_mean": round(statistics.fmean(chunk_counts), 1),
        "firedRules_mean": round(statistics.fmean(fired_counts), 2),
        "items_mean": round(statistics.fmean(items), 2),
        "withItems_share": round(sum(1 for n in items if n) / len(items), 3),
    })
    return out


def recommender_run(workload: Workload, n_rules: int, store, calls: int, rules_service=None) -> dict:
    """app.recommend.Recommender.recommend(query) in-process: the facts are built from
    the store (customer and inventory look-ups) as the API does."""
    from app.recommend import Recommender
    from app.rules import RuleService

    service = rules_service or RuleService(workload.rules_dir(n_rules), workload.catalog_dir,
                                           workload.root / "state", ruleset_id="bench")
    recommender = Recommender(service, store)
    bodies = workload.bodies
    for i in range(min(5, calls)):
        recommender.recommend(bodies[i % len(bodies)])
    total, context_ns = [], []
    for i in range(calls):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter_ns()
        build_context(body, recommender.parties)
        t1 = time.perf_counter_ns()
        recommender.recommend(body)
        t2 = time.perf_counter_ns()
        context_ns.append(t1 - t0)
        total.append(t2 - t1)
    out = summary_us(total)
    out["buildContext_p50_us"] = summary_us(context_ns)["p50_us"]
    out["buildContext_share"] = round(statistics.median(context_ns) / max(1, statistics.median(total)), 3)
    return out


def memory_loop(engine: Engine, ctxs: list[Context], evaluations: int, samples: int = 50) -> dict:
    """RSS of this process while the engine evaluates `evaluations` contexts."""
    import os
    pid = os.getpid()
    points = []
    step = max(1, evaluations // samples)
    t0 = time.perf_counter()
    for i in range(evaluations):
        engine.recommend(ctxs[i % len(ctxs)])
        if i % step == 0:
            points.append((i, rss_kib(pid)))
    points.append((evaluations, rss_kib(pid)))
    return {"evaluations": evaluations, "seconds": round(time.perf_counter() - t0, 2), "rss_kib": points}


def profile_text(func, interval: float = 0.0005) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument is not installed: pip install -e '.[bench]')"
    profiler = Profiler(interval=interval)
    profiler.start()
    try:
        func()
    finally:
        profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def atoms_of(engine: Engine, ctx: Context) -> int:
    return len(context_atoms(build_facts(ctx, engine.catalog)))


def dump(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
