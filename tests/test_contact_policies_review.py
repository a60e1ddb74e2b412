"""Defects a newcomer's review found in contact policies and the tools
that explain them, each through the public interface (`flask rules diff`,
`flask rules explain`; docs/contact-policies.md)."""
from __future__ import annotations

import json
import os
import shutil
import sys

import cliprocess
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

POLICIES = """
contactPolicies:
  - id: P1
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
  - id: P2
    kind: pauseAfterRejected
    days: 30
"""


def version(folder, number: str, policies: str) -> str:
    text = (DEMO_RULES / "telco-demo.yaml").read_text().replace('version: "1.0.0"', f'version: "{number}"')
    path = folder / f"telco-demo@{number}.yaml"
    path.write_text(text + policies)
    return str(path)


def test_rules_diff_names_the_contact_policies_that_changed(tmp_path):
    """`flask rules diff OLD NEW` said "Rules: no rule changed" when NEW
    added four contact policies (its recorded-traffic line then counted
    items lost to them, with no word of why): a policy is part of what a
    version answers, like its rules and its limit, so the diff names each
    policy added, removed or changed (with the fields), text and JSON."""
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    other = tmp_path / "other"
    other.mkdir()
    changed = POLICIES.replace("count: 3", "count: 2").replace("  - id: P2\n    kind: pauseAfterRejected\n"
                                                                "    days: 30\n", "")
    changed += "  - id: P3\n    kind: stopAfterAccepted\n"
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(tmp_path / "data"), "RECO_LOG_LEVEL": "warning"}

    def diff(old, new, *extra):
        done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "diff", old, new,
                               *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout

    without, with_ = version(other, "1.0.1", ""), version(other, "1.1.0", POLICIES)
    text = diff(without, with_)
    assert "no rule changed" not in text, text
    assert "policy P1 added" in text and "policy P2 added" in text, text

    report = json.loads(diff(with_, version(other, "1.2.0", changed), "--json"))
    assert sorted((r["rule"], r["change"], tuple(r["fields"])) for r in report["rules"]) == [
        ("policy P1", "changed", ("count",)), ("policy P2", "removed", ()), ("policy P3", "added", ())]
    assert "no rule changed" in diff(without, version(other, "1.0.2", ""))


def test_explain_of_a_query_the_schema_refuses_says_where(tmp_path):
    """`flask rules explain query.json` with a TMF680 body the schema
    refuses said only "The body is neither a case context nor a valid
    TMF680 query": which attribute, the Playground's answer names
    (`details`), the command did not. Here the cart lacks its
    `@type: ShoppingCart`, so TMF680 reads it as a ShoppingCartRef, which
    has no `cartItem`."""
    body = {"instantSyncRecommendation": True, "channel": [{"id": "21"}], "relatedParty": {"id": "p-1"},
            "shoppingCart": [{"id": "c1", "cartItem": [{"id": "1", "quantity": 1,
                                                         "productOffering": {"id": "6547"}}]}]}
    path = tmp_path / "query.json"
    path.write_text(json.dumps(body))
    env = {**os.environ, "RECO_RULES_DIR": str(DEMO_RULES), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(tmp_path / "data"), "RECO_LOG_LEVEL": "warning"}
    done = cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "explain", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1
    assert "neither a case context nor a valid TMF680 query" in done.stderr, done.stderr
    assert "shoppingCart.0.cartItem: Unknown field." in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
