"""Per request: the request id, the trace context, the HTTP metrics and the
request log line (which replaces gunicorn's access log).

X-Request-ID: a client's (or a proxy's) value is kept when it is 1 to 128
characters of letters, digits and `._:=+/-` (what UUIDs, ULIDs and the
common load balancers send); anything else is replaced by a new id, so a
log line can never be forged through it. The id is echoed on every answer,
error answers included, and is on every log line of the request.
"""
from __future__ import annotations

import re
import time
import uuid

from flask import Flask, g, has_request_context, request

from .logs import end_request_log_context, get_logger, new_log_context
from .metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from .tracing import Tracer, parse_traceparent

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


def request_id_from(value: str | None) -> tuple[str, bool]:
    """(the id to use, whether the client's value was refused)."""
    if value is not None and REQUEST_ID_RE.fullmatch(value):
        return value, False
    return uuid.uuid4().hex, value is not None


def outgoing_trace_headers() -> dict:
    """traceparent (and tracestate) for a call made on behalf of the current
    request, e.g. the notifications it queues; {} outside a request that
    carried or started a trace."""
    incoming = g.get("traceparent") if has_request_context() else None
    return Tracer.outgoing_headers(incoming)


def _labels(rule) -> tuple[str, str]:
    """(api, operation) of a matched url rule: its endpoint's blueprint and view."""
    if rule is None:
        return "none", "unmatched"
    api, _, operation = rule.endpoint.rpartition(".")
    return api or "none", operation


class _RequestMetrics:
    """The request counter and latency histogram children by (api, operation,
    method, status), looked up once per label set: prometheus-client's
    `labels()` validates and joins the label values on every call."""

    def __init__(self):
        self._children: dict[tuple, tuple] = {}

    def observe(self, api: str, operation: str, method: str, status: int, seconds: float) -> None:
        key = (api, operation, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (api, operation, method, str(status))
            children = self._children[key] = (HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_SECONDS.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


def install_request_observability(app: Flask, tracer_provider=None) -> None:
    """Register the hooks first, so that they see every request, including
    those that the authentication hook refuses.

    One before- and one after-request function (Flask checks each hook for a
    coroutine on every request), the request and `g` objects read once
    instead of through their proxies for every attribute, and no span
    attributes built when tracing is off: 261 -> 144 µs of thread CPU per request
    for the hooks, the request log line included, at load 24-27
    (bench/request_hooks_bench.py; BENCHMARKS.md, instant path)."""
    tracer = Tracer(tracer_provider)
    tracing = tracer.tracer is not None
    access_log = get_logger("app.request")
    metrics = _RequestMetrics()

    @app.before_request
    def _begin():
        req = request._get_current_object()
        state = g._get_current_object()
        state.started = time.perf_counter()
        # the WSGI environ's keys (PEP 3333) rather than EnvironHeaders, which
        # rewrites the name on every look-up: the same text, 2 µs less a header
        environ = req.environ
        state.request_id, refused = request_id_from(environ.get(REQUEST_ID_ENVIRON))
        traceparent = environ.get("HTTP_TRACEPARENT")
        state.traceparent = parse_traceparent(traceparent) if traceparent is not None else None
        context = {"request_id": state.request_id}
        if tracing:
            rule = req.url_rule
            state.span = tracer.start(f"{req.method} {rule.rule if rule else 'unmatched'}", req.headers, {
                "http.request.method": req.method, "url.path": req.path,
                "http.route": rule.rule if rule else "", "server.address": req.host})
            ids = Tracer.ids(state.span)
            if ids:
                context["trace_id"], context["span_id"] = ids
        if "trace_id" not in context and state.traceparent:
            context["trace_id"] = state.traceparent.trace_id
        if refused:
            context["refused_request_id"] = True
        new_log_context(**context)

    @app.after_request
    def _end(response):
        state = g._get_current_object()
        request_id = getattr(state, "request_id", None)
        if request_id is None:          # a hook before ours answered
            return response
        response.headers[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - state.started
        status = response.status_code
        req = request._get_current_object()
        api, operation = _labels(req.url_rule)
        method = req.method
        metrics.observe(api, operation, method, status, seconds)
        if tracing:
            Tracer.set_status(getattr(state, "span", None), status)
        log = access_log.error if status >= 500 else access_log.info
        log("request", method=method, path=req.path, status=status,
            duration_ms=round(seconds * 1000, 2), api=api, operation=operation,
            remote_addr=req.remote_addr, response_bytes=response.calculate_content_length())
        return response

    @app.teardown_request
    def _finish(error=None):
        if tracing:
            Tracer.finish(g.pop("span", None), error)
        # the thread outlives the request (gthread's pool, the test client's
        # caller): a line it logs next, outside any request, must not carry
        # this request's id or the rule set version it answered with; the
        # gthread worker clears it itself, after writing the body
        end_request_log_context()
