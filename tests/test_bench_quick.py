"""The benchmark harness still runs end to end (`python -m bench --quick`).

Slow (about 90 s) and about the harness, not the service, so it runs only when
BENCH_QUICK=1 (CI sets it). It checks that every phase produced figures and that
the service answered; it never judges a timing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.environ.get("BENCH_QUICK") != "1",
                                reason="set BENCH_QUICK=1 to run the quick benchmark")


def test_quick_benchmark_runs_every_phase(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out), "--work", str(tmp_path / "w")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# Benchmark results (quick run)")

    assert [row["rules"] for row in results["engine"]] == [10, 100]
    assert all(row["eval"]["n"] > 0 and row["recommender"]["n"] > 0 for row in results["engine"])
    assert {row["config"] for row in results["http"]} == {"1 worker, pinned", "2 workers"}
    for row in results["http"]:
        for name in ("bare", "instant"):
            run = row[name]
            assert run["requests"] > 0 and run["errors"] == 0, (name, run)
        assert row["instant"]["server"]["requests"] > 0 and row["instant"]["server"]["non200"] == 0
        assert len(row["rss_kib"]) == row["workers"]
    assert results["memory"]["http"]["requests"] > 0 and results["memory"]["engineLoop"]["evaluations"] > 0
    reload = results["reload"][0]
    assert reload["newVersionServed"] and reload["failed"] == 0, reload
    assert {(row["api"], row["stored"]) for row in results["store"]} == {
        (api, n) for api in ("TMF629 create", "TMF680 async create") for n in (100, 1000)}
    assert all(row["requests"] > 0 and row["errors"] == 0 for row in results["store"])
    assert all(row["pendingAtTimeout"] == 0 for row in results["store"] if "completed" in row)
    assert results["storeLookups"] and results["goals"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert {"latency-vs-rules.png", "throughput-vs-rules.png", "memory.png", "store.png"} <= set(results["plots"])
