"""Rule Studio logins that end at logout, on every worker and every host.

The studio's session cookie is signed (Flask), so a client cannot forge it,
but a signed cookie alone cannot be revoked: a copy saved before logout kept
reading pages and, with its CSRF token, saving rules. So each login also gets
a random session id (32 bytes, secrets.token_urlsafe) kept in the cookie, and
a document in the store (collection `studioSession`, id: the SHA-256 of the
session id, so the store never holds a usable value):

    {"id": "<sha256 hex>", "name": "Ana", "key": "<key fingerprint>",
     "createdAt": "2026-10-01T09:00:00Z"}

A request's login counts only while that document exists and is younger
than MAX_AGE (one store read per studio or /admin request made with the
cookie); logout deletes it, and each login deletes the expired ones. The
store is the one every worker and host shares (TinyDB files or PostgreSQL),
so a logout holds everywhere at once. OWASP Session Management Cheat Sheet,
"Session Expiration: Manual Session Expiration".

Also here: the cookie gets `Secure` whenever the request came over HTTPS,
including through a trusted proxy (gunicorn's forwarded_allow_ips and
X-Forwarded-Proto: https set the request's scheme), so it is never sent back
over plain HTTP.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import g, request
from flask.sessions import SecureCookieSessionInterface

from .services import services
from .timeutil import isoformat, parse_datetime

COLLECTION = "studioSession"
#: absolute lifetime of a login (OWASP: "Absolute Timeout"): a working day
MAX_AGE = dt.timedelta(hours=12)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _expired(doc: dict) -> bool:
    try:
        created = parse_datetime(doc.get("createdAt"))
    except ValueError:
        return True
    return created is None or _now() - created >= MAX_AGE


def _doc_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _store():
    return services().store


def open_session(name: str, key_fingerprint: str) -> str:
    """Record a new login; returns its session id (for the signed cookie)."""
    store = _store()
    for doc in store.all(COLLECTION):               # logins nobody logged out of
        if _expired(doc):
            store.delete(COLLECTION, doc["id"])
    session_id = secrets.token_urlsafe(32)
    store.insert(COLLECTION, {"id": _doc_id(session_id), "name": name, "key": key_fingerprint,
                              "createdAt": isoformat(_now())})
    return session_id


def is_open(session_id) -> bool:
    """Whether the login with this session id has not been closed (read once per request)."""
    if not isinstance(session_id, str) or not session_id:
        return False
    known = g.setdefault("studio_sessions", {})
    if session_id not in known:
        doc = _store().get(COLLECTION, _doc_id(session_id))
        known[session_id] = doc is not None and not _expired(doc)
    return known[session_id]


def close_session(session_id) -> None:
    """End a login everywhere (idempotent)."""
    if isinstance(session_id, str) and session_id:
        _store().delete(COLLECTION, _doc_id(session_id))
        g.setdefault("studio_sessions", {})[session_id] = False


#: Where the signed-cookie session is read: the Studio and the admin API.
SESSION_PATHS = ("/studio", "/admin/")


class StudioSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure on HTTPS requests (also
    when SESSION_COOKIE_SECURE is off, which plain-HTTP development needs).

    It exists only where it is used: the Rule Studio and the admin API (a
    studio login with its CSRF token). Every other request gets Flask's null
    session (empty, refuses writes) without reading the cookie or building
    the signing serializer: the TMF APIs carry keys in headers, and opening
    the session on every instant recommendation was measured among the
    per-request overheads."""

    def __init__(self, make_secret=None):
        #: () -> str | None: the shared secret, made when the data directory
        #: had no room for it at start (None: still no room)
        self.make_secret = make_secret

    def open_session(self, app, request):
        path = request.path
        if path == SESSION_PATHS[0] or path.startswith((SESSION_PATHS[0] + "/", SESSION_PATHS[1])):
            if not app.secret_key and self.make_secret is not None:
                app.secret_key = self.make_secret()
            return super().open_session(app, request)      # None without a secret: Flask's null session
        return self.make_null_session(app)

    def get_cookie_secure(self, app) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)
