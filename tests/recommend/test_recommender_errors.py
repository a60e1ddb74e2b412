"""The recommender tells "no valid rule set" (503 RULESET_UNAVAILABLE) apart
from a fault in the engine (500, logged): a KeyError raised inside the engine
used to be caught as a LookupError and reported as a missing rule set."""
from __future__ import annotations

import shutil

import pytest

from app import create_app
from app.rules.engine import Engine
from helpers import DEMO_CATALOG, DEMO_RULES

PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
BODY = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
        "validFor": {"startDateTime": "2026-10-01T12:00:00Z"}}


@pytest.fixture
def make_client(tmp_path):
    def factory(rules=True):
        rules_dir = tmp_path / "rules"
        if rules:
            shutil.copytree(DEMO_RULES, rules_dir)
        else:
            rules_dir.mkdir()
        app = create_app(data_dir=tmp_path / "data", rules_dir=rules_dir, catalog_dir=DEMO_CATALOG,
                         background_workers=False)
        return app.test_client()
    return factory


def test_a_fault_inside_the_engine_is_a_500_not_a_missing_rule_set(make_client, monkeypatch):
    client = make_client()

    def broken(self, ctx, *args, **kwargs):
        raise KeyError("a bug in the engine")

    monkeypatch.setattr(Engine, "recommend", broken)
    response = client.post(PATH, json=BODY)
    assert response.status_code == 500
    body = response.get_json()
    assert body["@type"] == "Error" and body.get("code") != "RULESET_UNAVAILABLE"
    assert "a bug in the engine" not in response.get_data(as_text=True)     # no internals leak


def test_no_rule_set_is_still_503_ruleset_unavailable(make_client):
    response = make_client(rules=False).post(PATH, json=BODY)
    assert response.status_code == 503
    assert response.get_json()["code"] == "RULESET_UNAVAILABLE"
