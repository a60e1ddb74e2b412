"""POST /admin/rules/explain and GET /admin/rules (in process): a case context
or a TMF680 query body, every rule with its failed condition and line, the
policy steps, the final list, TMF errors, and the admin key."""
from __future__ import annotations

import pytest

from app import create_app

E2 = {"customer": {"segment": "premium"}, "cart": ["6547"], "channel": "23", "time": "2026-10-01T00:00:00Z"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(data_dir=tmp_path_factory.mktemp("rules-http"), background_workers=False)
    return app.test_client()


def test_explain_a_case_context(client):
    response = client.post("/admin/rules/explain", json=E2)
    assert response.status_code == 200
    body = response.get_json()
    assert body["ruleset"]["id"] == "telco-demo"
    assert [item["offering"]["id"] for item in body["items"]] == ["6550", "6542", "6543"]
    rules = {rule["id"]: rule for rule in body["rules"]}
    assert rules["R2"]["fired"] and not rules["R3"]["fired"]
    assert rules["R3"]["failedAt"] == [
        {"condition": "channel has any of [21, 22]: channel is [23]", "line": 41, "column": 7}]
    assert rules["R7"]["reason"].startswith("outside its validFor")
    assert [step["step"] for step in body["policies"]] == [
        "proposed", "owned-or-in-cart", "inactive-or-out-of-validity", "one-per-offering", "limit"]
    assert body["context"] == {"customer": {"id": "case-customer", "segment": "premium"}, "cart": ["6547"],
                               "channel": "23", "time": "2026-10-01T00:00:00Z"}


def test_explain_a_tmf680_query_and_as_text(client):
    customer = client.post("/tmf-api/customerManagement/v4/customer", json={
        "name": "Jane", "engagedParty": {"id": "p-42", "@referredType": "Individual"},
        "characteristic": [{"name": "segment", "value": "premium"}]}).get_json()
    client.post("/tmf-api/productInventory/v4/product", json={
        "status": "active", "productOffering": {"id": "7002"},
        "relatedParty": [{"id": customer["id"], "role": "customer", "@referredType": "Customer"}]})
    query = {"relatedParty": {"id": customer["id"]}, "channel": [{"id": "24"}],
             "validFor": {"startDateTime": "2026-10-01T00:00:00Z"}}
    body = client.post("/admin/rules/explain", json=query).get_json()
    assert [item["offering"]["id"] for item in body["items"]] == ["7003", "7402"]
    assert body["context"]["owns"] == ["7002"] and body["context"]["customer"]["segment"] == "premium"
    dropped = [d for step in body["policies"] for d in step.get("dropped", [])]
    assert [(d["offering"], d["reason"]) for d in dropped] == [("7401", "not-active")]
    text = client.post("/admin/rules/explain?format=text", json=query)
    assert text.mimetype == "text/plain"
    assert "    dropped 7401 Roaming Pack EU (from R8): not-active, lifecycleStatus is Retired\n" in text.get_data(True)


def test_explain_errors_are_tmf_errors(client):
    bad = client.post("/admin/rules/explain", json={"cart": ["6547"], "chanel": "21"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "INVALID_CONTEXT"
    assert "unknown field 'chanel'" in bad.get_json()["message"]
    anonymous_owner = client.post("/admin/rules/explain", json={"owns": ["7001"]})
    assert anonymous_owner.status_code == 400
    assert "an anonymous shopper owns nothing" in anonymous_owner.get_json()["message"]
    query = client.post("/admin/rules/explain", json={"validFor": "tomorrow"})
    assert query.status_code == 400 and query.get_json()["code"] == "INVALID_CONTEXT"
    version = client.post("/admin/rules/explain?version=9.9.9", json=E2)
    assert version.status_code == 404 and "known: 1.0.0" in version.get_json()["message"]
    not_json = client.post("/admin/rules/explain", data="x", content_type="text/plain")
    assert not_json.status_code == 415 and not_json.get_json()["@type"] == "Error"
    assert client.get("/admin/rules/explain").status_code == 405


def test_status_and_the_endpoints_in_the_openapi_document(client):
    status = client.get("/admin/rules").get_json()
    assert status["rulesetId"] == "telco-demo" and status["version"] == "1.0.0"
    assert [v["version"] for v in status["versions"]] == ["1.0.0"]
    paths = client.get("/openapi.json").get_json()["paths"]
    admin = {p: sorted(paths[p]) for p in paths if p.startswith("/admin")}
    assert admin == {
        "/admin/rules": ["get"], "/admin/rules/overview": ["get"], "/admin/rules/activations": ["get"],
        "/admin/rules/vocabulary": ["get"], "/admin/rules/explain": ["post"], "/admin/rules/lint": ["post"],
        "/admin/rules/cases": ["post"], "/admin/rules/{ruleset_id}/cases": ["parameters", "post"], "/admin/rules/impact": ["post"],
        "/admin/rules/{ruleset_id}/working-copy": ["get", "parameters", "put"],
        "/admin/rules/activate": ["post"], "/admin/rules/approve": ["post"], "/admin/rules/history": ["get"], "/admin/rules/rollback": ["post"], "/admin/rules/lock": ["post"],
        "/admin/experiments": ["get"], "/admin/experiments/{experiment_id}": ["get", "parameters"],
        "/admin/experiments/{experiment_id}/report": ["get", "parameters"],
        "/admin/experiments/{experiment_id}/start": ["parameters", "post"],
        "/admin/experiments/{experiment_id}/stop": ["parameters", "post"],
        "/admin/experiments/{experiment_id}/weights": ["parameters", "post"],
        "/admin/experiments/{experiment_id}/promote": ["parameters", "post"]}


def test_admin_key_protects_it(tmp_path):
    app = create_app(data_dir=tmp_path, background_workers=False, admin_keys=["s3cret"])
    client = app.test_client()
    assert client.post("/admin/rules/explain", json=E2).status_code == 401
    assert client.get("/admin/rules").status_code == 401
    ok = client.post("/admin/rules/explain", json=E2, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
