"""Defects a newcomer's review found in experiments, each through the
public interface: `flask rules lint` on an experiments file, the served
report (docs/experiments.md)."""
from __future__ import annotations

import json
import os
import sys

import pytest

import cliprocess
from experiment_project import make_rules
from helpers import DEMO_CATALOG, ROOT

ARMS = """\
    control: control
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
"""


def lint(rules, tmp_path) -> dict:
    env = {**os.environ, "RECO_CATALOG_DIR": str(DEMO_CATALOG), "RECO_DATA_DIR": str(tmp_path / "data"),
           "RECO_RULES_DIR": str(rules), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "lint", "--json",
                           str(rules / "telco-demo.experiments.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return {"code": done.returncode, **json.loads(done.stdout)}


def test_a_start_or_end_without_a_zone_is_a_time_zone_error_at_its_line(tmp_path):
    """docs/experiments.md: start and end are "ISO 8601 with a zone", and a
    rule file's zone-less date-time is a `time-zone` error: in an experiments
    file `start: 2026-12-01T00:00:00` (a product manager in Paris meaning
    local midnight) was taken as UTC without a word."""
    text = ("version: 1\nexperiments:\n  - id: e1\n    status: running\n"
            "    start: 2026-12-01T00:00:00\n    end: \"2026-12-31\"\n" + ARMS)
    report = lint(make_rules(tmp_path / "p", experiments=text), tmp_path)
    found = {p["line"]: p for p in report["problems"] if p["code"] == "time-zone"}
    assert set(found) == {5, 6}, report["problems"]
    assert all(p["severity"] == "error" for p in found.values())
    assert "2026-12-01T00:00:00Z" in found[5]["hint"] and "+01:00" in found[5]["hint"], found[5]
    assert report["code"] == 1

    zoned = text.replace("2026-12-01T00:00:00", "2026-12-01T00:00:00+01:00").replace(
        '"2026-12-31"', "2026-12-31T00:00:00Z")
    clean = lint(make_rules(tmp_path / "q", experiments=zoned), tmp_path)
    assert clean["problems"] == [] and clean["code"] == 0, clean


def test_the_uplift_interval_stays_within_the_possible_differences():
    """The uplift is a difference of two rates, so it lies in [-100, +100]
    points; at small counts the mSPRT radius is wide and the report read
    "-85.65 % [-102.69 %, -68.62 %]" (seen on a report of 150 decisions
    against 43). The confidence set cut to the possible values is still a
    valid one, and no bound a product manager cannot make sense of."""
    import datetime as dt

    from app.experiments.model import Arm, Experiment
    from app.experiments.report import experiment_report, report_lines

    for k1, n1, k0, n0 in ((0, 150, 40, 43), (3, 3, 0, 3), (0, 2, 2, 2), (1, 1, 0, 1)):
        found = msprt(k1, n1, k0, n0)
        assert -1.0 <= found["low"] <= found["difference"] <= found["high"] <= 1.0, (k1, n1, k0, n0, found)
    experiment = Experiment("e1", "running", (Arm("challenger", "1.1.0", 50), Arm("control", "1.0.0", 50)),
                            "control")

    def counts(decisions, accepted):
        return {"decisions": decisions, "items": decisions, "shown": 0, "clicked": 0, "leads": 0,
                "accepted": accepted, "converted": {"shown": 0, "clicked": 0, "leads": 0, "accepted": accepted}}

    report = experiment_report(experiment, {"challenger": counts(150, 0), "control": counts(43, 40)},
                               dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc))
    uplift = report["arms"][0]["uplift"]
    assert uplift["low"] >= -1.0 and uplift["significant"], uplift
    text = "\n".join(report_lines({**report, "rulesetId": "telco-demo"}))
    assert "-102" not in text and "[-100.00%," in text, text


def msprt(k1, n1, k0, n0):
    from app.experiments.stats import msprt_uplift
    return msprt_uplift(k1, n1, k0, n0)


@pytest.mark.xdist_group("experiments-to-read")
def test_explain_of_a_query_in_an_experiment_explains_its_arms_version(experiments_to_read, tmp_path):
    """A support agent pastes the storefront's query into the Playground
    (`POST /admin/rules/explain`) or `flask rules explain` to see why the
    customer got what she got. In an experiment her answer came from her
    arm's version, but the explanation was the active version's, with no
    word of the experiment: a customer of the control arm (1.0.0, three
    items) was "explained" one item of 1.1.0. Now a TMF680 query is routed
    as the answer was: the arm's version explains, `experiment` names the
    arm, and a holdout's explanation says that it answers nothing. A
    `version` asked for explains that version, as before."""
    import requests

    from app.experiments.assign import bucket
    from experiment_project import ADMIN, R, query
    from helpers import Client

    # the shared experiment server (tests/experiments/conftest.py): it only
    # asks and explains
    server = experiments_to_read
    api = Client(server.url)
    control = next(f"c-{n}" for n in range(200) if bucket("split", f"party:c-{n}") >= 5000)
    challenger = next(f"c-{n}" for n in range(200) if bucket("split", f"party:c-{n}") < 5000)
    explain = server.url + "/admin/rules/explain"
    for party, arm, version, items in ((control, "control", "1.0.0", 3), (challenger, "challenger", "1.1.0", 1)):
        answer = api.post(R, json=query(party)).json()
        assert answer["experiment"] == {"id": "split", "arm": arm}
        assert len(answer["recommendationItem"]) == items
        explained = requests.post(explain, json=query(party), headers=ADMIN, timeout=60).json()
        assert explained["ruleset"]["version"] == version, explained["ruleset"]
        assert explained["experiment"] == {"id": "split", "arm": arm, "holdout": False}
        assert [i["offering"]["id"] for i in explained["items"]] == [
            i["productOffering"]["id"] for i in answer["recommendationItem"]]
        text = requests.post(explain, params={"format": "text"}, json=query(party), headers=ADMIN, timeout=60).text
        assert f"Experiment split, arm {arm}: answered by version {version}" in text, text
    asked = requests.post(explain, params={"version": "1.1.0"}, json=query(control), headers=ADMIN, timeout=60).json()
    assert asked["ruleset"]["version"] == "1.1.0" and "experiment" not in asked

    held = next(f"h-{n}" for n in range(200) if bucket("holdout-test", f"party:h-{n}") < 5000)
    assert api.post(R, json=query(held, channel="22")).json()["recommendationItem"] == []
    explained = requests.post(explain, json=query(held, channel="22"), headers=ADMIN, timeout=60).json()
    assert explained["experiment"] == {"id": "holdout-test", "arm": "holdout", "holdout": True}
    text = requests.post(explain, params={"format": "text"}, json=query(held, channel="22"), headers=ADMIN,
                         timeout=60).text
    assert "Experiment holdout-test, arm holdout: a holdout, answered with no items" in text, text

    # the command line routes a query the same way
    path = tmp_path / "query.json"
    path.write_text(json.dumps(query(control)))
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "explain", str(path)],
                          cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "Experiment split, arm control: answered by version 1.0.0" in done.stdout, done.stdout
    assert "Rule set telco-demo 1.0.0" in done.stdout, done.stdout


