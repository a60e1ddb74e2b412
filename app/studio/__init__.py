"""Rule Studio: the product managers' web page at /studio.

Server-rendered pages (Jinja, autoescaped) and one small vanilla script
(static/studio.js, no CDN, nothing fetched from another host) that calls the
/admin/rules JSON endpoints, i.e. the same engine and authoring functions as
`flask rules ...` (app/rules/authoring).

Security (SECURITY.md, "Rule Studio"):
- Reading needs an admin key when RECO_ADMIN_KEYS (else RECO_API_KEYS) is
  set: the login form checks the key once and keeps only its fingerprint in
  the signed session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS),
  with a session id that logout revokes on the server (app/sessions.py). Saving, activating
  and rolling back always need a key (app/auth.py require_admin).
- Every state-changing request carries the session's CSRF token (form field
  or X-CSRF-Token header).
- Content-Security-Policy without inline scripts or styles, no framing,
  nosniff, no referrer; every value is escaped by Jinja or set as textContent.
"""
from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for

from ..auth import (CSRF_FIELD, configured_admin_keys, csrf_token, csrf_valid, key_fingerprint, key_matches,
                    presented_key, require_admin, session_login)
from ..atomicfile import create_once
from ..decisions.conversion import conversion_report, parse_range
from ..errors import TMFError, storage_error, storage_error_behind
from ..services import services
from ..sessions import StudioSessionInterface, close_session, open_session
from ..store.base import StoreUnavailable
from ..rules.authoring import governance
from ..rules.authoring import workbench as authoring
from ..experiments.lint import add_experiment_findings

bp = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates",
               static_folder="static", static_url_path="/static")

SECRET_FILE = "studio-session-secret"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGES = [("studio.overview", "Rule sets"), ("studio.playground", "Playground"), ("studio.cases", "Cases"),
         ("studio.impact", "Impact"), ("studio.edit", "Edit"), ("studio.conversion", "Conversion"),
         ("studio.experiments", "Experiments")]


def init_app(app: Flask, data_dir: Path, secret_key: str | None = None) -> None:
    """Register the studio; sign its sessions with a secret shared by every
    worker (secret_key: RECO_SECRET_KEY, else a random one kept in the data
    directory)."""
    secret_file = Path(data_dir) / SECRET_FILE
    if not app.secret_key:
        app.secret_key = secret_key or _secret_if_room(app, secret_file)
    app.config.update(SESSION_COOKIE_NAME="reco_studio", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/")
    # Secure over HTTPS; read only under /studio and /admin/; the secret made
    # on first use when the data directory had no room at start
    app.session_interface = StudioSessionInterface(lambda: _secret_if_room(app, secret_file))
    app.register_blueprint(bp)


def _secret_if_room(app: Flask, path: Path) -> str | None:
    """_stored_secret, or None when the disk refuses to create it (full,
    over quota, read-only): the service starts and every `flask` command
    runs without the Studio's secret; the Studio answers 507/503 until
    there is room (_gate), and header keys work on /admin/ meanwhile."""
    try:
        return _stored_secret(path)
    except OSError as exc:
        if storage_error(exc) is None:
            raise
        app.logger.warning("the Studio's session secret cannot be created in %s: %s", path.parent, exc.strerror)
        app.config["STUDIO_SESSION_SECRET_ERROR"] = exc
        return None


def _stored_secret(path: Path) -> str:
    """Created once, complete, mode 0600 (app.atomicfile.create_once: a temp
    file hard-linked to its name, which fails if another worker was first):
    every worker and restart reads the same secret, never a half-written one."""
    if not path.exists():
        create_once(path, secrets.token_hex(32).encode("ascii"), 0o600, "secret-tmp")
    return path.read_text(encoding="ascii").strip()


def _can_read() -> bool:
    keys = configured_admin_keys()
    return not keys or session_login(keys) is not None or key_matches(presented_key(), keys)


@bp.before_request
def _gate():
    if request.endpoint == "studio.static":
        return None
    if not current_app.secret_key:        # the data directory had no room for it (_secret_if_room)
        cause = current_app.config.get("STUDIO_SESSION_SECRET_ERROR")
        raise (storage_error(cause) if cause else None) or TMFError(
            503, "The Studio has no session secret: set RECO_SECRET_KEY", code="STORAGE_UNAVAILABLE")
    if request.endpoint == "studio.login":
        return None
    if not _can_read():
        if request.method != "GET":
            raise TMFError(401, "Log in with an admin key first", code="UNAUTHORIZED")
        return redirect(url_for("studio.login", next=request.full_path.rstrip("?")))
    return None


@bp.errorhandler(TMFError)
def _refused(exc: TMFError):
    """A refused form post (no key, no CSRF token) as a page, with the same status."""
    return render_template("studio/error.html", error=exc), exc.status


@bp.errorhandler(OSError)
def _disk_refused(exc: OSError):
    """A form post whose write the disk refused (full: 507; read-only: 503) as a page."""
    refused = storage_error(exc)
    if refused is None:
        current_app.logger.exception("unhandled error")
        refused = TMFError(500, "The service failed to process the request; it has been logged",
                           code="INTERNAL_ERROR")
    return render_template("studio/error.html", error=refused), refused.status


@bp.errorhandler(StoreUnavailable)
def _store_refused(exc: StoreUnavailable):
    """A form post whose history entry or record the store refused: for a
    full disk the same 507 page as a refused file write (one answer,
    whichever write came first); else the service's 503."""
    current_app.logger.error("storage unavailable: %s", exc)
    refused = storage_error_behind(exc) or TMFError(
        503, "Storage unavailable: nothing was written; retry later", code="STORE_UNAVAILABLE",
        headers={"Retry-After": "30"})
    return render_template("studio/error.html", error=refused), refused.status


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "studio.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _template_values():
    keys = configured_admin_keys()
    login = session_login(keys) if keys else None
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "studio_pages": PAGES,
            "keys_configured": bool(keys), "login": login}


