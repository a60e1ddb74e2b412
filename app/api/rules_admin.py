"""Rule administration over HTTP, for product managers' tools and operators:

    POST /admin/rules/explain[?version=1.1.0][&format=text]
        body: a case context ({"cart": ["6547"], "channel": "21", "time": ...}),
              a whole case ({"name": ..., "context": {...}}), or a TMF680
              QueryProductRecommendation body (customer looked up in the store)
        200:  every rule (fired, or which condition failed, with its line),
              every policy step, the final list, and the context in the case
              format (ready for a cases file)
    GET  /admin/rules
        200:  the rule set in service, its versions, errors of the rule files

Like every /admin/ path these are protected by RECO_ADMIN_KEYS (else
RECO_API_KEYS) when keys are set (app/auth.py). They are tooling, not part of
the TMF APIs, so they are not in the OpenAPI document. Activation is a CLI
command (`flask rules activate`), not an HTTP operation.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import TMFError
from ..jsonbody import read_json_object
from ..recommend.query import context_from_query
from ..rules import RuleSetError
from ..rules.model.common import UTC
from ..rules.authoring.contexts import context_to_case, is_tmf680_query, read_context
from ..rules.authoring.report import explain_lines

blp = Blueprint("rules_admin", __name__, url_prefix="/admin/rules")


def _problems(exc: RuleSetError) -> list[str]:
    return [p.message for p in exc.problems] or [str(exc)]


@blp.route("/explain", methods=["POST"])
def explain():
    reco = current_app.extensions["reco"]
    body = read_json_object()
    now = dt.datetime.now(UTC)
    if is_tmf680_query(body):
        context = context_from_query(body, reco.recommender.parties, now)
    else:
        try:
            _name, context = read_context(body, "request body", now)
        except RuleSetError as exc:
            raise TMFError(400, "The body is not a valid context: " + "; ".join(_problems(exc)),
                           code="INVALID_CONTEXT", details={"problems": _problems(exc)}) from None
    version = request.args.get("version") or None
    reco.rules.refresh()
    try:
        engine = reco.rules.engine_of(version)
    except RuleSetError as exc:
        if version is not None:
            raise TMFError(404, f"Version {version!r} cannot be used: {'; '.join(_problems(exc))}",
                           code="RULESET_VERSION_NOT_FOUND") from None
        raise TMFError(503, f"No valid rule set is active: {'; '.join(_problems(exc))}",
                       code="RULESET_UNAVAILABLE") from None
    explained = engine.explain(context)
    explained["context"] = context_to_case(context)
    if request.args.get("format") == "text":
        text = "\n".join(explain_lines(explained, engine.catalog)) + "\n"
        return Response(text, mimetype="text/plain")
    return jsonify(explained)


@blp.route("", methods=["GET"])
def status():
    reco = current_app.extensions["reco"]
    reco.rules.refresh()
    return jsonify(reco.rules.status())
