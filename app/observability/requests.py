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

from .logs import get_logger, new_log_context
from .metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from .tracing import Tracer, parse_traceparent

REQUEST_ID_HEADER = "X-Request-ID"
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


def _labels() -> tuple[str, str]:
    rule = request.url_rule
    if rule is None:
        return "none", "unmatched"
    api, _, operation = rule.endpoint.rpartition(".")
    return api or "none", operation


def install_request_observability(app: Flask, tracer_provider=None) -> None:
    """Register the hooks first, so that they see every request, including
    those that the authentication hook refuses."""
    tracer = Tracer(tracer_provider)
    access_log = get_logger("app.request")

    @app.before_request
    def _begin():
        g.started = time.perf_counter()
        g.request_id, refused = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.traceparent = parse_traceparent(request.headers.get("traceparent"))
        rule = request.url_rule
        g.span = tracer.start(f"{request.method} {rule.rule if rule else 'unmatched'}", request.headers, {
            "http.request.method": request.method, "url.path": request.path,
            "http.route": rule.rule if rule else "", "server.address": request.host})
        context = {"request_id": g.request_id}
        ids = Tracer.ids(g.span)
        if ids:
            context["trace_id"], context["span_id"] = ids
        elif g.traceparent:
            context["trace_id"] = g.traceparent.trace_id
        if refused:
            context["refused_request_id"] = True
        new_log_context(**context)

    @app.after_request
    def _end(response):
        request_id = g.get("request_id")
        if request_id is None:          # a hook before ours answered
            return response
        response.headers[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - g.started
        status = response.status_code
        api, operation = _labels()
        HTTP_REQUESTS.labels(api, operation, request.method, str(status)).inc()
        HTTP_REQUEST_SECONDS.labels(api, operation, request.method, str(status)).observe(seconds)
        Tracer.set_status(g.get("span"), status)
        log = access_log.error if status >= 500 else access_log.info
        log("request", method=request.method, path=request.path, status=status,
            duration_ms=round(seconds * 1000, 2), api=api, operation=operation,
            remote_addr=request.remote_addr, response_bytes=response.calculate_content_length())
        return response

    @app.teardown_request
    def _finish(error=None):
        Tracer.finish(g.pop("span", None), error)
