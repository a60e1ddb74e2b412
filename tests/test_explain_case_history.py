"""The case context `flask rules explain` and the Playground suggest for a
TMF680 query carries the history the contact policies read for the query's
party, so that a regression case made of it reproduces the suppression. On
both stores (each reads the history its own way), through a real server and
the CLI: a party that is no customer (a guest id with another role: stated
as `customer: none` with `party`) and a known TMF629 customer."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys

import yaml

import cliprocess
from helpers import ROOT, Client
from test_contact_policies import IMPRESSIONS, ask, query, react, rules_with

CUSTOMERS = Client.CUSTOMER + "/customer"


def flask(args, env):
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


def shown_three_times(api, body: dict, now: dt.datetime) -> None:
    """Three answers this week to the party of `body`, each shown (6542)."""
    for n in range(3):
        when = now - dt.timedelta(days=n + 1, minutes=7 * n)
        answer = ask(api, {**body, "validFor": {"startDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        react(api, answer, "6542", "shown", when, channel="21")


def case_from_explain(server, tmp_path, body: dict, name: str) -> tuple[dict, list[str]]:
    """(the suggested case context of `flask rules explain` text and --json,
    the items of the explanation)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    text = flask(["rules", "explain", str(path)], server.env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    suggested = json.loads(lines[lines.index("As a case context (for a cases file or a --contexts JSONL file):")
                                 + 1])
    as_json = json.loads(flask(["rules", "explain", "--json", str(path)], server.env).stdout)
    assert as_json["context"] == suggested
    return suggested, [item["offering"]["id"] for item in as_json["items"]]


def run_as_case(rules, tmp_path, context: dict, expect: list[str]):
    cases = rules / "telco-demo.cases.yaml"
    cases.write_text(yaml.safe_dump({"ruleset": "telco-demo", "cases": [
        {"name": "suggested", "context": context, "expect": expect}]}, sort_keys=False))
    env = {**os.environ, "RECO_RULES_DIR": str(rules), "RECO_DATA_DIR": str(tmp_path / "case-data")}
    return flask(["rules", "test", str(cases)], env)


def test_the_suggested_case_states_the_history_the_policies_read(make_server, tmp_path):
    rules = rules_with(tmp_path, IMPRESSIONS)
    server = make_server(rules_dir=rules)
    api = Client(server.url)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    kim = api.post(CUSTOMERS, json={"name": "Kim", "engagedParty": {"id": "k1", "@referredType": "Individual"}})
    assert kim.status_code == 201, kim.text
    guest = {**query(party=None), "relatedParty": {"id": "guest-7", "role": "prospect"}}
    customer = {**query(party=None), "relatedParty": {"id": kim.json()["id"], "role": "customer"}}
    for body, name in ((guest, "guest"), (customer, "customer")):
        shown_three_times(api, body, now)
        body = {**body, "validFor": {"startDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        suggested, items = case_from_explain(server, tmp_path, body, name)
        assert items == ["6543", "7301"]                     # 6542 suppressed: shown 3 times this week
        if name == "guest":
            assert suggested["customer"] == "none" and suggested["party"] == "guest-7"
        else:
            assert suggested["customer"]["id"] == kim.json()["id"] and "party" not in suggested
        history = suggested["history"]
        assert [(h["reaction"], h["offering"], h.get("channel")) for h in history] == [("shown", "6542", "21")] * 3
        assert all(re.fullmatch(r"\d+(\.\d+)?[mhdw]", h["ago"]) for h in history), history
        # the Playground (the admin API) suggests the same context
        explained = api.post("/admin/rules/explain", json=body)
        assert explained.status_code == 200, explained.text
        assert explained.json()["context"]["history"] == history
        # as a regression case it reproduces the suppression; without its history it would not
        passed = run_as_case(rules, tmp_path, suggested, items)
        assert passed.returncode == 0 and "1 passed, 0 failed" in passed.stdout, passed.stdout + passed.stderr
        bare = run_as_case(rules, tmp_path, {k: v for k, v in suggested.items() if k != "history"}, items)
        assert bare.returncode == 1 and "1 failed" in bare.stdout, bare.stdout + bare.stderr


def test_a_case_names_a_party_only_when_it_is_no_customer(tmp_path):
    rules = rules_with(tmp_path, IMPRESSIONS)
    base = {"cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z",
            "history": [{"reaction": "shown", "offering": "6542", "ago": "1d"}]}
    for context, message in (
            ({**base, "customer": {"id": "C9"}, "party": "someone-else"},
             "party is the id of a query's party that is no customer"),
            ({**base, "customer": "none"}, "give a customer, or the id of the query's party as `party`")):
        done = run_as_case(rules, tmp_path, context, ["6542"])
        assert done.returncode != 0 and message in done.stdout + done.stderr, done.stdout + done.stderr
    assert run_as_case(rules, tmp_path, {**base, "customer": "none", "party": "guest-7"},
                       ["6542", "6543", "7301"]).returncode == 0
