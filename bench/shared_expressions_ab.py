"""The engine with and without one durable rule per distinct expression
(compiler.share_identical), both built in ONE process from the same parsed
rule set and evaluated alternately on the same contexts, so whatever else
runs on the machine weighs on both alike:

    python -m bench.shared_expressions_ab [--rules 1000,10000] [--rounds 4] [--out FILE]

Per rule count: thread CPU of each build, chunks, thread CPU per
`recommend()` (medians of the rounds over the workload's 500 contexts, with
their customers), and whether every context fired the same rules.
Results: bench/results/shared-expressions-ab.json.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import app.rules.engine.engine as engine_module
from app.rules.model.catalog import load_catalog
from app.rules.model.ruleset import load_ruleset

from . import workload
from .engine_bench import contexts

HERE = Path(__file__).resolve().parent


def measure(wl, n_rules: int, rounds: int) -> dict:
    catalog = load_catalog(wl.catalog_dir)
    ruleset = load_ruleset(wl.ruleset_path(n_rules), catalog)
    engines, builds = {}, {}
    shared = engine_module.share_identical
    for name in ("shared", "unshared"):
        engine_module.share_identical = shared if name == "shared" else (lambda entries: (entries, {}))
        started = time.thread_time()
        engines[name] = engine_module.Engine(ruleset, catalog)
        builds[name] = round(time.thread_time() - started, 3)
    engine_module.share_identical = shared
    ctxs = contexts(wl)
    for ctx in ctxs:                     # first use of every chunk (durable's session state)
        for engine in engines.values():
            engine.recommend(ctx)
    cpu: dict[str, list[float]] = {"shared": [], "unshared": []}
    for index in range(rounds):
        order = ("unshared", "shared") if index % 2 == 0 else ("shared", "unshared")
        for name in order:
            gc.collect()
            started = time.thread_time()
            for ctx in ctxs:
                engines[name].recommend(ctx)
            cpu[name].append(round((time.thread_time() - started) / len(ctxs) * 1e6, 1))
    same = all(engines["shared"].recommend(c).fired_rules == engines["unshared"].recommend(c).fired_rules
               for c in ctxs)
    return {"buildThreadCpu_s": builds, "chunks": {k: len(e.plans) for k, e in engines.items()},
            "durableRules": {k: sum(len(p.rules) for p in e.plans) for k, e in engines.items()},
            "cpuPerRecommend_us": cpu, "median_us": {k: statistics.median(v) for k, v in cpu.items()},
            "sameFiredRules": same}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_expressions_ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "shared-expressions-ab.json")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.rules.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-shared-"))
    try:
        wl = workload.build(scratch, 680, 1000, 1000, 500, sizes)
        result = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavgStart": os.getloadavg()}
        for n in sizes:
            result[str(n)] = measure(wl, n, args.rounds)
            print(n, json.dumps(result[str(n)]), flush=True)
        result["loadavgEnd"] = os.getloadavg()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