ENDED = """\
version: 1
experiments:
  - id: ended
    status: running
    start: 2026-01-01T00:00:00Z
    end: 2026-02-01T00:00:00Z
    channels: ["21"]
""" + ARMS


def test_an_experiment_past_its_end_is_not_listed_as_serving_and_start_runs_it_again(make_server, tmp_path):
    """An experiment whose `end` has passed serves nobody, but the listing's
    `running` ("the experiments that serve in this worker") still named it,
    and `start` refused it as "already running": the only way to run it
    again was to stop it first. Now `running` names what serves, and
    `start` runs it again without the end (as it does for a stopped one),
    recorded in the audit history."""
    import requests

    from experiment_project import ADMIN, ADMIN_KEY, R, query
    from helpers import Client

    rules = make_rules(tmp_path / "project", experiments=ENDED)
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    api = Client(server.url)
    assert "experiment" not in api.post(R, json=query("p-1")).json()
    listing = requests.get(server.url + "/admin/experiments", headers=ADMIN, timeout=60).json()
    assert listing["running"] == [] and listing["experiments"][0]["status"] == "running"

    started = requests.post(server.url + "/admin/experiments/ended/start", headers=ADMIN, timeout=60)
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["end"] is None
    assert started.json()["history"][0]["action"] == "experiment-start"
    assert api.post(R, json=query("p-1")).json()["experiment"]["id"] == "ended"
    listing = requests.get(server.url + "/admin/experiments", headers=ADMIN, timeout=60).json()
    assert listing["running"] == ["ended"]
    again = requests.post(server.url + "/admin/experiments/ended/start", headers=ADMIN, timeout=60)
    assert again.status_code == 409 and again.json()["code"] == "EXPERIMENT_REFUSED"
    assert "already running" in again.json()["message"]


