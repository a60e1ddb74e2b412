"""The decision log and the services that use it, built from the settings
(called by the app factory)."""
from __future__ import annotations

from ..resources.service import ResourceService
from .log import DecisionLog
from .reactions import KIND as REACTIONS, purge_reactions
from .service import RecordedQueryService
from .sinks import sink_for


def install_decision_log(settings, store, events, resources: dict, query_kind):
    """The recommendationReaction service, and a DecisionLog on the store's backend (None when RECO_DECISION_LOG is
    off), and the queryProductRecommendation service replaced by one that
    also answers recorded instant answers."""

    resources[REACTIONS.collection] = ResourceService(REACTIONS, store, events)
    if not settings.decision_log:
        return None
    decisions = DecisionLog(sink_for(store, settings.data_dir),
                            batch_size=settings.decision_batch_size,
                            flush_interval=settings.decision_flush_seconds,
                            capacity=settings.decision_buffer_max,
                            retention_days=settings.decision_retention_days,
                            purge_interval=settings.decision_purge_seconds,
                            purge_also=lambda before: purge_reactions(store, before))
    resources[query_kind.collection] = RecordedQueryService(
        query_kind, store, events, decisions, settings.decision_retention_days,
        (settings.public_base_url or "").rstrip("/"))
    return decisions
