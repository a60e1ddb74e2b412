"""Prometheus metrics of experiments (names per
https://prometheus.io/docs/practices/naming/): answers per experiment and
arm, so a dashboard shows the split live (the report's SRM check is the
authoritative one, over the decision log)."""
from __future__ import annotations

from prometheus_client import Counter

ASSIGNMENTS = Counter(
    "reco_experiment_assignments_total",
    "Recommendations answered inside a running experiment, by experiment id and arm "
    "(a holdout's answers too).",
    ["experiment", "arm"])


def count_experiment_arm(experiment_id: str, arm: str) -> None:
    ASSIGNMENTS.labels(experiment_id, arm).inc()