def test_a_completed_experiments_weights_are_its_record_and_stay(make_server, tmp_path):
    """After `promote` (status completed) a weights change was still taken
    (200): the report of the finished experiment then showed weights it
    never ran with. start and stop refuse a completed experiment; weights
    now does too, and nothing is written (file version, history)."""
    import requests

    from experiment_project import ADMIN, ADMIN_KEY

    rules = make_rules(tmp_path / "project")
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    base = server.url + "/admin/experiments/canary"
    promoted = requests.post(base + "/promote", json={"arm": "canary"}, headers=ADMIN, timeout=60)
    assert promoted.status_code == 200, promoted.text
    before = (rules / "telco-demo.experiments.yaml").read_text()
    history = requests.get(server.url + "/admin/rules/history", headers=ADMIN, timeout=60).json()
    changed = requests.post(base + "/weights", json={"weights": {"canary": 50, "stable": 50}}, headers=ADMIN,
                            timeout=60)
    assert changed.status_code == 409, changed.text
    body = changed.json()
    assert body["code"] == "EXPERIMENT_REFUSED" and body["@type"] == "Error" and "completed" in body["message"]
    assert (rules / "telco-demo.experiments.yaml").read_text() == before
    assert requests.get(server.url + "/admin/rules/history", headers=ADMIN, timeout=60).json() == history
    arms = requests.get(base, headers=ADMIN, timeout=60).json()["arms"]
    assert [a["weight"] for a in arms] == [5, 95]


def test_cli_weights_naming_an_arm_twice_are_refused(tmp_path):
    """`flask experiments weights canary canary=25 stable=50 stable=75`
    (a typo: one arm twice) was taken as canary 25, stable 75, the last
    value silently winning; now it is a usage error naming the arm, and
    the file is unchanged."""
    rules = make_rules(tmp_path / "project")
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(tmp_path / "data"), "RECO_LOG_LEVEL": "warning"}
    before = (rules / "telco-demo.experiments.yaml").read_text()
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "experiments", "weights", "canary",
                           "canary=25", "stable=50", "stable=75"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "stable is named twice" in done.stderr, done.stderr
    assert (rules / "telco-demo.experiments.yaml").read_text() == before


def test_health_names_an_experiments_file_that_serves_nothing(make_server, tmp_path):
    """A hand edit that breaks the experiments file (weights adding up to
    110) stops every experiment: the active version answers everybody. The
    router's docstring promised the reason "in /health", but /health said
    nothing (only a log line did), so an operator saw a 50/50 split become
    100/0 with every check green. /health now has `experiments`: what
    serves, and the file's errors at file:line; the public summary only
    counts them."""
    import requests

    from experiment_project import ADMIN, ADMIN_KEY, R, query
    from helpers import Client

    rules = make_rules(tmp_path / "project")
    path = rules / "telco-demo.experiments.yaml"
    good = path.read_text()
    path.write_text(good.replace("{name: challenger, version: \"1.1.0\", weight: 50}",
                                 "{name: challenger, version: \"1.1.0\", weight: 60}"))
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    assert "experiment" not in Client(server.url).post(R, json=query("p-1")).json()
    health = requests.get(server.url + "/health", headers=ADMIN, timeout=60).json()
    assert health["experiments"]["running"] == [], health
    assert any(e.startswith("telco-demo.experiments.yaml:") and "add up to 110" in e
               for e in health["experiments"]["errors"]), health["experiments"]
    assert str(tmp_path) not in json.dumps(health["experiments"])
    public = requests.get(server.url + "/health", timeout=60).json()
    assert public["experiments"] == {"errorCount": 1}, public

    path.write_text(good)
    health = requests.get(server.url + "/health", headers=ADMIN, timeout=60).json()
    assert health["experiments"] == {"running": ["split", "holdout-test"], "errors": []}, health["experiments"]


def test_a_duplicate_experiment_id_is_named_even_when_a_copy_has_other_errors(tmp_path):
    """Lint named a duplicate experiment id only when both copies were
    otherwise valid: with a typo in the second copy (status: runing) the
    author fixed it, ran lint again and only then learned of the duplicate.
    Every problem is named in one run."""
    text = ("version: 1\nexperiments:\n  - id: e1\n    status: draft\n" + ARMS
            + "  - id: e1\n    status: runing\n" + ARMS)
    report = lint(make_rules(tmp_path / "p", experiments=text), tmp_path)
    codes = {(p["line"], p["code"]) for p in report["problems"]}
    assert (10, "invalid-status") in codes and (9, "duplicate-experiment") in codes, report["problems"]
