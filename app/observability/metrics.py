"""Every Prometheus metric the service exports, and the one-line helpers that
domain code calls to feed them.

Names follow the Prometheus conventions (https://prometheus.io/docs/practices/naming/):
the `reco_` prefix, base units in the name (`_seconds`), `_total` on
counters. Under gunicorn, prometheus-client runs in multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py): each worker writes its
samples to files there and GET /metrics sums them (app/observability/scrape.py).
That mode has no Info metric and no live gauges, so the rule set in service
and every backlog are computed at scrape time instead (scrape.py); this
module holds counters and histograms only.

Label values are bounded: API and operation come from the URL map (never
the raw path), rule ids from the loaded rule sets, collections from the
code, error labels from exception class names.

Instrumentation points (each a decorator or a one-line call, so that a
rewrite of the code around it keeps them easily):
    app/observability/requests.py   HTTP requests (before/after request hooks)
    app/recommend/recommender.py    @observe_recommendation on Recommender.recommend
    app/factory.py                  RuleService(..., on_reload=observe_reload)
    app/events/bus.py               count_delivery(outcome) in EventBus._deliver
    app/factory.py                  instrument_store(open_store(...)): store.py
"""
from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Histogram

from .logs import bind_log_context
from .rule_counts import count_fired

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ITEM_BUCKETS = (0, 1, 2, 3, 4, 5, 10, 20, 50)

# -- HTTP -------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "reco_http_requests_total",
    "HTTP requests answered, by API (blueprint), operation (view), method and status code.",
    ["api", "operation", "method", "status"])
HTTP_REQUEST_SECONDS = Histogram(
    "reco_http_request_duration_seconds",
    "Time from the request reaching Flask to the answer being ready, in seconds.",
    ["api", "operation", "method", "status"], buckets=LATENCY_BUCKETS)

# -- recommendations ----------------------------------------------------------
RECOMMENDATIONS = Counter(
    "reco_recommendations_total",
    "Recommendations computed, by rule set id and version and mode (instant: in the "
    "POST answer; async: by the background job of a stored query).",
    ["ruleset_id", "ruleset_version", "mode"])
RECOMMENDATION_ERRORS = Counter(
    "reco_recommendation_errors_total",
    "Recommendations that failed (e.g. no valid rule set), by mode and exception type.",
    ["mode", "error"])
RECOMMENDATION_ITEMS = Histogram(
    "reco_recommendation_items",
    "Items returned per recommendation, by mode.", ["mode"], buckets=ITEM_BUCKETS)
RECOMMENDATION_SECONDS = Histogram(
    "reco_recommendation_duration_seconds",
    "Time to compute one recommendation (facts, rule evaluation, policies), in seconds.",
    ["mode"], buckets=LATENCY_BUCKETS)
# reco_rule_fired_total is counted by rule_counts.py (plain increments,
# exported at scrape time)

# -- rule reloads -------------------------------------------------------------
RULESET_RELOADS = Counter(
    "reco_ruleset_reloads_total",
    "Rule and catalog reloads attempted (a file changed, an activation, the start).")
RULESET_RELOAD_FAILURES = Counter(
    "reco_ruleset_reload_failures_total",
    "Reloads that raised; the rule set loaded before keeps serving.")
RULESET_RELOAD_SECONDS = Histogram(
    "reco_ruleset_reload_duration_seconds",
    "Time to read, check and compile the rule and catalog files, in seconds.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))

# -- event delivery -------------------------------------------------------------
EVENT_DELIVERIES = Counter(
    "reco_event_deliveries_total",
    "Notification delivery attempts by outcome: delivered (2xx), rejected (other "
    "status), error (network, timeout), not_allowed (callback no longer allowed), "
    "hub_gone (the listener unregistered), gave_up (last attempt failed).",
    ["outcome"])
DELIVERY_OUTCOMES = ("delivered", "rejected", "error", "not_allowed", "hub_gone", "gave_up")

# -- store ----------------------------------------------------------------------
STORE_OPERATION_SECONDS = Histogram(
    "reco_store_operation_duration_seconds",
    "Time of one store call, by operation and collection, in seconds.",
    ["operation", "collection"], buckets=STORE_BUCKETS)
STORE_ERRORS = Counter(
    "reco_store_errors_total",
    "Store calls that failed in the store itself (StoreError, OSError), by "
    "operation, collection and exception type.",
    ["operation", "collection", "error"])


# Answers per experiment and arm, so a dashboard shows the split live (the
# experiment report's sample-ratio check, over the decision log, is the
# authoritative one: app/experiments/report.py).
EXPERIMENT_ASSIGNMENTS = Counter(
    "reco_experiment_assignments_total",
    "Recommendations answered inside a running experiment, by experiment id and arm "
    "(a holdout's answers too).",
    ["experiment", "arm"])


def count_experiment_arm(experiment_id: str, arm: str) -> None:
    EXPERIMENT_ASSIGNMENTS.labels(experiment_id, arm).inc()


def observe_recommendation(func):
    """Decorates `recommend(self, query, mode="instant") -> Recommendation`
    (app/rules: ruleset_id, ruleset_version, items, fired_rules): counts it,
    its items, the rules that fired and its latency, and binds the rule set
    to the request's log context (so the request log line names the version).
    The labelled children are looked up once per mode and rule set version
    (prometheus-client's `labels()` validates and joins the values on every
    call: three of them were about half of this wrapper's cost)."""

    by_mode: dict[str, tuple] = {}
    by_version: dict[tuple, object] = {}

    @functools.wraps(func)
    def wrapper(self, *args, mode: str = "instant", **kwargs):
        started = time.perf_counter()
        try:
            result = func(self, *args, mode=mode, **kwargs)
        except Exception as exc:
            RECOMMENDATION_ERRORS.labels(mode, type(exc).__name__).inc()
            raise
        seconds = time.perf_counter() - started
        children = by_mode.get(mode)
        if children is None:
            children = by_mode[mode] = (RECOMMENDATION_SECONDS.labels(mode), RECOMMENDATION_ITEMS.labels(mode))
        children[0].observe(seconds)
        children[1].observe(len(result.items))
        key = (result.ruleset_id, result.ruleset_version, mode)
        counter = by_version.get(key)
        if counter is None:
            counter = by_version[key] = RECOMMENDATIONS.labels(*key)
        counter.inc()
        count_fired(result.ruleset_id, result.ruleset_hash, result.fired_rules)
        bind_log_context(ruleset_id=result.ruleset_id, ruleset_version=result.ruleset_version)
        return result
    return wrapper


def observe_reload(seconds: float, failed: bool) -> None:
    """Counts one rule reload that took `seconds` and, when it raised
    (`failed`), counts it failed (RuleService's on_reload hook)."""
    RULESET_RELOADS.inc()
    if failed:
        RULESET_RELOAD_FAILURES.inc()
    RULESET_RELOAD_SECONDS.observe(seconds)


def count_delivery(outcome: str) -> None:
    """One notification delivery attempt ended with `outcome` (DELIVERY_OUTCOMES)."""
    EVENT_DELIVERIES.labels(outcome).inc()
