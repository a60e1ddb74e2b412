"""Background evaluation of asynchronous TMF680 queries.

The job record is written with the query, so a worker killed mid-evaluation
leaves a lease that expires and another worker (or the restarted one) picks
the query up again; a query never stays `accepted` because a process died.

Completion is idempotent: a query already in a final state (`done`,
`terminatedWithError`) is never evaluated again, whatever job record
survived; a process killed between writing `done` and deleting its job leaves
a job that is simply dropped. The poller starts with the worker (see
app/factory.py), not with its first request.
"""
from __future__ import annotations

import logging
import os
import time

from ..background import Poller
from ..store import Filter
from .items import tmf_items

log = logging.getLogger(__name__)

JOBS = "recommendationJob"
FINAL_STATES = ("done", "terminatedWithError")
LEASE_SECONDS = 60.0
MAX_ATTEMPTS = 3


class RecommendationJobs:
    def __init__(self, store, service, recommender):
        self.store = store
        self.service = service          # ResourceService of queryProductRecommendation
        self.recommender = recommender
        self.poller = Poller("recommendation-jobs", self.run_due, interval=1.0)
        # set by the app factory (the decision log is a layer above this
        # one): record_decision(query_id, query, result, context), so a
        # finished query is recorded like an instant answer, under its own id
        self.record_decision = None

    def enqueue(self, query_id: str, base_url: str) -> None:
        """Called before the query is stored, so no crash can leave a stored
        query without its job; a job whose query never appeared is dropped."""
        self.store.insert(JOBS, {"id": query_id, "baseUrl": base_url, "createdAt": time.time(),
                                 "leaseUntil": 0.0, "attempts": 0})

    def wake(self) -> None:
        self.poller.wake()

    def pending(self) -> list[dict]:
        """The job records of the queries accepted and not yet done, each
        {"id", "baseUrl", "createdAt" (epoch seconds), "leaseUntil", "attempts"}
        (GET /metrics counts them and ages the oldest)."""
        return self.store.all(JOBS)

    def run_due(self) -> None:
        # One job at a time, each claimed for this worker only (PostgreSQL:
        # FOR UPDATE SKIP LOCKED), so workers on every host share the queue.
        while True:
            now = time.time()
            claimed = self.store.claim(
                JOBS, [Filter(("leaseUntil",), "lte", (now,), "number")], _claim(now), limit=1)
            if not claimed:
                return
            self._run(claimed[0])

    def _run(self, job: dict) -> None:
        query_id = job["id"]
        query = self.store.get(self.service.kind.collection, query_id)
        if query is None:
            if time.time() - job.get("createdAt", 0) > LEASE_SECONDS:
                self.store.delete(JOBS, query_id)
            else:
                self.store.update(JOBS, query_id, _release)
            return
        if query.get("state") in FINAL_STATES:
            self.store.delete(JOBS, query_id)
            return
        if job["attempts"] > MAX_ATTEMPTS:
            self.service.set_attributes(query_id, {"state": "terminatedWithError"})
            self.store.delete(JOBS, query_id)
            return
        if query.get("state") != "inProgress":
            self.service.set_attributes(query_id, {"state": "inProgress"})
        contexts: list = []
        try:
            result = self.recommender.recommend(query, mode="async", contexts=contexts)
            items = tmf_items(result, job["baseUrl"])
        except Exception:
            log.exception("recommendation %s failed", query_id)
            if job["attempts"] >= MAX_ATTEMPTS:
                self.service.set_attributes(query_id, {"state": "terminatedWithError"})
                self.store.delete(JOBS, query_id)
            else:
                self.store.update(JOBS, query_id, _release)
            return
        done = {"state": "done", "recommendationItem": items}
        if result.experiment:
            done["experiment"] = dict(result.experiment)
        self.service.set_attributes(query_id, done)
        if self.record_decision is not None:
            self.record_decision(query_id, query, result, contexts[0])
        self.store.delete(JOBS, query_id)


def _claim(now: float):
    def change(job: dict) -> dict | None:
        if job["leaseUntil"] > now:
            return None
        job["leaseUntil"] = now + LEASE_SECONDS
        job["attempts"] += 1
        job["owner"] = os.getpid()
        return job
    return change


def _release(job: dict) -> dict:
    job["leaseUntil"] = time.time() + 2.0 * job["attempts"]
    return job
