"""Experiments attacked as a demanding user would: a good experiments file
named on the lint command line, and experiments whose arm version was
removed after they stopped or completed (docs/experiments.md)."""
from __future__ import annotations

import json
import os
import sys

import cliprocess
from experiment_project import ADMIN, ADMIN_KEY, R, make_rules, query
from helpers import DEMO_CATALOG, PATIENCE, ROOT, Client, assert_tmf_error, wait_until


def lint(paths, tmp_path, rules):
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(rules), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json",
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


OLD_AND_RUNNING = """\
version: 1
experiments:
  - id: split
    status: running
    start: 2026-01-01T00:00:00Z
    channels: ["21"]
    control: control
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
  - id: last-year
    status: completed
    promoted: winner
    start: 2025-01-01T00:00:00Z
    end: 2025-02-01T00:00:00Z
    channels: ["22"]
    control: old
    arms:
      - {name: winner, version: "0.9.0", weight: 50}
      - {name: old, version: "0.8.0", weight: 50}
"""


def test_an_arm_version_removed_breaks_no_other_experiment_and_leaves_stop_and_report(make_server, tmp_path):
    """Old versions' files get cleaned up: an experiment that no longer serves
    (completed, stopped, draft) naming a removed version is a warning, not an
    error that stops every running experiment of the file; a running one whose
    version was removed can still be reported on and stopped."""
    rules = make_rules(tmp_path / "project", experiments=OLD_AND_RUNNING)
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    api = Client(server.url)
    answer = api.post(R, json=query("party-1")).json()
    assert (answer.get("experiment") or {}).get("id") == "split", answer.get("experiment")
    listing = api.get("/admin/experiments", headers=ADMIN).json()
    assert [p["code"] for p in listing["problems"]] == ["unknown-version", "unknown-version"], listing["problems"]
    assert {p["severity"] for p in listing["problems"]} == {"warning"}
    assert api.get("/admin/experiments/last-year/report", headers=ADMIN).status_code == 200

    (rules / "versions" / "telco-demo@1.1.0.yaml").unlink()        # the running arm's version goes

    def gone():
        api.post(R, json=query("party-1"))           # the answering path notices changed rule files
        return "challenger" in str(api.get("/admin/experiments", headers=ADMIN).json()["problems"])
    assert wait_until(gone, PATIENCE)
    # the file no longer serves (an error), but the experiment can still be read, reported on and stopped
    assert api.get("/admin/experiments/split", headers=ADMIN).status_code == 200
    assert api.get("/admin/experiments/split/report", headers=ADMIN).status_code == 200
    stopped = api.post("/admin/experiments/split/stop", headers=ADMIN, json={})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["experiment"]["status"] == "stopped"
    # starting it again is refused with the reason: its arm has no version
    refused = api.post("/admin/experiments/split/start", headers=ADMIN, json={})
    body = assert_tmf_error(refused, 409 if refused.status_code == 409 else 422)
    assert "1.1.0" in json.dumps(body), body
    assert "status: stopped" in (rules / "telco-demo.experiments.yaml").read_text()


def test_two_admins_changing_weights_at_once_from_the_same_file_version_one_wins(make_server, tmp_path):
    """The fileVersion check and the write are one step across workers: of
    changes sent at once from the same version, one is applied and the others
    get 409 STALE_EXPERIMENTS (never two acknowledged, one lost)."""
    from concurrent.futures import ThreadPoolExecutor

    import requests
    rules = make_rules(tmp_path / "project")
    server = make_server(workers=2, rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    path = rules / "telco-demo.experiments.yaml"
    for attempt in range(3):
        version = Client(server.url).get("/admin/experiments", headers=ADMIN).json()["version"]

        def send(n):
            return requests.post(f"{server.url}/admin/experiments/split/weights", headers={
                **ADMIN, "Connection": "close"}, json={"fileVersion": version, "weights": {
                    "challenger": 10 + n, "control": 90 - n}}, timeout=60)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        assert sorted(a.status_code for a in answers) == [200] + [409] * 7, [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert assert_tmf_error(answer, 409)["code"] == "STALE_EXPERIMENTS"
        won = next(a.json() for a in answers if a.status_code == 200)
        assert won["fileVersion"] == version + 1
        assert f"version: {version + 1}" in path.read_text()
    history = Client(server.url).get("/admin/rules/history", headers=ADMIN).json()
    entries = history if isinstance(history, list) else history.get("entries", history.get("history", []))
    weights = [e for e in entries if e.get("action") == "experiment-weights"]
    assert sorted(e["fileVersion"] for e in weights) == [2, 3, 4], weights


def test_a_time_out_of_range_is_named_at_its_line(tmp_path):
    """A YAML timestamp that is no date (month 13) names its own line, in an
    experiments file and in a rule file alike (not 1:1)."""
    text = ("version: 1\nexperiments:\n  - id: e1\n    status: draft\n    control: control\n"
            "    start: 2026-13-01T00:00:00Z\n    arms:\n"
            "      - {name: challenger, version: \"1.1.0\", weight: 50}\n"
            "      - {name: control, version: \"1.0.0\", weight: 50}\n")
    rules = make_rules(tmp_path / "project", experiments=text)
    ruleset = rules / "telco-demo.yaml"
    lines = ruleset.read_text().splitlines()
    rule_line = len(lines) + 1
    ruleset.write_text("\n".join(lines) + "\nreviewedAt: 2026-02-30\n")
    _done, report = lint([rules / "telco-demo.experiments.yaml", ruleset], tmp_path, rules)
    found = {(p["file"].rsplit("/", 1)[-1], p["line"], p["code"]) for p in report["problems"]
             if p["severity"] == "error"}
    assert ("telco-demo.experiments.yaml", 6, "yaml-syntax") in found, report["problems"]
    assert ("telco-demo.yaml", rule_line, "yaml-syntax") in found, report["problems"]
    assert all("2026-13-01" in p["message"] or "2026-02-30" in p["message"] for p in report["problems"]
               if p["code"] == "yaml-syntax"), report["problems"]


def test_a_weight_ramp_is_no_sample_ratio_mismatch(make_server, tmp_path):
    """A canary-style ramp (50/50, then 90/10): the sample-ratio check
    compares each period's decisions with the weights it ran with, so the
    report does not cry mismatch over a correct split."""
    rules = make_rules(tmp_path / "project")
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    api = Client(server.url)
    for n in range(300):
        assert api.post(R, json=query(f"before-{n}")).status_code == 200
    changed = api.post("/admin/experiments/split/weights", headers=ADMIN,
                       json={"weights": {"challenger": 90, "control": 10}})
    assert changed.status_code == 200, changed.text
    for n in range(300):
        assert api.post(R, json=query(f"after-{n}")).status_code == 200

    def report():
        found = api.get("/admin/experiments/split/report", headers=ADMIN).json()
        return found if sum(a["decisions"] for a in found["arms"]) == 600 else None
    found = wait_until(report, 20)
    assert found, api.get("/admin/experiments/split/report", headers=ADMIN).json()
    decisions = {a["name"]: a["decisions"] for a in found["arms"]}
    assert decisions["challenger"] > 350, decisions          # the ramp did move people
    assert found["sampleRatio"]["mismatch"] is False, (decisions, found["sampleRatio"])
