"""Numbers the engine cannot hold (a client may send any). JSON admits integers of
any size, so a customer characteristic of 10**400 is stored with 201; so are
texts such as "1e400", "nan" or "Infinity". And durable's own JSON reader
fails on `1e+16` or `1e-05` (it wants `1.0e+16`), which json.dumps writes for
perfectly ordinary doubles. Every path where a stored or sent value reaches
the engine must answer: the value compares correctly, or (beyond a double's
range) counts as not a number. Never a 500, a failed job or a traceback.

The paths: instant and asynchronous recommendation, a sales lead from the
asynchronous answer, POST /admin/rules/explain, `flask rules explain`, and a
rule file's own thresholds (lint names the line)."""
from __future__ import annotations

import json
import sys
import time

import pytest

import cliprocess
from helpers import DEMO_CATALOG, PATIENCE, ROOT, Client, ServiceProcess

R = Client.RECOMMENDATION + "/queryProductRecommendation"
C = Client.CUSTOMER + "/customer"
LEADS = "/tmf-api/sales/v4/salesLead"
BIG = "1" + "0" * 400

RULES = """\
id: numbers
version: "1.0.0"
status: test
description: numeric characteristics
limit: 4
rules:
  - id: LOYAL
    kind: up-sell
    description: twelve months or more
    when:
      characteristic: {tenureMonths: {at_least: 12}}
    recommend:
      - {offering: "7002", priority: 10}
  - id: TINY
    kind: cross-sell
    description: a usage share below one percent
    when:
      characteristic: {dataShare: {less_than: 0.01}}
    recommend:
      - {offering: "7402", priority: 20}
"""

# (JSON text of the value, recommended ids): out-of-range values match nothing;
# doubles that json.dumps writes with an exponent still compare correctly.
VALUES = [
    (BIG, []),
    ("-" + BIG, []),
    ('"1e400"', []),
    ('"nan"', []),
    ('"Infinity"', []),
    ('"' + BIG + '"', []),
    ("1e16", ["7002"]),
    ("1e308", ["7002"]),
    ("1e-05", ["7402"]),
    ('"1e16"', ["7002"]),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A server on the numbers rules above for this module's tests that ask
    it (only customers of their own added, answers read): one xdist_group,
    so a parallel run starts it once."""
    base = tmp_path_factory.mktemp("numbers")
    rules_dir = base / "rules"
    rules_dir.mkdir()
    (rules_dir / "numbers.yaml").write_text(RULES)
    server = ServiceProcess(base / "data", rules_dir=rules_dir).start()
    yield server
    server.stop()


def _customer(api: Client, value_json: str) -> str:
    body = ('{"name": "Numbers", "engagedParty": {"id": "party-n", "@referredType": "Individual"},'
            ' "characteristic": [{"name": "tenureMonths", "value": %s},'
            ' {"name": "dataShare", "value": %s}]}') % (value_json, value_json)
    response = api.post(C, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _query(customer_id: str, instant: bool) -> dict:
    return {"instantSyncRecommendation": instant, "relatedParty": {"id": customer_id},
            "channel": [{"id": "24"}], "validFor": {"startDateTime": "2026-10-01T12:00:00Z"}}


def _ids(body: dict) -> list[str]:
    return sorted(item["productOffering"]["id"] for item in body.get("recommendationItem", []))


@pytest.mark.parametrize("value_json,expected", VALUES, ids=[v[:12] for v, _ in VALUES])
@pytest.mark.xdist_group("unrepresentable-numbers")
def test_instant_async_lead_and_explain_answer(service, value_json, expected):
    api = Client(service.url)
    customer_id = _customer(api, value_json)

    instant = api.post(R, json=_query(customer_id, True))
    assert instant.status_code == 200, instant.text
    assert _ids(instant.json()) == sorted(expected)

    created = api.post(R, json=_query(customer_id, False))
    assert created.status_code == 201, created.text
    deadline = time.time() + PATIENCE
    while True:
        body = api.get(R + "/" + created.json()["id"]).json()
        if body["state"] not in ("accepted", "inProgress") or time.time() > deadline:
            break
        time.sleep(0.1)
    assert body["state"] == "done", body
    assert _ids(body) == sorted(expected)
    if body.get("recommendationItem"):
        lead = api.post(LEADS, json={"@type": "RecommendationSalesLead", "recommendation": {
            "id": body["id"], "itemId": body["recommendationItem"][0]["id"]}})
        assert lead.status_code == 201, lead.text

    explained = api.post("/admin/rules/explain", json=_query(customer_id, True))
    assert explained.status_code == 200, explained.text
    fired = sorted(rule["id"] for rule in explained.json()["rules"] if rule["fired"])
    assert fired == sorted({"7002": "LOYAL", "7402": "TINY"}[i] for i in expected)


@pytest.mark.parametrize("value_json,expected", VALUES[:6] + VALUES[8:9], ids=lambda v: str(v)[:12])
@pytest.mark.xdist_group("unrepresentable-numbers")
def test_flask_rules_explain_a_context_file(service, tmp_path, value_json, expected):
    context = tmp_path / "context.json"
    context.write_text('{"customer": {"characteristics": {"tenureMonths": %s, "dataShare": %s}},'
                       ' "channel": "24", "time": "2026-10-01T00:00:00Z"}' % (value_json, value_json))
    env = dict(service.env, FLASK_APP="wsgi", RECO_BACKGROUND_WORKERS="false")
    done = cliprocess.run([sys.executable, "-m", "flask", "rules", "explain", "--json", str(context)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    items = [item["offering"]["id"] for item in json.loads(done.stdout)["items"]]
    assert sorted(items) == sorted(expected)


@pytest.mark.parametrize("threshold", [".inf", "-.inf", ".nan", "1.0e+400", BIG])
def test_lint_names_a_threshold_the_engine_cannot_hold(tmp_path, threshold):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "numbers.yaml").write_text(RULES.replace("{at_least: 12}", "{at_least: %s}" % threshold))
    env = {"RECO_RULES_DIR": str(rules_dir), "RECO_CATALOG_DIR": str(DEMO_CATALOG),
           "RECO_DATA_DIR": str(tmp_path / "data"), "FLASK_APP": "wsgi", "NO_COLOR": "1",
           "PATH": "/usr/bin:/bin"}
    done = cliprocess.run([sys.executable, "-m", "flask", "rules", "lint"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "numbers.yaml:11:" in done.stdout
    assert "is not a number the engine can compare" in done.stdout
