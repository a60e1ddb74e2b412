"""Median time of one evaluation (recommend) for generated rule sets.

    python tests/rules/bench_rules.py [10 100 1000 ...]

Two rule mixes: "anchored" (every rule needs a cart or owned offering, the
usual up-sell/cross-sell shape) and "broad" (the oracle test's mix, where a
fifth of all rules fire on every request).

Not a test (no timing asserts): a tool to measure on this machine.
"""
from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.rules.model.catalog import load_catalog  # noqa: E402
from app.rules.engine.engine import Engine  # noqa: E402
from app.rules.model.ruleset import load_ruleset  # noqa: E402
from rulegen import context_of, dump, make_ruleset, random_context  # noqa: E402


def bench(n_rules: int, n_offerings: int = 1000, contexts: int = 500, anchored: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp())
    catalog_data, ruleset_data = make_ruleset(n_rules, n_offerings, anchored=anchored)
    (tmp / "catalog").mkdir()
    (tmp / "catalog" / "c.yaml").write_text(dump(catalog_data))
    (tmp / "r.yaml").write_text(dump(ruleset_data))
    started = time.perf_counter()
    catalog = load_catalog(tmp / "catalog")
    engine = Engine(load_ruleset(tmp / "r.yaml", catalog), catalog)
    load_s = time.perf_counter() - started
    rng = random.Random(1)
    ctxs = [context_of(random_context(rng, n_offerings)) for _ in range(contexts)]
    for c in ctxs[:50]:
        engine.recommend(c)                       # warm up
    times, fired, chunks = [], [], []
    for c in ctxs:
        t0 = time.perf_counter()
        result = engine.recommend(c)
        times.append(time.perf_counter() - t0)
        fired.append(len(result.fired_rules))
        chunks.append(len(engine.chunks_for(engine.facts(c))))
    return {"rules": n_rules, "mix": "anchored" if anchored else "broad", "median_us": round(statistics.median(times) * 1e6, 1),
            "p90_us": round(sorted(times)[int(len(times) * 0.9)] * 1e6, 1),
            "fired_avg": round(statistics.mean(fired), 1), "chunks": len(engine.plans),
            "chunks_evaluated_avg": round(statistics.mean(chunks), 1), "load_s": round(load_s, 2)}


def bench_demo(contexts: int = 2000) -> dict:
    root = Path(__file__).resolve().parents[2]
    catalog = load_catalog(root / "catalog")
    engine = Engine(load_ruleset(root / "rules" / "telco-demo.yaml", catalog), catalog)
    from app.rules.authoring.cases import load_cases
    cases = load_cases(root / "rules" / "telco-demo.cases.yaml")
    times = []
    for i in range(contexts):
        c = cases[i % len(cases)].context
        t0 = time.perf_counter()
        engine.recommend(c)
        times.append(time.perf_counter() - t0)
    return {"rules": "telco-demo (8)", "median_us": round(statistics.median(times) * 1e6, 1)}


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    print(bench_demo())
    for anchored in (True, False):
        for size in sizes:
            print(bench(size, anchored=anchored))
