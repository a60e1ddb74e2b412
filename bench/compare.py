"""Side by side, in one run: this tree against an earlier commit, on the same
generated workload, alternating fresh processes so that whatever else runs on
the machine weighs on both alike. Quote the ratios (new / base).

    python -m bench.compare --base a333c1e [--rules 1000,10000] [--repeat 3]

Per rule count, each in a fresh process: a cold RuleService (what a new worker
does before it serves: parse, check, compile), its RSS, the in-process
recommend() p50 over the workload's contexts (and CPU microseconds per call, steadier
on a shared machine), the RSS after those evaluations (durable allocates a
chunk's session state on its first use), and a reload (one new version
file, then refresh()). Wall and CPU seconds are both reported: on a shared
machine CPU seconds are the steadier figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Runs inside the tree under test; only names both trees export (app.rules).
PROBE = r'''
import json, os, re, sys, tempfile, time, datetime as dt
from pathlib import Path
work, n, evals = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0, c0 = time.perf_counter(), time.process_time()
from app.rules import Context, RuleService
rules_dir = Path(tempfile.mkdtemp()) / "rules"
rules_dir.mkdir()
text = (work / f"rules-{n}" / "bench.yaml").read_text()
(rules_dir / "bench.yaml").write_text(text)
svc = RuleService(rules_dir, work / "catalog", Path(tempfile.mkdtemp()), ruleset_id="bench")
cold_wall, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
assert svc.status()["ok"], svc.status()["errors"][:3]
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
ctxs = []
for line in open(work / "bodies.jsonl"):
    body = json.loads(line)
    cart = [i["productOffering"]["id"] for c in body.get("shoppingCart") or [] for i in c.get("cartItem") or []]
    when = dt.datetime.fromisoformat(body["validFor"]["startDateTime"].replace("Z", "+00:00"))
    ctxs.append(Context(time=when, channels=[c["id"] for c in body.get("channel") or []], cart=cart))
for c in ctxs[:50]:
    svc.recommend(c)
samples = []
e0 = time.process_time()
for i in range(evals):
    c = ctxs[i % len(ctxs)]
    s = time.perf_counter_ns()
    svc.recommend(c)
    samples.append(time.perf_counter_ns() - s)
eval_cpu = (time.process_time() - e0) / evals
samples.sort()
rss_after = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
(rules_dir / "versions").mkdir()
(rules_dir / "versions" / "bench@1.1.0.yaml").write_text(re.sub(r"^version: .*$", 'version: "1.1.0"', text, count=1, flags=re.M))
t1, c1 = time.perf_counter(), time.process_time()
svc.refresh()
reload_wall, reload_cpu = time.perf_counter() - t1, time.process_time() - c1
assert svc.status()["version"] == "1.1.0", svc.status()
print(json.dumps({"cold_wall_s": cold_wall, "cold_cpu_s": cold_cpu, "rss_mib": rss, "rss_after_evals_mib": rss_after,
                  "p50_us": samples[len(samples) // 2] / 1000, "cpu_per_eval_us": eval_cpu * 1e6, "reload_wall_s": reload_wall,
                  "reload_cpu_s": reload_cpu}))
'''


def extract(rev: str, into: Path, paths: tuple[str, ...] = ("app",)) -> Path:
    """`paths` of the tree of `rev` (git archive: the repository is not touched)."""
    archive = into / "base.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, *paths], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def probe(tree: Path, work: Path, n_rules: int, evals: int, attempts: int = 3) -> dict:
    """One fresh process; retried when it fails (durable-rules' sporadic error 102
    when creating a ruleset, seen in the base tree's reload, is not what is measured)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    for attempt in range(attempts):
        out = subprocess.run([sys.executable, "-c", PROBE, str(work), str(n_rules), str(evals)], cwd=tree,
                             env=env, capture_output=True, text=True, timeout=600)
        if out.returncode == 0:
            return json.loads(out.stdout.strip().splitlines()[-1])
        print(f"probe failed in {tree} (attempt {attempt + 1}): {out.stderr.strip().splitlines()[-1][:300]}",
              file=sys.stderr, flush=True)
    raise RuntimeError(out.stderr[-2000:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--rules", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evals", type=int, default=2000)
    parser.add_argument("--work", type=Path, help="generated workload (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compare.json")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.rules.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    work = args.work or scratch / "work"
    if not (work / "bodies.jsonl").exists():
        from . import workload
        workload.build(work, 680, 1000, 1000, 500, counts)
    base = extract(args.base, scratch)
    results: dict = {}
    for n in counts:
        runs: dict[str, list[dict]] = {"base": [], "new": []}
        for _ in range(args.repeat):                 # alternate: both see the same machine
            runs["base"].append(probe(base, work, n, args.evals))
            runs["new"].append(probe(ROOT, work, n, args.evals))
        med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in runs.items()}
        results[n] = {"base": med["base"], "new": med["new"],
                      "ratio": {k: med["new"][k] / med["base"][k] if med["base"][k] else None for k in med["new"]},
                      "runs": runs}
        print(f"R={n}: " + ", ".join(f"{k} {med['base'][k]:.3g} -> {med['new'][k]:.3g} "
                                     f"(x{results[n]['ratio'][k]:.2f})" for k in med["new"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"base": args.base, "loadavg": os.getloadavg(), "results": results},
                                   indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
