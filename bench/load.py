"""Run a load client (wrk when installed, else bench.pyclient) as its own process,
pinned with taskset, and return its figures."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .server import ROOT, pinned

WRK = shutil.which("wrk")
LUA = Path(__file__).resolve().parent / "wrk_post.lua"


def client_name(preferred: str = "auto") -> str:
    if preferred == "wrk" and not WRK:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or use --client python)")
    if preferred == "auto":
        return "wrk" if WRK else "python"
    return preferred


def _parse(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"load client printed no result:\n{output[-3000:]}")


def normalise(raw: dict, client: str) -> dict:
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_status",
                                  "errors_timeout"))
    return {
        "client": client, "requests": raw["requests"], "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "errors": errors, "non2xx": raw["errors_status"],
        "p50_ms": round(raw["p50_us"] / 1000, 3), "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3), "p999_ms": round(raw["p999_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3), "mean_ms": round(raw["mean_us"] / 1000, 3),
    }


def run_load(url: str, bodies: Path, *, client: str, connections: int, duration: float | None = None,
             count: int | None = None, cpus: str | None = None, offset: int = 0,
             timeline: Path | None = None, header: str | None = None) -> dict:
    """Closed loop: `connections` keep-alive connections, each sending the next body
    as soon as the previous answer arrived; for `duration` seconds or `count` requests."""
    if client == "wrk" and timeline is None:
        env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_LIMIT=str(count or 0), BENCH_OFFSET=str(offset))
        # wrk needs a duration: with a count, give it a generous one and stop at the count
        seconds = duration if duration else 3600
        cmd = pinned([WRK, "-t1", f"-c{connections}", f"-d{max(1, int(round(seconds)))}s", "--timeout", "30s",
                      "-s", str(LUA), url], cpus)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        return normalise(_parse(done.stdout + done.stderr), "wrk")
    cmd = [sys.executable, "-m", "bench.pyclient", url, "--bodies", str(bodies),
           "--concurrency", str(connections), "--offset", str(offset)]
    if duration:
        cmd += ["--duration", str(duration)]
    if count:
        cmd += ["--count", str(count)]
    if timeline is not None:
        cmd += ["--timeline", str(timeline)]
    if header:
        cmd += ["--header", header]
    done = subprocess.run(pinned(cmd, cpus), cwd=ROOT, capture_output=True, text=True,
                          timeout=(duration or 600) + 600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    raw = _parse(done.stdout + done.stderr)
    result = normalise(raw, "python")
    result["epoch"] = raw.get("epoch")
    return result
