"""Operations end to end on a real two-worker gunicorn server after a mixed
load: GET /metrics adds up the samples of both workers (and of a killed
one), every log line is a JSON object, the request id a client sends (or
the one made for it) is echoed and logged, and a traceparent reaches the
notifications the request caused."""
from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import PATIENCE, Client, Listener, ServiceProcess, assert_tmf_error, wait_until

C = Client.CUSTOMER + "/customer"
R = Client.RECOMMENDATION + "/queryProductRecommendation"
SCHEMA = "/schemas/ExplainedRecommendationItem.schema.json"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
N_CREATE, N_MISSING, N_BAD, N_INSTANT, N_ASYNC = 12, 5, 4, 6, 3
# The user guide's E1: an anonymous phone buyer in the app gets 3 items.
E1 = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
      "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
      "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [{"id": "1", "quantity": 1,
                                                  "productOffering": {"id": "6547"}}]}]}


def fresh(method: str, url: str, **kwargs) -> requests.Response:
    """A new connection per request, so that both workers get some."""
    kwargs.setdefault("timeout", 30)
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, **kwargs)


def log_lines(service: ServiceProcess) -> list[dict]:
    text = service.log_path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def request_lines(service) -> list[dict]:
    return [line for line in log_lines(service) if line.get("event") == "request"]


def scrape(service) -> dict:
    """{(name, frozenset(labels)): value} of one scrape."""
    response = fresh("GET", service.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict, name: str, **labels) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= found)


