"""Rule administration over HTTP, for product managers' tools (the Rule
Studio at /studio) and operators. The same engine and authoring functions as
`flask rules ...`, through app/rules/authoring/ (workbench.py, saving.py, governance.py):

    GET  /admin/rules                       the rule set in service, its versions, errors
    GET  /admin/rules/overview              every rule set: versions, lock state, lint, activations
    GET  /admin/rules/activations           the activation history (newest first)
    GET  /admin/rules/history               the audit history: saves, records, activations (newest first)
    GET  /admin/rules/vocabulary            what the editor completes (JSON Schema keys, catalog ids)
    POST /admin/rules/explain[?version=V][&rulesetId=ID][&format=text]
                                            explain one context (as `flask rules explain`)
    POST /admin/rules/lint                  lint unsaved rule set text (as `flask rules lint`)
    POST /admin/rules/cases                 run the regression cases (as `flask rules test`)
    POST /admin/rules/impact                compare two versions (as `flask rules diff`)
    GET  /admin/rules/{id}/working-copy     the text of rules/<id>.yaml, its ETag
    PUT  /admin/rules/{id}/working-copy     save it (If-Match; never activates)     [key always]
    POST /admin/rules/activate              activate a version (recorded)           [key always]
    POST /admin/rules/approve               approve a version (four eyes)           [key always]
    POST /admin/rules/rollback              back to the version before the latest  [key always]
    POST /admin/rules/lock                  record new versions (as `flask rules lock`) [key always]

Like every /admin/ path these need an admin key (RECO_ADMIN_KEYS, else
RECO_API_KEYS) when keys are set (app/auth.py); saving, activating and
rolling back need one always (asked before the body is read). They are
tooling, not TMF APIs, documented in the OpenAPI document under the tag
"Rule administration". flask-smorest parses each body and query with the
marshmallow schemas of app/api/rules_admin_schemas.py and documents them
(app/api/admin_arguments.py: the body reader and the TMF Errors); the
answers are built by the authoring functions and documented by the answer
schemas there.
"""
from __future__ import annotations

import datetime as dt

from flask import Response, current_app, jsonify, request

from ..decisions.impact import recorded_traffic
from ..errors import TMFError
from ..recommend.query import KIND as QUERY_KIND, context_from_query
from ..rules.authoring import governance, saving
from ..rules.authoring import workbench as authoring
from ..rules.model.source import max_file_bytes
from ..services import services
from ..experiments import service as experiments
from ..experiments.lint import add_experiment_findings
from . import rules_admin_schemas as schemas
from .admin_arguments import AdminBlueprint, key_always, tmf_errors

blp = AdminBlueprint("rules_admin", __name__, url_prefix="/admin/rules", description="Rule administration")

#: every operation may answer these (a key, an unusable rule set, a full disk)
_ANY = (401, 403, 503, 507)
#: and those that take a body, these (its type, size, JSON, attributes)
_BODY = (413, 415)


def _doc(summary: str, description: str = "") -> dict:
    return {"summary": summary, "description": description, "tags": ["Rule administration"]}


#: the endpoints whose body carries a whole rule file's text
RULE_TEXT_ENDPOINTS = ("rules_admin.save_working_copy", "rules_admin.lint_text")
#: a text's JSON string is at most 3 times its UTF-8 bytes once escaped
#: (a 2-byte character as \u00e9: 6 bytes), plus the rest of the body
JSON_ESCAPE_FACTOR = 3
BODY_MARGIN_BYTES = 64 * 1024


@blp.before_request
def _room_for_a_rule_file():
    """One size limit for a rule file, however it arrives: a body carrying
    a rule file's text may be as large as a file at RECO_MAX_RULE_FILE_BYTES
    needs once JSON-escaped (else a file that serves and opens in the Studio
    could not be saved back when over RECO_MAX_BODY_BYTES); the text itself
    is then held to the rule limit (413 FILE_TOO_LARGE) before it is parsed.
    Every other body keeps RECO_MAX_BODY_BYTES."""
    if request.endpoint in RULE_TEXT_ENDPOINTS:

        needed = JSON_ESCAPE_FACTOR * max_file_bytes() + BODY_MARGIN_BYTES
        request.max_content_length = max(current_app.config.get("MAX_CONTENT_LENGTH") or 0, needed)


def _problems(exc) -> list[str]:
    return authoring.problems_of(exc)


