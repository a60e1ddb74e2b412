"""Experiments attacked as a demanding user would: a good experiments file
named on the lint command line, and experiments whose arm version was
removed after they stopped or completed (docs/experiments.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from experiment_project import make_rules
from helpers import DEMO_CATALOG, ROOT


def lint(paths, tmp_path, rules):
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(rules), "RECO_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json",
                           *map(str, paths)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return done, json.loads(done.stdout)


def test_a_good_experiments_file_named_on_the_command_line_lints_clean(tmp_path):
    rules = make_rules(tmp_path / "good")
    path = rules / "telco-demo.experiments.yaml"
    done, report = lint([path], tmp_path, rules)
    # checked once, as an experiments file: not also as a rule set (no "missing field 'rules'")
    assert [f for f in report["files"] if f.endswith("telco-demo.experiments.yaml")] == [report["files"][0]]
    assert len(report["files"]) == 1, report["files"]
    assert report["errors"] == 0 and done.returncode == 0, report["problems"]
