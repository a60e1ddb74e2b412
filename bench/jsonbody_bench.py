"""CPU per request body of the JSON parse (app/jsonbody.py): the strict
stdlib parse against `parse_json` (orjson when provably the same), on the
workload's instant TMF680 bodies as bytes.

    python -m bench.jsonbody_bench [--bodies 1000] [--rounds 7] [--seed 680]

Rounds alternate the two ways over the same bodies; each call is timed in
thread CPU time (time.thread_time_ns), so waiting for the 2 shared cores
does not count. Prints the median and p90 in microseconds per body, the
ratio, how many bodies the fast path took, and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from app.jsonbody import _fast_parse, parse_json, strict_parse

from .workload import make_bodies, make_catalog, make_parties


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=680)
    args = parser.parse_args(argv)

    catalog = make_catalog(1000, args.seed)
    bodies = [json.dumps(body).encode()
              for body in make_bodies(catalog, make_parties(catalog, 1000, args.seed),
                                      args.bodies, args.seed)]
    taken = sum(_fast_parse(raw) is not None for raw in bodies)
    ways = {"strict": strict_parse, "parse_json": parse_json}
    times: dict[str, list[int]] = {way: [] for way in ways}
    for round_ in range(args.rounds):
        for way in (("parse_json", "strict") if round_ % 2 else ("strict", "parse_json")):
            parse = ways[way]
            for raw in bodies:
                start = time.thread_time_ns()
                parse(raw)
                times[way].append(time.thread_time_ns() - start)

    result = {way: {"median_us": statistics.median(values) / 1000,
                    "p90_us": statistics.quantiles(values, n=10)[-1] / 1000}
              for way, values in times.items()}
    result["ratio"] = result["strict"]["median_us"] / result["parse_json"]["median_us"]
    result["taken_by_fast_path"] = f"{taken}/{len(bodies)}"
    result["loadavg"] = os.getloadavg()
    for way in ways:
        print(f"{way:12s} median {result[way]['median_us']:8.1f} us/body   "
              f"p90 {result[way]['p90_us']:8.1f} us/body")
    print(f"ratio {result['ratio']:.1f}x; fast path took {result['taken_by_fast_path']} "
          f"bodies; {args.rounds} rounds x {len(bodies)} bodies; "
          f"load average {' '.join(f'{x:.2f}' for x in result['loadavg'])}")
    return result


if __name__ == "__main__":
    main()
