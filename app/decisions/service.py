"""The TMF680 queryProductRecommendation service that also knows recorded
answers: GET .../queryProductRecommendation/{id} of an instant answer
returns it (with `fields=`) for RECO_DECISION_RETENTION_DAYS after it was
given, from the decision log (its buffer first, then its store). Stored
asynchronous queries are answered as before; the list stays the list of
stored queries (the log is not a TMF collection of millions of answers)."""
from __future__ import annotations

import datetime as dt

from ..recommend.query import KIND as QUERY_KIND
from ..resources.service import ResourceService
from ..timeutil import utcnow
from .record import answer_of, parse_time


class RecordedQueryService(ResourceService):
    def __init__(self, kind, store, events, decisions, retention_days: float, base_url: str):
        super().__init__(kind, store, events)
        self.decisions = decisions
        self.retention = dt.timedelta(days=retention_days)
        self.base_url = base_url

    def recorded(self, resource_id: str) -> dict | None:
        """The record of an answer still within the retention window, or None."""
        record = self.decisions.get(resource_id) if self.decisions is not None else None
        if record is None or parse_time(record["decidedAt"]) < utcnow() - self.retention:
            return None
        return record

    def find(self, resource_id: str) -> dict | None:
        """A stored query, else a recorded instant answer, else None (a
        RecommendationSalesLead or a reaction names either the same way)."""
        # an answer of a moment ago is in the buffer: found without the store,
        # so it resolves even while the store is unreachable
        buffered = self.decisions.buffered(resource_id) if self.decisions is not None else None
        if buffered is not None and buffered.get("mode") == "instant":
            return self._answer(buffered)
        resource = self.store.get(self.kind.collection, resource_id)
        if resource is not None:
            return resource
        record = self.recorded(resource_id)
        if record is None or record.get("mode") != "instant":
            return None
        return self._answer(record)

    def _answer(self, record: dict) -> dict:
        return answer_of(record, f"{self.base_url}{self.kind.base_path}/{record['id']}",
                         self.base_url)

    def get(self, resource_id: str) -> dict:
        resource = self.find(resource_id)
        if resource is None:
            raise self._not_found(resource_id)
        return resource


def find_recommendation(services):
    """`id -> QueryProductRecommendation or None`: a stored query, or (with
    the decision log) a recorded instant answer."""

    return services.resources[QUERY_KIND.collection].find
