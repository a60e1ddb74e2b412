"""CPU per body of create-body validation, the fast path (app/schemas/fast.py)
against marshmallow alone, on the workload's instant TMF680 bodies.

    python -m bench.validation_bench [--bodies 500] [--rounds 5] [--seed 680]

Per body, what `ResourceService.new_resource` and the TMF680 query check do
to it: the create schema's load, then the TMF663 check of each cart by value
(`check_query`). "marshmallow" is today's path without the fast one (the
loaders' decode answers "unsure"); "fast" is the service's path. Rounds
alternate the two ways over the same bodies; each call is timed in thread
CPU time (time.thread_time_ns), so waiting for the 2 shared cores does not
count. Prints the median and p90 in microseconds per body, the ratio, how
many bodies the fast path decided, and the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from app.recommend import facts
from app.recommend.query import KIND, check_query
from app.schemas.fast import FastLoader

from .workload import make_bodies, make_catalog, make_parties


def _run(loader: FastLoader, body: dict) -> dict:
    data = loader.load(body)
    check_query(data)
    return data


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=680)
    args = parser.parse_args(argv)

    catalog = make_catalog(1000, args.seed)
    bodies = make_bodies(catalog, make_parties(catalog, 1000, args.seed), args.bodies, args.seed)
    loader = FastLoader(KIND.create_schema())
    decided = sum(loader.decode(body) is not None for body in bodies)
    fast_carts, slow_carts = facts._cart_loader, FastLoader(facts._carts)
    slow_carts.struct = None                   # decode answers "unsure": marshmallow only
    slow_loader = FastLoader(KIND.create_schema())
    slow_loader.struct = None

    times: dict[str, list[int]] = {"marshmallow": [], "fast": []}
    for round_ in range(args.rounds):
        order = ("fast", "marshmallow") if round_ % 2 else ("marshmallow", "fast")
        for way in order:
            facts._cart_loader = fast_carts if way == "fast" else slow_carts
            chosen = loader if way == "fast" else slow_loader
            for body in bodies:
                start = time.thread_time_ns()
                _run(chosen, body)
                times[way].append(time.thread_time_ns() - start)
    facts._cart_loader = fast_carts

    result = {way: {"median_us": statistics.median(values) / 1000,
                    "p90_us": statistics.quantiles(values, n=10)[-1] / 1000}
              for way, values in times.items()}
    result["ratio"] = result["marshmallow"]["median_us"] / result["fast"]["median_us"]
    result["decided_by_fast_path"] = f"{decided}/{len(bodies)}"
    result["loadavg"] = os.getloadavg()
    for way in ("marshmallow", "fast"):
        print(f"{way:12s} median {result[way]['median_us']:8.1f} us/body   "
              f"p90 {result[way]['p90_us']:8.1f} us/body")
    print(f"ratio {result['ratio']:.1f}x; fast path decided {result['decided_by_fast_path']} "
          f"bodies; {args.rounds} rounds x {len(bodies)} bodies; "
          f"load average {' '.join(f'{x:.2f}' for x in result['loadavg'])}")
    return result


if __name__ == "__main__":
    main()
