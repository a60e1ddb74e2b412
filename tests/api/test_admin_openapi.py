"""The admin API in the served OpenAPI document (/openapi.json): every
/admin route is there, its request bodies and query parameters are
generated from the marshmallow schemas the requests are parsed with, and
what the document states is what the service refuses: each documented
attribute, sent alone of a wrong JSON type (or each required one left
out), gets the 400 TMF Error naming it, before anything else is looked up."""
from __future__ import annotations

import copy

import pytest

from app import create_app
from experiment_project import make_rules
from helpers import DEMO_CATALOG

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    rules = make_rules(tmp_path_factory.mktemp("admin-openapi"))
    return create_app(data_dir=rules.parent / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                      background_workers=False, admin_keys=[KEY])


@pytest.fixture(scope="module")
def document(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def operations(document: dict):
    for path, item in document["paths"].items():
        if path.startswith("/admin/"):
            for method in METHODS:
                if method in item:
                    yield path, method, item[method]


def body_schema(document: dict, operation: dict) -> dict | None:
    body = operation.get("requestBody")
    return resolve(document, body["content"]["application/json"]["schema"]) if body else None


def test_every_admin_route_is_documented(app, document):
    routes = {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _operation in operations(document)}
    assert routes == documented
    assert len(routes) == 23     # 16 /admin/rules, 7 /admin/experiments


def test_request_bodies_are_generated_from_the_schemas(document):
    paths = document["paths"]
    activate = body_schema(document, paths["/admin/rules/activate"]["post"])
    assert activate["required"] == ["rulesetId"]
    assert activate["properties"]["rulesetId"]["type"] == "string"
    assert activate["properties"]["version"] == {
        "type": "string", "nullable": True, "default": None,
        "description": "null: unpin (the highest valid version serves)"}
    weights = paths["/admin/experiments/{experiment_id}/weights"]["post"]
    assert weights["requestBody"]["required"] is False          # the body may be left out
    weights = body_schema(document, weights)
    assert weights["properties"]["weights"]["additionalProperties"] == {"type": "number", "minimum": 0,
                                                                        "maximum": 100}
    assert weights["properties"]["fileVersion"]["type"] == "integer"
    promote = body_schema(document, paths["/admin/experiments/{experiment_id}/promote"]["post"])
    assert promote["required"] == ["arm"]
    impact = body_schema(document, paths["/admin/rules/impact"]["post"])
    assert sorted(impact["required"]) == ["new", "old"]
    assert (impact["properties"]["recent"]["minimum"], impact["properties"]["recent"]["maximum"]) == (0, 1000)
    assert impact["properties"]["recorded"]["maximum"] == 100_000
    assert impact["properties"]["recordedSince"]["format"] == "date-time"
    assert impact["properties"]["cases"]["type"] == "boolean"
    case = body_schema(document, paths["/admin/rules/{ruleset_id}/cases"]["post"])
    assert case["properties"]["expect"] == {"type": "array", "items": {"type": "string"},
                                            "description": "The offering ids expected, in order"}
    assert case["properties"]["context"]["type"] == "object"
    save = paths["/admin/rules/{ruleset_id}/working-copy"]["put"]
    assert [p["name"] for p in save["parameters"] if p["in"] == "header"] == ["If-Match"]
    assert body_schema(document, save)["required"] == ["text"]


def test_query_parameters_are_generated_from_the_schemas(document):
    explain = document["paths"]["/admin/rules/explain"]["post"]
    params = {p["name"]: p for p in explain["parameters"] if p["in"] == "query"}
    assert sorted(params) == ["format", "rulesetId", "version"]
    assert params["format"]["schema"]["enum"] == ["json", "text"]
    assert sorted(explain["responses"]["200"]["content"]) == ["application/json", "text/plain"]
    report = document["paths"]["/admin/experiments/{experiment_id}/report"]["get"]
    assert {p["name"] for p in report["parameters"] if p["in"] == "query"} == {"format", "rulesetId"}
    history = document["paths"]["/admin/rules/history"]["get"]
    assert [p["name"] for p in history["parameters"] if p["in"] == "query"] == ["rulesetId"]


def test_answers_are_documented_with_their_schemas(document):
    """The change endpoints of experiments answer {experiment, fileVersion, history}: the document
    said an experiment (found while generating it from schemas)."""
    paths = document["paths"]
    start = resolve(document, paths["/admin/experiments/{experiment_id}/start"]["post"]["responses"]["200"]
                    ["content"]["application/json"]["schema"])
    assert sorted(start["properties"]) == ["experiment", "fileVersion", "history"]
    history = paths["/admin/rules/history"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert history["type"] == "array"
    assert "action" in resolve(document, history["items"])["properties"]
    activation = resolve(document, paths["/admin/rules/activate"]["post"]["responses"]["200"]["content"]
                         ["application/json"]["schema"])
    entry = activation["properties"]["activation"]     # null when the version was already pinned
    assert entry["anyOf"][1] == {"type": "object", "nullable": True}
    assert resolve(document, entry["anyOf"][0])["properties"]["by"]["type"] == "string"
    assert activation["additionalProperties"] is True   # answers may carry more than documented


def test_every_error_status_of_the_admin_api_is_documented_as_the_tmf_error(document):
    error = document["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["@type", "code", "message", "reason", "status"]
    for path, method, operation in operations(document):
        errors = {status: answer for status, answer in operation["responses"].items()
                  if status != "default" and int(status) >= 400}
        expected = {"401", "403"} | ({"400", "413", "415"} if "requestBody" in operation else set())
        assert expected <= set(errors), (path, method, sorted(errors))
        for status, answer in errors.items():
            answer = resolve(document, answer)
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                path, method, status)


WRONG = {"string": 12345, "integer": "12", "boolean": "yes", "object": [], "array": "x", None: 12345}
SAMPLE = {"string": "x", "integer": 1, "boolean": True, "object": {}, "array": []}


def _cases(document):
    for path, method, operation in operations(document):
        schema = body_schema(document, operation)
        if not schema:
            continue
        url = path.replace("{ruleset_id}", "telco-demo").replace("{experiment_id}", "canary")
        required = schema.get("required", [])
        for name, prop in schema.get("properties", {}).items():
            yield f"{method} {path} {name}", method, url, schema, name, copy.deepcopy(prop), required


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def _wrong_bodies(document):
    """(id, method, url, body, attribute): each documented attribute of a wrong type, the
    required others present; and each required attribute left out."""
    out = []
    for case_id, method, url, schema, name, prop, required in _cases(document):
        base = {other: SAMPLE[schema["properties"][other].get("type")] for other in required if other != name}
        out.append((case_id + " wrong type", method, url, {**base, name: WRONG[prop.get("type")]}, name))
        if name in required:
            out.append((case_id + " missing", method, url, base, name))
    return out


def test_each_documented_attribute_is_refused_as_documented(client, document):
    """What the document states is what is refused: a wrong type or a missing required attribute
    is a 400 INVALID_BODY naming that attribute, before the rule set, version or experiment is
    looked up (the samples name none that exists) and before anything is written."""
    cases = _wrong_bodies(document)
    assert len(cases) >= 40
    for case_id, method, url, body, name in cases:
        response = getattr(client, method)(url, json=body, headers=AUTH)
        answer = response.get_json()
        assert response.status_code == 400 and answer["code"] == "INVALID_BODY", (case_id, answer)
        assert answer["@type"] == "Error" and answer["status"] == "400"
        named = f"`{name}`" if name != "weights" else "weights must give every arm"
        assert answer["message"].startswith(named), (case_id, answer["message"])
