"""The /admin/rules endpoints the Rule Studio uses (in process, on a scratch
copy of rules/ and catalog/): lint of unsaved text, cases, impact (cases, an
uploaded JSON Lines file, stored queries), saving the working copy (atomic,
never activating), activation with its history, roll back, and who may change
what (a key always; a studio session only with its CSRF token)."""
from __future__ import annotations

import re
import shutil

import pytest

from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
R6_OLD, R6_NEW = 'channel: "23"', 'channel: ["22", "23"]'


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch copy of the tests' demo (tests/demo: rules/, catalog/) and the schemas; cwd is its
    root (file names as the CLI shows them)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    return tmp_path


def make_client(project, **settings):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, **settings)
    return app.test_client()


@pytest.fixture
def client(project):
    return make_client(project, admin_keys=[KEY])


def working_text(client) -> str:
    return client.get("/admin/rules/telco-demo/working-copy", headers=AUTH).get_json()["text"]


def save(client, text: str, headers=None):
    """PUT the working copy as an editor does: If-Match the ETag it read."""
    tag = client.get("/admin/rules/telco-demo/working-copy", headers=AUTH).headers["ETag"]
    return client.put("/admin/rules/telco-demo/working-copy", json={"text": text},
                      headers={**AUTH, "If-Match": tag, **(headers or {})})


def version_110(text: str) -> str:
    return text.replace('version: "1.0.0"', 'version: "1.1.0"').replace(R6_OLD, R6_NEW)


def test_lint_of_unsaved_text_names_line_and_column_and_leaves_the_file(client, project):
    before = (project / "rules" / "telco-demo.yaml").read_text()
    text = version_110(before).replace('{offering: "7102", priority: 15}', '{offering: "7109", priority: 15}')
    report = client.post("/admin/rules/lint", json={"text": text}, headers=AUTH).get_json()
    line = text.splitlines().index(next(t for t in text.splitlines() if '"7109"' in t)) + 1
    unknown = [p for p in report["problems"] if p["code"] == "unknown-offering"]
    assert [(p["line"], p["column"], p["rule"], p["file"]) for p in unknown] == [
        (line, text.splitlines()[line - 1].index('"7109"') + 1, "R6", "rules/telco-demo.yaml")]
    assert "did you mean '7102'?" in unknown[0]["hint"]
    assert report["errors"] == 1
    assert [p["code"] for p in report["problems"] if p["severity"] == "warning"] == ["version-not-recorded"]
    assert (project / "rules" / "telco-demo.yaml").read_text() == before
    assert client.post("/admin/rules/lint", json={"text": 5}, headers=AUTH).status_code == 400
    broken = client.post("/admin/rules/lint", json={"text": "id: [unclosed"}, headers=AUTH).get_json()
    assert broken["errors"] == 1 and broken["problems"][0]["code"] == "yaml-syntax"


def test_save_keeps_the_old_version_pins_the_served_one_and_activates_nothing(client, project):
    working = project / "rules" / "telco-demo.yaml"
    original = working.read_text()
    changed_110 = version_110(original)
    saved = save(client, changed_110)
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["done"] == [
        "kept rules/telco-demo.yaml as rules/versions/telco-demo@1.0.0.yaml",
        "kept its cases as rules/versions/telco-demo@1.0.0.cases.yaml",
        "pinned telco-demo 1.0.0 (in service) so that saving changes nothing served",
        "saved rules/telco-demo.yaml (telco-demo 1.1.0); nothing was activated"]
    assert working.read_text() == changed_110
    assert not list(working.parent.glob(".telco-demo.yaml.*"))              # no temporary file left
    status = client.get("/admin/rules", headers=AUTH).get_json()
    assert (status["version"], status["pinned"]) == ("1.0.0", True)
    history = client.get("/admin/rules/activations", headers=AUTH).get_json()
    assert [(h["action"], h["version"], h["by"][:4]) for h in history] == [("pin-before-save", "1.0.0", "key ")]
    # the cases of the saved version: the old R6 case fails, with the reason
    result = client.post("/admin/rules/cases", json={"version": "1.1.0"}, headers=AUTH).get_json()
    assert (result["passed"], result["failed"]) == (22, 1)
    failed = [r for r in result["results"] if not r["passed"]][0]
    assert failed["name"] == "R6-no-fiber-upsell-outside-store" and failed["actual"] == ["7102"]
    assert any("R6 fiber-upsell (priority 15)" in line for line in failed["why"])
    assert [c["cases"] > 0 for c in result["coverage"]].count(True) == 8
    only = client.post("/admin/rules/cases", json={"version": "1.1.0", "filter": "e1"}, headers=AUTH).get_json()
    assert [r["name"] for r in only["results"]] == ["E1-anonymous-phone-in-app"]      # case-insensitive
    # editing 1.1.0 further is fine (not in service); changing 1.0.0's content in place is not
    again = save(client, changed_110 + "\n")
    assert again.status_code == 200 and again.get_json()["done"] == [
        "saved rules/telco-demo.yaml (telco-demo 1.1.0); nothing was activated"]


