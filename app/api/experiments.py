"""Experiments over HTTP (app/experiments; docs/experiments.md), for the
Rule Studio, operators and dashboards:

    GET  /admin/experiments[?rulesetId=]              the experiments file: experiments, problems
    GET  /admin/experiments/{id}[?rulesetId=]         one experiment as declared
    GET  /admin/experiments/{id}/report[?format=text] the report per arm (as `flask experiments report`)
    POST /admin/experiments/{id}/start                {"rulesetId"?, "fileVersion"?}        [key always]
    POST /admin/experiments/{id}/stop                 {"rulesetId"?, "fileVersion"?}        [key always]
    POST /admin/experiments/{id}/weights              {"weights": {arm: percent}, ...}      [key always]
    POST /admin/experiments/{id}/promote              {"arm": name, ...}: activate its version
                                                      and complete the experiment          [key always]

Reads need an admin key when keys are set (every /admin/ path, app/auth.py);
changes need one always, and are recorded in the rule set's audit history
(GET /admin/rules/history). Documented in the OpenAPI document under the tag
"Experiments"."""
from __future__ import annotations

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from ..auth import require_admin
from ..errors import TMFError
from ..experiments import service
from ..experiments.report import report_lines
from ..jsonbody import read_json_object
from ..services import services
from .tmf import ErrorSchema

blp = Blueprint("experiments", __name__, url_prefix="/admin/experiments", description="Experiments")

_ERRORS = {code: {"description": "TMF Error", "content": {"application/json": {"schema": ErrorSchema}}}
           for code in ("400", "401", "403", "404", "409", "422", "503")}
_TEXT = {"type": "string"}
_RULESET = {"in": "query", "name": "rulesetId", "schema": _TEXT,
            "description": "The rule set (default: the one in service)"}
_ID = {"in": "path", "name": "experiment_id", "required": True, "schema": _TEXT}
_ARM = {"type": "object", "properties": {
    "name": _TEXT, "version": {"type": "string", "nullable": True}, "holdout": {"type": "boolean"},
    "weight": {"type": "number", "description": "percent of the experiment's traffic"}}}
EXPERIMENT_SCHEMA = {"type": "object", "properties": {
    "id": _TEXT, "name": _TEXT, "status": {"type": "string", "enum": ["draft", "running", "stopped", "completed"]},
    "start": {"type": "string", "format": "date-time", "nullable": True},
    "end": {"type": "string", "format": "date-time", "nullable": True},
    "channels": {"type": "array", "items": _TEXT},
    "primaryMetric": {"type": "string", "enum": ["shown", "clicked", "leads", "accepted"]},
    "control": _TEXT, "promoted": {"type": "string", "nullable": True},
    "arms": {"type": "array", "items": _ARM}}}
_INTERVAL = {"type": "object", "properties": {"decisions": {"type": "integer"}, "rate": {"type": "number"},
                                              "low": {"type": "number"}, "high": {"type": "number"}}}
REPORT_SCHEMA = {"type": "object", "properties": {
    "id": _TEXT, "rulesetId": _TEXT, "status": _TEXT, "primaryMetric": _TEXT, "control": _TEXT,
    "generatedAt": {"type": "string", "format": "date-time"},
    "arms": {"type": "array", "items": {"type": "object", "properties": {
        **_ARM["properties"], "control": {"type": "boolean"},
        **{name: {"type": "integer"} for name in ("decisions", "items", "shown", "clicked", "leads", "accepted")},
        "rates": {"type": "object", "description": "per metric: decisions with such an item per decision, "
                                                   "95 % Wilson interval",
                  "properties": {name: _INTERVAL for name in ("shown", "clicked", "leads", "accepted")}},
        "uplift": {"type": "object", "nullable": True,
                   "description": "primary metric's rate minus the control's, always-valid 95 % interval "
                                  "and p-value (mSPRT)",
                   "properties": {"difference": {"type": "number"}, "low": {"type": "number"},
                                  "high": {"type": "number"}, "pValue": {"type": "number"},
                                  "significant": {"type": "boolean"}}}}}},
    "sampleRatio": {"type": "object", "properties": {
        "chiSquare": {"type": "number"}, "df": {"type": "integer"}, "pValue": {"type": "number"},
        "mismatch": {"type": "boolean"}, "warning": {"type": "string", "nullable": True},
        "unexpectedArms": {"type": "array", "items": _TEXT,
                           "description": "arms at weight 0 that received decisions (a mismatch)"}}},
    "method": {"type": "string", "description": "the statistics used, in words"}}}