def http(samples, api, operation, method, status) -> float:
    return total(samples, "reco_http_requests_total", api=api, operation=operation, method=method,
                 status=str(status))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A two-worker server, a customer listener, and a mixed load whose counts
    the tests know; yields (service, listener, what was sent). Its tests
    only read what the load left (metrics, logs, notifications) and are one
    xdist_group, so a parallel run starts it (and sends the load) once."""
    service = ServiceProcess(tmp_path_factory.mktemp("ops") / "data", workers=2).start()
    listener = Listener()
    sent = {"ids": {}, "polls": 0, "schema": 0}
    try:
        hub = fresh("POST", service.url + Client.CUSTOMER + "/hub", json={"callback": listener.url})
        assert hub.status_code == 201, hub.text
        for n in range(N_CREATE):
            headers = {"X-Request-ID": f"create-{n}"}
            if n == 0:
                headers["traceparent"] = TRACEPARENT
            response = fresh("POST", service.url + C, headers=headers, json={
                "name": f"ops {n}", "engagedParty": {"id": f"p{n}", "@referredType": "Individual"}})
            assert response.status_code == 201, response.text
            sent["ids"][f"create-{n}"] = response.json()["id"]
        for n in range(N_MISSING):
            assert fresh("GET", f"{service.url}{C}/missing-{n}").status_code == 404
        for _ in range(N_BAD):
            assert fresh("POST", service.url + C, data="[1]",
                         headers={"Content-Type": "application/json"}).status_code == 400
        for _ in range(N_INSTANT):
            assert fresh("POST", service.url + R, json=E1).status_code == 200
        stored = []
        for _ in range(N_ASYNC):
            response = fresh("POST", service.url + R, json={**E1, "instantSyncRecommendation": False})
            assert response.status_code == 201, response.text
            stored.append(response.json()["id"])
        deadline = time.time() + PATIENCE
        while stored and time.time() < deadline:
            sent["polls"] += 1
            if fresh("GET", f"{service.url}{R}/{stored[0]}").json()["state"] == "done":
                stored.pop(0)
            else:
                time.sleep(0.1)
        assert not stored, "asynchronous queries not done in 30 s"
        deadline = time.time() + PATIENCE
        while len(listener.of_type("CustomerCreateEvent")) < N_CREATE and time.time() < deadline:
            time.sleep(0.1)
        # Until the request log shows both workers at work (usually at once).
        while len({line["pid"] for line in request_lines(service)}) < 2 and sent["schema"] < 300:
            assert fresh("GET", service.url + SCHEMA).status_code == 200
            sent["schema"] += 1
        yield service, listener, sent
    finally:
        listener.close()
        service.stop()


@pytest.mark.xdist_group("operations-loaded")
def test_metrics_add_up_across_workers(loaded):
    service, listener, sent = loaded
    assert len({line["pid"] for line in request_lines(service)}) == 2

    def settled():
        """A scrape taken once the background work is counted: a
        delivery is counted after its listener answered, a job's gauge after
        its query was stored done (on a loaded machine, read too early)."""
        samples = scrape(service)
        done = (total(samples, "reco_event_deliveries_total", outcome="delivered")
                == len(listener.events) and total(samples, "reco_event_outbox_pending") == 0
                and total(samples, "reco_recommendation_jobs_pending") == 0)
        return samples if done else None
    samples = wait_until(settled, PATIENCE) or scrape(service)
    assert http(samples, "customerManagement", "register_listener", "POST", 201) == 1
    assert http(samples, "customerManagement", "create", "POST", 201) == N_CREATE
    assert http(samples, "customerManagement", "create", "POST", 400) == N_BAD
    assert http(samples, "customerManagement", "retrieve", "GET", 404) == N_MISSING
    assert http(samples, "recommendationManagement", "create", "POST", 200) == N_INSTANT
    assert http(samples, "recommendationManagement", "create", "POST", 201) == N_ASYNC
    assert http(samples, "recommendationManagement", "retrieve", "GET", 200) == sent["polls"]
    assert http(samples, "operations", "item_schema", "GET", 200) == sent["schema"]
    # every request counted is in the latency histogram too
    assert total(samples, "reco_http_request_duration_seconds_count", api="customerManagement") == \
        N_CREATE + N_BAD + N_MISSING + 1

    health = fresh("GET", service.url + "/health").json()
    version = health["rules"]["version"]
    assert total(samples, "reco_recommendations_total", mode="instant", ruleset_version=version,
                 ruleset_id="telco-demo") == N_INSTANT
    assert total(samples, "reco_recommendations_total", mode="async", ruleset_version=version) == N_ASYNC
    assert total(samples, "reco_recommendation_items_count") == N_INSTANT + N_ASYNC
    assert total(samples, "reco_recommendation_items_sum") == 3 * (N_INSTANT + N_ASYNC)
    assert total(samples, "reco_recommendation_duration_seconds_count", mode="instant") == N_INSTANT
    fired = {dict(labels)["rule_id"]: value for (name, labels), value in samples.items()
             if name == "reco_rule_fired_total"}
    assert fired and all(value % (N_INSTANT + N_ASYNC) == 0 for value in fired.values()), fired
    assert total(samples, "reco_ruleset_info", ruleset_id="telco-demo", version=version,
                 hash=health["rules"]["hash"]) == 1
    assert total(samples, "reco_ruleset_reloads_total") >= 2          # one per worker at least
    assert total(samples, "reco_ruleset_reload_failures_total") == 0

    assert total(samples, "reco_event_deliveries_total", outcome="delivered") == len(listener.events)
    assert len(listener.of_type("CustomerCreateEvent")) == N_CREATE
    assert total(samples, "reco_event_outbox_pending") == 0
    assert total(samples, "reco_event_outbox_oldest_pending_age_seconds") == 0
    assert total(samples, "reco_recommendation_jobs_pending") == 0
    assert total(samples, "reco_store_up") == 1
    assert total(samples, "reco_store_documents", collection="customer") == N_CREATE
    assert total(samples, "reco_store_operation_duration_seconds_count", operation="insert",
                 collection="customer") == N_CREATE
    assert total(samples, "reco_store_errors_total") == 0

    # Whichever worker answers the scrape, the counts are the same; and a
    # killed worker's counts stay in the sums after gunicorn replaces it.
    for _ in range(3):
        again = scrape(service)
        assert http(again, "customerManagement", "create", "POST", 201) == N_CREATE
    victim = next(line["pid"] for line in request_lines(service))
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + PATIENCE
    while time.time() < deadline:
        booted = [line for line in log_lines(service) if line["event"].startswith("Booting worker")]
        if len(booted) >= 3:
            break
        time.sleep(0.2)
    after = scrape(service)
    assert http(after, "customerManagement", "create", "POST", 201) == N_CREATE
    assert total(after, "reco_recommendations_total", mode="instant") == N_INSTANT


@pytest.mark.xdist_group("operations-loaded")
def test_backlogs_are_read_at_scrape_time(loaded):
    """A listener that refuses: the pending notification, its age and the
    open circuit show up in the next scrape, from whichever worker."""
    service, _listener, _sent = loaded
    refusing = Listener(status=503)
    try:
        hub = fresh("POST", service.url + Client.INVENTORY + "/hub", json={"callback": refusing.url}).json()
        assert fresh("POST", service.url + Client.INVENTORY + "/product",
                     json={"status": "active", "productOffering": {"id": "7001"}}).status_code == 201
        deadline = time.time() + PATIENCE
        while time.time() < deadline:
            samples = scrape(service)
            if total(samples, "reco_event_deliveries_total", outcome="rejected") >= 1 \
                    and total(samples, "reco_event_circuits_open") == 1:
                break
            time.sleep(0.2)
        assert total(samples, "reco_event_outbox_pending") == 1
        assert total(samples, "reco_event_circuits_open") == 1
        assert total(samples, "reco_event_outbox_oldest_pending_age_seconds") > 0
        fresh("DELETE", f"{service.url}{Client.INVENTORY}/hub/{hub['id']}")
    finally:
        refusing.close()


@pytest.mark.xdist_group("operations-loaded")
def test_logs_are_json_and_carry_the_echoed_request_id(loaded):
    service, listener, sent = loaded
    lines = log_lines(service)                   # raises if any line is not JSON
    assert all(isinstance(line, dict) and {"time", "level", "event"} <= set(line) for line in lines)
    assert any(line["event"].startswith("Booting worker") for line in lines)   # gunicorn's own too

    by_id = {line["request_id"]: line for line in request_lines(service)}
    line = by_id["create-3"]
    assert (line["method"], line["path"], line["status"], line["level"]) == ("POST", C, 201, "info")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert by_id["create-0"]["trace_id"] == TRACEPARENT.split("-")[1]

    # echoed on success and on error answers; a bad id is replaced, not logged
    response = fresh("GET", f"{service.url}{C}/{sent['ids']['create-1']}", headers={"X-Request-ID": "get-1"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "get-1"
    response = fresh("GET", f"{service.url}{C}/nobody", headers={"X-Request-ID": "missing-1"})
    assert_tmf_error(response, 404)
    assert response.headers["X-Request-ID"] == "missing-1"
    forged = 'x" level=error injected'  # a space and a quote: refused
    response = fresh("GET", service.url + SCHEMA, headers={"X-Request-ID": forged})
    made = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    response = fresh("POST", service.url + R, json=E1)
    made_for_reco = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_for_reco) and made_for_reco != made
    too_long = fresh("GET", service.url + SCHEMA, headers={"X-Request-ID": "a" * 129})
    assert len(too_long.headers["X-Request-ID"]) == 32

    time.sleep(0.2)
    by_id = {line["request_id"]: line for line in request_lines(service)}
    assert by_id["get-1"]["status"] == 200
    assert by_id["missing-1"]["status"] == 404
    assert by_id[made]["refused_request_id"] is True
    assert forged not in json.dumps(log_lines(service))
    version = fresh("GET", service.url + "/health").json()["rules"]["version"]
    assert by_id[made_for_reco]["ruleset_version"] == version
    assert by_id[made_for_reco]["ruleset_id"] == "telco-demo"


@pytest.mark.xdist_group("operations-loaded")
def test_traceparent_reaches_the_notifications(loaded):
    """Without OpenTelemetry the service passes the trace context on as it
    came (W3C Trace Context 3.2): the listener sees the same traceparent."""
    _service, listener, sent = loaded
    customer_id = sent["ids"]["create-0"]
    for event, headers in zip(listener.events, listener.headers):
        if event["event"]["customer"]["id"] == customer_id:
            assert headers.get("traceparent") == TRACEPARENT
        else:
            assert "traceparent" not in {key.lower() for key in headers}
    assert any(event["event"]["customer"]["id"] == customer_id for event in listener.events)


@pytest.mark.xdist_group("operations-loaded")
def test_a_request_id_is_made_when_none_is_sent(loaded):
    service, _listener, _sent = loaded
    ids = {fresh("GET", service.url + SCHEMA).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert uuid.UUID(ids.pop())


@pytest.mark.backends("tinydb", reason="gunicorn's control socket does not depend on the store")
def test_masters_share_no_control_socket(make_server, tmp_path):
    """gunicorn (25.1+) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or
    $HOME/.gunicorn/gunicorn.ctl, one path for every master on the host: a
    master that stops removes the socket of another. The service does not use
    it, so gunicorn.conf.py turns it off."""
    home = tmp_path / "home"
    home.mkdir()
    service = make_server(workers=1, env={"HOME": str(home),
                                          "XDG_RUNTIME_DIR": str(tmp_path / "absent")})
    try:
        assert not (home / ".gunicorn").exists()
        assert "control socket" not in service.log_path.read_text().lower()
    finally:
        service.stop()
    assert "control socket" not in service.log_path.read_text().lower()


def test_recorded_events_not_yet_sequenced_are_a_gauge(make_server, listener):
    """With no dispatcher running (RECO_BACKGROUND_WORKERS=false), the changes'
    event records stay `recorded`: /metrics shows them, as /health does, while
    the delivery outbox is still empty."""
    service = make_server(workers=1, env={"RECO_BACKGROUND_WORKERS": "false"})
    assert fresh("POST", service.url + Client.CUSTOMER + "/hub",
                 json={"callback": listener.url}).status_code == 201
    for n in range(3):
        assert fresh("POST", service.url + C, json={
            "name": f"backlog {n}", "engagedParty": {"id": str(n), "@referredType": "Individual"},
        }).status_code == 201
    samples = scrape(service)
    recorded = fresh("GET", service.url + "/health").json()["events"]["recorded"]
    assert recorded >= 3
    assert total(samples, "reco_event_recorded") == recorded
    assert total(samples, "reco_event_outbox_pending") == 0
