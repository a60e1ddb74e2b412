"""Impact on real traffic, on both stores: `flask rules diff --recorded`,
`flask decisions export` and POST /admin/rules/impact replay recorded
answers (instant and asynchronous), each distinct situation once, weighted
by how many answers it stands for."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import cliprocess
from helpers import DEMO_RULES, PATIENCE, ROOT, Client, assert_tmf_error, wait_until
from test_decision_log import R, answer, instant_query, metric

OLD_R3 = '''      cart_category: devices
      channel: ["21", "22"]'''
NEW_R3 = '''      cart_category: devices
      channel: ["22"]'''


def rules_with_new_version(tmp_path):
    """The demo's rules plus version 1.1.0, in which R3 (insurance 7301) no
    longer answers channel 21."""
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    text = (rules / "telco-demo.yaml").read_text()
    assert OLD_R3 in text
    (rules / "versions").mkdir()
    (rules / "versions" / "telco-demo@1.1.0.yaml").write_text(
        text.replace('version: "1.0.0"', 'version: "1.1.0"').replace(OLD_R3, NEW_R3))
    return rules


def recorded_traffic(api, key: str | None = None) -> None:
    """3 instant answers on channel 21, 1 on channel 22, 1 stored query on 21."""
    for _ in range(3):
        answer(api)
    answer(api, instant_query(channel="22"))
    stored = api.post(R, json={**instant_query(), "instantSyncRecommendation": False}).json()
    assert wait_until(lambda: api.get(stored["href"]).json()["state"] == "done", PATIENCE)
    assert wait_until(lambda: metric(api, "reco_decisions_recorded_total", key) >= 5, PATIENCE)


def flask(server, *args) -> subprocess.CompletedProcess:
    env = dict(server.env, RECO_BACKGROUND_WORKERS="false", FLASK_APP="wsgi", NO_COLOR="1",
               RECO_RULES_DIR=str(server.rules))
    return cliprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# `traffic`: the shared server of tests/decisions/conftest.py

@pytest.mark.xdist_group("recorded-traffic")
def test_rules_diff_and_export_replay_recorded_answers(traffic, tmp_path):
    done = flask(traffic, "rules", "diff", "1.0.0", "1.1.0", "--no-cases", "--recorded", "100")
    assert done.returncode == 0, done.stderr
    assert ("Of 5 recorded answers (2 distinct situations), 4 would change: "
            "7301 lost 4 times.") in done.stdout
    only_22 = flask(traffic, "rules", "diff", "1.0.0", "1.1.0", "--no-cases", "--channel", "22",
                    "--json")
    assert only_22.returncode == 0, only_22.stderr
    assert json.loads(only_22.stdout)["recordedTraffic"] == {
        "answers": 1, "changed": 0, "situations": 1, "offerings": []}
    last_two = json.loads(flask(traffic, "rules", "diff", "1.0.0", "1.1.0", "--no-cases",
                                "--recorded", "2", "--json").stdout)["recordedTraffic"]
    assert last_two["answers"] == 2
    future = flask(traffic, "rules", "diff", "1.0.0", "1.1.0", "--no-cases",
                   "--since", "2099-01-01")
    assert future.returncode == 1 and "No contexts to compare" in future.stderr

    exported = tmp_path / "recorded.jsonl"
    done = flask(traffic, "decisions", "export", "-o", str(exported))
    assert done.returncode == 0 and "5 recorded answers exported" in done.stderr
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) == 5 and all(line["name"].startswith("decision ") for line in lines)
    assert sorted(line["context"]["channel"] for line in lines) == ["21"] * 4 + ["22"]
    assert lines[0]["context"]["cart"] == ["6547"]
    replayed = flask(traffic, "rules", "diff", "1.0.0", "1.1.0", "--no-cases", "--contexts",
                     str(exported), "--json")
    assert json.loads(replayed.stdout)["summary"]["changed"] == 4
    assert "2 recorded answers exported" in flask(traffic, "decisions", "export", "--last",
                                                  "2").stderr
    bad = flask(traffic, "decisions", "export", "--since", "soon")
    assert bad.returncode == 2 and "soon" in bad.stderr


@pytest.mark.xdist_group("recorded-traffic")
def test_the_impact_api_replays_recorded_answers(traffic):
    api = Client(traffic.url)
    body = {"old": "1.0.0", "new": "1.1.0", "cases": False, "recorded": 100}
    report = api.post("/admin/rules/impact", json=body).json()
    assert report["recordedTraffic"] == {
        "answers": 5, "changed": 4, "situations": 2, "skipped": 0,
        "offerings": [{"offering": "7301", "name": "Device Insurance", "gained": 0, "lost": 4}],
        "line": "Of 5 recorded answers (2 distinct situations), 4 would change: "
                "7301 lost 4 times."}
    assert report["summary"]["contexts"] == 2 and report["summary"]["changed"] == 1
    only_21 = api.post("/admin/rules/impact", json={**body, "recordedChannel": "21"}).json()
    assert only_21["recordedTraffic"]["answers"] == 4
    for bad in ({"recorded": -1}, {"recorded": "ten"}, {"recorded": True},
                {"recordedSince": "soon"}, {"recordedChannel": 21}):
        assert assert_tmf_error(api.post("/admin/rules/impact", json={**body, **bad}), 400)[
            "code"] == "INVALID_BODY", bad
    none = {**body, "recorded": 0, "recordedSince": "2099-01-01T00:00:00Z"}
    assert assert_tmf_error(api.post("/admin/rules/impact", json=none), 422)["code"] == "NO_CONTEXTS"