def _ruleset_id(value: str | None) -> str:
    reco = services()
    reco.rules.refresh()
    rid = value or reco.rules.status().get("rulesetId")
    if rid not in reco.rules.status().get("rulesets", []):
        raise TMFError(404, f"No rule set {rid!r} in the rules folder", code="RULESET_NOT_FOUND")
    return rid


def _engine(version: str | None, ruleset_id: str | None = None):
    reco = services()
    reco.rules.refresh()
    try:
        return reco.rules.engine_of(version, ruleset_id)
    except authoring.RuleSetError as exc:
        if version is not None or ruleset_id is not None:
            what = f"Version {version!r}" if version is not None else f"Rule set {ruleset_id!r}"
            raise TMFError(404, f"{what} cannot be used: {'; '.join(_problems(exc))}",
                           code="RULESET_VERSION_NOT_FOUND") from None
        raise TMFError(503, "No valid rule set is active; GET /admin/rules lists the rule "
                            "files' problems", code="RULESET_UNAVAILABLE",
                       log_detail="; ".join(_problems(exc))) from None


def _invalid(exc, status: int = 400, code: str = "INVALID_RULES") -> TMFError:
    problems = _problems(exc)
    if isinstance(exc, authoring.FileTooLarge):          # the one size limit of rule files
        status, code = 413, exc.code
    elif isinstance(exc, authoring.UnsafeName):          # a version or id that cannot be a file name
        status, code = (422 if status == 422 else 400), exc.code
    return TMFError(status, "; ".join(problems)[:2000], code=code, details={"problems": problems})


# --------------------------------------------------------------------------- reading
@blp.route("", methods=["GET"])
@blp.doc(**_doc("The rule set in service", "Version, hash, pinned, its versions and the errors of the rule files."))
@blp.response(200, schemas.RuleSetStatus)
@tmf_errors(blp, *_ANY)
def status():
    reco = services()
    reco.rules.refresh()
    return jsonify(reco.rules.status())


@blp.route("/overview", methods=["GET"])
@blp.doc(**_doc("Every rule set with its versions, lint findings and activations",
                "As `flask rules versions` (status, active, pinned, lock state) and `flask rules lint` "
                "(file:line:column, rule, check, fix) for every rule set in the rules folder."))
@blp.response(200, schemas.Overview)
@tmf_errors(blp, *_ANY)
def overview():
    settings = services().settings
    return jsonify(authoring.rulesets_overview(services().rules, settings.rules_dir, settings.catalog_dir,
                                                more_lint=add_experiment_findings))


@blp.route("/activations", methods=["GET"])
@blp.doc(**_doc("The activation history, newest first", "Who activated which version, when, from which "
                "version (also `flask rules activate`)."))
@blp.arguments(schemas.RulesetQuery, location="query")
@blp.response(200, schemas.HistoryEntry(many=True))
@tmf_errors(blp, *_ANY)
def activations(query):
    rid = query["rulesetId"] or None
    return jsonify([h for h in governance.history(services().rules, rid) if h.get("action") in authoring.ACTIVATIONS])


@blp.route("/history", methods=["GET"])
@blp.doc(**_doc("The audit history, newest first", "Every save (version, content hash, the working copy it "
                "started from), record (a version's hash fixed), approval, activation and roll back: who, "
                "when, what (also `flask rules history`)."))
@blp.arguments(schemas.RulesetQuery, location="query")
@blp.response(200, schemas.HistoryEntry(many=True))
@tmf_errors(blp, *_ANY)
def history(query):
    rid = query["rulesetId"] or None
    return jsonify(governance.history(services().rules, rid))


@blp.route("/vocabulary", methods=["GET"])
@blp.doc(**_doc("What the rule editor completes", "Property names of the rule set JSON Schema, condition "
                "names, and the catalog's offerings, categories and channels."))
@blp.response(200, schemas.Vocabulary)
@tmf_errors(blp, *_ANY)
def vocabulary():
    return jsonify(authoring.vocabulary(services().rules.catalog))


@blp.route("/explain", methods=["POST"])
@blp.doc(**_doc(
    "Explain one situation", "Body: a case context ({\"cart\": [\"6547\"], \"channel\": \"21\", \"time\": ...}), "
    "a whole case ({name, context}) or a TMF680 QueryProductRecommendation body (customer looked up in the "
    "store). Answer: every rule (fired, or the condition that failed with its line), every policy step, the "
    "final items, the catalog details of the offerings, and the context in the case format."))
