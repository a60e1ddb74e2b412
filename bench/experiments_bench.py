"""Experiments on the answering path: the instant TMF680 POST with two
running arms against the same POST without experiments, in ONE process (the
same worker), alternating batches in the same run, on contexts that do not
repeat; and the memory each extra arm's compiled version costs.

    python -m bench.experiments_bench [--rules 1000] [--requests 400] [--repeat 5]
                                      [--out bench/results/experiments-R1000.json]

Throughput: the app's WSGI stack through Flask's test client (TMF
validation, facts from the store, rules, the decision log, the JSON
answer; no sockets, so the fixed HTTP cost does not dilute the ratio: a
conservative figure). Each repeat runs one batch without the experiments
file (1.2.0, the active version, answers) and one with it (arms 1.1.0 50 % /
1.2.0 50 %, every channel: the control is the active version), order
alternating; the ratio is with / without per repeat, the median reported,
in requests/s and in this process's CPU time per request (time.process_time:
steadier than requests/s when other processes share the cores; cpu_ratio =
CPU without / CPU with, the requests/s ratio an idle core would give). The
versions hold the same rules (three engines as costly), so the ratio is the
experiment's own cost (routing, hashing, the arm on the answer and record).

Memory: VmRSS (/proc/self/status) after the active version's engine, then
after compiling each further version with RuleService.engine_of, as the
router does for every arm (durable-rules never frees a ruleset: an arm costs
its engine for the life of the worker)."""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from . import workload as wl
from .http_bench import populate

R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
EXPERIMENTS = """\
version: 1
experiments:
  - id: bench-ab
    status: running
    start: 2026-01-01T00:00:00Z
    control: control
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.2.0", weight: 50}
"""


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def project(root: Path, n_rules: int, n_bodies: int, seed: int = 7):
    """A workload with versions 1.0.0 (working copy), 1.1.0 and 1.2.0 of the
    same size, recorded in the lock file."""
    from app.rules.authoring.lockfile import lock_rulesets
    work = wl.build(root, seed, 2000, 2000, n_bodies, [])
    rules = root / "rules"
    (rules / "versions").mkdir(parents=True, exist_ok=True)
    # the same rules under three versions: three engines, each as costly to
    # evaluate, so the ratio is the experiment's own cost, not a cheaper arm
    ruleset = wl.make_rules(work.catalog, n_rules, seed)
    for version, path in (("1.0.0", rules / f"{wl.RULESET_ID}.yaml"),
                          ("1.1.0", rules / "versions" / f"{wl.RULESET_ID}@1.1.0.yaml"),
                          ("1.2.0", rules / "versions" / f"{wl.RULESET_ID}@1.2.0.yaml")):
        path.write_text(wl.rules_yaml({**ruleset, "version": version}), encoding="utf-8")
    lock_rulesets(rules, wl.RULESET_ID, False)
    return work, rules


def memory(rules: Path, catalog: Path, state: Path) -> dict:
    from app.rules import RuleService
    gc.collect()
    before = rss_mib()
    service = RuleService(rules, catalog, state, ruleset_id=wl.RULESET_ID)
    service.activate(wl.RULESET_ID, "1.2.0", by="bench")
    service.engine           # noqa: B018 - compiles the active version
    gc.collect()
    active = rss_mib()
    steps = []
    for version in ("1.1.0", "1.0.0"):
        service.engine_of(version, wl.RULESET_ID)
        gc.collect()
        steps.append(rss_mib())
    return {"rss_before_mib": round(before, 1), "rss_active_mib": round(active, 1),
            "rss_per_extra_arm_mib": [round(steps[0] - active, 1), round(steps[1] - steps[0], 1)]}


def throughput(work, rules: Path, data: Path, requests: int, repeat: int) -> dict:
    from app import create_app
    app = create_app(rules_dir=rules, catalog_dir=work.catalog_dir, data_dir=data, ruleset_id=wl.RULESET_ID)
    client = app.test_client()
    experiments = rules / f"{wl.RULESET_ID}.experiments.yaml"
    bodies = iter(work.bodies)
    router = app.extensions["reco"].recommender.experiments

    def batch(on: bool) -> tuple[float, float, int]:
        if on:
            experiments.write_text(EXPERIMENTS, encoding="utf-8")
        elif experiments.exists():
            experiments.unlink()
        router.refresh(force=True)
        assert bool(router.status()["running"]) == on, router.status()
        inside = 0
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            response = client.post(R, json=next(bodies))
            assert response.status_code == 200, response.get_data(as_text=True)
            inside += "experiment" in response.get_json()
        return (requests / (time.perf_counter() - start), (time.process_time() - cpu) * 1e6 / requests,
                inside)

    for _ in range(2):                            # warm both paths (engines compiled at refresh)
        batch(True)
        batch(False)
    experiments.write_text(EXPERIMENTS, encoding="utf-8")
    router.refresh(force=True)
    sample = work.bodies[:1000]
    start = time.perf_counter()
    for _ in range(20):
        for body in sample:
            router.route(body)
    route_us = (time.perf_counter() - start) * 1e6 / (20 * len(sample))
    rows = []
    for index in range(repeat):
        order = (True, False) if index % 2 == 0 else (False, True)
        found = {on: batch(on) for on in order}
        rows.append({"with": round(found[True][0], 1), "without": round(found[False][0], 1),
                     "ratio": round(found[True][0] / found[False][0], 3),
                     "cpu_us_with": round(found[True][1]), "cpu_us_without": round(found[False][1]),
                     "cpu_ratio": round(found[False][1] / found[True][1], 3),
                     "share_in_experiment": round(found[True][2] / requests, 3)})
    return {"requests_per_batch": requests, "route_call_us": round(route_us, 2), "repeats": rows,
            "median_with_rps": statistics.median(r["with"] for r in rows),
            "median_without_rps": statistics.median(r["without"] for r in rows),
            "median_ratio": statistics.median(r["ratio"] for r in rows),
            "median_cpu_us_with": statistics.median(r["cpu_us_with"] for r in rows),
            "median_cpu_us_without": statistics.median(r["cpu_us_without"] for r in rows),
            "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rows)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    n_bodies = args.requests * (2 * args.repeat + 4) + 10
    work, rules = project(root, args.rules, n_bodies)
    data = root / "data"
    populate(data, {"customer": work.parties.customers, "product": work.parties.products})
    result = {"rules": args.rules, "load_average": os.getloadavg(),
              "memory": memory(rules, work.catalog_dir, root / "state"),
              "throughput": throughput(work, rules, data, args.requests, args.repeat)}
    result["load_average_after"] = os.getloadavg()
    out = args.out or Path(__file__).resolve().parent / "results" / f"experiments-R{args.rules}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
