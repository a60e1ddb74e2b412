"""No message of the experiments admin API shows where the server keeps its
files: the experiments file is named relative to the rules folder in the
listing, in 409 STALE_EXPERIMENTS, and in the problems of a file with
errors (422 INVALID_EXPERIMENTS). Over HTTP on both stores."""
from __future__ import annotations

import json

from experiment_project import ADMIN, ADMIN_KEY, make_rules
from helpers import Client, assert_tmf_error

NAME = "telco-demo.experiments.yaml"


def test_messages_name_the_file_relative_to_the_rules_folder(make_server, tmp_path):
    rules = make_rules(tmp_path / "project")
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    api = Client(server.url)
    absolute = str(rules.resolve())

    listing = api.get("/admin/experiments", headers=ADMIN)
    assert listing.status_code == 200, listing.text
    assert listing.json()["file"] == NAME

    stale = assert_tmf_error(api.post("/admin/experiments/canary/start", json={"fileVersion": 7},
                                      headers=ADMIN), 409)
    assert stale["code"] == "STALE_EXPERIMENTS"
    assert stale["message"].startswith(f"{NAME} changed since it was read"), stale
    assert absolute not in json.dumps(stale) and str(tmp_path) not in json.dumps(stale)

    path = rules / NAME
    path.write_text(path.read_text().replace("status: draft", "status: drafty"))
    broken = assert_tmf_error(api.post("/admin/experiments/canary/start", json={}, headers=ADMIN), 422)
    assert broken["code"] == "INVALID_EXPERIMENTS"
    text = json.dumps(broken)
    assert f"{NAME}:" in text, broken
    assert absolute not in text and str(tmp_path) not in text, broken
    listed = api.get("/admin/experiments", headers=ADMIN).json()
    assert listed["problems"] and {p["file"] for p in listed["problems"]} == {NAME}, listed["problems"]
