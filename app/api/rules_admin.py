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
rolling back need one always. They are tooling, not TMF APIs, documented in
the OpenAPI document under the tag "Rule administration".
"""
from __future__ import annotations

import datetime as dt

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint

from ..auth import require_admin
from ..decisions.impact import RECORDED_PROPERTIES, recorded_traffic
from ..errors import TMFError
from ..jsonbody import read_json_object
from ..recommend.query import KIND as QUERY_KIND, context_from_query
from ..rules.authoring import governance, saving
from ..rules.authoring import workbench as authoring
from ..rules.model.source import max_file_bytes
from ..services import services
from ..experiments.lint import add_experiment_findings
from .tmf import ErrorSchema

blp = Blueprint("rules_admin", __name__, url_prefix="/admin/rules", description="Rule administration")

MAX_RECENT = 1000
_ERRORS = {code: {"description": "TMF Error", "content": {"application/json": {"schema": ErrorSchema}}}
           for code in ("400", "401", "403", "404", "409", "413", "415", "422", "428", "503", "507")}


def _doc(summary: str, description: str = "", body: dict | None = None, parameters: list | None = None,
         response: dict | None = None, text: bool = False) -> dict:
    """`text`: the answer may also be text/plain (`format=text`, as the CLI prints it)."""
    content = {"application/json": {"schema": response or {"type": "object"}}}
    if text:
        content["text/plain"] = {"schema": {"type": "string"}}
    doc = {"summary": summary, "description": description, "tags": ["Rule administration"],
           "responses": {"200": {"description": "The answer", "content": content}, **_ERRORS}}
    if body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if parameters:
        doc["parameters"] = parameters
    return doc


def _obj(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or []}


_TEXT = {"type": "string"}
_OPTIONAL = {"type": "string", "nullable": True}
FORMATS = ("json", "text")
_RULESET_PARAM = {"in": "query", "name": "rulesetId", "schema": _TEXT,
                  "description": "The rule set (default: the one in service)"}


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


def _field(body: dict, key: str, required: bool = True, kind=str):
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        what = {str: "text", int: "a whole number", bool: "true or false", dict: "an object",
                list: "a list"}[kind]
        raise TMFError(400, f"`{key}` must be {what}", code="INVALID_BODY")
    return value


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
def status():
    reco = services()
    reco.rules.refresh()
    return jsonify(reco.rules.status())


@blp.route("/overview", methods=["GET"])
@blp.doc(**_doc("Every rule set with its versions, lint findings and activations",
                "As `flask rules versions` (status, active, pinned, lock state) and `flask rules lint` "
                "(file:line:column, rule, check, fix) for every rule set in the rules folder."))
def overview():
    settings = services().settings
    return jsonify(authoring.rulesets_overview(services().rules, settings.rules_dir, settings.catalog_dir,
                                                more_lint=add_experiment_findings))


@blp.route("/activations", methods=["GET"])
@blp.doc(**_doc("The activation history, newest first", "Who activated which version, when, from which "
                "version (also `flask rules activate`).", parameters=[_RULESET_PARAM],
                response={"type": "array", "items": {"type": "object"}}))
def activations():
    rid = request.args.get("rulesetId") or None
    return jsonify([h for h in governance.history(services().rules, rid) if h.get("action") in authoring.ACTIVATIONS])


@blp.route("/history", methods=["GET"])
@blp.doc(**_doc("The audit history, newest first", "Every save (version, content hash, the working copy it "
                "started from), record (a version's hash fixed), approval, activation and roll back: who, "
                "when, what (also `flask rules history`).", parameters=[_RULESET_PARAM],
                response={"type": "array", "items": {"type": "object"}}))
def history():
    rid = request.args.get("rulesetId") or None
    return jsonify(governance.history(services().rules, rid))


@blp.route("/vocabulary", methods=["GET"])
@blp.doc(**_doc("What the rule editor completes", "Property names of the rule set JSON Schema, condition "
                "names, and the catalog's offerings, categories and channels."))
def vocabulary():
    return jsonify(authoring.vocabulary(services().rules.catalog))


_EXPLAIN_DOC = _doc(
    "Explain one situation", "Body: a case context ({\"cart\": [\"6547\"], \"channel\": \"21\", \"time\": ...}), "
    "a whole case ({name, context}) or a TMF680 QueryProductRecommendation body (customer looked up in the "
    "store). Answer: every rule (fired, or the condition that failed with its line), every policy step, the "
    "final items, the catalog details of the offerings, and the context in the case format.",
    body={"type": "object"},
    parameters=[{"in": "query", "name": "version", "schema": _TEXT, "description": "A loaded version"},
                _RULESET_PARAM,
                {"in": "query", "name": "format", "schema": {"type": "string", "enum": list(FORMATS)}}],
    text=True)   # format=text answers as `flask rules explain` prints (found by the fuzz test)


@blp.route("/explain", methods=["POST"])
@blp.doc(**_EXPLAIN_DOC)
def explain():
    reco = services()
    if request.args.get("format", "json") not in FORMATS:
        raise TMFError(400, f"`format` is one of {', '.join(FORMATS)}", code="INVALID_QUERY")
    body = read_json_object()
    now = dt.datetime.now(authoring.UTC)
    if authoring.is_tmf680_query(body):
        context = context_from_query(body, reco.recommender.parties, now)
    else:
        try:
            _name, context = authoring.read_context(body, "request body", now)
        except authoring.RuleSetError as exc:
            raise TMFError(400, "The body is not a valid context: " + "; ".join(_problems(exc)),
                           code="INVALID_CONTEXT", details={"problems": _problems(exc)}) from None
    engine = _engine(request.args.get("version") or None, request.args.get("rulesetId") or None)
    explained = authoring.explain(engine, context)
    if request.args.get("format") == "text":
        text = "\n".join(authoring.explain_lines(explained, engine.catalog)) + "\n"
        return Response(text, mimetype="text/plain")
    return jsonify(explained)


@blp.route("/lint", methods=["POST"])
@blp.doc(**_doc("Lint unsaved rule set text", "As if it were saved as rules/<rulesetId>.yaml: every finding "
                "with line, column, rule, check (`code`) and fix (`hint`).",
                body=_obj({"rulesetId": _OPTIONAL, "text": _TEXT}, ["text"])))
def lint_text():
    body = read_json_object()
    text = _field(body, "text")
    rid = _ruleset_id(_field(body, "rulesetId", required=False))
    settings = services().settings
    try:
        return jsonify(authoring.lint_text(text, rid, settings.rules_dir, services().rules.catalog))
    except authoring.RuleSetError as exc:
        raise _invalid(exc) from None


@blp.route("/cases", methods=["POST"])
@blp.doc(**_doc("Run the regression cases", "The cases of a loaded version (default: the one in service): "
                "its kept cases rules/versions/<rulesetId>@<version>.cases.yaml, else rules/<rulesetId>.cases.yaml: "
                "passed and failed cases, expected vs actual and why, rule coverage.",
                body=_obj({"rulesetId": _OPTIONAL, "version": _OPTIONAL, "filter": _OPTIONAL})))
def cases():
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId", required=False))
    engine = _engine(_field(body, "version", required=False), rid)
    path = authoring.cases_file_of(services().settings.rules_dir, rid, engine.ruleset.version)
    if not path.exists():
        raise TMFError(404, f"Rule set {rid} has no regression cases ({path.name})", code="CASES_NOT_FOUND")
    try:
        return jsonify(authoring.run_cases(engine, path, _field(body, "filter", required=False)))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "INVALID_CASES") from None


@blp.route("/<ruleset_id>/cases", methods=["POST"])
@blp.doc(**_doc("Add a regression case", "Appends {name, context (the case format, as explain answers it), "
                "expect (offering ids in order), description} to rules/<id>.cases.yaml (the working cases), "
                "checked first and written atomically; 422 INVALID_CASE when the cases format refuses it "
                "(e.g. a name already used). Needs an admin key, always.",
                body=_obj({"name": _TEXT, "context": {"type": "object"},
                           "expect": {"type": "array", "items": _TEXT}, "description": _OPTIONAL},
                          ["name", "context", "expect"])))
def add_case(ruleset_id):
    require_admin()
    body = read_json_object()
    rid = _ruleset_id(ruleset_id)
    name = _field(body, "name")
    context = _field(body, "context", kind=dict)
    expect = _field(body, "expect", kind=list)
    if not all(isinstance(x, str) for x in expect):
        raise TMFError(400, "`expect` must be a list of offering ids (text)", code="INVALID_BODY")
    try:
        return jsonify(authoring.add_case(services().settings.rules_dir, rid, name, context, expect,
                                          _field(body, "description", required=False) or ""))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 422, "INVALID_CASE") from None


@blp.route("/impact", methods=["POST"])
@blp.doc(**_doc(
    "Compare two versions", "As `flask rules diff`: the rules added, removed and changed, and per situation the "
    "items gained, lost, reordered or recommended for other reasons. Situations: the regression cases "
    "(`cases`, default true), an uploaded JSON Lines file of contexts (`contexts`, its text) and the latest "
    "`recent` stored TMF680 queries, and recorded answers of the decision log (`recorded`: the last N, or "
    "`recordedSince`/`recordedUntil`, `recordedChannel`), weighted: `recordedTraffic`.",
    body=_obj({"rulesetId": _OPTIONAL, "old": _TEXT, "new": _TEXT, "cases": {"type": "boolean"},
               "contexts": _OPTIONAL, "contextsName": _OPTIONAL,
               "recent": {"type": "integer", "minimum": 0, "maximum": MAX_RECENT},
               **RECORDED_PROPERTIES}, ["old", "new"])))
def impact():
    reco = services()
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId", required=False))
    old_engine = _engine(_field(body, "old"), rid)
    new_engine = _engine(_field(body, "new"), rid)
    recent = _field(body, "recent", required=False, kind=int) or 0
    with_cases = _field(body, "cases", required=False, kind=bool)
    if not 0 <= recent <= MAX_RECENT:
        raise TMFError(400, f"`recent` must be 0 to {MAX_RECENT}", code="INVALID_BODY")
    contexts, skipped = [], 0
    try:
        if with_cases is not False:
            contexts += authoring.case_contexts(reco.settings.rules_dir, rid)
        text = _field(body, "contexts", required=False)
        if text:
            contexts += authoring.uploaded_contexts(text, _field(body, "contextsName", required=False)
                                                    or "upload.jsonl")
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
                "first if nothing is pinned. Recorded in the history. Needs an admin key, always.",
                body=_obj({"text": _TEXT}, ["text"]),
                parameters=[{"in": "header", "name": "If-Match", "required": True, "schema": _TEXT,
                             "description": "The ETag of GET .../working-copy"}]))
def save_working_copy(ruleset_id):
    who = require_admin()
    body = read_json_object()
    text = _field(body, "text")
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
                "history. Needs an admin key, always.",
                body=_obj({"rulesetId": _TEXT, "version": _OPTIONAL}, ["rulesetId"])))
def activate():
    who = require_admin()
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId"))
    try:
        return jsonify(governance.activate(services().rules, rid, _field(body, "version", required=False), who,
                                          require_approval=services().settings.rules_require_approval))
    except governance.ApprovalRequired as exc:
        raise _invalid(exc, 409, "APPROVAL_REQUIRED") from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "ACTIVATION_REFUSED") from None


@blp.route("/approve", methods=["POST"])
@blp.doc(**_doc("Approve a version for activation", "The version's current content (its hash) is approved by "
                "the key of this request, which must be another key than the one(s) that saved it (four "
                "eyes; 409 SAME_KEY). With RECO_RULES_REQUIRE_APPROVAL on, only an approved version can be "
                "activated. Recorded in the history. Needs an admin key, always.",
                body=_obj({"rulesetId": _TEXT, "version": _TEXT, "note": _OPTIONAL}, ["rulesetId", "version"])))
def approve():
    who = require_admin()
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId"))
    version = _field(body, "version")
    note = _field(body, "note", required=False) or ""
    try:
        return jsonify(governance.approve(services().rules, rid, version, who, note))
    except governance.SameKey as exc:
        raise _invalid(exc, 409, "SAME_KEY") from None
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "APPROVAL_REFUSED") from None


@blp.route("/rollback", methods=["POST"])
@blp.doc(**_doc("Roll back", "Activate the version that served before the latest activation (from the "
                "history). Needs an admin key, always.", body=_obj({"rulesetId": _TEXT}, ["rulesetId"])))
def rollback():
    who = require_admin()
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId"))
    try:
        return jsonify(governance.rollback(services().rules, rid, who))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "ROLLBACK_REFUSED") from None


@blp.route("/lock", methods=["POST"])
@blp.doc(**_doc("Record new versions in the lock file", "As `flask rules lock` (never --amend): the content "
                "hash of every version not yet in rules/<id>.lock.json; a recorded version whose content "
                "changed is listed as refused. Needs an admin key, always.",
                body=_obj({"rulesetId": _TEXT}, ["rulesetId"])))
def lock():
    require_admin()
    body = read_json_object()
    rid = _ruleset_id(_field(body, "rulesetId"))
    try:
        return jsonify(governance.lock(services().settings.rules_dir, rid, services().rules.ledger))
    except authoring.RuleSetError as exc:
        raise _invalid(exc, 409, "LOCK_REFUSED") from None
