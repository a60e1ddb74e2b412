"""Settings read once from the environment, so operators configure the service
without editing code, and tests configure it without monkeypatching modules."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass
class Settings:
    data_dir: Path = PROJECT_ROOT / "instance" / "data"
    # None: TinyDB files in data_dir; "postgresql://...": PostgreSQL
    store_url: str | None = None
    store_pool_size: int = 10
    store_timeout_seconds: float = 5.0
    #: PostgreSQL: a transaction idle this long between statements (its
    #: process hung) is ended by the server, and the rows it locked freed
    store_idle_transaction_seconds: float = 10.0
    rules_dir: Path = PROJECT_ROOT / "rules"
    catalog_dir: Path = PROJECT_ROOT / "catalog"
    ruleset_id: str | None = None
    public_base_url: str | None = None
    callback_allowed_hosts: list[str] = field(
        default_factory=lambda: ["localhost", "127.0.0.0/8", "::1"])
    max_body_bytes: int = 1024 * 1024
    max_page_size: int = 1000
    event_max_attempts: int = 8
    event_backoff_seconds: float = 1.0
    event_backoff_max_seconds: float = 300.0
    event_timeout_seconds: float = 5.0
    event_max_response_bytes: int = 64 * 1024
    event_max_in_flight: int = 32
    event_circuit_failures: int = 5
    event_circuit_open_seconds: float = 30.0
    event_delivered_retention_seconds: float = 0.0
    event_failed_retention_seconds: float = 7 * 24 * 3600.0
    event_poll_seconds: float = 0.5
    #: a claim of a hub's queue is a lease for this long, renewed by its
    #: holder while it sends; a hung holder's hubs go to another dispatcher
    #: after it (app/events/lease.py)
    event_lease_seconds: float = 15.0
    #: /health says delivery is stalled when a notification waits longer, or
    #: a dispatcher has not reported for longer
    event_stall_seconds: float = 60.0
    #: "process": under gunicorn, one dispatcher process beside the workers
    #: (app/events/process.py); "workers": a dispatcher in every worker
    event_dispatcher: str = "process"
    event_dispatcher_nice: int = 10
    max_hubs_per_api: int = 100
    background_workers: bool = True
    api_keys: list[str] = field(default_factory=list)
    admin_keys: list[str] = field(default_factory=list)
    protect_reads: bool = False
    metrics_keys: list[str] = field(default_factory=list)
    log_format: str = "console"
    log_level: str = "INFO"
    # An OpenTelemetry TracerProvider (tests, embedding); None: from OTEL_*
    # (app/observability/tracing.py). Not an environment setting.
    tracer_provider: object = None
    # rules: seconds between looks at the rule files; rules in retired compiled
    # versions a worker holds before it is replaced (app/rules/service)
    rules_check_interval: float = 0.5
    rules_retired_budget: int = 2000
    # bytes: the one size limit of every rule, catalog and cases file, however
    # it arrives (folder, reload, CLI, Studio, /admin/rules); app/rules/model/source.py
    max_rule_file_bytes: int = 10 * 1024 * 1024
    # the decision log (app/decisions): every answer recorded in batches
    decision_log: bool = True
    decision_retention_days: float = 30.0
    decision_batch_size: int = 500
    decision_flush_seconds: float = 0.1
    decision_buffer_max: int = 50_000
    decision_purge_seconds: float = 3600.0
    decision_file_warn_mb: float = 400.0
    # four eyes: a version is activated only once approved by another key
    # than the one(s) that saved it (app/rules/authoring/governance.py approve)
    rules_require_approval: bool = False

    ENV = {
        "data_dir": "RECO_DATA_DIR",
        "store_url": "RECO_STORE_URL",
        "store_pool_size": "RECO_STORE_POOL_SIZE",
        "store_timeout_seconds": "RECO_STORE_TIMEOUT_SECONDS",
        "store_idle_transaction_seconds": "RECO_STORE_IDLE_TRANSACTION_SECONDS",
        "rules_dir": "RECO_RULES_DIR",
        "catalog_dir": "RECO_CATALOG_DIR",
        "ruleset_id": "RECO_RULESET",
        "public_base_url": "RECO_PUBLIC_BASE_URL",
        "callback_allowed_hosts": "RECO_CALLBACK_ALLOWED_HOSTS",
        "max_body_bytes": "RECO_MAX_BODY_BYTES",
        "max_page_size": "RECO_MAX_PAGE_SIZE",
        "event_max_attempts": "RECO_EVENT_MAX_ATTEMPTS",
        "event_backoff_seconds": "RECO_EVENT_BACKOFF_SECONDS",
        "event_backoff_max_seconds": "RECO_EVENT_BACKOFF_MAX_SECONDS",
        "event_timeout_seconds": "RECO_EVENT_TIMEOUT_SECONDS",
        "event_max_response_bytes": "RECO_EVENT_MAX_RESPONSE_BYTES",
        "event_max_in_flight": "RECO_EVENT_MAX_IN_FLIGHT",
        "event_circuit_failures": "RECO_EVENT_CIRCUIT_FAILURES",
        "event_circuit_open_seconds": "RECO_EVENT_CIRCUIT_OPEN_SECONDS",
        "event_delivered_retention_seconds": "RECO_EVENT_DELIVERED_RETENTION_SECONDS",
        "event_failed_retention_seconds": "RECO_EVENT_FAILED_RETENTION_SECONDS",
        "event_poll_seconds": "RECO_EVENT_POLL_SECONDS",
        "event_lease_seconds": "RECO_EVENT_LEASE_SECONDS",
        "event_stall_seconds": "RECO_EVENT_STALL_SECONDS",
        "event_dispatcher": "RECO_EVENT_DISPATCHER",
        "event_dispatcher_nice": "RECO_EVENT_DISPATCHER_NICE",
        "max_hubs_per_api": "RECO_MAX_HUBS_PER_API",
        "background_workers": "RECO_BACKGROUND_WORKERS",
        "api_keys": "RECO_API_KEYS",
        "admin_keys": "RECO_ADMIN_KEYS",
        "protect_reads": "RECO_PROTECT_READS",
        "metrics_keys": "RECO_METRICS_KEYS",
        "log_format": "RECO_LOG_FORMAT",
        "log_level": "RECO_LOG_LEVEL",
        "rules_check_interval": "RECO_RULES_CHECK_INTERVAL",
        "rules_retired_budget": "RECO_RULES_RETIRED_BUDGET",
        "max_rule_file_bytes": "RECO_MAX_RULE_FILE_BYTES",
        "decision_log": "RECO_DECISION_LOG",
        "decision_retention_days": "RECO_DECISION_RETENTION_DAYS",
        "decision_batch_size": "RECO_DECISION_BATCH_SIZE",
        "decision_flush_seconds": "RECO_DECISION_FLUSH_SECONDS",
        "decision_buffer_max": "RECO_DECISION_BUFFER_MAX",
        "decision_purge_seconds": "RECO_DECISION_PURGE_SECONDS",
        "decision_file_warn_mb": "RECO_DECISION_FILE_WARN_MB",
        "rules_require_approval": "RECO_RULES_REQUIRE_APPROVAL",
    }


    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        """Environment first, explicit overrides (tests, factories) last."""
        environ = os.environ if environ is None else environ
        settings = cls()
        for f in fields(cls):
            name = cls.ENV.get(f.name)
            if name and environ.get(name) not in (None, ""):
                setattr(settings, f.name, _coerce(f.name, getattr(settings, f.name), environ[name]))
        for key, value in overrides.items():
            if not hasattr(settings, key):
                raise TypeError(f"unknown setting {key!r}")
            setattr(settings, key, value)
        for key in ("data_dir", "rules_dir", "catalog_dir"):
            setattr(settings, key, Path(getattr(settings, key)))
        return settings


def _coerce(name: str, default, raw: str):
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, Path):
            return Path(raw)
        if isinstance(default, list):
            return _list(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{Settings.ENV[name]}={raw!r}: {exc}") from None
    return raw
