"""The experiments benchmark still runs end to end and writes its figures
(it never judges them). Slow and about the harness: only with BENCH_QUICK=1,
like tests/test_bench_quick.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(os.environ.get("BENCH_QUICK") != "1",
                                reason="set BENCH_QUICK=1 to run the quick benchmark")


def test_experiments_bench_writes_every_figure(tmp_path):
    out = tmp_path / "experiments.json"
    done = subprocess.run([sys.executable, "-m", "bench.experiments_bench", "--rules", "30", "--requests", "10",
                           "--repeat", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "RECO_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(out.read_text())
    assert len(found["memory"]["rss_per_extra_arm_mib"]) == 2
    assert found["throughput"]["median_ratio"] > 0 and found["throughput"]["route_call_us"] > 0
    assert found["throughput"]["repeats"][0]["share_in_experiment"] > 0.5
