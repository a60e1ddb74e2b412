"""Structured logs through structlog: one JSON object per line in production,
aligned coloured text for a developer.

Every record, whether from structlog or from a plain `logging.getLogger()`
in the domain code or a library, goes through one handler on the root
logger, so all of them share the format and carry the request's context
(request id, trace id, rule set version) bound with `bind_log_context()`
(`new_log_context()` at a request's start).

Keys of a JSON line: `time` (ISO 8601, UTC), `level`, `event`, `request_id`
(inside a request), `logger`, `pid`, then the rest of the context and the
call's own fields; `exception` holds a formatted traceback when there is one.

The format comes from RECO_LOG_FORMAT (`json` or `console`); gunicorn.conf.py
makes `json` the default under gunicorn, `flask run` keeps `console`.
Gunicorn's own messages (worker boot, timeouts) get the same format through
`GunicornLogger` (gunicorn.conf.py's logger_class).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar

import orjson
import structlog
from gunicorn import glogging

from ..config import Settings

FORMATS = ("json", "console")


#: The current request's (or thread's) log context: one immutable-by-convention
#: dict in one ContextVar, replaced, never changed in place, so a context
#: copied into another thread keeps what it had. structlog.contextvars keeps
#: one ContextVar per key instead: clearing and binding them at every
#: request start and its merge, which walks every context variable of the
#: context (Flask's and werkzeug's too), cost 9.1 µs of thread CPU per
#: request (a new context, one bind, one merge, inside a Flask request
#: context) against 1.7-1.9 µs this way (20,000 calls, load 5).
_log_context: ContextVar[dict] = ContextVar("reco_log_context", default={})


def merge_log_context(_logger, _name, event: dict) -> dict:
    """The first processor: the context's fields, under the call's own
    (a field the call passes wins, as structlog's merge_contextvars)."""
    context = _log_context.get()
    if context:
        for key, value in context.items():
            if key not in event:
                event[key] = value
    return event


def _add_pid(_logger, _name, event: dict) -> dict:
    """Which gunicorn worker wrote the line."""
    event["pid"] = os.getpid()
    return event


# Both paths: structlog's own loggers (the request line) and stdlib records.
BASE_PROCESSORS = (
    merge_log_context,
    _add_pid,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
)


FIRST_KEYS = ("time", "level", "event", "request_id")


def _first_keys(_logger, _name, event: dict) -> dict:
    """time, level, event and request id first: what a reader scans for."""
    ordered = {key: event.pop(key) for key in FIRST_KEYS if key in event}
    ordered.update(event)
    return ordered


def _fallback(value):
    """What orjson cannot encode, as structlog's JSONRenderer writes it."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if callable(structlog_form) else repr(value)


def _json_text(event: dict, **_options) -> str:
    """One JSON line by orjson (about a third of the request line's cost
    with json.dumps, bench/request_hooks_bench.py); json.dumps for what
    orjson refuses (a non-text key, an integer beyond 64 bits)."""
    try:
        return orjson.dumps(event, default=_fallback).decode()
    except TypeError:        # orjson.JSONEncodeError
        return json.dumps(event, default=_fallback)


def _renderers(fmt: str) -> list:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return [structlog.processors.format_exc_info, _first_keys,
                structlog.processors.JSONRenderer(serializer=_json_text)]
    return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and not os.environ.get("NO_COLOR"),
                                          timestamp_key="time")]


def _level(level: str) -> int:
    number = logging.getLevelName(str(level).upper())
    if not isinstance(number, int):
        raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number


def formatter(fmt: str) -> logging.Formatter:
    """A stdlib formatter rendering any record as JSON (one line) or console text."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*BASE_PROCESSORS, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)])


def configure_logging(fmt: str, level: str) -> None:
    """structlog's loggers write straight to stderr; stdlib records (domain
    code, libraries) go through one root handler with the same rendering.

    The request line, written for every request, takes structlog's own path:
    it skips the stdlib record and handler machinery, about half the cost
    (66-84 against 162 µs a line, measured on this shared 2-core machine at
    load 11-13). Idempotent: a second call (a second app in one process, as
    in the tests) replaces the handler it installed before and leaves other
    handlers (pytest's capture, say) alone; loggers already made keep the
    configuration they were made with."""
    renderers = _renderers(fmt)
    threshold = _level(level)
    structlog.configure(
        processors=[*BASE_PROCESSORS, *renderers],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_reco", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._reco = True
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(threshold)
    # alembic logs one INFO line per autogenerate plugin it sets up (7 on every
    # `flask store upgrade`/`check`), none of which says anything to an operator.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(threshold, logging.WARNING))


def bind_log_context(**values) -> None:
    """Add fields to every log line of the current request (or thread)."""
    _log_context.set({**_log_context.get(), **values})


def new_log_context(**values) -> None:
    """Start a request's context: drop what a previous request on this thread bound."""
    _log_context.set(values)


#: True in a thread while a server that clears the log context itself (the
#: gthread worker, app/gunicorn_worker.py) handles one request there.
_server_clears: ContextVar[bool] = ContextVar("reco_log_context_server_clears", default=False)


def hold_log_context():
    """Called by a server as it starts handling one request in this thread;
    returns the token for `release_log_context`, which it must call (in a
    `finally`) when it is done with the request.

    Flask's teardown_request runs when the app returns its answer, before
    the server writes the body: a context cleared there is gone from the
    server's own lines about the request (a client that reset the
    connection while the body was written, "Error handling request"). While
    held, `end_request_log_context` (the teardown) leaves the context bound
    and the release clears it, so those lines carry the request's id and a
    line the thread logs between requests carries none."""
    return _server_clears.set(True)


def release_log_context(token) -> None:
    """The server is done with the request `hold_log_context` began: the
    thread's next lines, outside any request, carry none of its context."""
    _server_clears.reset(token)
    _log_context.set({})


def end_request_log_context() -> None:
    """At the app's teardown_request: clear the request's context, unless
    the server clears it itself once it has written the answer
    (`hold_log_context`). Under other servers (werkzeug's, the test
    client) nothing else clears it: the thread would carry the finished
    request's id and rule set version into whatever it logs next."""
    if not _server_clears.get():
        _log_context.set({})


def get_logger(name: str):
    """A structlog logger with the configuration in force now (call it after
    configure_logging), its lines named `name` like stdlib's."""
    return structlog.get_logger().bind(logger=name)


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, its messages in the service's log format
    (RECO_LOG_FORMAT). Its access log is off (the app's request line replaces
    it); turned back on (--access-logfile, as the benchmarks do for gunicorn's
    own request timing) it keeps its access_log_format."""

    def setup(self, cfg):
        super().setup(cfg)
        fmt = Settings.from_env().log_format
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter(fmt))
