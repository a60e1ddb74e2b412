"""reco_rule_fired_total: plain per-process counts, summed at scrape time
over every process that counted (gunicorn workers, live or dead)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.observability import rule_counts
from helpers import ROOT

pytestmark = pytest.mark.backends("tinydb", reason="metrics files only; no store")


def count_in_a_process(ids, times) -> None:
    """A separate process (a worker) counts, then exits."""
    code = ("import sys; from app.observability import rule_counts\n"
            f"for _ in range({times}): rule_counts.count_fired('set-a', 'h1', {ids!r})")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), check=True, timeout=300)


def samples(family) -> dict:
    return {(s.labels["ruleset_id"], s.labels["rule_id"]): s.value for s in family.samples}


def test_counts_of_every_process_add_up_at_scrape_time(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(rule_counts, "_tables", {})
    ids = [f"R{i}" for i in range(150)]               # past the first file size (64 slots)
    count_in_a_process(ids[:100], 3)
    count_in_a_process(ids[50:], 2)                   # both are gone: their counts stay
    rule_counts.count_fired("set-a", "h2", ["R0", "R149"])   # another version, this process
    family = rule_counts.collect()
    assert family.name == "reco_rule_fired" and family.type == "counter"
    got = samples(family)
    assert got[("set-a", "R0")] == 3 + 1 and got[("set-a", "R149")] == 2 + 1
    assert got[("set-a", "R60")] == 3 + 2 and got[("set-a", "R120")] == 2
    assert len(got) == 150


def test_without_a_multiprocess_directory_the_process_counts_alone(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    monkeypatch.setattr(rule_counts, "_tables", {})
    rule_counts.count_fired("set-b", "h", ["X", "Y", "X"])
    rule_counts.count_fired("set-b", "h", ["Y"])
    assert samples(rule_counts.collect()) == {("set-b", "X"): 2, ("set-b", "Y"): 2}