@blp.arguments(schemas.ExplainQuery, location="query")
@blp.arguments(schemas.ExplainBody)
@blp.response(200, schemas.Explained)
# format=text answers as `flask rules explain` prints (found by the fuzz test)
@blp.response(200, {"type": "string"}, content_type="text/plain")
@tmf_errors(blp, *_ANY, *_BODY, 404, 422)
def explain(query, body):
    reco = services()
    now = dt.datetime.now(authoring.UTC)
    if authoring.is_tmf680_query(body):
        context = context_from_query(body, reco.recommender.parties, now)
    else:
        try:
            _name, context = authoring.read_context(body, "request body", now)
        except authoring.RuleSetError as exc:
            raise TMFError(400, "The body is not a valid context: " + "; ".join(_problems(exc)),
                           code="INVALID_CONTEXT", details={"problems": _problems(exc)}) from None
    engine, experiment = None, None
    # a query for the rule set in service (its id named or not: the Studio's
    # Playground names it) with no version asked for is explained as served
    if authoring.is_tmf680_query(body) and not query["version"] and (
            query["rulesetId"] in (None, "", reco.rules.status()["rulesetId"])):
        engine, experiment = experiments.explaining(reco, body)     # the arm that answers it
    engine = engine or _engine(query["version"] or None, query["rulesetId"] or None)
    explained = authoring.explain(engine, context)
    lines = [experiments.explanation_line(experiment, engine.ruleset.version)] if experiment else []
    if experiment:
        explained["experiment"] = experiment
    if query["format"] == "text":
        text = "\n".join(lines + authoring.explain_lines(explained, engine.catalog)) + "\n"
        return Response(text, mimetype="text/plain")
    return jsonify(explained)


@blp.route("/lint", methods=["POST"])
@blp.doc(**_doc("Lint unsaved rule set text", "As if it were saved as rules/<rulesetId>.yaml: every finding "
                "with line, column, rule, check (`code`) and fix (`hint`)."))
@blp.arguments(schemas.LintBody)
@blp.response(200, schemas.LintReport)
@tmf_errors(blp, *_ANY, *_BODY, 404)
def lint_text(body):
    rid = _ruleset_id(body["rulesetId"])
    settings = services().settings
    try:
        return jsonify(authoring.lint_text(body["text"], rid, settings.rules_dir, services().rules.catalog))
    except authoring.RuleSetError as exc:
        raise _invalid(exc) from None


@blp.route("/cases", methods=["POST"])
@blp.doc(**_doc("Run the regression cases", "The cases of a loaded version (default: the one in service): "
                "its kept cases rules/versions/<rulesetId>@<version>.cases.yaml, else rules/<rulesetId>.cases.yaml: "
                "passed and failed cases, expected vs actual and why, rule coverage."))
@blp.arguments(schemas.CasesBody)
@blp.response(200, schemas.CasesReport)
@tmf_errors(blp, *_ANY, *_BODY, 404, 422)
def cases(body):
    rid = _ruleset_id(body["rulesetId"])
    engine = _engine(body["version"], rid)
    path = authoring.cases_file_of(services().settings.rules_dir, rid, engine.ruleset.version)
    if not path.exists():
        raise TMFError(404, f"Rule set {rid} has no regression cases ({path.name})", code="CASES_NOT_FOUND")
    try:
        return jsonify(authoring.run_cases(engine, path, body["filter"]))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "INVALID_CASES") from None


@blp.route("/<ruleset_id>/cases", methods=["POST"])
@blp.doc(**_doc("Add a regression case", "Appends {name, context (the case format, as explain answers it), "
                "expect (offering ids in order), description} to rules/<id>.cases.yaml (the working cases), "
                "checked first and written atomically; 422 INVALID_CASE when the cases format refuses it "
                "(e.g. a name already used). Needs an admin key, always."))
@key_always
@blp.arguments(schemas.NewCaseBody)
@blp.response(200, schemas.CaseAdded)
@tmf_errors(blp, *_ANY, *_BODY, 404, 422)
def add_case(body, ruleset_id, who):
    rid = _ruleset_id(ruleset_id)
    try:
        return jsonify(authoring.add_case(services().settings.rules_dir, rid, body["name"], body["context"],
                                          body["expect"], body["description"] or "", services().rules.catalog))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "INVALID_CASE") from None


@blp.route("/impact", methods=["POST"])
@blp.doc(**_doc(
    "Compare two versions", "As `flask rules diff`: the rules added, removed and changed, and per situation the "
    "items gained, lost, reordered or recommended for other reasons. Situations: the regression cases "
    "(`cases`, default true), an uploaded JSON Lines file of contexts (`contexts`, its text) and the latest "
    "`recent` stored TMF680 queries, and recorded answers of the decision log (`recorded`: the last N, or "
    "`recordedSince`/`recordedUntil`, `recordedChannel`), weighted: `recordedTraffic`."))
