"""A product manager's mistakes in contact policies and experiments files,
through `flask rules lint --json`: each is named at its line with a fix
that says what was meant. A policy window of 0 days (every kind with a
window), scope typos ("did you mean"), an experiment on a channel the
catalog does not have (it would never serve), invalid weights (no
misleading sum beside them), channel ids written as numbers, and two
running experiments on one channel (the later one gets no traffic)."""
from __future__ import annotations

import json
import os
import sys

import cliprocess
from experiment_project import make_rules
from helpers import DEMO_CATALOG, ROOT
from test_contact_policies import rules_with


def lint(paths, rules, tmp_path) -> list[dict]:
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(rules), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json",
                           *map(str, paths)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    return json.loads(done.stdout)["problems"]


POLICIES = """\
  - {id: P1, kind: maxImpressions, count: 3, days: 0}
  - {id: P2, kind: pauseAfterRejected, days: 0}
  - {id: P3, kind: stopAfterAccepted, days: 0}
  - {id: P4, kind: maxImpressions, count: 3, days: 7, scope: {offerng: "6542"}}
  - {id: P5, kind: maxImpressions, count: 3, days: 7, scope: globl}
  - {id: P6, kind: maxImpressions, count: 3, days: 7, scope: {category: Accessories}}
"""


def test_policy_windows_of_0_days_and_scope_typos(tmp_path):
    rules = rules_with(tmp_path, POLICIES)
    path = rules / "telco-demo.yaml"
    first = path.read_text().splitlines().index(POLICIES.splitlines()[0]) + 1
    found = {p["policy"]: p for p in lint([path], rules, tmp_path) if p.get("policy")}
    for n, policy in enumerate(("P1", "P2", "P3")):
        p = found[policy]
        assert (p["line"], p["code"], p["severity"]) == (first + n, "bad-window", "error"), p
        assert "above 0" in p["message"] and "e.g. `days: 7`" in p["hint"]
    assert found["P4"]["line"] == first + 3 and found["P4"]["hint"].startswith("did you mean 'offering'?")
    assert found["P5"]["line"] == first + 4 and found["P5"]["hint"].startswith("did you mean 'global'?")
    assert found["P6"]["code"] == "unknown-category"
    assert found["P6"]["hint"].startswith("did you mean 'accessories'?")


ARMS = """\
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
"""


def experiment(exp_id: str, extra: str = "", arms: str = ARMS) -> str:
    return f"  - id: {exp_id}\n    status: running\n    control: control\n{extra}{arms}"


def test_experiment_channel_weight_and_overlap_mistakes(tmp_path):
    files = {
        "channel": experiment("on-web", '    channels: ["21", "2l"]\n'),
        "weights": experiment("bad-weights", arms=ARMS.replace("weight: 50}\n      - {name: control",
                                                                 "weight: -10}\n      - {name: control")
                              .replace('"1.0.0", weight: 50', '"1.0.0", weight: 110')),
        "numbers": experiment("numbers", "    channels: [21]\n"),
        "overlap": experiment("first", '    channels: ["21"]\n') + experiment("second", '    channels: ["21", "22"]\n'),
    }
    paths = {}
    for name, text in files.items():
        rules = make_rules(tmp_path / name, experiments="version: 1\nexperiments:\n" + text)
        paths[name] = rules / "telco-demo.experiments.yaml"
    problems = lint(paths.values(), paths["channel"].parent, tmp_path)

    def of(name):
        return [p for p in problems if p["file"].endswith(f"{name}/rules/telco-demo.experiments.yaml")]

    [channel] = of("channel")
    assert (channel["line"], channel["code"], channel["severity"]) == (6, "unknown-channel", "warning"), channel
    assert "'2l'" in channel["message"] and "never serves there" in channel["message"]
    assert "catalog/channels.yaml" in channel["hint"]
    weights = of("weights")
    assert sorted(p["code"] for p in weights) == ["invalid-weight", "invalid-weight"], weights   # no "adds up to 0"
    [numbers] = of("numbers")
    assert numbers["code"] == "invalid-channels" and "write them in quotes" in numbers["hint"]
    [overlap] = of("overlap")
    assert (overlap["line"], overlap["code"], overlap["severity"]) == (10, "overlapping-experiments", "warning")
    assert "experiment second runs on the channels and time of first" in overlap["message"]
