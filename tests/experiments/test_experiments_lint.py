"""Bad experiments files: `flask rules lint` names file:line, the check and
a fix for each, like rule files; a file with errors serves no experiment."""
from __future__ import annotations

import json
import os
import sys

import cliprocess
from experiment_project import make_rules
from helpers import DEMO_CATALOG, ROOT

GOOD_ARMS = """\
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
"""
HEAD = "version: 1\nexperiments:\n  - id: e1\n    status: running\n    control: control\n"

#: name -> (file text, line, code, words the message or fix must hold)
CASES = {
    "unknown-version": (HEAD + "    arms:\n      - {name: challenger, version: \"9.9.9\", weight: 50}\n"
                        "      - {name: control, version: \"1.0.0\", weight: 50}\n",
                        7, "unknown-version", "known versions: 1.0.0, 1.1.0"),
    "unrecorded": (HEAD + "    arms:\n      - {name: challenger, version: \"1.2.0\", weight: 50}\n"
                   "      - {name: control, version: \"1.0.0\", weight: 50}\n",
                   7, "unrecorded-version", "flask rules lock"),
    "changed": (HEAD + GOOD_ARMS, 7, "changed-version", "than recorded"),
    "weights": (HEAD + "    arms:\n      - {name: challenger, version: \"1.1.0\", weight: 50}\n"
                "      - {name: control, version: \"1.0.0\", weight: 40}\n",
                7, "weights-not-100", "add up to 90"),
    "time": (HEAD + "    start: yesterday\n" + GOOD_ARMS, 6, "invalid-time", "2026-12-01T00:00:00Z"),
    "typo": (HEAD + "    arms:\n      - {name: challenger, version: \"1.1.0\", wieght: 50}\n"
             "      - {name: control, version: \"1.0.0\", weight: 50}\n",
             7, "unknown-key", "did you mean 'weight'"),
    "control": ("version: 1\nexperiments:\n  - id: e1\n    control: contrl\n" + GOOD_ARMS,
                4, "unknown-control", "did you mean 'control'"),
    "end": (HEAD + "    start: 2026-12-02T00:00:00Z\n    end: 2026-12-01T00:00:00Z\n" + GOOD_ARMS,
            7, "end-before-start", "after start"),
    "holdout": (HEAD + "    arms:\n      - {name: h, holdout: true, version: \"1.0.0\", weight: 50}\n"
                "      - {name: control, version: \"1.0.0\", weight: 50}\n",
                7, "holdout-with-version", "holdout"),
    "yaml": (HEAD + "    arms: [\n", 7, "yaml-syntax", "YAML"),
    "file-version": ("experiments: []\n", 1, "invalid-file-version", "version: 1"),
}


def test_bad_experiment_files_give_file_line_check_and_fix(tmp_path):
    paths = {}
    for name, (text, _line, _code, _words) in CASES.items():
        rules = make_rules(tmp_path / name, experiments=text)
        if name == "unrecorded":
            source = (rules / "versions" / "telco-demo@1.1.0.yaml").read_text()
            (rules / "versions" / "telco-demo@1.2.0.yaml").write_text(source.replace('"1.1.0"', '"1.2.0"'))
        if name == "changed":
            path = rules / "versions" / "telco-demo@1.1.0.yaml"
            path.write_text(path.read_text().replace("limit: 1", "limit: 2"))
        paths[name] = rules / "telco-demo.experiments.yaml"
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(tmp_path / "weights" / "rules"), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json",
                           *map(str, paths.values())], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    for name, (_text, line, code, words) in CASES.items():
        found = [p for p in report["problems"] if p["file"].endswith(f"{name}/rules/telco-demo.experiments.yaml")
                 and p["code"] == code]
        assert found, (name, [p for p in report["problems"] if f"/{name}/" in p["file"]])
        problem = found[0]
        assert problem["line"] == line, (name, problem)
        assert problem["severity"] == "error"
        assert words in problem["message"] + " " + (problem["hint"] or ""), (name, problem)
        assert problem["hint"], name


def test_a_good_file_lints_clean_and_rule_files_ignore_it(tmp_path):
    rules = make_rules(tmp_path / "good")
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(rules), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert any(f.endswith("telco-demo.experiments.yaml") for f in report["files"])
    mine = [p for p in report["problems"] if p["file"].endswith(".experiments.yaml")]
    assert mine == [] and report["errors"] == 0, report["problems"]