def test_save_refuses_what_would_change_the_served_rules_or_another_rule_set(client, project):
    working = project / "rules" / "telco-demo.yaml"
    original = working.read_text()
    same_version = original.replace(R6_OLD, R6_NEW)
    refused = save(client, same_version)
    assert refused.status_code == 409 and refused.get_json()["code"] == "VERSION_RECORDED"
    assert "telco-demo 1.0.0 is already recorded with other content" in refused.get_json()["message"]
    assert refused.get_json()["details"]["nextVersion"] == "1.0.1"
    other = save(client, original.replace("id: telco-demo", "id: other"))
    assert other.status_code == 422 and "must hold `id: telco-demo`" in other.get_json()["message"]
    not_yaml = save(client, "rules: [\n")
    assert not_yaml.status_code == 422 and re.search(r"telco-demo.yaml:\d+:\d+", not_yaml.get_json()["message"])
    assert working.read_text() == original
    assert client.get("/admin/rules/activations", headers=AUTH).get_json() == []


def test_activate_and_roll_back_are_recorded(client, project):
    save(client, version_110(working_text(client)))
    done = client.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.1.0"},
                       headers=AUTH).get_json()
    assert done["status"]["version"] == "1.1.0"
    assert (done["activation"]["fromVersion"], done["activation"]["action"]) == ("1.0.0", "activate")
    back = client.post("/admin/rules/rollback", json={"rulesetId": "telco-demo"}, headers=AUTH).get_json()
    assert back["status"]["version"] == "1.0.0" and back["activation"]["action"] == "rollback"
    history = client.get("/admin/rules/activations?rulesetId=telco-demo", headers=AUTH).get_json()
    assert [(h["action"], h["fromVersion"], h["version"]) for h in history] == [
        ("rollback", "1.1.0", "1.0.0"), ("activate", "1.0.0", "1.1.0"), ("pin-before-save", "1.0.0", "1.0.0")]
    overview = client.get("/admin/rules/overview", headers=AUTH).get_json()
    assert overview["rulesets"][0]["rollbackTo"] is None        # a roll back never goes forward again
    unknown = client.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "9.9.9"},
                          headers=AUTH)
    assert unknown.status_code == 409 and "known: 1.0.0, 1.1.0" in unknown.get_json()["message"]
    assert client.post("/admin/rules/activate", json={"rulesetId": "nope", "version": "1.0.0"},
                       headers=AUTH).status_code == 404


def test_rollback_without_history_is_refused(client):
    refused = client.post("/admin/rules/rollback", json={"rulesetId": "telco-demo"}, headers=AUTH)
    assert refused.status_code == 409 and "nothing to roll back" in refused.get_json()["message"]


