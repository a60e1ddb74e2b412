"""Prometheus metrics of the decision log (names per
https://prometheus.io/docs/practices/naming/). What a crash of a worker can
lose is the decisions in its buffer: after a SIGKILL,
`reco_decisions_total - reco_decisions_recorded_total - reco_decisions_dropped_total`
(summed over workers, the dead ones' files included) minus the live
workers' `reco_decision_log_pending` is the number lost."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "reco_decisions_total", "Decisions handed to the decision log, by mode (instant, async).",
    ["mode"])
RECORDED = Counter(
    "reco_decisions_recorded_total", "Decisions written to the decision log's store.")
DROPPED = Counter(
    "reco_decisions_dropped_total",
    "Decisions not recorded, by reason (buffer_full: the store could not keep up or was "
    "down; unwritable: the store refused the record itself).",
    ["reason"])
FLUSH_FAILURES = Counter(
    "reco_decision_log_flush_failures_total",
    "Batches the decision log could not write (kept in the buffer and retried), by error type.",
    ["error"])
PENDING = Gauge(
    "reco_decision_log_pending",
    "Decisions in the buffers of live workers, not yet written: what a crash would lose.",
    multiprocess_mode="livesum")
PURGED = Counter(
    "reco_decisions_purged_total",
    "Decisions removed from the log after RECO_DECISION_RETENTION_DAYS.")
ERASED = Counter(
    "reco_decisions_erased_total",
    "Decisions removed from the log by `flask decisions erase --party` (GDPR art. 17).")
