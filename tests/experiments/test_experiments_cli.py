"""`flask experiments ...` on both stores: list, start, weights, stop,
report and promote, each change written to the experiments file and to the
audit history (`flask rules history`) with who."""
from __future__ import annotations

import json
import os
import sys

import yaml

import cliprocess
from experiment_project import make_rules
from helpers import DEMO_CATALOG, ROOT


def test_cli_changes_are_written_and_recorded(backend, request, tmp_path):
    rules = make_rules(tmp_path / "project")
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(tmp_path / "data"), "RECO_LOG_LEVEL": "warning"}
    if backend == "postgresql":
        env["RECO_STORE_URL"] = request.getfixturevalue("pg_cluster").new_database()

    def flask(*args, code=0):
        done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr

    listed = flask("experiments", "list")
    assert "canary" in listed and "draft" in listed and "split" in listed
    assert "canary: running" in flask("experiments", "start", "canary", "--by", "Ana")
    assert "canary 25%, stable 75%" in flask("experiments", "weights", "canary", "canary=25", "stable=75")
    refused = flask("experiments", "weights", "canary", "canary=30", "stable=75", code=1)
    assert "add up to 105, not 100" in refused
    assert "canary: stopped" in flask("experiments", "stop", "canary")
    report = json.loads(flask("experiments", "report", "canary", "--json"))
    assert [arm["name"] for arm in report["arms"]] == ["canary", "stable"] and "mSPRT" in report["method"]
    assert "no arm 'nope'" in flask("experiments", "promote", "canary", "nope", code=1)
    assert "canary: completed" in flask("experiments", "promote", "canary", "stable")

    data = yaml.safe_load((rules / "telco-demo.experiments.yaml").read_text())
    canary = next(e for e in data["experiments"] if e["id"] == "canary")
    assert data["version"] == 5
    assert canary["status"] == "completed" and canary["promoted"] == "stable"
    assert [arm["weight"] for arm in canary["arms"]] == [25, 75]
    history = json.loads(flask("rules", "history", "--json"))
    mine = [(h["action"], h["by"]) for h in history if h.get("experimentId") == "canary"]
    assert [action for action, _by in mine] == ["experiment-promote", "experiment-stop",
                                                "experiment-weights", "experiment-start"]
    assert mine[-1][1] == "Ana" and mine[0][1].endswith("(flask experiments)")
    # promote activated the stable arm's version, recorded as any activation
    assert any(h["action"] in ("activate", "rollback") and h["version"] == "1.0.0" for h in history)
    assert "experiment-start canary" in flask("rules", "history")
