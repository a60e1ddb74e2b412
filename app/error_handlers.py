"""The Flask error handlers that turn every exception a request can meet into
a TMF Error body (app/errors.py builds the bodies): the service's own
TMFError, werkzeug's HTTP errors, a store that cannot serve, a broken body
framing, a superseded activation, a full disk, and anything unexpected (500,
logged with the request id, no detail to the client).

Here, above every layer, because it maps the exceptions of the store and
the rules to HTTP; the layers themselves raise them without knowing HTTP."""
from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from .errors import (REASONS, TMFError, error_response, status_code_name, storage_error, storage_error_behind,
                     store_unavailable_reason)
from .rules.repository.pointer import Superseded
from .store.base import DuplicateId, StoreUnavailable

try:    # the production server's errors for a body whose framing is broken
    from gunicorn.http.errors import NoMoreData, ParseException
    WIRE_ERRORS: tuple[type[BaseException], ...] = (ParseException, NoMoreData)
except ImportError:     # another WSGI server: werkzeug's own errors are HTTPExceptions
    WIRE_ERRORS = ()

log = logging.getLogger("app.errors")

#: the blueprints of rules changes (save, keep, approve, activate, roll back,
#: cases, experiments): a full disk is 507 INSUFFICIENT_STORAGE there, as the
#: docs and the Studio say, whether the rule files' write or the store's
#: (the history, the records) was refused first
RULES_CHANGES = ("rules_admin", "experiments", "studio")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(TMFError)
    def _tmf_error(exc: TMFError):
        if exc.log_detail:
            log.error("%s %s: %s", exc.status, exc.code, exc.log_detail)
        return error_response(exc.status, exc.message, reason=exc.reason,
                              code=exc.code, details=exc.details, headers=exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or REASONS.get(status, "Error")
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        if status == 404:
            message = "No resource or operation at this URL"
        if status == 413:
            message = "The request body is larger than this service accepts"
        # flask-smorest aborts with 422 and the field messages for invalid input;
        # TMF asks for 400 Bad Request there.
        details = None
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and data.get("messages"):
            details = data["messages"]
        if status == 422:
            status, message = 400, "The request does not match the API's schema"
            code = "INVALID_BODY"
        else:
            code = status_code_name(status)
        return error_response(status, message, code=code, details=details, headers=headers)

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable):
        # Disk full, read-only data directory, database unreachable: the
        # operator's problem, not the request's; nothing was written, so the
        # client may retry later.
        # The detail (path, database address, driver message) is logged with
        # the request id; the client gets its kind in plain words.
        log.error("storage unavailable: %s", exc)
        refused = storage_error_behind(exc) if request.blueprint in RULES_CHANGES else None
        if refused is not None:
            return error_response(refused.status, refused.message, reason=refused.reason, code=refused.code,
                                  headers=refused.headers)
        return error_response(503, f"Storage unavailable ({store_unavailable_reason(exc)}): "
                                   "nothing was written; retry later", code="STORE_UNAVAILABLE",
                              reason="Storage Unavailable", headers={"Retry-After": "30"})

    def _unreadable_body(exc: Exception):
        # gunicorn parses a chunked body lazily, while the view reads it: a
        # chunk size that is no number, a chunk without its CRLF, a body cut
        # short raise there. The client's framing, not the service, failed.
        log.info("unreadable request body: %s", exc)
        return error_response(400, "The request body cannot be read: its chunked transfer "
                                   "coding is malformed or cut short", code="INVALID_BODY_ENCODING")

    for wire_error in WIRE_ERRORS:
        app.register_error_handler(wire_error, _unreadable_body)

    @app.errorhandler(DuplicateId)
    def _duplicate_id(exc: DuplicateId):
        return error_response(409, f"A resource with id {exc.doc_id!r} already exists",
                              code="CONFLICT")

    @app.errorhandler(Superseded)
    def _superseded(exc: Superseded):
        # Two activations at once (admin API, Rule Studio): the pointer's
        # compare-and-set let the other one win and wrote nothing for this one.
        return error_response(409, f"Not activated: {exc}. Check what is active now, then "
                                   "retry if this activation should win", code="SUPERSEDED")

    @app.errorhandler(OSError)
    def _os_error(exc: OSError):
        refused = storage_error(exc)
        if refused is None:
            return _unexpected(exc)
        log.error("a file write failed: %s", exc)
        return error_response(refused.status, refused.message, reason=refused.reason, code=refused.code,
                              headers=refused.headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "The service failed to process the request; it has been logged",
                              code="INTERNAL_ERROR")
