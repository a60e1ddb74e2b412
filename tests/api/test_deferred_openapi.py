"""The OpenAPI document is built on first need (app/api/deferred_doc.py), not
by create_app: a gunicorn worker's boot and a `flask` command that never
reads it skip the work. Whoever reads it (/openapi.json, /docs,
`flask openapi print`) gets, byte for byte, the document flask-smorest's
eager build gives, also when two first requests for it come at once."""
from __future__ import annotations

import threading

import flask_smorest
import pytest

from app import create_app
from app.api.deferred_doc import DeferredDocApi
from helpers import DEMO_CATALOG, DEMO_RULES

#: blueprints create_app registers through the Api (metrics, the Studio and
#: the Swagger UI assets are plain Flask blueprints, not documented)
DOCUMENTED_BLUEPRINTS = 9


@pytest.fixture
def documented(monkeypatch):
    """The blueprint names flask-smorest documents, in order, as it does them."""
    names = []
    original = flask_smorest.Blueprint.register_views_in_doc

    def counting(self, api, app, spec, *, name, parameters):
        names.append(name)
        return original(self, api, app, spec, name=name, parameters=parameters)

    monkeypatch.setattr(flask_smorest.Blueprint, "register_views_in_doc", counting)
    return names


def build(tmp_path, name: str):
    return create_app(data_dir=tmp_path / name, rules_dir=DEMO_RULES, catalog_dir=DEMO_CATALOG,
                      background_workers=False)


def the_api(app) -> DeferredDocApi:
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"]


def eager_document(tmp_path, monkeypatch) -> bytes:
    """/openapi.json of an app whose blueprints flask-smorest documents as it
    registers them (its own register_blueprint, as before the deferral)."""
    with monkeypatch.context() as patch:
        patch.setattr(DeferredDocApi, "register_blueprint", flask_smorest.Api.register_blueprint)
        app = build(tmp_path, "eager")
        assert the_api(app).documented
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.data


def test_create_app_builds_no_document(tmp_path, documented):
    app = build(tmp_path, "data")
    assert documented == [] and not the_api(app).documented
    client = app.test_client()
    assert client.get("/health").status_code == 200               # serving needs no document
    assert documented == []
    first = client.get("/openapi.json")
    assert first.status_code == 200 and len(documented) == DOCUMENTED_BLUEPRINTS
    assert client.get("/openapi.json").data == first.data
    assert len(documented) == DOCUMENTED_BLUEPRINTS                # once per process


def test_served_document_is_the_eager_one_byte_for_byte(tmp_path, monkeypatch, documented):
    eager = eager_document(tmp_path, monkeypatch)
    eager_order = list(documented)
    documented.clear()
    app = build(tmp_path, "deferred")
    served = app.test_client().get("/openapi.json")
    assert served.status_code == 200
    assert served.data == eager
    assert documented == eager_order
    assert set(served.get_json()["paths"]) and served.get_json()["tags"]


def test_docs_page_and_cli_read_the_whole_document(tmp_path, monkeypatch):
    eager = eager_document(tmp_path, monkeypatch)
    app = build(tmp_path, "docs-first")
    page = app.test_client().get("/docs")                          # before any /openapi.json
    assert page.status_code == 200 and b"TMF Recommendation Engine" in page.data
    assert app.test_client().get("/openapi.json").data == eager
    printed = build(tmp_path, "cli").test_cli_runner().invoke(args=["openapi", "print"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.rstrip("\n").encode() == eager


def test_two_first_requests_at_once_get_the_whole_document(tmp_path, monkeypatch, documented):
    eager = eager_document(tmp_path, monkeypatch)
    documented.clear()
    app = build(tmp_path, "threads")
    readers = 4
    start = threading.Barrier(readers)
    answers = [None] * readers

    def read(index):
        client = app.test_client()
        start.wait()
        answers[index] = client.get("/openapi.json").data

    threads = [threading.Thread(target=read, args=(index,)) for index in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [eager] * readers
    assert len(documented) == DOCUMENTED_BLUEPRINTS                # documented once, not per reader
