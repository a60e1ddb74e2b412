"""What a part can do is declared on its interface, not probed with
`getattr(part, "name", default)`: the query service's recorded look-up
(ResourceService.find / recorded, which the decision log's service
overrides), the recommender's experiments, the services' decision log, the
rule pointer's `invalidate` and `location` (app/rules/repository/pointer.py
Pointer), an admin argument schema's `body_optional` (AdminArguments). A probe hides a misspelt or renamed member behind its default; a
declared member fails loudly. And the configured store takes its pool
settings whichever way its URL is written (the factory tested the scheme by
its own prefix check and dropped them for " postgresql://...")."""
from __future__ import annotations

import re
import shutil

import pytest

from app import create_app
from app.config import Settings
from app.rules.repository.pointer import FilePointer, Pointer, StorePointer
from app.store import open_configured_store, open_store
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
REACTIONS = "/tmf-api/recommendationManagement/v4/recommendationReaction"
LEADS = "/tmf-api/sales/v4/salesLead"
KEY = "declared-admin"


@pytest.fixture
def app_without_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    return create_app(data_dir=tmp_path / "data", rules_dir=tmp_path / "rules", catalog_dir=tmp_path / "catalog",
                      background_workers=False, decision_log=False, admin_keys=[KEY])


def _stored_answer(client) -> dict:
    body = {"instantSyncRecommendation": False, "channel": [{"id": "21"}],
            "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
    made = client.post(R, json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    return made.get_json()


def test_without_the_decision_log_reactions_and_leads_name_stored_queries(app_without_log):
    """With RECO_DECISION_LOG off the query service is the plain
    ResourceService: its declared find and recorded answer for it."""
    client = app_without_log.test_client()
    stored = _stored_answer(client)
    with app_without_log.app_context():
        from app.recommend.query import KIND
        from app.services import services

        reco = services(app_without_log)
        assert reco.decisions is None
        queries = reco.resources[KIND.collection]
        assert queries.recorded(stored["id"]) is None
        assert queries.find("no-such-query") is None
        assert queries.find(stored["id"])["id"] == stored["id"]
    unknown = client.post(REACTIONS, json={"reactionType": "shown",
                                           "recommendation": {"id": "no-such-query", "itemId": "1"}})
    assert unknown.status_code == 404 and unknown.get_json()["@type"] == "Error", unknown.get_data(as_text=True)


def test_both_rule_pointers_implement_the_declared_interface(tmp_path):
    store = open_store(tmp_path / "store")
    for pointer in (FilePointer(tmp_path / "active-rulesets.json"), StorePointer(store)):
        assert isinstance(pointer, Pointer), type(pointer).__name__
        assert pointer.location and pointer.read() == ({}, 0)
        pointer.invalidate()


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:9/db", " postgresql://u@127.0.0.1:9/db",
                                 "POSTGRES://u@127.0.0.1:9/db"])
def test_the_configured_store_takes_its_pool_settings_however_its_url_is_written(url):
    store = open_configured_store(Settings.from_env(store_url=url, store_pool_size=3, store_timeout_seconds=2.5))
    try:
        assert (store.backend, store.pool_size, store.pool_timeout) == ("postgresql", 3, 2.5)
    finally:
        store.close()


#: `getattr(<a service, the recommender, a pointer, the query service>, "<name>"`:
#: members these parts declare, read as attributes
PROBE = re.compile(r"""getattr\((services|reco|queries|self\.registry\.pointer|reco\.rules\.pointer"""
                   r"""|services\.recommender|reco\.recommender),\s*["']|getattr\(schema,\s*["']body_optional""")


def test_declared_members_are_read_not_probed():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sorted((ROOT / "app").rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if PROBE.search(line)]
    assert not found, "declare the member on the interface and read it:\n" + "\n".join(found)
