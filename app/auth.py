"""Optional API-key protection. Off by default so the demo runs as is; an
operator who sets keys gets every write (and, if asked, every read) checked.
Keys are compared in constant time and never logged."""
from __future__ import annotations

import hmac

from flask import Flask, request

from .errors import TMFError

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_PATHS = ("/health", "/openapi.json", "/docs", "/schemas/")


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def _matches(presented: str | None, keys: list[str]) -> bool:
    if not presented:
        return False
    found = False
    for key in keys:  # no early exit: timing says nothing about which key
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def install_auth(app: Flask, api_keys: list[str], admin_keys: list[str],
                 protect_reads: bool, metrics_keys: list[str] = ()) -> None:
    """/metrics takes the admin keys (else the API keys) and the metrics
    keys, so a Prometheus server's key cannot change rules or data."""
    if not api_keys and not admin_keys and not metrics_keys:
        return

    @app.before_request
    def _authenticate():
        path = request.path
        if path.startswith(OPEN_PATHS):
            return None
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
        if not _matches(_presented_key(), keys):
            raise TMFError(401, "A valid API key is required: send 'Authorization: Bearer <key>'"
                                " or 'X-API-Key: <key>'", code="UNAUTHORIZED",
                           headers={"WWW-Authenticate": 'Bearer realm="tmf-recommender"'})
        return None
