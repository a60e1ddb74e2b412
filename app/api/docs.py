"""Swagger UI at /docs without the internet: its assets (swagger-ui-dist, as
shipped inside the flask-swagger-ui package, whose version tracks Swagger UI's)
are served by this service at /docs/assets/, instead of flask-smorest's
default CDN, so the page works on a network without internet access and
loads nothing from another host. A Content-Security-Policy on the page
enforces that in the browser: a future template change that pulls a script,
font or the online validator badge from elsewhere is blocked (and caught by
tests/browser/test_docs_offline.py)."""
from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, redirect, request, send_from_directory, url_for

ASSETS_URL = "/docs/assets/"
ASSETS_DIR = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

# The page's own inline bootstrap script and Swagger UI's inline styles need
# 'unsafe-inline'; its icons are data: URIs. Nothing from another origin.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

#: flask-smorest settings: where the page loads Swagger UI from, and no call
#: to the public validator service (validator.swagger.io) for its badge.
SWAGGER_UI_SETTINGS = {
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}

#: the page itself is flask-smorest's (api-docs.openapi_swagger_ui); this
#: blueprint serves what is around it, labelled `swagger_ui` in the request
#: log and metrics
blp = Blueprint("swagger_ui", __name__, url_prefix=SWAGGER_UI_SETTINGS["OPENAPI_SWAGGER_UI_PATH"])


@blp.route(ASSETS_URL.removeprefix(blp.url_prefix).rstrip("/") + "/<path:filename>",
           methods=["GET"])
def asset(filename: str):
    """A file of swagger-ui-dist (404 for anything else), cached for a day."""
    return send_from_directory(ASSETS_DIR, filename, max_age=86400)


@blp.route("/", methods=["GET"])
def redirect_to_page():
    """/docs/ is what people type after /docs/assets/ or from habit: a
    permanent redirect to the page rather than a 404 (its link is the
    service's own, under any SCRIPT_NAME, never the client's)."""
    return redirect(url_for("api-docs.openapi_swagger_ui"), 308)


def install_docs(app: Flask) -> None:
    """Serve the assets and put the policy on the /docs page."""
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"Swagger UI assets missing in {ASSETS_DIR}: reinstall flask-swagger-ui")
    app.register_blueprint(blp)

    @app.after_request
    def _docs_policy(response):
        if request.path == SWAGGER_UI_SETTINGS["OPENAPI_SWAGGER_UI_PATH"]:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response
