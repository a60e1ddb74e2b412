"""What each piece of the per-request overhead costs, in thread CPU per call,
in one process (no HTTP, no gunicorn): the pieces the instant POST pays
besides validation and the rules.

    python -m bench.request_hooks_bench [--root TREE] [--calls 5000] [--rounds 5]

`--root` measures another tree's `app` (e.g. `git archive` of main into a
folder), so before and after run the same harness. Pieces:

  hooks           a POST through Flask's wsgi_app to a view answering a small
                  orjson body, with the service's request hooks (request id,
                  trace context, log context, HTTP metrics, the request log
                  line) minus the same without them: what the hooks add
  log_line        one request log line (JSON, to /dev/null)
  http_metrics    the request counter and latency histogram of one request
  reco_metrics    observe_recommendation's counters, histograms and per-rule
                  counts of one answer with 44 fired rules
  request_id      a new request id (no X-Request-ID sent)
  decision        record_answer: the decision id, href and record queued
                  (to a list: the flusher's work is off the request path)

Prometheus in multiprocess mode (a temporary PROMETHEUS_MULTIPROC_DIR), as
under gunicorn. Medians of `--rounds` rounds, alternating pieces.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _setup(root: Path | None):
    if root is not None:
        sys.path.insert(0, str(root))
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-hooks-prom-"))


def per_call_us(func, calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        func()
    return (time.thread_time() - started) * 1e6 / calls


def pieces():
    import datetime as dt

    import orjson
    from flask import Flask

    from app.observability.logs import configure_logging, get_logger
    from app.observability.metrics import observe_recommendation
    from app.observability.requests import install_request_observability, request_id_from
    from app.rules.engine.policies import Recommendation, RecommendedItem

    sink = open(os.devnull, "w")
    stderr, sys.stderr = sys.stderr, sink
    try:
        configure_logging("json", "INFO")
    finally:
        sys.stderr = stderr
    import structlog
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=sink))

    def make_app(hooks: bool) -> Flask:
        app = Flask(f"bench{hooks}")
        if hooks:
            install_request_observability(app)

        @app.post("/tmf-api/recommendationManagement/v4/queryProductRecommendation")
        def create():
            return app.response_class(orjson.dumps({"state": "done", "recommendationItem": []}),
                                      mimetype="application/json")
        return app

    body = json.dumps({"instantSyncRecommendation": True, "channel": [{"id": "21"}]}).encode()

    def environ():
        return {"REQUEST_METHOD": "POST", "PATH_INFO": "/tmf-api/recommendationManagement/v4/queryProductRecommendation",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000"}

    def start_response(status, headers, exc_info=None):
        return None

    with_hooks, without = make_app(True), make_app(False)

    def call(app):
        def run():
            for chunk in app.wsgi_app(environ(), start_response):
                pass
        return run

    log = get_logger("app.request")

    def log_line():
        log.info("request", method="POST", path="/tmf-api/recommendationManagement/v4/queryProductRecommendation",
                 status=200, duration_ms=1.23, api="recommendation", operation="create",
                 remote_addr="127.0.0.1", response_bytes=1234)

    from app.observability.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

    def http_metrics():
        HTTP_REQUESTS.labels("recommendation", "create", "POST", "200").inc()
        HTTP_REQUEST_SECONDS.labels("recommendation", "create", "POST", "200").observe(0.0012)

    items = [RecommendedItem(offering_id=str(8000 + i), name=f"o{i}", priority=i + 1, rule_priority=10,
                             rule_ids=[f"R{i}"], kinds=["cross-sell"]) for i in range(5)]
    answer = Recommendation(items=items, ruleset_id="bench", ruleset_version="1.0.0", ruleset_hash="sha256:ab",
                            fired_rules=[f"R{i}" for i in range(44)])

    class Service:
        @observe_recommendation
        def recommend(self, query, mode="instant"):
            return answer

    service = Service()

    def reco_metrics():
        service.recommend(None)

    def request_id():
        request_id_from(None)

    from app.decisions.recording import record_answer

    class Decisions:
        def __init__(self):
            self.records = []

        def record(self, doc):
            self.records.append(doc)
            if len(self.records) > 1000:
                self.records.clear()
            return True

    decisions = Decisions()
    resource = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
                "relatedParty": [{"id": "c-1", "role": "customer", "name": "Jane"}],
                "validFor": {"startDateTime": "2026-05-01T10:00:00Z"},
                "shoppingCart": [{"id": "cart-1", "@type": "ShoppingCart", "cartItem": [
                    {"id": "1", "quantity": 1, "action": "add", "productOffering": {"id": "8001"}},
                    {"id": "2", "quantity": 1, "action": "add", "productOffering": {"id": "8002"}}]}]}

    def decision():
        record_answer(decisions, resource, answer, None, "/tmf-api/recommendationManagement/v4/recommendation",
                      "http://127.0.0.1:8000")

    del dt
    return {"hooks": (call(with_hooks), call(without)), "log_line": log_line, "http_metrics": http_metrics,
            "reco_metrics": reco_metrics, "request_id": request_id, "decision": decision}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_hooks_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="the tree whose app/ is measured (default: this one)")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    _setup(args.root)
    funcs = pieces()
    for func in funcs.values():                      # warm up
        for f in (func if isinstance(func, tuple) else (func,)):
            per_call_us(f, 200)
    results: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(args.rounds):
        for name, func in funcs.items():
            if isinstance(func, tuple):
                results[name].append(per_call_us(func[0], args.calls) - per_call_us(func[1], args.calls))
            else:
                results[name].append(per_call_us(func, args.calls))
    medians = {name: round(statistics.median(values), 2) for name, values in results.items()}
    doc = {"root": str(args.root or Path(__file__).resolve().parent.parent), "calls": args.calls,
           "rounds": args.rounds, "loadavg": os.getloadavg(), "median_us": medians,
           "runs_us": {k: [round(v, 2) for v in vs] for k, vs in results.items()}}
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