_CHANGE_BODY = {"type": "object", "properties": {
    "rulesetId": _TEXT, "fileVersion": {"type": "integer", "description": "the file version read: a change "
                                                                          "made since is refused (409)"},
    "weights": {"type": "object", "additionalProperties": {"type": "number"}}, "arm": _TEXT}}


def _doc(summary: str, description: str, response: dict | None = None, body: bool = False,
         parameters: list | None = None, text: bool = False) -> dict:
    content = {"application/json": {"schema": response or {"type": "object"}}}
    if text:
        content["text/plain"] = {"schema": {"type": "string"}}
    doc = {"summary": summary, "description": description, "tags": ["Experiments"],
           "parameters": parameters or [],
           "responses": {"200": {"description": "The answer", "content": content}, **_ERRORS}}
    if body:
        doc["requestBody"] = {"required": False, "content": {"application/json": {"schema": _CHANGE_BODY}}}
    return doc



@blp.route("", methods=["GET"])
@blp.doc(**_doc("The experiments of a rule set", "Its experiments file as checked now (problems with "
                "file:line), the experiments that serve in this worker.", parameters=[_RULESET]))
def list_experiments():
    reco = services()
    return jsonify(service.listing(reco, service.ruleset_id(reco, request.args.get("rulesetId"))))


@blp.route("/<experiment_id>", methods=["GET"])
@blp.doc(**_doc("One experiment as declared", "", EXPERIMENT_SCHEMA, parameters=[_RULESET]))
def get_experiment(experiment_id):
    reco = services()
    rid = service.ruleset_id(reco, request.args.get("rulesetId"))
    return jsonify(service.describe(service.get(reco, rid, experiment_id)))


@blp.route("/<experiment_id>/report", methods=["GET"])
@blp.doc(**_doc("The report per arm", "Decisions, impressions (shown), clicks, leads and accepted per arm; "
                "rates with 95 % Wilson intervals; the primary metric's uplift against the control with an "
                "always-valid interval (mSPRT); a sample-ratio-mismatch check; the method in words. "
                "`format=text`: as `flask experiments report`.", REPORT_SCHEMA,
                parameters=[_RULESET, {"in": "query", "name": "format", "schema": {"type": "string",
                                                                                  "enum": ["json", "text"]}}],
                text=True))
def experiment_report(experiment_id):
    reco = services()
    rid = service.ruleset_id(reco, request.args.get("rulesetId"))
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "text"):
        raise TMFError(400, f"format={fmt!r}: json or text", code="INVALID_QUERY")
    found = service.report(reco, rid, experiment_id)
    if fmt == "text":
        return Response("\n".join(report_lines(found)) + "\n", mimetype="text/plain")
    return jsonify(found)


def _change(experiment_id: str, action: str):
    who = require_admin()
    body = read_json_object() if request.get_data() else {}
    reco = services()
    rid = service.ruleset_id(reco, body.get("rulesetId") if isinstance(body.get("rulesetId"), str) else None)
    expected = body.get("fileVersion")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise TMFError(400, "`fileVersion` must be a whole number", code="INVALID_BODY")
    arm = body.get("arm")
    if action == "promote" and not isinstance(arm, str):
        raise TMFError(400, "`arm` must name the arm to promote", code="INVALID_BODY")
    return jsonify(service.change(reco, rid, experiment_id, action, who, weights=body.get("weights"),
                                  arm=arm, expected_version=expected, activate=service.activation(reco)))


for _action, _summary in (("start", "Start an experiment"), ("stop", "Stop an experiment"),
                          ("weights", "Change the arms' weights (a canary's 5 %, 25 %, 100 %)"),
                          ("promote", "Promote an arm: activate its version, complete the experiment")):
    def _view(experiment_id, _action=_action):
        return _change(experiment_id, _action)
    _view.__name__ = f"{_action}_experiment"
    blp.route(f"/<experiment_id>/{_action}", methods=["POST"], endpoint=f"{_action}_experiment")(
        blp.doc(**_doc(_summary, "Writes the experiments file (its version + 1) and the audit history "
                       "(who, when). Needs an admin key, always.", EXPERIMENT_SCHEMA, body=True))(_view))
