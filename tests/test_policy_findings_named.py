"""Every lint finding about a contact policy names it as a policy ("policy
P1: ..."), never as a rule, with file:line and a fix: in `flask rules lint`
(text and --json), the admin API's lint of unsaved text and its overview,
and the loader's refusal of a rule set (`flask rules test` on a bad file).
The Studio's renderings are in tests/browser/test_studio_policy_findings.py."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys

import pytest

import cliprocess
from helpers import DEMO_RULES, ROOT, Client

#: P1 scoped to the phone no rule recommends (a warning), P2 with count 0
#: (a warning); in BAD, P3 has an unknown field (the loader's error, so the
#: rule set does not load and lint's own warnings are not reached)
POLICIES = """
contactPolicies:
  - id: P1
    kind: maxImpressions
    scope: {offering: "6547"}
    count: 3
    days: 7
  - id: P2
    kind: maxImpressions
    count: 0
    days: 7
  - id: P3
    kind: pauseAfterRejected
    days: 30
"""
BAD = POLICIES + "    perChanel: true\n"
WARNINGS = {("P1", "contact-policy-unused"), ("P2", "contact-policy-never")}
ERRORS = {("P3", "contact-policy")}


def flask(args, env):
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


def policy_rules(tmp_path, policies: str = POLICIES):
    folder = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, folder)
    path = folder / "telco-demo.yaml"
    path.write_text(path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"') + policies)
    first = path.read_text().splitlines().index("  - id: P1") + 1
    return folder, path, first


def check_named_as_policies(problems: list[dict], first: int, expected: set) -> None:
    """Each expected finding: `policy` is the id, `rule` None, the text says
    "policy P<n>: " after file:line:column, and there is a fix."""
    found = {(p["policy"], p["code"]): p for p in problems if p.get("policy")}
    assert set(found) == expected, problems
    for (policy, _code), p in found.items():
        assert p["rule"] is None and p["about"] == f"policy {policy}: "
        assert re.match(rf".*telco-demo\.yaml:{p['line']}:{p['column']}: policy {policy}: ", p["text"]), p
        assert p["line"] >= first and p["hint"]
        assert "rule P" not in p["text"]


@pytest.mark.backends("tinydb", reason="lint reads rule text, not the store")
def test_the_cli_lint_names_policies_as_policies(tmp_path):
    rules, path, first = policy_rules(tmp_path)
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_DATA_DIR": str(tmp_path / "data")}
    text = path.read_text()
    for policies, named in ((POLICIES, {"P1", "P2"}), (BAD, {"P3"})):
        path.write_text(text.replace(POLICIES, policies))
        done = flask(["rules", "lint", str(path)], env)
        lines = done.stdout.splitlines()
        about = [n for n, line in enumerate(lines) if re.search(r": (error|warning): policy P\d: ", line)]
        assert {re.search(r"policy (P\d)", lines[n]).group(1) for n in about} == named, done.stdout
        for n in about:
            assert re.match(r".*telco-demo\.yaml:\d+:\d+: ", lines[n]) and lines[n + 1].startswith("    fix: ")
        assert not re.search(r"rule P\d", done.stdout), done.stdout
        as_json = flask(["rules", "lint", "--json", str(path)], env)
        check_named_as_policies(json.loads(as_json.stdout)["problems"], first,
                                WARNINGS if policies == POLICIES else ERRORS)


@pytest.mark.backends("tinydb", reason="lint reads rule text, not the store")
def test_the_admin_api_names_policies_as_policies(make_server, tmp_path):
    _rules, path, first = policy_rules(tmp_path)
    api = Client(make_server().url)
    for policies, expected in ((POLICIES, WARNINGS), (BAD, ERRORS)):
        text = path.read_text().replace(POLICIES, policies)
        linted = api.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": text})
        assert linted.status_code == 200, linted.text
        check_named_as_policies(linted.json()["problems"], first, expected)


@pytest.mark.backends("tinydb", reason="lint reads rule text, not the store")
def test_the_admin_overview_names_policies_as_policies(make_server, tmp_path):
    rules, _path, _first = policy_rules(tmp_path)
    (rules / "telco-demo.lock.json").unlink()
    api = Client(make_server(rules_dir=rules).url)
    overview = api.get("/admin/rules/overview")
    assert overview.status_code == 200, overview.text
    findings = overview.json()["rulesets"][0]["findings"]
    named = {(f["policy"], f["code"]) for f in findings if f.get("policy")}
    assert named == WARNINGS, findings
    assert not any(re.search(r"rule P\d", f["text"]) for f in findings), findings


def test_the_loader_names_the_policy_when_it_refuses_a_rule_set(tmp_path):
    rules, path, _first = policy_rules(tmp_path, BAD)
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_DATA_DIR": str(tmp_path / "data")}
    done = flask(["rules", "test", str(rules / "telco-demo.cases.yaml"), "--rules", str(path)], env)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert re.search(r"telco-demo\.yaml:\d+:\d+: policy P3: unknown field 'perChanel'", out), out
    assert not re.search(r"rule P\d", out), out
