"""Liveness and readiness for operators and load balancers, and the JSON
schemas that the service's own extension attributes point to.

/health and /health/ready are open (load balancers call them without a
key), but their detail is internal: the store's location (data directory,
database user, host, port and name), exception and driver texts, rule file
problems with their paths. When the service has keys, a caller without an
admin key (or a Rule Studio login) gets the summary (`public_report`): the
status, and per part whether it is ok and its figures; an operator with one,
or every caller of a service without keys (whose admin API is open too),
gets the whole report."""
from __future__ import annotations

from flask_smorest import Blueprint

from ..auth import admin_identity, configured_admin_keys
from ..errors import error_body
from ..recommend.items import ITEM_JSON_SCHEMA, ITEM_SCHEMA_NAME
from ..rules.service.watcher import reload_failure
from ..services import services
from .tmf import ErrorSchema, json_response

blp = Blueprint("operations", __name__, description="Health, readiness and schemas")


HEALTH_SCHEMA = {
    "type": "object", "required": ["status", "store", "rules", "events"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "store": {"type": "object", "description": "ok, backend, collections, errors"},
        "rules": {"type": "object",
                  "description": "ok, the rule set version in service, errors of the rule files, "
                                 "buildFailure (durable-rules refused this process's build), workers "
                                 "(the version each worker process of this host serves) and workersAgree"},
        "events": {"type": "object", "description": (
            "recorded (changes not yet fanned out), pending, failed, delivered, "
            "backlogAgeSeconds, openCircuits, dispatchers, stalled, stallReasons, "
            "recordable, recordError, lastRecordError")},
        "decisionLog": {"type": "object", "description": (
            "backend, pending (this worker's unwritten answers); embedded store: bytes, "
            "days and a warning near where it stops being usable")},
        "experiments": {"type": "object", "description": (
            "running (the experiments that serve now), errors (of the experiments file, file:line: "
            "while it has any, no experiment serves and the active version answers everybody)")},
    }}
_JSON_SCHEMA_DOC = {"200": {"description": "A JSON schema (draft-07)", "content": {
    "application/json": {"schema": {"type": "object"}}}}}


def _report() -> tuple[dict, bool]:
    reco = services()
    store = reco.store.health()
    reload_error = None
    try:
        reco.rules.refresh()
    except Exception as exc:  # a broken rule file must show up here, not as a 500
        reload_error = reload_failure(exc)
    rules = reco.rules.status()
    if reload_error:
        rules["errors"] = [*rules.get("errors", []), reload_error]
    served = reco.rules.served.report()
    rules["workers"], rules["workersAgree"] = served["workers"], served["agree"]
    if not served["agree"]:
        rules["errors"] = [*rules.get("errors", []), "the workers of this host serve different versions: " + ", ".join(
            f"pid {w['pid']} {w.get('rulesetId')}@{w.get('version')}"
            + (f" (build failed: {w['buildFailure']})" if w.get("buildFailure") else "")
            for w in served["workers"])]
    events = reco.events.status() if store.get("ok") else {}
    # a change whose event cannot be recorded is refused, so a service that
    # cannot record events cannot take writes: not ready
    ready = bool(store.get("ok")) and bool(rules.get("ok")) and bool(events.get("recordable"))
    # a stalled delivery degrades the report but not readiness: this host
    # still answers and records every change's event (delivered later), and
    # taking every host out of the balancer would not deliver anything sooner
    healthy = ready and not events.get("stalled")
    report = {"status": "ok" if healthy else "degraded", "store": store, "rules": rules,
              "events": events}
    if reco.decisions is not None:   # a warning only: answers do not depend on it
        report["decisionLog"] = reco.decisions.status(reco.settings.decision_file_warn_mb * 2**20)
    router = reco.recommender.experiments
    if router is not None:           # a warning only: without experiments the active version answers
        router.refresh()
        report["experiments"] = router.status()
    return report, ready


#: The figures of each part that anyone may read (no text, no location).
PUBLIC_FIELDS = {
    "store": ("ok", "backend", "collections"),
    "rules": ("ok", "rulesetId", "version", "hash", "pinned", "loadedAt", "rules", "workersAgree"),
    "events": ("recorded", "pending", "failed", "delivered", "backlogAgeSeconds",
               "openCircuits", "recordable", "stalled"),
    "decisionLog": ("backend", "pending"),
    "experiments": (),
}


def detail_allowed() -> bool:
    """Whether this caller may read the report's internal detail: an admin
    key or a studio login, or anyone when the service runs without keys."""
    keys = configured_admin_keys()
    return not keys or admin_identity(keys, require_csrf=False) is not None


def public_report(report: dict) -> dict:
    """The report without internal detail: the status and PUBLIC_FIELDS of
    each part, plus how many errors each part has (`errorCount`)."""
    out = {"status": report["status"]}
    for part, names in PUBLIC_FIELDS.items():
        full = report.get(part) or {}
        out[part] = {name: full[name] for name in names if name in full}
        if full.get("errors") is not None:
            out[part]["errorCount"] = len(full["errors"])
    return out


@blp.route("/health", methods=["GET"])
@blp.doc(summary="Status of the store, the active rule set and event delivery",
         responses={"200": {"description": "The report (status degraded when not ready)",
                            "content": {"application/json": {"schema": HEALTH_SCHEMA}}}})
def health():
    report, _ready = _report()
    return json_response(report if detail_allowed() else public_report(report))


@blp.route("/health/ready", methods=["GET"])
@blp.doc(summary="200 when the service can answer recommendations, else 503",
         responses={"200": {"description": "Ready; the health report",
                            "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
                    "503": {"description": "Not ready: TMF Error, the report in details",
                            "content": {"application/json": {"schema": ErrorSchema}}}})
def ready():
    report, is_ready = _report()
    if is_ready:
        return json_response(report if detail_allowed() else public_report(report))
    reasons = [f"store: {message}" for message in report["store"].get("errors", {}).values()]
    if report["store"].get("ok") and not report["events"].get("recordable"):
        reasons.append("events: a change's event cannot be recorded")
    if not reasons:
        reasons = ["the store, the rule set or event recording is unavailable"]
    if not detail_allowed():
        parts = [part for part in ("store", "rules") if not report[part].get("ok")]
        if report["store"].get("ok") and not report["events"].get("recordable"):
            parts.append("events")
        reasons = [f"{part} unavailable" for part in parts] or reasons[-1:]
        report = public_report(report)
    body = error_body(503, "Not ready: " + "; ".join(reasons), code="NOT_READY")
    body["details"] = report
    return json_response(body, 503)


@blp.route(f"/schemas/{ITEM_SCHEMA_NAME}.schema.json", methods=["GET"])
@blp.doc(summary="JSON schema of the explained recommendation item", responses=_JSON_SCHEMA_DOC)
def item_schema():
    return json_response(ITEM_JSON_SCHEMA)
