"""TMF Error bodies for every 4xx and 5xx, so a client never sees an HTML page
or a stack trace, whatever part of the stack rejected the request.

A client's error carries no internal detail: no server path, no database
user, host, port or name, no driver or exception text. An error that has
such detail (a store that cannot serve, no usable rule set) gives the client
a named `code` and a plain message, and the detail goes to the log, where
every record carries the request's id (app/observability: X-Request-ID, also
in the answer's headers) so that an operator finds it from the client's
report.

The Flask handlers that turn exceptions into these bodies are in
app/error_handlers.py (above every layer); this module imports no layer."""
from __future__ import annotations

import errno
import logging

log = logging.getLogger(__name__)

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# The `code` of an error raised without a more precise one: named, upper-snake
# and stable, like every other code, so a client can branch on `code` without
# parsing numbers (the HTTP status is in `status` already).
STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "BODY_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def status_code_name(status: int) -> str:
    """The named `code` for an HTTP status: STATUS_CODES, else HTTP_<status>
    (still not a bare number)."""
    return STATUS_CODES.get(status, f"HTTP_{status}")


MAX_DETAILS = 50


def bounded_details(details, limit: int = MAX_DETAILS):
    """The first `limit` messages of a (nested) validation error report, and
    how many were left out: an invalid 1 MB array must not answer with ten
    times as many bytes."""
    budget = [limit]
    skipped = [0]

    def walk(node):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if budget[0] <= 0:
                    skipped[0] += _count(value)
                    continue
                out[key] = walk(value)
            return out
        budget[0] -= 1
        return node

    if not isinstance(details, dict):
        return details
    trimmed = walk(details)
    if skipped[0]:
        trimmed["_truncated"] = f"{skipped[0]} more problem(s) not shown"
    return trimmed


def _count(node) -> int:
    if isinstance(node, dict):
        return sum(_count(value) for value in node.values())
    return 1


class TMFError(Exception):
    """An error meant for the client: status, a short reason, and details."""

    def __init__(self, status: int, message: str, *, reason: str | None = None,
                 code: str | None = None, details=None, headers: dict | None = None,
                 log_detail: str | None = None):
        """`message` and `details` go to the client: plain words about the
        request, never internals. `log_detail` (the exception text, paths,
        the rule file problems behind a 503) goes only to the log, with the
        request id."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or REASONS.get(status, "Error")
        self.code = code or status_code_name(status)
        self.details = details
        self.headers = headers or {}
        self.log_detail = log_detail

    def body(self) -> dict:
        return error_body(self.status, self.message, reason=self.reason,
                          code=self.code, details=self.details)


def error_body(status: int, message: str, *, reason: str | None = None,
               code: str | None = None, details=None) -> dict:
    body = {
        "code": code or status_code_name(status),
        "reason": reason or REASONS.get(status, "Error"),
        "message": message,
        "status": str(status),
        "@type": "Error",
    }
    if details:
        body["details"] = bounded_details(details)
    return body


def error_response(status: int, message: str, **kwargs):
    # Flask on use: processes that serve no HTTP (the event dispatcher)
    # import this module for TMFError and need no web framework
    from flask import jsonify
    headers = kwargs.pop("headers", None) or {}
    response = jsonify(error_body(status, message, **kwargs))
    response.status_code = status
    for key, value in headers.items():
        response.headers[key] = value
    return response


#: What a store's failure is, in plain words, by the errno of the OSError
#: behind it (TinyDB: app/store/base.py UNAVAILABLE_ERRNOS) ...
_ERRNO_REASONS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only storage", errno.EACCES: "storage access denied",
                  errno.EPERM: "storage access denied", errno.EIO: "storage I/O error"}
#: ... or by the SQLSTATE (PostgreSQL Appendix A, "PostgreSQL Error Codes")
#: of the database error behind it: an exact code first, then its class.
_SQLSTATE_REASONS = {"53100": "disk full", "25006": "read-only database",
                     "57014": "statement timed out", "57P01": "database shut down",
                     "57P02": "database shut down", "57P03": "database starting up",
                     "08": "database unreachable", "53": "database out of resources",
                     "57": "database unavailable", "58": "database I/O error"}


def store_unavailable_reason(exc: BaseException) -> str:
    """A StoreUnavailable's cause in a few plain words for the client
    ("disk full", "database unreachable"), from the OSError's errno or the
    database error's SQLSTATE behind it; never its text, which names paths,
    the database's user, host, port and name, and the driver's message."""
    seen = set()
    cause = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return (_SQLSTATE_REASONS.get(sqlstate) or _SQLSTATE_REASONS.get(sqlstate[:2])
                    or "database unavailable")
        if type(cause).__name__ == "SchemaMismatch":      # app/store/postgres_store.py
            return "database schema not installed or not upgraded"
        if type(cause).__name__ == "PoolTimeout":
            return "no database connection in time"
        if type(cause).__name__ == "OperationalError":   # psycopg: no connection, no SQLSTATE
            return "database unreachable"
        cause = cause.__cause__ or cause.__context__
    return "storage unavailable"


def storage_error(exc: OSError) -> TMFError | None:
    """The TMF Error for a file write the disk refused (rule files, kept
    versions, lock files, the active pointer, the activation history): 507
    Insufficient Storage (RFC 4918 section 11.5) with code INSUFFICIENT_STORAGE
    for a full disk or quota, 503 STORAGE_READ_ONLY for a read-only one;
    None for any other OSError (a defect: 500). The writers are atomic
    (app/atomicfile.py), so nothing was changed and the client may retry once
    an operator has made room. No path is named: it is the host's detail."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TMFError(507, "No space left on the server's disk: nothing was saved or changed. "
                             "An operator must free space; then retry", reason="Insufficient Storage",
                        code="INSUFFICIENT_STORAGE", headers={"Retry-After": "60"})
    if exc.errno == errno.EROFS:
        return TMFError(503, "The server's disk is read-only: nothing was saved or changed; retry later",
                        code="STORAGE_READ_ONLY", headers={"Retry-After": "60"})
    return None


def storage_error_behind(exc: BaseException) -> TMFError | None:
    """storage_error of the OSError a store's failure was raised from (a
    StoreUnavailable for a full disk): one answer for a rules change on a
    full disk, whichever of its writes the disk refused first, the rule
    files' (an OSError) or the store's. None when no disk refusal is behind it."""
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError):
            refused = storage_error(cause)
            if refused is not None:
                return refused
        cause = cause.__cause__ or cause.__context__
    return None
