"""Optional API keys: with keys configured, writes need one, reads stay open
unless the operator protects them too, and the key never reaches the log."""
from __future__ import annotations

import pytest

from helpers import Client, assert_tmf_error

pytestmark = pytest.mark.backends("tinydb", reason="API keys are checked before any store access")

C = Client.CUSTOMER + "/customer"
BODY = {"name": "Kim", "engagedParty": {"id": "k1", "@referredType": "Individual"}}


def test_writes_need_a_key_and_reads_stay_open(make_server):
    service = make_server(env={"RECO_API_KEYS": "s3cret-one,s3cret-two"})
    api = Client(service.url)
    response = api.post(C, json=BODY)
    assert_tmf_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_tmf_error(api.post(C, json=BODY, headers={"Authorization": "Bearer wrong"}), 401)
    created = api.post(C, json=BODY, headers={"Authorization": "Bearer s3cret-two"})
    assert created.status_code == 201
    assert api.post(C, json=BODY, headers={"X-API-Key": "s3cret-one"}).status_code == 201
    assert api.get(C).status_code == 200
    assert api.get("/health").status_code == 200
    cid = created.json()["id"]
    assert_tmf_error(api.delete(f"{C}/{cid}"), 401)
    assert api.delete(f"{C}/{cid}", headers={"X-API-Key": "s3cret-one"}).status_code == 204
    service.stop()
    assert "s3cret" not in service.log_path.read_text()


def test_protected_reads(make_server):
    service = make_server(env={"RECO_API_KEYS": "k", "RECO_PROTECT_READS": "true"})
    api = Client(service.url)
    assert_tmf_error(api.get(C), 401)
    assert api.get(C, headers={"Authorization": "Bearer k"}).status_code == 200
    assert api.get("/health").status_code == 200
