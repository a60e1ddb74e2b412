"""The decision log: every recommendation answer (instant or asynchronous)
recorded with what the engine saw and answered, and the reactions clients
report on its items (shown, clicked, accepted, rejected).

    ids.py        time-ordered decision ids (UUID version 7, RFC 9562)
    record.py     what one record holds, and the TMF680 answer rebuilt from it
    recording.py  an answer's id and href, and its record queued
    sinks.py      where batches go: PostgreSQL tables `decisions` and
                  `decision_items`, or JSON Lines per day
    log.py        the bounded in-memory buffer, its background flusher and purge
    metrics.py    its Prometheus metrics
    service.py    GET .../queryProductRecommendation/{id} of recorded answers
    reactions.py  the recommendationReaction resource (TMF680 extension)
    funnel.py     decisions -> shown -> clicked -> lead -> accepted (GROUP BY on PostgreSQL)
    conversion.py the conversion report with the funnel (API, CLI, Studio)
    replay.py     recorded answers as weighted situations for rules diff and impact
    impact.py     the Studio impact request's recorded-traffic options
    erase.py      one person's answers, reactions and stored queries removed
    wiring.py     built from the settings by the app factory
"""
from .log import DecisionLog

__all__ = ["DecisionLog"]