def test_impact_on_cases_an_uploaded_file_and_stored_queries(client):
    save(client, version_110(working_text(client)))
    query = {"channel": [{"id": "23"}], "validFor": {"startDateTime": "2026-10-01T00:00:00Z"},
             "shoppingCart": [{"id": "c1", "@type": "ShoppingCart",
                               "cartItem": [{"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
    stored = client.post("/tmf-api/recommendationManagement/v4/queryProductRecommendation", json=query)
    assert stored.status_code == 201, stored.get_json()
    jsonl = ('{"customer": {"segment": "standard"}, "owns": ["7101"], "channel": "22", '
             '"time": "2026-10-01T00:00:00Z"}\n\n# a comment\n{"name": "E1 again", "context": '
             '{"cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z"}}\n')
    report = client.post("/admin/rules/impact", json={"old": "1.0.0", "new": "1.1.0", "contexts": jsonl,
                                                      "contextsName": "recorded.jsonl", "recent": 10},
                         headers=AUTH).get_json()
    assert report["summary"]["contexts"] == 26 and report["summary"]["changed"] == 2
    assert report["sources"] == [{"source": "case", "contexts": 23, "changed": 1},
                                 {"source": "stored", "contexts": 1, "changed": 0},
                                 {"source": "upload", "contexts": 2, "changed": 1}]
    assert report["offerings"] == [{"offering": "7102", "name": "Fiber 1000", "gained": 2, "lost": 0}]
    assert [c["name"] for c in report["contexts"] if c["source"] == "upload"] == ["recorded.jsonl:1", "E1 again"]
    assert report["rules"] == [{"rule": "R6", "change": "changed", "fields": ["when"], "line": 64}]
    bad = client.post("/admin/rules/impact", json={"old": "1.0.0", "new": "1.1.0", "contexts": '{"time": "yesterday"}\n{x'},
                      headers=AUTH)
    assert bad.status_code == 422
    assert [p.split(": ")[0] for p in bad.get_json()["details"]["problems"]] == ["upload.jsonl:1:1", "upload.jsonl:2:2"]
    nothing = client.post("/admin/rules/impact", json={"old": "1.0.0", "new": "1.1.0", "cases": False},
                          headers=AUTH)
    assert nothing.status_code == 422 and nothing.get_json()["code"] == "NO_CONTEXTS"
    assert client.post("/admin/rules/impact", json={"old": "1.0.0", "new": "7.0.0"},
                       headers=AUTH).status_code == 404


def test_explain_gives_offering_details(client):
    body = client.post("/admin/rules/explain?version=1.0.0", json={
        "cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z"}, headers=AUTH).get_json()
    assert body["offerings"]["7301"] == {"name": "Device Insurance", "status": "Active", "categories": ["services"],
                                         "prices": [{"type": "recurring", "value": 8, "unit": "EUR",
                                                     "period": "month"}]}


def test_vocabulary_has_schema_keys_and_catalog_ids(client):
    words = client.get("/admin/rules/vocabulary", headers=AUTH).get_json()
    keys = {k["name"] for k in words["keys"]}
    assert {"id", "version", "rules", "when", "recommend", "offering", "priority", "owns", "cart", "any"} <= keys
    assert {"id": "7401", "name": "Roaming Pack EU", "status": "Retired"} in words["offerings"]
    assert "devices" in words["categories"] and {"id": "22", "name": "web shop"} in words["channels"]


def test_changes_always_need_a_key(project):
    open_client = make_client(project)                        # no key configured: reading is open ...
    assert open_client.get("/admin/rules/overview").status_code == 200
    text = open_client.get("/admin/rules/telco-demo/working-copy").get_json()["text"]
    for method, path, body in [("put", "/admin/rules/telco-demo/working-copy", {"text": version_110(text)}),
                               ("post", "/admin/rules/activate", {"rulesetId": "telco-demo", "version": "1.0.0"}),
                               ("post", "/admin/rules/rollback", {"rulesetId": "telco-demo"})]:
        refused = open_client.open(path, method=method.upper(), json=body)   # ... changing never is
        assert refused.status_code == 403 and refused.get_json()["code"] == "ADMIN_KEY_REQUIRED"
    assert open_client.get("/admin/rules/activations").get_json() == []
    assert (project / "rules" / "telco-demo.yaml").read_text() == text


def _studio_login(client) -> str:
    page = client.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/studio/login", data={"csrf_token": "wrong", "name": "Ana", "key": KEY}).status_code == 403
    done = client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY, "next": "/studio"})
    assert done.status_code == 302 and done.headers["Location"] == "/studio"
    page = client.get("/studio/").get_data(as_text=True)              # a new token after the login
    fresh = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    assert fresh != token
    return fresh


def test_a_studio_session_changes_only_with_its_csrf_token(client):
    assert client.get("/studio").status_code == 302                       # reading needs the login
    assert client.get("/admin/rules/overview").status_code == 401
    token = _studio_login(client)
    assert client.get("/admin/rules/overview").status_code == 200         # the session reads
    body = {"rulesetId": "telco-demo", "version": "1.0.0"}
    refused = client.post("/admin/rules/activate", json=body)
    assert refused.status_code == 401                                     # a cookie alone is not enough
    refused = client.post("/admin/rules/activate", json=body, headers={"X-CSRF-Token": "forged"})
    assert refused.status_code == 401
    form = client.post("/studio/activate", data=body)
    assert form.status_code == 403 and "CSRF token" in form.get_data(as_text=True)
    assert client.get("/admin/rules/activations").get_json() == []
    done = client.post("/admin/rules/activate", json=body, headers={"X-CSRF-Token": token})
    assert done.status_code == 200 and done.get_json()["activation"]["by"].startswith("Ana (key ")
    form = client.post("/studio/activate", data={**body, "csrf_token": token})
    assert form.status_code == 302
    assert client.post("/studio/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/rules/overview").status_code == 401


def test_login_refuses_a_wrong_key_and_a_foreign_next(client):
    page = client.get("/studio/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    wrong = client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": "nope"})
    assert wrong.status_code == 401 and "This key is not valid." in wrong.get_data(as_text=True)
    done = client.post("/studio/login", data={"csrf_token": token, "name": "Ana", "key": KEY,
                                               "next": "https://evil.example/studio"})
    assert done.headers["Location"] == "/studio/"


def test_pages_send_security_headers(client):
    _studio_login(client)
    for path in ("/studio/", "/studio/playground", "/studio/cases", "/studio/impact", "/studio/edit",
                 "/studio/conversion", "/studio/activate?version=1.0.0"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self';")
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in response.get_data(as_text=True)          # no inline script


def test_parameters_outside_the_documented_ones_are_refused(client):
    """Found by the fuzz test: these were accepted (an unknown format as JSON, a text as a flag)."""
    context = {"cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z"}
    wrong_format = client.post("/admin/rules/explain?format=xml", json=context, headers=AUTH)
    assert wrong_format.status_code == 400 and wrong_format.get_json()["code"] == "INVALID_QUERY"
    as_text = client.post("/admin/rules/explain?format=text", json=context, headers=AUTH)
    assert as_text.status_code == 200 and as_text.mimetype == "text/plain"
    flag = client.post("/admin/rules/impact", json={"old": "1.0.0", "new": "1.0.0", "cases": "no"}, headers=AUTH)
    assert flag.status_code == 400 and flag.get_json()["message"] == "`cases` must be true or false"


def test_every_worker_signs_sessions_with_the_same_secret(project):
    """Workers build their own app (no preload): a login on one must hold on the others."""
    first = make_client(project, admin_keys=[KEY])
    token = _studio_login(first)
    second = make_client(project, admin_keys=[KEY])
    second.set_cookie("reco_studio", first.get_cookie("reco_studio").value)
    assert second.get("/admin/rules/overview").status_code == 200
    done = second.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": "1.0.0"},
                       headers={"X-CSRF-Token": token})
    assert done.status_code == 200
    secret = project / "data" / "studio-session-secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text()) == 64


def test_lock_records_a_saved_version(client, project):
    save(client, version_110(working_text(client)))
    assert client.post("/admin/rules/lock", json={"rulesetId": "telco-demo"}).status_code == 401
    done = client.post("/admin/rules/lock", json={"rulesetId": "telco-demo"}, headers=AUTH).get_json()
    assert [(c["version"], c["action"]) for c in done["changes"]] == [("1.1.0", "recorded"), ("1.0.0", "unchanged")]
    assert done["refused"] == [] and done["lockFile"] == "rules/telco-demo.lock.json"
    versions = client.get("/admin/rules/overview", headers=AUTH).get_json()["rulesets"][0]["versions"]
    assert [(v["version"], v["lock"]) for v in versions] == [("1.0.0", "recorded"), ("1.1.0", "recorded")]
    lint = client.post("/admin/rules/lint", json={"text": working_text(client)}, headers=AUTH).get_json()
    assert lint["problems"] == []