# --------------------------------------------------------------------------- login
def _safe_next(target: str | None) -> str:
    """Where the login goes on: `target` only when it is a path of this site
    inside /studio, as a browser will read it (WHATWG URL: "\\" is "/",
    "%2e%2e" is "..", tabs and newlines are dropped), else the overview.
    Refused: absolute URLs, "//host" and "\\host", any "." or ".." segment
    (also percent-encoded), and /studio-lookalikes such as /studiox."""
    fallback = url_for("studio.overview")
    if not target or any(c in target for c in "\\\t\r\n") or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    segments = unquote(parts.path).split("/")
    if any(segment in (".", "..") for segment in segments) or "\\" in unquote(parts.path):
        return fallback
    if not (parts.path == "/studio" or parts.path.startswith("/studio/")):
        return fallback
    return target


def _check_csrf() -> None:
    if not csrf_valid():
        raise TMFError(403, "The CSRF token is missing or wrong: reload the page", code="CSRF_FAILED")


@bp.route("/login", methods=["GET", "POST"])
def login():
    keys = configured_admin_keys()
    error = None
    if request.method == "POST":
        _check_csrf()
        name = (request.form.get("name") or "").strip()[:60]
        key = request.form.get("key") or ""
        if not keys:
            error = "No admin key is configured (RECO_ADMIN_KEYS): the studio is open for reading only."
        elif not name:
            error = "Give your name: it is recorded with every activation."
        elif not key_matches(key, keys):
            error = "This key is not valid."
        else:
            close_session((session.get("admin") or {}).get("sid"))   # a login replaces the one before
            session.clear()
            fingerprint = key_fingerprint(key)
            session["admin"] = {"name": name, "key": fingerprint, "sid": open_session(name, fingerprint)}
            csrf_token()
            return redirect(_safe_next(request.form.get("next")))
    status = 401 if error and keys else 200
    return render_template("studio/login.html", error=error, next=_safe_next(request.args.get("next")
                                                                           or request.form.get("next"))), status


@bp.route("/logout", methods=["POST"])
def logout():
    _check_csrf()
    close_session((session.get("admin") or {}).get("sid"))    # this cookie, and every copy of it, ends here
    session.clear()
    return redirect(url_for("studio.login"))


# --------------------------------------------------------------------------- pages
def _ruleset_choice():
    rules = services().rules
    rules.refresh()
    status = rules.status()
    rid = request.args.get("rulesetId") or status.get("rulesetId")
    if rid not in status.get("rulesets", []):
        rid = status.get("rulesetId")
    return rid, status, rules.versions(rid) if rid else []


def _page(template: str, **values):
    rid, status, versions = _ruleset_choice()
    catalog = services().rules.catalog
    return render_template(template, ruleset_id=rid, status=status, versions=versions,
                           vocabulary=authoring.vocabulary(catalog), **values)


@bp.route("", methods=["GET"])
@bp.route("/", methods=["GET"])
def overview():
    settings = services().settings
    data = authoring.rulesets_overview(services().rules, settings.rules_dir, settings.catalog_dir,
                                      more_lint=add_experiment_findings)
    return render_template("studio/overview.html", data=data, status=data["status"])


@bp.route("/playground", methods=["GET"])
def playground():
    return _page("studio/playground.html")


@bp.route("/cases", methods=["GET"])
def cases():
    return _page("studio/cases.html")


@bp.route("/impact", methods=["GET"])
def impact():
    return _page("studio/impact.html")


@bp.route("/edit", methods=["GET"])
def edit():
    return _page("studio/edit.html")


