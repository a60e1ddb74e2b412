"""Production defaults for gunicorn; every value can be overridden on the
command line or with GUNICORN_CMD_ARGS."""
import glob
import os
import shutil
import sys
import tempfile

# JSON lines by default in production; RECO_LOG_FORMAT=console for text.
os.environ.setdefault("RECO_LOG_FORMAT", "json")

from app.config import Settings, SettingsError  # noqa: E402 - after the log format default

try:
    # checked here, in the master, so a bad value stops the start at once
    # with one line naming it, instead of every worker failing to boot
    _settings = Settings.from_env()
except SettingsError as exc:
    sys.exit(f"configuration error:\n{exc}")
bind = _settings.bind
workers = _settings.workers
threads = _settings.threads
# gthread, with gunicorn's own error answers (414, 431, 400) in the TMF Error body
worker_class = "app.gunicorn_worker.TmfThreadWorker"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Bounded request line and headers: oversized headers are refused before Flask.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The app writes one log line per request (request id, duration, rule set
# version: app/observability/requests.py), replacing gunicorn's access log.
accesslog = None
errorlog = "-"
logger_class = "app.observability.logs.GunicornLogger"

# gunicorn 25.1+ opens a control socket (for gunicornc) at one path per user,
# $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl, shared by every
# master on the host: one that stops removes the socket another uses. The
# service does not use it (signals and /health are its controls).
control_socket_disable = True

# No preload: each worker builds its own app, store handles and rule engine,
# so nothing durable-rules or file-lock related is shared across a fork.
preload_app = False

# prometheus-client's multiprocess mode: every worker writes its samples to
# files in this directory, GET /metrics sums them. It must be set before a
# worker imports prometheus-client, and emptied at start (old files would
# add a previous run's counts). An operator may choose the directory.
# Ours is named after the master's pid, so that the directories of masters
# that were killed (no on_exit) are removed by the next start; so is the event
# dispatcher's wake socket directory (app/events/process.py Supervisor).
MASTER_DIR_PREFIXES = ("reco-prometheus", "reco-events")


def _remove_dead_masters_dirs():
    for prefix in MASTER_DIR_PREFIXES:
        for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{prefix}-*-*")):
            try:
                os.kill(int(os.path.basename(path).split("-")[2]), 0)
            except ProcessLookupError:
                shutil.rmtree(path, ignore_errors=True)
            except (ValueError, OSError):
                pass


_remove_dead_masters_dirs()
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"reco-prometheus-{os.getpid()}-")
    os.environ["RECO_OWN_METRICS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    from app.observability.rule_counts import FILE_PREFIX
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        # prometheus-client's files, and the per-rule counts' (app/observability/
        # rule_counts.py: <FILE_PREFIX><pid>_<version>.bin and .ids); only ours,
        # the directory may be the operator's
        if name.endswith(".db") or name.startswith(FILE_PREFIX):
            os.unlink(os.path.join(folder, name))
    # what the workers of a previous run of this host served (/health's
    # rules.workers): their pids may belong to other processes by now
    from app.rules.service.workers import forget_previous_run
    forget_previous_run(_settings.data_dir)


def child_exit(server, worker):
    # A dead worker's counters stay in the sums; this drops its live gauges.
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


_dispatcher = None


def when_ready(server):
    """Before the workers fork: the event dispatcher in a process of its own,
    so that workers wake it instead of running one each (app/events/process.py;
    RECO_EVENT_DISPATCHER=workers: one per worker); then the rule files parsed
    and checked once, so a worker, and every replacement, only compiles them
    (a cold worker at 10,000 rules spent 3.5 of its 5-6 CPU seconds parsing)."""
    global _dispatcher
    from app.events.process import Supervisor, wanted
    from app.rules.model.source import set_max_file_bytes
    from app.rules.service.source import prepare_before_fork
    if wanted():
        _dispatcher = Supervisor(server.log)
        _dispatcher.start()
    try:
        set_max_file_bytes(_settings.max_rule_file_bytes)   # the master parses no file over the limit
        prepare_before_fork(_settings.rules_dir, _settings.catalog_dir)
    except Exception as exc:  # noqa: BLE001 - the workers parse for themselves and report it
        server.log.warning("rule files not parsed before the fork: %s", exc)


def on_exit(server):
    if _dispatcher is not None:
        _dispatcher.stop()
    own = os.environ.get("RECO_OWN_METRICS_DIR")
    if own and own == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(own, ignore_errors=True)


def post_worker_init(worker):
    """Background delivery and job processing start with the worker, not its
    first request (app.start_background is idempotent)."""
    from app import start_background
    start_background(worker.wsgi)
