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
"Experiments". flask-smorest parses each body and query with the marshmallow
schemas of app/api/experiments_schemas.py and documents them
(app/api/admin_arguments.py: the body reader, the TMF Errors); the key of a
change is asked for before its body is read."""
from __future__ import annotations

from flask import Response, jsonify

from ..experiments import service
from ..experiments.report import report_lines
from ..services import services
from . import experiments_schemas as schemas
from .admin_arguments import AdminBlueprint, key_always, tmf_errors

blp = AdminBlueprint("experiments", __name__, url_prefix="/admin/experiments", description="Experiments")

#: every operation may answer these (a key, an unknown rule set or experiment, no usable rule set)
_ANY = (401, 403, 404, 503)
#: and the changes these (the body's type and size; a stale file, a refused change, a file with errors)
_CHANGE = (409, 413, 415, 422)


def _doc(summary: str, description: str = "") -> dict:
    return {"summary": summary, "description": description, "tags": ["Experiments"]}


@blp.route("", methods=["GET"])
@blp.doc(**_doc("The experiments of a rule set", "Its experiments file as checked now (problems with "
                "file:line), the experiments that serve in this worker."))
@blp.arguments(schemas.RulesetQuery, location="query")
@blp.response(200, schemas.Listing)
@tmf_errors(blp, *_ANY, 422)
def list_experiments(query):
    reco = services()
    return jsonify(service.listing(reco, service.ruleset_id(reco, query["rulesetId"])))


@blp.route("/<experiment_id>", methods=["GET"])
@blp.doc(**_doc("One experiment as declared"))
@blp.arguments(schemas.RulesetQuery, location="query")
@blp.response(200, schemas.Experiment)
@tmf_errors(blp, *_ANY, 422)
def get_experiment(query, experiment_id):
    reco = services()
    rid = service.ruleset_id(reco, query["rulesetId"])
    return jsonify(service.describe(service.get(reco, rid, experiment_id)))


@blp.route("/<experiment_id>/report", methods=["GET"])
@blp.doc(**_doc("The report per arm", "Decisions, impressions (shown), clicks, leads and accepted per arm; "
                "rates with 95 % Wilson intervals; the primary metric's uplift against the control with an "
                "always-valid interval (mSPRT); a sample-ratio-mismatch check; the method in words. "
                "`format=text`: as `flask experiments report`."))
@blp.arguments(schemas.ReportQuery, location="query")
@blp.response(200, schemas.Report)
@blp.response(200, {"type": "string"}, content_type="text/plain")
@tmf_errors(blp, *_ANY, 422)
def experiment_report(query, experiment_id):
    reco = services()
    rid = service.ruleset_id(reco, query["rulesetId"])
    found = service.report(reco, rid, experiment_id)
    if query["format"] == "text":
        return Response("\n".join(report_lines(found)) + "\n", mimetype="text/plain")
    return jsonify(found)


_CHANGES = (("start", "Start an experiment", schemas.ChangeBody),
            ("stop", "Stop an experiment", schemas.ChangeBody),
            ("weights", "Change the arms' weights (a canary's 5 %, 25 %, 100 %)", schemas.WeightsBody),
            ("promote", "Promote an arm: activate its version, complete the experiment", schemas.PromoteBody))


def _change_view(action: str, summary: str, body_schema):
    """The view of one change: the key first, then the body (which may be
    left out), then app/experiments/service.py."""
    def view(body, experiment_id, who):
        reco = services()
        rid = service.ruleset_id(reco, body["rulesetId"])
        return jsonify(service.change(reco, rid, experiment_id, action, who, weights=body.get("weights"),
                                      arm=body.get("arm"), expected_version=body["fileVersion"],
                                      activate=service.activation(reco)))
    view.__name__ = f"{action}_experiment"
    view = tmf_errors(blp, *_ANY, *_CHANGE)(view)
    view = blp.response(200, schemas.Changed)(view)
    view = blp.arguments(body_schema, required=False)(view)
    view = key_always(view)
    view = blp.doc(**_doc(summary, "Writes the experiments file (its version + 1) and the audit history "
                                   "(who, when). Needs an admin key, always."))(view)
    return blp.route(f"/<experiment_id>/{action}", methods=["POST"], endpoint=f"{action}_experiment")(view)


for _action, _summary, _schema in _CHANGES:
    _change_view(_action, _summary, _schema)
