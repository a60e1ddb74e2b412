"""Bad input to /admin/experiments: the TMF Error (status, code, message)
each kind of wrong body or query gets, pinned exactly (the arguments are
parsed by marshmallow schemas, app/api/experiments_schemas.py, through
flask-smorest; these answers held before that and after). The change
endpoints take an empty body; a key is asked for before the body is read."""
from __future__ import annotations

import pytest

from app import create_app
from experiment_project import ADMIN, ADMIN_KEY, make_rules
from helpers import DEMO_CATALOG, refused

EXP = "/admin/experiments"
CHANGES = ("start", "stop", "weights", "promote")


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    return make_rules(tmp_path_factory.mktemp("experiment-arguments"))


def _client(rules, **settings):
    app = create_app(data_dir=rules.parent / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                     background_workers=False, **settings)
    return app.test_client()


@pytest.fixture(scope="module")
def client(rules):
    return _client(rules, admin_keys=[ADMIN_KEY])


def test_report_format_outside_the_list_is_an_invalid_query(client):
    refused(client.get(f"{EXP}/split/report?format=xml", headers=ADMIN), 400, "INVALID_QUERY",
            "format='xml': json or text")
    refused(client.get(f"{EXP}/split/report?format=", headers=ADMIN), 400, "INVALID_QUERY",
            "format='': json or text")
    assert client.get(f"{EXP}/split/report?format=text", headers=ADMIN).mimetype == "text/plain"
    assert client.get(f"{EXP}/split/report?other=1", headers=ADMIN).get_json()["id"] == "split"


@pytest.mark.parametrize("action", CHANGES)
def test_a_change_body_that_is_no_json_object_is_refused(client, rules, action):
    before = (rules / "telco-demo.experiments.yaml").read_text()
    url = f"{EXP}/canary/{action}"
    refused(client.post(url, data="a=1", headers={**ADMIN, "Content-Type": "text/plain"}),
            415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be one of application/json (got text/plain)")
    refused(client.post(url, data="[]", headers={**ADMIN, "Content-Type": "application/json"}),
            400, "INVALID_BODY", "The JSON body must be an object")
    refused(client.post(url, json={"fileVersion": "3"}, headers=ADMIN), 400, "INVALID_BODY",
            "`fileVersion` must be a whole number")
    refused(client.post(url, json={"fileVersion": True}, headers=ADMIN), 400, "INVALID_BODY",
            "`fileVersion` must be a whole number")
    refused(client.post(url, json={"fileVersion": 1.5}, headers=ADMIN), 400, "INVALID_BODY",
            "`fileVersion` must be a whole number")
    assert (rules / "telco-demo.experiments.yaml").read_text() == before


def test_promote_needs_an_arm(client, rules):
    before = (rules / "telco-demo.experiments.yaml").read_text()
    for body in ({}, {"arm": 5}, {"arm": None}):
        refused(client.post(f"{EXP}/canary/promote", json=body, headers=ADMIN), 400, "INVALID_BODY",
                "`arm` must name the arm to promote")
    refused(client.post(f"{EXP}/canary/promote", headers=ADMIN), 400, "INVALID_BODY",
            "`arm` must name the arm to promote")
    assert (rules / "telco-demo.experiments.yaml").read_text() == before


def test_weights_are_checked_against_the_experiments_arms(client, rules):
    before = (rules / "telco-demo.experiments.yaml").read_text()
    for weights in (None, {"canary": 50}, {"canary": "50", "stable": 50}, {"canary": True, "stable": 99}):
        refused(client.post(f"{EXP}/canary/weights", json={"weights": weights}, headers=ADMIN), 400,
                "INVALID_BODY", "weights must give every arm (canary, stable) a percentage from 0 to 100")
    assert (rules / "telco-demo.experiments.yaml").read_text() == before


def test_an_empty_body_and_unknown_attributes_are_taken(client, rules):
    """start, then stop, of the draft canary: an empty body (no Content-Type) and a body with an
    attribute this service does not know both act on the rule set in service."""
    started = client.post(f"{EXP}/canary/start", headers=ADMIN)
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["experiment"]["status"] == "running"
    stopped = client.post(f"{EXP}/canary/stop", json={"reason": "done", "rulesetId": None}, headers=ADMIN)
    assert stopped.status_code == 200 and stopped.get_json()["experiment"]["status"] == "stopped"


def test_a_change_without_a_key_is_refused_before_its_body_is_read(rules, client):
    for action in CHANGES:
        refused(client.post(f"{EXP}/canary/{action}", json={"fileVersion": "x"}), 401, "UNAUTHORIZED")
    keyless = _client(rules)
    for action in CHANGES:
        refused(keyless.post(f"{EXP}/canary/{action}", data="[", headers={"Content-Type": "text/plain"}),
                403, "ADMIN_KEY_REQUIRED")


def test_a_rule_set_id_that_is_no_text_is_refused(client, rules):
    """It was ignored (the change went to the rule set in service); now it is what the document
    says: text or null."""
    before = (rules / "telco-demo.experiments.yaml").read_text()
    for action in CHANGES:
        refused(client.post(f"{EXP}/canary/{action}", json={"rulesetId": ["telco-demo"], "arm": "canary"},
                            headers=ADMIN), 400, "INVALID_BODY", "`rulesetId` must be text")
    assert (rules / "telco-demo.experiments.yaml").read_text() == before
