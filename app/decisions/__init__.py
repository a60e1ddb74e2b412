"""The decision log: every recommendation answer (instant or asynchronous)
recorded with what the engine saw and answered, and the reactions clients
report on its items (shown, clicked, accepted, rejected).

    ids.py        time-ordered decision ids (UUID version 7, RFC 9562)
    record.py     what one record holds, and the TMF680 answer rebuilt from it
    sinks.py      where batches go: PostgreSQL table `decisions`, or JSON Lines per day
    log.py        the bounded in-memory buffer and its background flusher
    metrics.py    its Prometheus counters
    service.py    GET .../queryProductRecommendation/{id} of recorded answers
    reactions.py  the recommendationReaction resource (TMF680 extension)
"""
from .log import DecisionLog

__all__ = ["DecisionLog"]
