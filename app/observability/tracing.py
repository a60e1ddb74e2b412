"""W3C Trace Context (https://www.w3.org/TR/trace-context/) and optional
OpenTelemetry tracing.

Without OpenTelemetry the service is a pass-through participant: a valid
incoming `traceparent` is logged (its trace id on every line of the
request) and sent on unchanged with the notifications the request causes,
as section 3.2 asks of a vendor that does not record spans.

With OpenTelemetry (when its standard environment variables ask for it,
see `provider_from_env`) every request is a SERVER span, child of the
incoming `traceparent`, and notifications carry that span's context.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

# opentelemetry is imported inside the functions that use it, to keep start-up
# light: it is an optional extra (pip install .[otel]), loaded only when tracing.

log = logging.getLogger(__name__)

# version "00" layout; a higher version is parsed by the same prefix (3.3.1.2 of the spec)
TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
SERVICE_NAME = "tmf-recommender"


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    parent_id: str
    flags: str
    header: str


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The header's fields, or None when it is absent or invalid (version ff,
    all-zero ids, extra fields on version 00, upper case hex)."""
    if not value or len(value) > 512:
        return None
    match = TRACEPARENT_RE.fullmatch(value.strip())
    if not match:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return TraceParent(trace_id, parent_id, flags, f"00-{trace_id}-{parent_id}-{flags}")


def _enabled(environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def provider_from_env(environ=None):
    """An OpenTelemetry TracerProvider configured from the standard variables,
    or None when tracing is not asked for (the default).

    Asked for by OTEL_TRACES_EXPORTER (`otlp` or `console`; `none` turns it
    off) or by OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    (then `otlp`); OTEL_SDK_DISABLED=true wins. The exporter, the batch
    processor and the resource read their own OTEL_* variables (endpoint,
    headers, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*).
    `otlp` needs the `otel` extra (pip install '.[otel]'); when a package is
    missing the service logs why and runs without tracing."""
    environ = os.environ if environ is None else environ
    if not _enabled(environ):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        log.warning("OTEL_* asks for tracing but opentelemetry-sdk is not installed (%s): "
                    "pip install '.[otel]'", exc)
        return None
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",") if n.strip()]
    exporters = []
    for name in names:
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as exc:
                log.warning("OTEL_TRACES_EXPORTER=otlp but the OTLP exporter is not installed (%s): "
                            "pip install '.[otel]'", exc)
                continue
            exporters.append(OTLPSpanExporter())
        else:
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored (otlp, console)", name)
    if not exporters:
        return None
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracer:
    """The request spans of one app; `None` provider: pass-through only."""

    def __init__(self, provider):
        self.provider = provider
        self.tracer = provider.get_tracer("app.observability") if provider is not None else None

    def start(self, name: str, headers, attributes: dict):
        """Start the request's SERVER span under the incoming traceparent and
        make it current; returns a handle for `finish`, or None."""
        if self.tracer is None:
            return None
        from opentelemetry import context, propagate, trace

        parent = propagate.extract(headers)
        span = self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER,
                                      attributes=attributes)
        token = context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def ids(handle) -> tuple[str, str] | None:
        """(trace id, span id) in hex of a started span."""
        if handle is None:
            return None
        ctx = handle[0].get_span_context()
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    @staticmethod
    def set_status(handle, status: int) -> None:
        if handle is None:
            return
        from opentelemetry.trace import Status, StatusCode

        span = handle[0]
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @staticmethod
    def finish(handle, error: BaseException | None = None) -> None:
        if handle is None:
            return
        from opentelemetry import context

        span, token = handle
        if error is not None:
            span.record_exception(error)
        span.end()
        context.detach(token)

    @staticmethod
    def outgoing_headers(incoming: TraceParent | None) -> dict:
        """Headers for a call this request causes: the current span's context
        when tracing, else the incoming traceparent unchanged."""
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            trace = None
        if trace is not None and trace.get_current_span().get_span_context().is_valid:
            carrier: dict = {}
            propagate.inject(carrier)
            return carrier
        return {"traceparent": incoming.header} if incoming else {}
