"""Operations in one process (the Flask test client): /metrics protection and
formats, the log formats, request ids on refused and failed requests,
W3C traceparent parsing and OpenTelemetry spans (in-memory exporter)."""
from __future__ import annotations

import json
import re
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import create_app
from app.observability.tracing import parse_traceparent, provider_from_env
from helpers import Client, Listener

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def make_app(tmp_path, **settings):
    settings.setdefault("background_workers", False)
    return create_app(data_dir=tmp_path / "data", **settings)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_metrics_are_protected_like_admin_with_a_scrape_key(tmp_path):
    client = make_app(tmp_path, api_keys=["api-key"], admin_keys=["admin-key"],
                      metrics_keys=["scrape-key"]).test_client()
    refused = client.get("/metrics", headers={"X-Request-ID": "scrape-1"})
    assert refused.status_code == 401 and refused.json["@type"] == "Error"
    assert refused.headers["X-Request-ID"] == "scrape-1"
    assert client.get("/metrics", headers={"X-API-Key": "api-key"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-key"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer admin-key"}).status_code == 200
    # the scrape key opens /metrics only
    assert client.get("/admin/rules", headers={"Authorization": "Bearer scrape-key"}).status_code == 401


def test_metrics_are_open_without_keys_and_speak_openmetrics(tmp_path):
    client = make_app(tmp_path).test_client()
    text = client.get("/metrics")
    assert text.status_code == 200 and text.content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE reco_http_requests_total counter" in text.text
    assert "reco_ruleset_info{" in text.text
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.content_type.startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_json_logs_of_a_failing_request_keep_its_id(tmp_path, capsys):
    app = make_app(tmp_path, log_format="json")

    def boom():
        raise RuntimeError("the disk is on fire")
    app.add_url_rule("/boom", "boom", boom)
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500 and response.json["@type"] == "Error"
    assert "fire" not in response.text
    assert response.headers["X-Request-ID"] == "req-500"
    lines = json_lines(capsys.readouterr().err)
    failure = next(line for line in lines if line["event"] == "unhandled error")
    assert failure["request_id"] == "req-500" and failure["level"] == "error"
    assert "RuntimeError: the disk is on fire" in failure["exception"]
    request = next(line for line in lines if line["event"] == "request")
    assert (request["request_id"], request["status"], request["level"]) == ("req-500", 500, "error")
    assert list(request)[:4] == ["time", "level", "event", "request_id"]


def test_console_logs_for_a_developer(tmp_path, capsys):
    client = make_app(tmp_path, log_format="console").test_client()
    client.get("/health", headers={"X-Request-ID": "dev-1"})
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "dev-1" in line)
    assert "request" in line and "status=200" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_an_unknown_log_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="RECO_LOG_FORMAT='xml': Input should be 'json' or 'console'"):
        make_app(tmp_path, log_format="xml")


@pytest.mark.parametrize("header,expected", [
    (TRACEPARENT, (TRACE_ID, PARENT_ID, "01")),
    ("cc-" + TRACEPARENT[3:] + "-future", (TRACE_ID, PARENT_ID, "01")),    # later versions: the prefix
    ("00-" + TRACEPARENT[3:] + "-extra", None),                             # version 00 has 4 fields
    ("ff-" + TRACEPARENT[3:], None),
    (f"00-{'0' * 32}-{PARENT_ID}-01", None),
    (f"00-{TRACE_ID}-{'0' * 16}-01", None),
    (TRACEPARENT.upper(), None),
    ("00-abc-def-01", None),
    ("", None),
    (None, None),
])
def test_traceparent_parsing_follows_w3c(header, expected):
    parsed = parse_traceparent(header)
    assert (parsed and (parsed.trace_id, parsed.parent_id, parsed.flags)) == (expected or None)


