"""An instant query's own facts have one home per request: its carts are
checked against TMF663 and walked for their offering ids once (the check's
ids are the ones evaluated, not a second walk of the body), and its
validFor.startDateTime is parsed once (the schema's check reads it; the
evaluation time is then a look-up). The answers stay those of the demo."""
from __future__ import annotations

import shutil

import pytest

import app.recommend.facts as facts
import app.timeutil as timeutil
from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES

PATH = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"


@pytest.fixture
def client(tmp_path):
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    app = create_app(data_dir=tmp_path / "data", rules_dir=tmp_path / "rules", catalog_dir=tmp_path / "catalog",
                     background_workers=False)
    return app.test_client()


def body(start: str) -> dict:
    return {"instantSyncRecommendation": True, "channel": [{"id": "21"}], "validFor": {"startDateTime": start},
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}},
                {"id": "2", "quantity": 1, "productOffering": {"id": "7301"},
                 "cartItem": [{"id": "2.1", "quantity": 1, "productOffering": {"id": "6543"}}]}]}]}


def test_an_instant_query_walks_its_carts_once_and_parses_its_time_once(client, monkeypatch):
    walks = []
    walk = facts._item_offerings

    def counted(items):
        walks.append(len(items))
        return walk(items)

    monkeypatch.setattr(facts, "_item_offerings", counted)
    contexts = []
    build = facts.build_context
    import app.recommend.recommender as recommender

    def kept(query, parties, *rest):
        context = build(query, parties, *rest)
        contexts.append(context)
        return context

    monkeypatch.setattr(recommender, "build_context", kept)
    start = "2026-10-01T12:34:56.789+02:00"          # a text no earlier test parsed
    timeutil.parse_request_datetime.cache_clear()
    answer = client.post(PATH, json=body(start))
    assert answer.status_code == 200, answer.get_json()
    # the top-level items walk (the nested one recurses from it): once, not again for the context
    assert walks.count(2) == 1, walks
    assert contexts[0].cart == ["6547", "7301", "6543"]
    assert contexts[0].time.isoformat() == "2026-10-01T10:34:56.789000+00:00"
    info = timeutil.parse_request_datetime.cache_info()
    assert info.misses == 1 and info.hits >= 1, info


def test_a_stored_query_is_read_whole_by_the_job(client):
    """The asynchronous path evaluates the stored query without the create's
    reading: its context is built from the body, with the same answer."""
    instant = client.post(PATH, json=body("2026-10-01T12:00:00Z")).get_json()
    queued = client.post(PATH, json={**body("2026-10-01T12:00:00Z"), "instantSyncRecommendation": False})
    assert queued.status_code == 201, queued.get_json()
    from app.services import services
    with client.application.app_context():
        reco = services()
        stored = reco.resources["queryProductRecommendation"].get(queued.get_json()["id"])
        result = reco.recommender.recommend(stored, mode="async")
    assert [item.offering_id for item in result.items] == \
        [item["productOffering"]["id"] for item in instant["recommendationItem"]]
