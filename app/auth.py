"""Optional API-key protection. Off by default so the demo runs as is; an
operator who sets keys gets every write (and, if asked, every read) checked.
Keys are compared in constant time and never logged."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, request, session
from flask.sessions import NullSession

from .errors import TMFError
from .sessions import is_open
from .services import services

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
STUDIO_PATH = "/studio"
OPEN_PATHS = ("/health", "/openapi.json", "/docs", "/schemas/")


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def key_matches(presented: str | None, keys: list[str]) -> bool:
    if not presented:
        return False
    found = False
    for key in keys:  # no early exit: timing says nothing about which key
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def key_fingerprint(key: str) -> str:
    """A short, non-reversible name of a key (for sessions and the activation
    history; the key itself is never stored)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def csrf_token() -> str:
    """The browser session's CSRF token (synchroniser token pattern, OWASP
    CSRF Prevention Cheat Sheet): put in every form and sent back by the
    studio's scripts in the X-CSRF-Token header."""
    if isinstance(session, NullSession):      # no session secret yet (a full data directory)
        return ""                             # no token: csrf_valid() refuses every change
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid() -> bool:
    token = session.get("csrf")
    presented = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    return isinstance(token, str) and bool(presented) and hmac.compare_digest(token.encode(), presented.encode())


def session_login(keys: list[str]) -> dict | None:
    """The studio login in the signed session cookie, if its key is still
    configured and it was not logged out (app/sessions.py)."""
    login = session.get("admin")
    if (isinstance(login, dict) and login.get("key") in {key_fingerprint(k) for k in keys}
            and is_open(login.get("sid"))):
        return login
    return None


def admin_identity(keys: list[str], require_csrf: bool) -> str | None:
    """Who makes this admin request: a key in the Authorization/X-API-Key
    header, or a studio login (whose state-changing requests must carry the
    CSRF token: a cookie is sent by the browser on its own, a header is not)."""
    presented = presented_key()
    if presented and key_matches(presented, keys):
        return f"key {key_fingerprint(presented)}"
    login = session_login(keys)
    if login and (not require_csrf or csrf_valid()):
        return f"{login.get('name') or 'studio'} (key {login['key']})"
    return None


def configured_admin_keys() -> list[str]:
    settings = services().settings
    return settings.admin_keys or settings.api_keys


def require_admin() -> str:
    """For saving, activating and rolling back: a key is always needed, also
    when none is configured for reading. Returns who (for the history);
    raises a TMF Error 403 (no key configured) or 401."""
    keys = configured_admin_keys()
    if not keys:
        raise TMFError(403, "Saving, activating and rolling back rules need an admin key: "
                            "start the service with RECO_ADMIN_KEYS set", code="ADMIN_KEY_REQUIRED")
    who = admin_identity(keys, require_csrf=True)
    if who is None:
        if session_login(keys) is not None:
            raise TMFError(403, "The CSRF token is missing or wrong: reload the page", code="CSRF_FAILED")
        raise TMFError(401, "A valid admin key is required: send 'Authorization: Bearer <key>'",
                       code="UNAUTHORIZED", headers={"WWW-Authenticate": 'Bearer realm="tmf-recommender"'})
    return who


def install_auth(app: Flask, api_keys: list[str], admin_keys: list[str],
                 protect_reads: bool, metrics_keys: list[str]) -> None:
    """/metrics takes the admin keys (else the API keys) and the metrics
    keys, so a Prometheus server's key cannot change rules or data."""
    if not api_keys and not admin_keys and not metrics_keys:
        return

    @app.before_request
    def _authenticate():
        path = request.path
        if path.startswith(OPEN_PATHS) or path == STUDIO_PATH or path.startswith(STUDIO_PATH + "/"):
            return None                  # the studio checks its own login (app/studio/)
        if path.startswith("/admin/"):
            keys = admin_keys or api_keys
        elif path == "/metrics":
            keys = [*metrics_keys, *(admin_keys or api_keys)]
        elif request.method in WRITE_METHODS or protect_reads:
            keys = api_keys
        else:
            return None
        if not keys:
            return None
        if path.startswith("/admin/"):
            if admin_identity(keys, require_csrf=request.method in WRITE_METHODS) is not None:
                return None
        elif key_matches(presented_key(), keys):
            return None
        raise TMFError(401, "A valid API key is required: send 'Authorization: Bearer <key>'"
                            " or 'X-API-Key: <key>'", code="UNAUTHORIZED",
                       headers={"WWW-Authenticate": 'Bearer realm="tmf-recommender"'})
