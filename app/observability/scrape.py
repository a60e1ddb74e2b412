"""What GET /metrics answers: the counters and histograms of every worker,
and the gauges computed at scrape time.

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set, see gunicorn.conf.py) the
samples of all workers, live and dead, are summed from the directory by
prometheus-client's MultiProcessCollector; whichever worker answers the
scrape gives the same totals. Without it (flask run, the tests' in-process
app) the process's own registry is used.

Backlogs and the rule set in service are read when Prometheus scrapes,
from the store and the rule service, rather than kept in gauges: they are
then right whichever worker changed them, and they do not depend on how
the outbox, the job queue or the rules package work inside.
"""
from __future__ import annotations

import logging
import os
import time

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from . import rule_counts

log = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def render(services, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format the scraper asked for
    (Prometheus text 0.0.4, or OpenMetrics)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess   # light start-up: only under gunicorn's multiprocess mode
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    scrape_time = CollectorRegistry(auto_describe=False)
    scrape_time.register(ServiceCollector(services))
    encoder, content_type = choose_encoder(accept or "")
    # The scrape-time gauges first: they refresh the rule set, and a reload
    # that refresh makes must be in this scrape's reload counters.
    return encoder(_Both(scrape_time, base)), content_type


class _Both:
    def __init__(self, *registries):
        self.registries = registries

    def collect(self):
        for registry in self.registries:
            yield from registry.collect()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class ServiceCollector:
    """Gauges read at scrape time: the rule set in service, the store's
    health, the notification outbox and the asynchronous job queue."""

    def __init__(self, services):
        self.services = services

    def collect(self):
        yield from self._rules()
        yield rule_counts.collect()
        health = self.services.store.health()
        store_ok = bool(health.get("ok"))
        yield _gauge("reco_store_up", "1 when every store collection can be read, else 0.", int(store_ok))
        documents = GaugeMetricFamily("reco_store_documents", "Documents per store collection.",
                                      labels=["collection"])
        for collection, count in sorted((health.get("collections") or {}).items()):
            documents.add_metric([collection], count)
        yield documents
        if store_ok:
            now = time.time()
            yield from self._outbox(now)
            yield from self._jobs(now)

    def _rules(self):
        rules = self.services.rules
        try:
            rules.refresh()
        except Exception as exc:  # the reload failure shows in the problems count
            log.warning("rule reload before a scrape failed: %s", exc)
        status = rules.status()
        info = GaugeMetricFamily(
            "reco_ruleset_info", "The rule set version in service (value 1), by id, version and "
                                 "content hash; absent when no valid rule set is loaded.",
            labels=["ruleset_id", "version", "hash"])
        if status.get("ok"):
            info.add_metric([status["rulesetId"] or "", status["version"] or "", status["hash"] or ""], 1)
        yield info
        yield _gauge("reco_ruleset_problems", "Problems reported by the last reload of the rule "
                     "and catalog files (errors in files that are therefore not served).",
                     len(status.get("errors") or ()))

    def _outbox(self, now: float):
        backlog = self.services.events.backlog()
        yield _gauge("reco_event_recorded", "Changes whose event is recorded but not yet numbered "
                     "into the delivery log by the dispatcher (/health events.recorded); "
                     "growing: the dispatcher is not running.", backlog["recorded"])
        yield _gauge("reco_event_outbox_pending", "Notifications waiting to be delivered "
                     "(notifications not yet delivered, counted per hub).", backlog["pending"])
        yield _gauge("reco_event_outbox_failed", "Notifications given up after the last attempt "
                     "(kept for RECO_EVENT_FAILED_RETENTION_SECONDS).", backlog["failed"])
        yield _gauge("reco_event_outbox_oldest_pending_age_seconds",
                     "Age of the oldest notification not yet delivered, in seconds (0: none).",
                     backlog["backlogAgeSeconds"])
        yield _gauge("reco_event_circuits_open",
                     "Listeners (hubs) paused by their circuit breaker.", backlog["openCircuits"])

    def _jobs(self, now: float):
        jobs = self.services.jobs.pending()
        created = [j["createdAt"] for j in jobs if isinstance(j.get("createdAt"), (int, float))]
        yield _gauge("reco_recommendation_jobs_pending",
                     "Asynchronous recommendation queries accepted and not yet done.", len(jobs))
        yield _gauge("reco_recommendation_jobs_oldest_age_seconds",
                     "Age of the oldest asynchronous query not yet done, in seconds (0: none).",
                     max(0.0, now - min(created)) if created else 0.0)
