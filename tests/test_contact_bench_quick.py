"""The contact-policy benchmarks still run end to end on both stores and
write their figures (they never judge them). Slow and about the harness:
only with BENCH_QUICK=1, like tests/test_bench_quick.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(os.environ.get("BENCH_QUICK") != "1",
                                reason="set BENCH_QUICK=1 to run the quick benchmark")


def run(module: str, out, *args) -> dict:
    done = subprocess.run([sys.executable, "-m", module, "--rounds", "1", "--block", "5", "--out", str(out),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "RECO_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


def test_contact_bench_measures_both_stores_and_the_database_cpu(tmp_path):
    found = run("bench.contact_bench", tmp_path / "contact.json", "--reactions", "0")
    by_store = {row["backend"]: row for row in found["instant"]}
    assert set(by_store) == {"tinydb", "postgresql"}
    assert all(row["ratio"] > 0 and row["cpu_ratio"] > 0 for row in by_store.values())
    assert by_store["postgresql"]["total_cpu_ratio"] > 0


def test_experiments_and_policies_bench_serves_both_apps_from_one_worker(tmp_path):
    found = run("bench.contact_experiments_bench", tmp_path / "both.json")
    by_store = {row["backend"]: row for row in found["instant"]}
    assert set(by_store) == {"tinydb", "postgresql"}
    for row in by_store.values():
        assert set(row["arms_in_warmup"]) == {"challenger", "control"}, row
        assert row["ratio"] > 0 and row["cpu_ratio"] > 0


def test_long_history_bench_compares_two_trees_on_both_stores(tmp_path):
    out = tmp_path / "long.json"
    done = subprocess.run([sys.executable, "-m", "bench.contact_long_history", "--rounds", "1", "--block", "2",
                           "--sizes", "0,100", "--size-rows", "2000", "--base", "HEAD", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "RECO_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(out.read_text())
    assert {row["backend"] for row in found["latency"]} == {"tinydb", "postgresql"}
    for row in found["latency"]:
        assert [size["reactions"] for size in row["sizes"]] == [0, 100]
    assert found["plan_at_size"]["pbig900_tree"]["rows"] < found["plan_at_size"]["pbig900_base"]["rows"]
