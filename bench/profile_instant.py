"""Where a live worker's time goes on the instant POST: py-spy over the one
pinned gunicorn worker of bench.http_compare's setup while wrk (or the
Python client) sends the workload's 500 distinct bodies.

    python -m bench.profile_instant [--rules 1000] [--duration 25] [--rate 250]
                                    [--decision-log on] [--out FILE]

py-spy records with `--gil` (only the thread holding the GIL: what costs
the worker's one core), as raw stacks; the report gives each category's
share of the samples (each sample counted once, in the deepest frame that
belongs to a category: durable's C calls show as the Python frame that
made them) and the project's functions, inclusive. Needs py-spy (`pip
install py-spy`; root or ptrace permission). Results:
bench/results/profile-instant-post-R<rules>-pyspy.txt.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import demo_workload, http_bench, workload
from .load import client_name, run_load

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (category, pattern on a frame's file): the first category, from the
#: deepest frame up, that a frame matches takes the sample
CATEGORIES = [
    ("durable fire", r"durable_runtime\.py|durable_rules"),
    ("ranking/policies", r"rules/engine/policies\.py"),
    ("decision record", r"\bapp/decisions/"),
    ("metrics lib", r"prometheus_client/"),
    ("structlog", r"structlog/"),
    ("observability", r"\bapp/observability/"),
    ("validation fast", r"\bapp/schemas/|msgspec"),
    ("body read", r"\bapp/jsonbody\.py|orjson"),
    ("store", r"\bapp/store/|tinydb/"),
    ("rules facts", r"rules/model/facts\.py"),
    ("facts/context", r"\bapp/recommend/facts\.py"),
    ("compiler facts", r"rules/engine/compiler\.py"),
    ("flask_smorest", r"flask_smorest/"),
    ("flask", r"flask/"),
    ("werkzeug", r"werkzeug/"),
    ("gunicorn", r"gunicorn/|\bapp/gunicorn_worker\.py|^workers/|^http/|^(?:app)/(base|wsgiapp)\.py"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        out.append((match["func"], match["file"]) if match else (frame, ""))
    return out


def categorise(raw: Path) -> tuple[int, collections.Counter, collections.Counter]:
    """(samples, samples per category, samples per project function inclusive)."""
    total = 0
    categories: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        total += n
        category = "other"
        for _func, file in reversed(frames):
            found = next((name for name, pattern in _COMPILED if pattern.search(file)), None)
            if found:
                category = found
                break
        categories[category] += n
        seen = set()
        for func, file in frames:
            # py-spy names files relative to their sys.path entry: gunicorn's
            # own base.py of its package `app` has that same relative name, so
            # only files of ours count
            if file.startswith("app/") and (ROOT / file).is_file():
                key = f"{func} ({file})"
                if key not in seen:
                    seen.add(key)
                    functions[key] += n
    return total, categories, functions


def report(header: str, total: int, categories, functions, top: int = 40) -> str:
    lines = [header, "Shares of samples holding the GIL: 'excl' = the deepest matching category of each "
                     "sample; then project functions, inclusive.", f"samples {total}"]
    for name, n in categories.most_common():
        lines.append(f"excl {name:<18} {100 * n / total:5.1f} %")
    lines += ["", "---- project functions, inclusive"]
    for name, n in functions.most_common(top):
        lines.append(f"{100 * n / total:5.1f} %  {name}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_instant", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", default="1000", help="a generated rule count or 'demo'")
    parser.add_argument("--duration", type=int, default=25, help="seconds recorded")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--decision-log", choices=["on", "off"], default="on")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(os.sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    client = client_name(args.client)
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        if args.rules == demo_workload.DEMO_RULES:
            wl, n_rules = demo_workload.build(scratch / "demo", 680, 1000, 500), 0
        else:
            n_rules = int(args.rules)
            wl = workload.build(scratch / "work", 680, 1000, 1000, 500, [n_rules])
        workers, server_cpus, client_cpus, connections = http_bench.CONFIGS["1 worker, pinned"]
        bodies = http_bench.body_files(wl)["mix"]
        server = http_bench.reco_server(wl, n_rules, workers, server_cpus, "profile",
                                        extra_env={"RECO_DECISION_LOG": "1" if args.decision_log == "on" else "0"})
        raw = scratch / "pyspy.txt"
        try:
            url = server.url + http_bench.RECO_PATH
            run_load(url, bodies, client=client, connections=connections, duration=2, cpus=client_cpus)
            pid = server.worker_pids()[0]
            load = threading.Thread(target=run_load, args=(url, bodies), kwargs=dict(
                client=client, connections=connections, duration=args.duration + 4, cpus=client_cpus))
            started = server.log_offset()
            load.start()
            time.sleep(1)
            load_before = os.getloadavg()[0]
            subprocess.run([spy, "record", "--gil", "-r", str(args.rate), "-d", str(args.duration), "-f", "raw",
                            "-o", str(raw), "--pid", str(pid)], check=True, capture_output=True)
            load_after = os.getloadavg()[0]
            load.join()
            served = len([e for e in server.access_entries(started) if e[3] == "POST"])
        finally:
            server.stop()
        if args.raw:
            shutil.copyfile(raw, args.raw)
        total, categories, functions = categorise(raw)
        header = (f"py-spy record --gil -r {args.rate} -d {args.duration} over the one pinned gunicorn worker at "
                  f"{args.rules} rules, {client} {connections} connections, 500 distinct bodies, decision log "
                  f"{args.decision_log}; {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, load "
                  f"{load_before:.1f}-{load_after:.1f}; {served / (args.duration + 4):.0f} req/s")
        text = report(header, total, categories, functions)
        out = args.out or HERE / "results" / f"profile-instant-post-R{args.rules}-pyspy.txt"
        out.write_text(text, encoding="utf-8")
        print(text)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