@blp.arguments(schemas.ImpactBody)
@blp.response(200, schemas.ImpactReport)
@tmf_errors(blp, *_ANY, *_BODY, 404, 422)
def impact(body):
    reco = services()
    rid = _ruleset_id(body["rulesetId"])
    old_engine = _engine(body["old"], rid)
    new_engine = _engine(body["new"], rid)
    recent = body["recent"] or 0
    contexts, skipped = [], 0
    try:
        if body["cases"] is not False:
            contexts += authoring.case_contexts(reco.settings.rules_dir, rid)
        if body["contexts"]:
            contexts += authoring.uploaded_contexts(body["contexts"], body["contextsName"] or "upload.jsonl")
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "INVALID_CONTEXTS") from None
    if recent:
        stored = reco.store.all(QUERY_KIND.collection)[-recent:]
        for query in stored:
            try:
                contexts.append((f"query {query.get('id')}", "stored",
                                 context_from_query(query, reco.recommender.parties)))
            except TMFError:
                skipped += 1
    recorded = recorded_traffic(reco, body)   # the decision log's answers, weighted
    contexts += recorded.situations
    if not contexts:
        raise TMFError(422, "No situations to compare: use the cases, a contexts file, recent queries "
                            "or recorded answers", code="NO_CONTEXTS")
    report = authoring.impact(old_engine, new_engine, contexts)
    report["skippedQueries"] = skipped
    recorded.add_to(report)
    return jsonify(report)


@blp.route("/<ruleset_id>/working-copy", methods=["GET"])
@blp.doc(**_doc("The working copy of a rule set", "The text of rules/<id>.yaml and its entity tag (`etag`, "
                "also the ETag header): send it back in If-Match when saving."))
@blp.response(200, schemas.WorkingCopy, headers={"ETag": {"description": "The working copy's entity tag",
                                                          "schema": {"type": "string"}}})
@tmf_errors(blp, *_ANY, 400, 404, 413)
def working_copy(ruleset_id):
    rid = _ruleset_id(ruleset_id)
    try:
        path = saving.working_copy(services().settings.rules_dir, rid)
        text, tag = saving.working_copy_state(services().settings.rules_dir, rid)
    except authoring.FileTooLarge as exc:
        raise _invalid(exc, 422, "INVALID_RULES") from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 404, "RULESET_NOT_FOUND") from None
    if text is None:
        raise TMFError(404, f"Rule set {rid} has no working copy {path.name}", code="RULESET_NOT_FOUND")
    response = jsonify({"rulesetId": rid, "file": authoring.display_path(path), "text": text, "etag": tag})
    response.headers["ETag"] = f'"{tag}"'
    return response


def _if_match() -> tuple[str, ...] | None:
    """The entity tags of If-Match (RFC 9110 13.1.1: a comma-separated list,
    any one of which may match; quotes optional; W/ accepted, as the tag is
    the text's own hash), else None. `*` names no working copy: 428."""
    header = (request.headers.get("If-Match") or "").strip()
    if not header:
        return None
    if header == "*":
        raise TMFError(428, "If-Match: * names no working copy: send the ETag of the working copy this edit "
                       "started from (GET the working copy to get it)", reason="Precondition Required",
                       code="PRECONDITION_REQUIRED")
    tags = (tag.strip() for tag in header.split(","))
    return tuple(t.strip('"') for t in (tag[2:] if tag.startswith("W/") else tag for tag in tags) if t) or None


# --------------------------------------------------------------------------- changing (a key, always)
@blp.route("/<ruleset_id>/working-copy", methods=["PUT"])
@blp.doc(**_doc("Save the working copy (never activates)",
                "Atomic write of rules/<id>.yaml. If-Match (required, 428 PRECONDITION_REQUIRED without it): the "
                "ETag of the working copy the edit started from; another save since is 409 EDIT_CONFLICT "
                "with the current `etag` and their change as a unified `diff` in details, never an overwrite. "
                "Other content under a version already recorded (locked or activated), kept or in service is "
                "409 VERSION_RECORDED with `nextVersion` (the next free version) in details. The old working "
                "copy is kept in rules/versions/ when the version changes; the version in service is pinned "
                "first if nothing is pinned. Recorded in the history. Needs an admin key, always."),
         parameters=[{"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"},
                      "description": "The ETag of GET .../working-copy"}])
