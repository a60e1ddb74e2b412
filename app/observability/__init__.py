"""Operations: Prometheus metrics, structured logs, request ids and tracing.

Nothing is imported here on purpose: gunicorn.conf.py imports
`app.observability.logs` in the master process, and prometheus-client must
not be imported there before PROMETHEUS_MULTIPROC_DIR is set.

    metrics.py   every metric the service exports, and the one-line helpers
                 (decorators, calls) that domain code uses
    scrape.py    GET /metrics: the multiprocess registry and the scrape-time
                 collector of backlogs read from the store
    store.py     store operation latency and errors, around any Store backend
    requests.py  per request: request id, traceparent, HTTP metrics, the
                 request log line
    logs.py      structlog configuration (JSON or console), gunicorn's logger
    tracing.py   optional OpenTelemetry spans when OTEL_* is set
"""
