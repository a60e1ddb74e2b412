"""Production defaults for gunicorn; every value can be overridden on the
command line or with GUNICORN_CMD_ARGS."""
import os

bind = os.environ.get("RECO_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("RECO_WORKERS", "2"))
threads = int(os.environ.get("RECO_THREADS", "4"))
# gthread, with gunicorn's own error answers (414, 431, 400) in the TMF Error body
worker_class = "app.gunicorn_worker.TmfThreadWorker"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Bounded request line and headers: oversized headers are refused before Flask.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
# gunicorn's default format logs the user of an `Authorization: Basic` header
# (%(u)s), which is the API key when a client sends it as `curl -u KEY:`.
access_log_format = '%(h)s %(l)s - %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
errorlog = "-"
# No preload: each worker builds its own app, store handles and rule engine,
# so nothing durable-rules or file-lock related is shared across a fork.
preload_app = False


def post_worker_init(worker):
    """Background delivery and job processing start with the worker, not its
    first request (app.start_background is idempotent)."""
    from app import start_background
    start_background(worker.wsgi)