@key_always
@blp.arguments(schemas.WorkingCopyBody)
@blp.response(200, schemas.Saved, headers={"ETag": {"description": "The saved working copy's entity tag",
                                                    "schema": {"type": "string"}}})
@tmf_errors(blp, *_ANY, *_BODY, 404, 409, 422, 428)
def save_working_copy(body, ruleset_id, who):
    text = body["text"]
    rid = _ruleset_id(ruleset_id)
    settings = services().settings
    try:
        saved = saving.save_working_copy(services().rules, settings.rules_dir, rid, text, who, _if_match())
    except saving.BaseRequired as exc:
        raise TMFError(428, str(exc), reason="Precondition Required", code="PRECONDITION_REQUIRED") from None
    except saving.SaveConflict as exc:
        raise TMFError(409, str(exc), code="EDIT_CONFLICT",
                       details={"etag": exc.etag, "diff": exc.diff, "lastSave": exc.last}) from None
    except authoring.VersionChanged as exc:
        raise TMFError(409, str(exc), code="VERSION_RECORDED",
                       details={"version": exc.version, "recordedHash": exc.recorded, "hash": exc.found,
                                "nextVersion": exc.next_version}) from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "SAVE_REFUSED") from None
    saved["lint"] = authoring.lint_text(text, rid, settings.rules_dir, services().rules.catalog)
    response = jsonify(saved)
    response.headers["ETag"] = f'"{saved["etag"]}"'
    return response


@blp.route("/activate", methods=["POST"])
@blp.doc(**_doc("Activate a version", "As `flask rules activate`: every worker of this host answers with it "
                "from its next request on. `version` null unpins (the highest valid version serves). Only a "
                "version whose content matches its recorded hash; an unrecorded one is recorded first. "
                "Activating the version already pinned does nothing (`activation` null). Recorded in the "
                "history. Needs an admin key, always."))
@key_always
@blp.arguments(schemas.ActivateBody)
@blp.response(200, schemas.Activation)
@tmf_errors(blp, *_ANY, *_BODY, 404, 409)
def activate(body, who):
    rid = _ruleset_id(body["rulesetId"])
    try:
        return jsonify(governance.activate(services().rules, rid, body["version"], who,
                                          require_approval=services().settings.rules_require_approval))
    except governance.ApprovalRequired as exc:
        raise _invalid(exc, 409, "APPROVAL_REQUIRED") from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "ACTIVATION_REFUSED") from None


@blp.route("/approve", methods=["POST"])
@blp.doc(**_doc("Approve a version for activation", "The version's current content (its hash) is approved by "
                "the key of this request, which must be another key than the one(s) that saved it (four "
                "eyes; 409 SAME_KEY). With RECO_RULES_REQUIRE_APPROVAL on, only an approved version can be "
                "activated. Recorded in the history. Needs an admin key, always."))
@key_always
@blp.arguments(schemas.ApproveBody)
@blp.response(200, schemas.HistoryEntry)
@tmf_errors(blp, *_ANY, *_BODY, 404, 409)
def approve(body, who):
    rid = _ruleset_id(body["rulesetId"])
    try:
        return jsonify(governance.approve(services().rules, rid, body["version"], who, body["note"] or ""))
    except governance.SameKey as exc:
        raise _invalid(exc, 409, "SAME_KEY") from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "APPROVAL_REFUSED") from None


@blp.route("/rollback", methods=["POST"])
@blp.doc(**_doc("Roll back", "Activate the version that served before the latest activation (from the "
                "history). Needs an admin key, always."))
@key_always
@blp.arguments(schemas.RulesetBody)
@blp.response(200, schemas.Activation)
@tmf_errors(blp, *_ANY, *_BODY, 404, 409)
def rollback(body, who):
    rid = _ruleset_id(body["rulesetId"])
    try:
        return jsonify(governance.rollback(services().rules, rid, who))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "ROLLBACK_REFUSED") from None


@blp.route("/lock", methods=["POST"])
@blp.doc(**_doc("Record new versions in the lock file", "As `flask rules lock` (never --amend): the content "
                "hash of every version not yet in rules/<id>.lock.json; a recorded version whose content "
                "changed is listed as refused. Needs an admin key, always."))
@key_always
@blp.arguments(schemas.RulesetBody)
@blp.response(200, schemas.LockReport)
@tmf_errors(blp, *_ANY, *_BODY, 404, 409)
def lock(body, who):
    rid = _ruleset_id(body["rulesetId"])
    try:
        return jsonify(governance.lock(services().settings.rules_dir, rid, services().rules.ledger))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "LOCK_REFUSED") from None