def test_tracing_is_off_unless_otel_variables_ask(monkeypatch):
    assert provider_from_env({}) is None
    assert provider_from_env({"OTEL_SERVICE_NAME": "reco"}) is None
    assert provider_from_env({"OTEL_TRACES_EXPORTER": "none",
                              "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is None
    assert provider_from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) is None
    provider = provider_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "tmf-recommender"
    provider.shutdown()


def test_request_spans_continue_the_incoming_trace_into_notifications(tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = make_app(tmp_path, tracer_provider=provider, background_workers=True)
    client = app.test_client()
    listener = Listener()
    try:
        assert client.post(Client.CUSTOMER + "/hub", json={"callback": listener.url}).status_code == 201
        response = client.post(Client.CUSTOMER + "/customer", headers={"traceparent": TRACEPARENT}, json={
            "name": "traced", "engagedParty": {"id": "p1", "@referredType": "Individual"}})
        assert response.status_code == 201
        missing = client.get(Client.CUSTOMER + "/customer/nobody")
        assert missing.status_code == 404
        assert listener.of_type("CustomerCreateEvent")
        deadline = time.time() + 10
        while not listener.headers and time.time() < deadline:
            time.sleep(0.05)
    finally:
        app.extensions["reco"].events.stop()
        listener.close()
    spans = exporter.get_finished_spans()
    create = next(s for s in spans if s.name == "POST /tmf-api/customerManagement/v4/customer")
    assert create.kind == SpanKind.SERVER
    assert f"{create.context.trace_id:032x}" == TRACE_ID
    assert f"{create.parent.span_id:016x}" == PARENT_ID and create.parent.is_remote
    assert create.attributes["http.response.status_code"] == 201
    assert create.attributes["http.route"] == "/tmf-api/customerManagement/v4/customer"
    get = next(s for s in spans if s.name.startswith("GET /tmf-api/customerManagement/v4/customer/"))
    assert get.attributes["http.response.status_code"] == 404
    assert get.parent is None and f"{get.context.trace_id:032x}" != TRACE_ID   # a trace of its own
    # the notification carries the request span's context, not the caller's parent
    sent = listener.headers[0]["traceparent"]
    assert re.fullmatch(rf"00-{TRACE_ID}-{create.context.span_id:016x}-01", sent), sent


def scrape(client) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def test_store_failures_and_rule_file_problems_show_in_metrics(tmp_path):
    import shutil

    from helpers import DEMO_RULES

    rules_dir = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules_dir)
    app = make_app(tmp_path, rules_dir=rules_dir)
    client = app.test_client()
    before = scrape(client)
    assert before[("reco_store_up", frozenset())] == 1
    assert before[("reco_ruleset_problems", frozenset())] == 0

    (tmp_path / "data" / "customer.json").write_text('{"_default": {"1": {"id": "x", "na')
    response = client.get(Client.CUSTOMER + "/customer")
    assert response.status_code == 500 and response.json["@type"] == "Error"
    (rules_dir / "broken.yaml").write_text("id: broken\nversion: 1.0.0\nrules: [\n")
    after = scrape(client)
    errors = {dict(labels)["operation"]: value for (name, labels), value in after.items()
              if name == "reco_store_errors_total" and ("collection", "customer") in labels
              and ("error", "CorruptCollection") in labels}
    assert sum(errors.values()) >= 1, after
    assert after[("reco_store_up", frozenset())] == 0
    assert after[("reco_ruleset_problems", frozenset())] >= 1          # the broken file...
    info = [labels for (name, labels), value in after.items() if name == "reco_ruleset_info" and value == 1]
    assert info and ("ruleset_id", "telco-demo") in info[0]              # ...and the version still serves
    assert after[("reco_ruleset_reloads_total", frozenset())] > before[("reco_ruleset_reloads_total", frozenset())]


def test_a_line_logged_after_a_request_does_not_carry_its_id_or_version(tmp_path, capsys):
    """The request's thread lives on (a gthread pool thread, here the test
    client's caller): what it logs next, outside any request, is not the
    finished request's (its id, the rule set version it answered with)."""
    from app.observability.logs import get_logger

    client = make_app(tmp_path, log_format="json").test_client()
    answer = client.post(Client.RECOMMENDATION + "/queryProductRecommendation",
                         headers={"X-Request-ID": "req-done"},
                         json={"instantSyncRecommendation": True, "channel": [{"id": "21"}],
                               "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                                   {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]})
    assert answer.status_code == 200 and answer.json["recommendationItem"]
    get_logger("test.after").info("between requests")
    lines = json_lines(capsys.readouterr().err)
    request = next(line for line in lines if line["event"] == "request")
    assert request["request_id"] == "req-done" and request["ruleset_version"]
    after = next(line for line in lines if line["event"] == "between requests")
    assert "request_id" not in after and "ruleset_version" not in after, after


def test_a_poller_tick_does_not_log_what_the_previous_tick_bound(capsys):
    """A background thread (event delivery, recommendation jobs) runs many
    ticks: a job's rule set version, bound for its lines, must not reach the
    lines of the next tick."""
    import threading

    from app.background import Poller
    from app.observability.logs import bind_log_context, configure_logging, get_logger

    configure_logging("json", "INFO")
    log = get_logger("test.poller")
    ticks, done = [], threading.Event()

    def tick():
        ticks.append(len(ticks))
        log.info("tick", n=ticks[-1])
        bind_log_context(ruleset_version=f"1.{ticks[-1]}.0")
        log.info("job done")
        if len(ticks) == 2:
            done.set()
    poller = Poller("test-poller", tick, interval=0.01)
    poller.ensure_started()
    try:
        assert done.wait(10)
    finally:
        poller.stop()
    lines = [line for line in json_lines(capsys.readouterr().err) if line.get("logger") == "test.poller"]
    assert [(line["event"], line.get("ruleset_version")) for line in lines][:4] == [
        ("tick", None), ("job done", "1.0.0"), ("tick", None), ("job done", "1.1.0")]


def test_a_failed_poller_tick_is_logged_with_what_the_tick_bound(capsys):
    """The line that says a background tick failed carries what that tick had
    bound (a job's rule set version): the tick's context, not the thread's."""
    import threading

    from app.background import Poller
    from app.observability.logs import bind_log_context, configure_logging

    configure_logging("json", "INFO")
    failed = threading.Event()

    def tick():
        bind_log_context(ruleset_version="1.7.0")
        failed.set()
        raise RuntimeError("the job broke")
    poller = Poller("test-failing-poller", tick, interval=10)
    poller.ensure_started()
    err = ""
    try:
        assert failed.wait(10)
        deadline = time.monotonic() + 10
        while "tick failed" not in err and time.monotonic() < deadline:
            time.sleep(0.05)
            err += capsys.readouterr().err
    finally:
        poller.stop()
    lines = [line for line in json_lines(err) if line["event"] == "test-failing-poller: tick failed"]
    assert lines and lines[0]["ruleset_version"] == "1.7.0", lines
    assert "the job broke" in lines[0]["exception"]