@bp.route("/conversion", methods=["GET"])
def conversion():
    since, until = parse_range(request.args.get("since") or None, request.args.get("until") or None)
    report = conversion_report(services(), request.args.get("ruleSetId") or None, None, since, until,
                               request.args.get("channel") or None)
    by = request.args.get("by") if request.args.get("by") in FUNNEL_BY else "ruleSetVersion"
    return render_template("studio/conversion.html", report=report, status=services().rules.status(),
                           funnel_by=by, funnel_key=FUNNEL_BY[by], filters=request.args)


#: the funnel's dimensions and the key of their rows (app/decisions/funnel.py)
FUNNEL_BY = {"ruleSetVersion": None, "rule": "ruleId", "offering": "offeringId",
             "channel": "channelId", "segment": "segment"}


# --------------------------------------------------------------------------- activate, roll back
@bp.route("/activate", methods=["GET"])
def review_activation():
    """The impact of activating a version (on the regression cases), then the button."""
    rid, status, versions = _ruleset_choice()
    version = request.args.get("version") or ""
    target = next((v for v in versions if v["version"] == version), None)
    serving = next((v for v in versions if v["active"]), None)
    report, error = None, None
    if target is None:
        error = f"{rid} has no version {version!r}."
    elif not target["valid"]:
        error = f"{rid} {version} has errors and cannot be activated."
    elif target.get("changed"):
        error = (f"{rid} {version} cannot be activated: its file {target['file']} holds other content "
                 f"(hash {target['hash']}) than recorded for {version} (hash {target['recordedHash']}).")
    elif serving is not None:
        rules = services().rules
        try:
            report = authoring.impact(rules.engine_of(serving["version"], rid), rules.engine_of(version, rid),
                                      authoring.case_contexts(services().settings.rules_dir, rid))
        except authoring.RuleSetError as exc:
            error = "; ".join(authoring.problems_of(exc))
    reviewed = None
    if target is not None and error is None:
        reviewed = governance.review(services().rules, rid, version)
    return render_template("studio/activate.html", ruleset_id=rid, version=version, target=target,
                           serving=serving, report=report, error=error, status=status, reviewed=reviewed,
                           require_approval=services().settings.rules_require_approval)


@bp.route("/approve", methods=["POST"])
def approve():
    who = require_admin()
    rid = request.form.get("rulesetId") or ""
    version = request.form.get("version") or ""
    try:
        governance.approve(services().rules, rid, version, who, request.form.get("note") or "")
    except authoring.RuleSetError as exc:
        flash("Not approved: " + "; ".join(authoring.problems_of(exc)), "error")
    else:
        flash(f"{rid} {version} is approved.", "ok")
    return redirect(url_for("studio.review_activation", rulesetId=rid, version=version))


@bp.route("/activate", methods=["POST"])
def activate():
    who = require_admin()
    rid = request.form.get("rulesetId") or ""
    version = request.form.get("version") or None
    try:
        done = governance.activate(services().rules, rid, version, who, expected_from=request.form.get("from"),
                                  require_approval=services().settings.rules_require_approval)
    except governance.StaleForm as exc:
        flash(f"Not activated: {exc}.", "error")
        return redirect(url_for("studio.overview"))
    except authoring.RuleSetError as exc:
        flash("Not activated: " + "; ".join(authoring.problems_of(exc)), "error")
        return redirect(url_for("studio.overview"))
    if done["activation"] is None:
        flash(f"{rid} {version} was already active: nothing was done.", "ok")
        return redirect(url_for("studio.overview"))
    flash(f"{rid} {done['activation']['version']} is active (it was {done['activation']['fromVersion']}).", "ok")
    return redirect(url_for("studio.overview"))


@bp.route("/rollback", methods=["POST"])
def rollback():
    who = require_admin()
    rid = request.form.get("rulesetId") or ""
    try:
        done = governance.rollback(services().rules, rid, who, expected_from=request.form.get("from"))
    except governance.StaleForm as exc:
        flash(f"Not rolled back: {exc}.", "error")
        return redirect(url_for("studio.overview"))
    except authoring.RuleSetError as exc:
        flash("Not rolled back: " + "; ".join(authoring.problems_of(exc)), "error")
        return redirect(url_for("studio.overview"))
    flash(f"Rolled back: {rid} {done['activation']['version']} is active again.", "ok")
    return redirect(url_for("studio.overview"))


@bp.route("/lock", methods=["POST"])
def lock():
    require_admin()
    rid = request.form.get("rulesetId") or ""
    try:
        done = governance.lock(services().settings.rules_dir, rid, services().rules.ledger)
    except authoring.RuleSetError as exc:
        flash("Not recorded: " + "; ".join(authoring.problems_of(exc)), "error")
        return redirect(url_for("studio.overview"))
    for change in done["changes"]:
        if change["action"] != "unchanged":
            flash(change["text"], "error" if change["action"] == "refused" else "ok")
    return redirect(url_for("studio.overview"))


from . import experiments as _experiments  # noqa: E402,F401 - registers the Experiments pages on bp
