"""Liveness and readiness for operators and load balancers, and the JSON
schemas that the service's own extension attributes point to."""
from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from ..errors import error_body
from ..recommend.items import ITEM_JSON_SCHEMA, ITEM_SCHEMA_NAME
from ..rules.service.rule_service import reload_failure
from .tmf import ErrorSchema, json_response

blp = Blueprint("operations", __name__, description="Health, readiness and schemas")


HEALTH_SCHEMA = {
    "type": "object", "required": ["status", "store", "rules", "events"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "store": {"type": "object", "description": "ok, backend, collections, errors"},
        "rules": {"type": "object",
                  "description": "ok, the rule set version in service, errors of the rule files"},
        "events": {"type": "object", "description": (
            "recorded (changes not yet fanned out), pending, failed, delivered, "
            "backlogAgeSeconds, openCircuits, recordable, recordError, lastRecordError")},
        "decisionLog": {"type": "object", "description": (
            "backend, pending (this worker's unwritten answers); embedded store: bytes, "
            "days and a warning near where it stops being usable")},
    }}
_JSON_SCHEMA_DOC = {"200": {"description": "A JSON schema (draft-07)", "content": {
    "application/json": {"schema": {"type": "object"}}}}}


def _report() -> tuple[dict, bool]:
    reco = current_app.extensions["reco"]
    store = reco.store.health()
    reload_error = None
    try:
        reco.rules.refresh()
    except Exception as exc:  # a broken rule file must show up here, not as a 500
        reload_error = reload_failure(exc)
    rules = reco.rules.status()
    if reload_error:
        rules["errors"] = [*rules.get("errors", []), reload_error]
    events = reco.events.status() if store.get("ok") else {}
    # a change whose event cannot be recorded is refused, so a service that
    # cannot record events cannot take writes: not ready
    ready = bool(store.get("ok")) and bool(rules.get("ok")) and bool(events.get("recordable"))
    report = {"status": "ok" if ready else "degraded", "store": store, "rules": rules,
              "events": events}
    if reco.decisions is not None:   # a warning only: answers do not depend on it
        report["decisionLog"] = reco.decisions.status(reco.settings.decision_file_warn_mb * 2**20)
    return report, ready


@blp.route("/health", methods=["GET"])
@blp.doc(summary="Status of the store, the active rule set and event delivery",
         responses={"200": {"description": "The report (status degraded when not ready)",
                            "content": {"application/json": {"schema": HEALTH_SCHEMA}}}})
def health():
    report, _ready = _report()
    return json_response(report)


@blp.route("/health/ready", methods=["GET"])
@blp.doc(summary="200 when the service can answer recommendations, else 503",
         responses={"200": {"description": "Ready; the health report",
                            "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
                    "503": {"description": "Not ready: TMF Error, the report in details",
                            "content": {"application/json": {"schema": ErrorSchema}}}})
def ready():
    report, is_ready = _report()
    if is_ready:
        return json_response(report)
    reasons = [f"store: {message}" for message in report["store"].get("errors", {}).values()]
    if report["store"].get("ok") and not report["events"].get("recordable"):
        reasons.append("events: a change's event cannot be recorded")
    if not reasons:
        reasons = ["the store, the rule set or event recording is unavailable"]
    body = error_body(503, "Not ready: " + "; ".join(reasons), code="NOT_READY")
    body["details"] = report
    return json_response(body, 503)


@blp.route(f"/schemas/{ITEM_SCHEMA_NAME}.schema.json", methods=["GET"])
@blp.doc(summary="JSON schema of the explained recommendation item", responses=_JSON_SCHEMA_DOC)
def item_schema():
    return json_response(ITEM_JSON_SCHEMA)
