"""Bad input to /admin/rules, endpoint by endpoint: the TMF Error (status,
code, message) each kind of wrong body or query gets. These answers are
what the Rule Studio and operators' scripts branch on, so they are pinned
exactly; the arguments are parsed by marshmallow schemas
(app/api/rules_admin_schemas.py) through flask-smorest, and these tests held
before that and after. Also: who is asked first (a change without a key is
refused before its body is read), unknown attributes are ignored, other
content types and non-object bodies are refused."""
from __future__ import annotations

import shutil

import pytest

from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, refused

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
RULES = "/admin/rules"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin-arguments")
    shutil.copytree(DEMO_RULES, root / "rules")
    shutil.copytree(DEMO_CATALOG, root / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", root / "app" / "rules" / "schemas")
    return root


def _client(project, **settings):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, **settings)
    return app.test_client()


@pytest.fixture(scope="module")
def client(project):
    return _client(project, admin_keys=[KEY])


def must(name: str, what: str = "text") -> str:
    return f"`{name}` must be {what}"


# (method, path, body, message): one wrong value of each kind per attribute
BAD_BODIES = [
    ("post", "/lint", {}, must("text")),
    ("post", "/lint", {"text": 5}, must("text")),
    ("post", "/lint", {"text": None}, must("text")),
    ("post", "/lint", {"text": "id: x", "rulesetId": 5}, must("rulesetId")),
    ("post", "/cases", {"rulesetId": ["telco-demo"]}, must("rulesetId")),
    ("post", "/cases", {"version": 1}, must("version")),
    ("post", "/cases", {"filter": {"name": "x"}}, must("filter")),
    ("post", "/telco-demo/cases", {"context": {}, "expect": []}, must("name")),
    ("post", "/telco-demo/cases", {"name": "n", "context": [], "expect": []}, must("context", "an object")),
    ("post", "/telco-demo/cases", {"name": "n", "context": {}, "expect": "7102"}, must("expect", "a list")),
    ("post", "/telco-demo/cases", {"name": "n", "context": {}, "expect": ["7102", 7]},
     "`expect` must be a list of offering ids (text)"),
    ("post", "/telco-demo/cases", {"name": "n", "context": {}, "expect": [], "description": 5}, must("description")),
    ("post", "/impact", {"new": "1.0.0"}, must("old")),
    ("post", "/impact", {"old": "1.0.0"}, must("new")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "rulesetId": 1}, must("rulesetId")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recent": "5"}, must("recent", "a whole number")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recent": 2.5}, must("recent", "a whole number")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recent": True}, must("recent", "a whole number")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recent": -1}, "`recent` must be 0 to 1000"),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recent": 1001}, "`recent` must be 0 to 1000"),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "cases": "no"}, must("cases", "true or false")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "cases": 0}, must("cases", "true or false")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "contexts": 5}, must("contexts")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "contexts": "{}", "contextsName": 5},
     must("contextsName")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recorded": -1},
     "`recorded` must be a whole number 0 to 100000"),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recorded": "ten"},
     "`recorded` must be a whole number 0 to 100000"),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recorded": 5, "recordedChannel": 21},
     must("recordedChannel")),
    ("post", "/impact", {"old": "1.0.0", "new": "1.0.0", "recorded": 5, "recordedSince": 2026},
     must("recordedSince")),
    ("put", "/telco-demo/working-copy", {}, must("text")),
    ("put", "/telco-demo/working-copy", {"text": ["a"]}, must("text")),
    ("post", "/activate", {}, must("rulesetId")),
    ("post", "/activate", {"rulesetId": "telco-demo", "version": 1}, must("version")),
    ("post", "/approve", {"version": "1.0.0"}, must("rulesetId")),
    ("post", "/approve", {"rulesetId": "telco-demo"}, must("version")),
    ("post", "/approve", {"rulesetId": "telco-demo", "version": "1.0.0", "note": 5}, must("note")),
    ("post", "/rollback", {"rulesetId": None}, must("rulesetId")),
    ("post", "/lock", {"rulesetId": 5}, must("rulesetId")),
]


@pytest.mark.parametrize("method, path, body, message", BAD_BODIES,
                         ids=[f"{m} {p} {sorted(b)}" for m, p, b, _ in BAD_BODIES])
def test_a_wrong_attribute_gets_400_invalid_body_naming_it(client, project, method, path, body, message):
    before = sorted(p.name for p in (project / "rules").rglob("*"))
    response = getattr(client, method)(RULES + path, json=body, headers=AUTH)
    refused(response, 400, "INVALID_BODY", message)
    assert sorted(p.name for p in (project / "rules").rglob("*")) == before


BODY_PATHS = [("post", "/explain"), ("post", "/lint"), ("post", "/cases"), ("post", "/telco-demo/cases"),
              ("post", "/impact"), ("put", "/telco-demo/working-copy"), ("post", "/activate"),
              ("post", "/approve"), ("post", "/rollback"), ("post", "/lock")]


