"""A client's error body carries no internal detail (app/errors.py): a 503
RULESET_UNAVAILABLE named the server's absolute rules path to any TMF680
client, a 503 STORE_UNAVAILABLE the database's user, host, port, name and
the driver's message (PostgreSQL) or the data directory's path (TinyDB).
Clients get the named code and plain words; the detail is in the server's
log, on a record with the request's id (X-Request-ID)."""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from helpers import Client, assert_tmf_error, wait_until
from pgcluster import NoPostgres, PgCluster

C = Client.CUSTOMER + "/customer"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
QUERY = {"instantSyncRecommendation": True, "channel": [{"id": "21"}]}


def _customer() -> dict:
    tag = uuid.uuid4().hex[:8]
    return {"name": tag, "engagedParty": {"id": tag, "@referredType": "Individual"}}


def logged_with_request_id(server, request_id: str, text: str) -> bool:
    """A log record of this request (its id) that holds `text`."""
    for line in server.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("request_id") == request_id and text in json.dumps(record):
            return True
    return False


def assert_no_internals(response, *internals: str) -> dict:
    for text in internals:
        assert text not in response.text, (text, response.text)
    assert "Errno" not in response.text and "Traceback" not in response.text
    return response.json()


@pytest.fixture
def broken_rules(tmp_path):
    """A rules folder (absolute path) whose only rule file does not load."""
    folder = tmp_path / "secret-rules-location" / "rules"
    folder.mkdir(parents=True)
    (folder / "recommendations.yaml").write_text("rulesetId: demo\nversion: 1.0.0\nrules: [oops\n")
    return folder


def test_no_rule_set_is_503_without_the_rules_path(make_server, broken_rules, tmp_path):
    server = make_server(rules_dir=broken_rules)
    api = Client(server.url)
    for path, body in ((R, QUERY), ("/admin/rules/explain", {"channel": "21"})):
        response = api.post(path, json=body)
        error = assert_tmf_error(response, 503)
        assert error["code"] == "RULESET_UNAVAILABLE"
        assert_no_internals(response, str(tmp_path), "secret-rules-location", "recommendations.yaml",
                            "invalid YAML")
        request_id = response.headers["X-Request-ID"]
        assert wait_until(lambda: logged_with_request_id(server, request_id, "secret-rules-location"),
                          timeout=10), "the detail is not in the log with the request id"


def test_a_store_that_cannot_write_is_503_without_paths_or_driver_text(make_server, full_disk):
    server = make_server(env=full_disk.env)
    api = Client(server.url)
    full_disk.fill(server, "customer")
    response = api.post(C, json=_customer())
    error = assert_tmf_error(response, 503)
    assert error["code"] == "STORE_UNAVAILABLE"
    assert error["message"] == "Storage unavailable (disk full): nothing was written; retry later"
    assert_no_internals(response, str(server.data_dir), "No space left", "base/16384", "could not extend")
    request_id = response.headers["X-Request-ID"]
    assert wait_until(lambda: logged_with_request_id(server, request_id, "No space left on device"),
                      timeout=10)


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster of the test's own, to stop."""
    try:
        cluster = PgCluster(tmp_path / "own-pg").start()
    except NoPostgres as exc:
        pytest.skip(f"PostgreSQL tests need its binaries: {exc}")
    yield cluster
    cluster.destroy()


@pytest.mark.backends("postgresql", reason="an unreachable database server; TinyDB has none")
def test_an_unreachable_database_is_503_without_its_address(make_server, own_cluster, tmp_path):
    url = own_cluster.new_database()
    server = make_server(data_dir=tmp_path / "d",
                         env={"RECO_STORE_URL": url, "RECO_STORE_TIMEOUT_SECONDS": "2"})
    api = Client(server.url)
    assert api.post(C, json=_customer()).status_code == 201
    own_cluster.stop()
    parts = urlsplit(url)
    # the driver's words ("connection failed: connection to server at ...
    # refused"), not the plain-words kind "no database connection in time",
    # which a loaded machine gives when the pool's wait ends first
    internals = [f":{parts.port}", parts.path.lstrip("/"), "connection failed", "connection to server",
                 "refused", "psycopg", "PostgreSQL at"]
    if parts.username:
        internals.append(parts.username)
    for response in (api.post(C, json=_customer()), api.get(C)):
        error = assert_tmf_error(response, 503)
        assert error["code"] == "STORE_UNAVAILABLE"
        assert_no_internals(response, *internals)
        assert "database" in error["message"]        # the kind, in plain words
        request_id = response.headers["X-Request-ID"]
        assert wait_until(lambda: logged_with_request_id(server, request_id, str(parts.port)),
                          timeout=10)


ADMIN = "health-admin-key"


def test_health_gives_internal_detail_only_to_an_admin(make_server, broken_rules, tmp_path):
    """/health and /health/ready are open (load balancers), but with keys
    configured a caller without an admin key gets the summary: no data
    directory, database address, exception text or rule file path."""
    server = make_server(rules_dir=broken_rules, env={"RECO_ADMIN_KEYS": ADMIN, "RECO_API_KEYS": "api-key"})
    api = Client(server.url)
    internals = [str(tmp_path), "secret-rules-location", "recommendations.yaml", "invalid YAML"]
    if "://" in server.store_url:
        parts = urlsplit(server.store_url)
        internals += [f":{parts.port}", parts.path.lstrip("/"), "postgresql://"]
    for path in ("/health", "/health/ready"):
        anonymous = api.get(path)
        assert anonymous.status_code in (200, 503)
        body = assert_no_internals(anonymous, *internals)
        report = body.get("details", body)
        assert report["rules"]["ok"] is False and report["rules"]["errorCount"] >= 1
        assert report["store"]["ok"] is True and report["store"]["collections"] is not None
        for key in ("url", "path"):
            assert key not in report["store"]
    ready = assert_tmf_error(api.get("/health/ready"), 503)
    assert ready["code"] == "NOT_READY" and ready["message"] == "Not ready: rules unavailable"
    operator = api.get("/health", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert any("secret-rules-location" in error for error in operator["rules"]["errors"])
    assert "url" in operator["store"] or "path" in operator["store"]


@pytest.mark.backends("postgresql", reason="a database without this service's schema; TinyDB has none")
def test_a_database_without_the_schema_is_503_in_plain_words(make_server, pg_cluster, tmp_path):
    """A worker started against a database nobody upgraded: the kind in plain
    words ("database schema not installed"), not the fallback said twice
    ("storage unavailable (storage unavailable)"), and not the operator's
    command (`flask store upgrade`), which goes to the log."""
    name = f"noschema{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(f"CREATE DATABASE {name}")
    server = make_server(data_dir=tmp_path / "d", env={"RECO_STORE_URL": pg_cluster.database_url(name)})
    api = Client(server.url)
    for response in (api.post(C, json=_customer()), api.get(C)):
        error = assert_tmf_error(response, 503)
        assert error["code"] == "STORE_UNAVAILABLE"
        assert_no_internals(response, "flask", "RECO_STORE_URL", "alembic", "revision", name)
        assert error["message"] == ("Storage unavailable (database schema not installed or not "
                                    "upgraded): nothing was written; retry later"), error
