"""A regression case's stated history names offerings and channels: one the
catalog does not have is an error with file:line naming it, wherever the
cases are read with the catalog (`flask rules test`, `flask rules lint`,
the admin API's run of the cases and its "save as case"). Before, the
policies never counted such an item, so a case expecting an item back
after its window passed for the wrong reason (here: "65422" for "6542")."""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

import cliprocess
from helpers import ROOT, Client
from test_contact_policies import IMPRESSIONS, rules_with

CASES = """\
ruleset: telco-demo
cases:
  - name: back-after-two-impressions
    context:
      customer: {id: C9}
      cart: ["6547"]
      channel: "21"
      time: "2026-10-01T00:00:00Z"
      history:
        - {reaction: shown, offering: "6542", ago: 1d, channel: "21"}
        - {reaction: shown, offering: "6542", ago: 2d}
        - {reaction: shown, offering: "65422", ago: 3d}
        - {offered: "73011", ago: 3h}
        - {reaction: rejected, offering: "6543", ago: 1d, channel: "29"}
    expect: ["6542", "6543", "7301"]
"""
KEY = "history-refs-admin-key"
#: (line, column, code, the id named) of each unknown reference above
UNKNOWN = [(line, CASES.splitlines()[line - 1].index(f'"{value}"') + 1, code, value)
           for line, code, value in ((12, "unknown-offering", "65422"), (13, "unknown-offering", "73011"),
                                     (14, "unknown-channel", "29"))]


def flask(args, env):
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


def project(tmp_path):
    rules = rules_with(tmp_path, IMPRESSIONS)
    (rules / "telco-demo.cases.yaml").write_text(CASES)
    return rules


def test_flask_rules_test_and_lint_refuse_unknown_history_references(tmp_path):
    rules = project(tmp_path)
    cases = rules / "telco-demo.cases.yaml"
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_DATA_DIR": str(tmp_path / "data")}
    ran = flask(["rules", "test", str(cases)], env)
    out = ran.stdout + ran.stderr
    assert ran.returncode != 0 and "passed" not in ran.stdout, out
    for line, column, code, value in UNKNOWN:
        kind = code.split("-")[1]
        assert re.search(rf"telco-demo\.cases\.yaml:{line}:{column}: case back-after-two-impressions: "
                         rf"unknown {kind} '{value}' in history", out), out
    linted = flask(["rules", "lint", "--json", str(cases)], env)
    assert linted.returncode == 1
    found = [p for p in json.loads(linted.stdout)["problems"] if p["code"] in ("unknown-offering", "unknown-channel")]
    assert [(p["line"], p["column"], p["code"], p["severity"]) for p in found] == [
        (line, column, code, "error") for line, column, code, _value in UNKNOWN]
    assert "did you mean '6542'?" in found[0]["hint"]
    assert "channel id of catalog/channels.yaml" in found[2]["hint"]
    # the same file with known references runs (and the case passes: two impressions only)
    cases.write_text(CASES.replace('"65422"', '"6543"').replace('"73011"', '"7301"').replace('"29"', '"22"'))
    fixed = flask(["rules", "test", str(cases)], env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


@pytest.mark.backends("tinydb", reason="the cases are rule files, not stored data")
def test_the_admin_api_refuses_unknown_history_references(make_server, tmp_path):
    rules = project(tmp_path)
    api = Client(make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": KEY}).url)
    api.session.headers["Authorization"] = f"Bearer {KEY}"
    ran = api.post("/admin/rules/cases", json={"rulesetId": "telco-demo"})
    assert ran.status_code == 422, ran.text
    error = ran.json()
    assert error["code"] == "INVALID_CASES" and error["@type"] == "Error"
    assert "unknown offering '65422' in history" in error["message"], error

    # "save as case" (the Playground) checks the history the same way; nothing is written
    (rules / "telco-demo.cases.yaml").write_text(CASES.replace('"65422"', '"6543"').replace(
        '"73011"', '"7301"').replace('"29"', '"22"'))
    before = (rules / "telco-demo.cases.yaml").read_text()
    context = {"customer": {"id": "C9"}, "cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z",
               "history": [{"reaction": "shown", "offering": "65422", "ago": "1d"}]}
    saved = api.post("/admin/rules/telco-demo/cases", json={"name": "typo", "context": context,
                                                           "expect": ["6542"]})
    assert saved.status_code == 422, saved.text
    assert "unknown offering '65422' in history" in saved.json()["message"]
    assert (rules / "telco-demo.cases.yaml").read_text() == before
    context["history"][0]["offering"] = "6542"
    assert api.post("/admin/rules/telco-demo/cases", json={"name": "known", "context": context,
                                                          "expect": ["6542"]}).status_code == 200