@pytest.mark.parametrize("method, path", BODY_PATHS)
def test_bodies_that_are_no_json_object_are_refused_as_before(client, method, path):
    call = getattr(client, method)
    refused(call(RULES + path, data="text=1", headers={**AUTH, "Content-Type": "text/plain"}),
            415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be one of application/json (got text/plain)")
    refused(call(RULES + path, data="[1]", headers={**AUTH, "Content-Type": "application/json"}),
            400, "INVALID_BODY", "The JSON body must be an object")
    refused(call(RULES + path, data="", headers={**AUTH, "Content-Type": "application/json"}),
            400, "EMPTY_BODY")
    refused(call(RULES + path, data='{"a": 1, "a": 2}', headers={**AUTH, "Content-Type": "application/json"}),
            400, "INVALID_JSON", "The body is not valid JSON: duplicate key 'a'")
    refused(call(RULES + path, data='{"a": NaN}', headers={**AUTH, "Content-Type": "application/json"}),
            400, "INVALID_JSON")


def test_explain_format_outside_the_list_is_an_invalid_query(client):
    context = {"cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z"}
    for fmt in ("xml", ""):
        refused(client.post(f"{RULES}/explain?format={fmt}", json=context, headers=AUTH),
                400, "INVALID_QUERY", "`format` is one of json, text")
    answer = client.post(f"{RULES}/explain?format=json&unknown=1", json=context, headers=AUTH)
    assert answer.status_code == 200 and answer.get_json()["context"]["channel"] == "21"


def test_unknown_attributes_are_ignored(client):
    report = client.post(f"{RULES}/lint", json={"text": "id: [unclosed", "editor": {"theme": "dark"}},
                         headers=AUTH)
    assert report.status_code == 200 and report.get_json()["problems"][0]["code"] == "yaml-syntax"
    impact = client.post(f"{RULES}/impact", json={"old": "1.0.0", "new": "1.0.0", "since": "x"}, headers=AUTH)
    assert impact.status_code == 200 and impact.get_json()["summary"]["changed"] == 0


def test_optional_attributes_may_be_null(client):
    assert client.post(f"{RULES}/lint", json={"text": "id: x", "rulesetId": None}, headers=AUTH).status_code == 200
    cases = client.post(f"{RULES}/cases", json={"rulesetId": None, "version": None, "filter": None}, headers=AUTH)
    assert cases.status_code == 200 and cases.get_json()["failed"] == 0
    impact = client.post(f"{RULES}/impact", json={"old": "1.0.0", "new": "1.0.0", "recent": None, "cases": None,
                                                  "contexts": None, "recorded": None}, headers=AUTH)
    assert impact.status_code == 200


def test_a_change_without_a_key_is_refused_before_its_body_is_read(project, client):
    """The key comes first: 401 (keys set, none sent) and 403 (no key configured, always needed
    for changes) whatever the body holds, so nothing about the body is revealed without one."""
    for method, path in BODY_PATHS:
        refused(getattr(client, method)(RULES + path, json={"text": 5, "rulesetId": 5}), 401, "UNAUTHORIZED")
    keyless = _client(project)
    for method, path in (("post", "/telco-demo/cases"), ("put", "/telco-demo/working-copy"), ("post", "/activate"),
                         ("post", "/approve"), ("post", "/rollback"), ("post", "/lock")):
        refused(getattr(keyless, method)(RULES + path, json={"rulesetId": 5, "text": 5}),
                403, "ADMIN_KEY_REQUIRED")
        refused(getattr(keyless, method)(RULES + path, data="x", headers={"Content-Type": "text/plain"}),
                403, "ADMIN_KEY_REQUIRED")


def test_a_body_over_the_limit_is_413(project):
    small = _client(project, admin_keys=[KEY], max_body_bytes=2048)
    refused(small.post(f"{RULES}/activate", json={"rulesetId": "x" * 4096}, headers=AUTH),
            413, "BODY_TOO_LARGE")


def test_the_working_copy_save_keeps_if_match(client):
    text = client.get(f"{RULES}/telco-demo/working-copy", headers=AUTH).get_json()["text"]
    refused(client.put(f"{RULES}/telco-demo/working-copy", json={"text": text}, headers=AUTH),
            428, "PRECONDITION_REQUIRED")
    refused(client.put(f"{RULES}/telco-demo/working-copy", json={"text": text}, headers={**AUTH, "If-Match": "*"}),
            428, "PRECONDITION_REQUIRED")
    stale = refused(client.put(f"{RULES}/telco-demo/working-copy", json={"text": text + "\n"},
                               headers={**AUTH, "If-Match": '"0000"'}), 409, "EDIT_CONFLICT")
    assert stale["details"]["etag"]


def test_unknown_rule_sets_are_still_404(client):
    refused(client.post(f"{RULES}/activate", json={"rulesetId": "nope"}, headers=AUTH), 404, "RULESET_NOT_FOUND",
            "No rule set 'nope' in the rules folder")
    refused(client.post(f"{RULES}/lint", json={"text": "id: x", "rulesetId": "nope"}, headers=AUTH),
            404, "RULESET_NOT_FOUND")
    refused(client.post(f"{RULES}/impact", json={"old": "9.9.9", "new": "1.0.0"}, headers=AUTH),
            404, "RULESET_VERSION_NOT_FOUND")
