"""GET /metrics: the service's Prometheus metrics (text format 0.0.4, or
OpenMetrics when the scraper asks for it in Accept).

Protected like /admin/ when keys are configured (app/auth.py): RECO_METRICS_KEYS
lets a Prometheus server scrape (`authorization: {credentials: KEY}` in its
scrape config) without holding an admin key. The metric names and what they
mean are in app/observability/metrics.py and scrape.py; docs/operations.md,
"Metrics", lists them. Not in the OpenAPI document: it is for
operators' tools, not a TMF API.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from ..observability.scrape import render
from ..services import services

blp = Blueprint("metrics", __name__)


@blp.route("/metrics", methods=["GET"])
def metrics():
    body, content_type = render(services(), request.headers.get("Accept"))
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
