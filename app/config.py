"""Settings read once from the environment, so operators configure the service
without editing code, and tests configure it without monkeypatching modules.

Every `RECO_*` variable an operator may set is a field of `Settings` (named
`RECO_<FIELD>`, pydantic-settings' env_prefix), with its type, its bounds,
its default and its meaning: the one home of each. The app, gunicorn.conf.py,
the event dispatcher process, logging and the Studio all read these fields;
`python -m app.config_table` writes the table of docs/configuration.md from
them. Variables the service sets for its own child processes are listed in
INTERNAL_VARIABLES, so that every `RECO_*` name has an entry here
(tests/test_settings.py greps the sources for any other).

A new variable: one field here, `name: type = Field(default, bounds,
description="meaning")` (read from `RECO_` and the name in upper case), then
`python -m app.config_table`; tests/test_settings.py fails until both are
done.

A bad value stops the start with `SettingsError`, one line per variable:
`RECO_MAX_PAGE_SIZE='abc': Input should be a valid integer, ...`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from . import addresses

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENV_PREFIX = "RECO_"

#: Variables the service sets itself for the processes it starts, and a test
#: hook; not settings (an operator leaves them alone). name -> meaning
INTERNAL_VARIABLES = {
    "RECO_EVENT_WAKE_SOCKET": "the event dispatcher process's wake-up socket, set by its supervisor "
                              "for the workers it forks (app/events/process.py)",
    "RECO_EVENT_DISPATCHER_PARENT": "the gunicorn master's pid, given to the dispatcher process so that it "
                                    "stops with it (app/events/process.py)",
    "RECO_EVENT_ALIVE_FILE": "the file the dispatcher process touches on each loop, watched by its "
                             "supervisor (app/events/process.py)",
    "RECO_OWN_METRICS_DIR": "the metrics directory gunicorn.conf.py made, removed at exit "
                            "(an operator's PROMETHEUS_MULTIPROC_DIR is kept)",
    "RECO_TEST_WORKERS": "tests only: how many pytest-xdist workers bin/test starts (docs/testing.md)",
    "RECO_FAULT_ENGINE_BUILDS": "tests only: a file naming how many rule engine builds fail next "
                                "(app/rules/engine/faults.py)",
}

#: comma-separated lists (RECO_API_KEYS=a,b), not JSON: NoDecode hands the
#: raw string to _split_commas
CommaList = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """Bad environment values, one line per variable, each naming it."""


class Settings(BaseSettings):
    """The service's settings: environment (`RECO_<FIELD>`), then explicit
    overrides (tests, factories) on top. An empty variable counts as unset.

    Fields are grouped as the configuration table shows them; each field's
    description is that table's "meaning" column."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True,
                                      extra="forbid", validate_assignment=True, validate_default=True,
                                      populate_by_name=True)

    # the store
    store_url: str | None = Field(None, description=(
        "the store: `tinydb:///abs/dir` (or a path), or `postgresql://user:password@host:5432/database`; "
        "unset: TinyDB files in `RECO_DATA_DIR`"))
    store_pool_size: int = Field(10, ge=1, description="PostgreSQL: connections per worker process at most")
    store_timeout_seconds: float = Field(5.0, gt=0, description=(
        "PostgreSQL: how long a call waits for a connection before answering 503"))
    #: PostgreSQL: a transaction idle this long between statements (its
    #: process hung) is ended by the server, and the rows it locked freed
    store_idle_transaction_seconds: float = Field(10.0, gt=0, description=(
        "PostgreSQL: a transaction left waiting for its process this long (the process hung) is ended "
        "by the server, and the rows it locked freed"))
    data_dir: Path = Field(PROJECT_ROOT / "instance" / "data", description=(
        "TinyDB store (when `RECO_STORE_URL` is unset), the decision log's files, the rule set "
        "activation state on TinyDB, the Studio's session secret"))

    # rules and catalog
    rules_dir: Path = Field(PROJECT_ROOT / "rules", description="rule set files and their regression cases")
    catalog_dir: Path = Field(PROJECT_ROOT / "catalog", description=(
        "product catalog (TMF620 ProductOffering fields)"))
    ruleset_id: str | None = Field(None, validation_alias=AliasChoices("RECO_RULESET", "ruleset_id"),
                                   description=(
        "which rule set answers TMF680 queries; unset: the only rule set, else `telco-demo`"))
    # rules: seconds between looks at the rule files (per process; the look is
    # in the watcher thread, never in a request); rules in retired compiled
    # versions a worker holds before it is replaced (app/rules/service),
    # measured at +26 MiB per retired 1,000-rule version (RSS after each
    # activation): 3,000 let a worker reach 1.98x its RSS after the first of
    # 50 activations of 1,000 rules (goal: under 2x, BENCHMARKS.md); 2,000
    # leaves a margin, and a replacement worker parses only the version it
    # serves (rule-files.checks.json)
    rules_check_interval: float = Field(0.5, gt=0, description=(
        "seconds between two looks at the rule and catalog files; a change is built in the background "
        "while the old version serves"))
    rules_retired_budget: int = Field(2000, ge=0, description=(
        "rules in retired compiled versions a worker may hold (about 26 MiB per 1,000) before gunicorn "
        "replaces it gracefully (the replacement serves before the worker leaves)"))
    # bytes: the one size limit of every rule, catalog and cases file, however
    # it arrives (folder, reload, CLI, Studio, /admin/rules); app/rules/model/source.py
    max_rule_file_bytes: int = Field(10 * 1024 * 1024, ge=1, description=(
        "bytes: the one size limit of every rule, catalog and cases file, however it arrives (the folders "
        "at start and reload, `flask rules`, the Rule Studio, `/admin/rules`; a 10,000-rule set is "
        "2.3 MB): checked by `stat` before the file is read; a larger one is an error naming the file "
        "and the limit (413 `FILE_TOO_LARGE` over HTTP)"))
    # four eyes: a version is activated only once approved by another key
    # than the one(s) that saved it (app/rules/authoring/governance.py approve)
    rules_require_approval: bool = Field(False, description=(
        "four eyes: a version is activated only after another admin key than its author's approved its "
        "exact content"))

    # the HTTP APIs
    public_base_url: str | None = Field(None, description=(
        "base of every stored link (`href`, `Location`, `@schemaLocation`); never taken from the request; "
        "unset: links are relative (`/tmf-api/...`)"))
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="larger request bodies get 413")
    max_page_size: int = Field(1000, ge=1, description="largest `limit` of a list")
    api_keys: CommaList = Field(default_factory=list, description=(
        "comma-separated keys (`Authorization: Bearer <key>` or `X-API-Key`) without which the TMF APIs "
        "refuse writes (401), and reads with `RECO_PROTECT_READS`; also the admin keys while "
        "`RECO_ADMIN_KEYS` is empty; none: the TMF APIs are open"))
    protect_reads: bool = Field(False, description=(
        "`true`: reading the TMF APIs needs one of `RECO_API_KEYS` as well (when any is set)"))
    admin_keys: CommaList = Field(default_factory=list, description=(
        "comma-separated keys for `/admin/...`, the Rule Studio's login and `/metrics`; saving, "
        "activating and rolling back rules always need one (403 while none is set)"))
    metrics_keys: CommaList = Field(default_factory=list, description=(
        "comma-separated keys that may read `GET /metrics` (besides the admin keys), and nothing else"))
    secret_key: SecretStr | None = Field(None, description=(
        "signs the Rule Studio's session cookie (the same value on every host behind one name); "
        "unset: a random secret kept in `RECO_DATA_DIR`"))

    # event delivery (hubs)
    callback_allowed_hosts: CommaList = Field(
        default_factory=lambda: ["localhost", "127.0.0.0/8", "::1"], description=(
            "hosts (`name`, `*.domain`) and networks (CIDR) hub callbacks may target; `*` allows all"))
    max_hubs_per_api: int = Field(100, ge=0, description="hubs per API; one more is a 409")
    event_max_attempts: int = Field(8, ge=1, description=(
        "delivery attempts per notification before it is marked failed"))
    event_backoff_seconds: float = Field(1.0, gt=0, description="first retry delay, doubled each attempt")
    event_backoff_max_seconds: float = Field(300.0, gt=0, description="the retry delay's cap")
    event_timeout_seconds: float = Field(5.0, gt=0, description=(
        "deadline of one whole delivery attempt: connect, send and the listener's answer"))
    event_max_response_bytes: int = Field(64 * 1024, ge=0, description=(
        "most bytes of a listener's answer that are read (the rest is dropped)"))
    event_max_in_flight: int = Field(32, ge=1, description=(
        "delivery attempts at once per dispatcher process (one per hub at most)"))
    event_circuit_failures: int = Field(5, ge=1, description="consecutive failures that pause a hub")
    event_circuit_open_seconds: float = Field(30.0, ge=0, description="how long a paused hub stays paused")
    event_delivered_retention_seconds: float = Field(0.0, ge=0, description=(
        "how long delivered notifications are kept (counted in `/health`), then purged; on TinyDB every "
        "kept entry is rewritten with each delivery outcome write, so they go at once unless you ask"))
    event_failed_retention_seconds: float = Field(7 * 24 * 3600.0, ge=0, description=(
        "how long failed notifications are kept (counted in `/health`), then purged"))
    event_poll_seconds: float = Field(0.5, gt=0, description=(
        "how often the dispatcher looks for work it was not woken for (another host's changes, retries)"))
    #: a claim of a hub's queue is a lease for this long, renewed by its
    #: holder while it sends; a hung holder's hubs go to another dispatcher
    #: after it (app/events/lease.py)
    event_lease_seconds: float = Field(15.0, gt=0, description=(
        "a claim of a hub's queue lasts this long, renewed while its dispatcher sends; a hung "
        "dispatcher's hubs go to another after it (at least the attempt deadline + 4 s)"))
    #: /health says delivery is stalled when a notification waits longer, or
    #: a dispatcher has not reported for longer
    event_stall_seconds: float = Field(60.0, gt=0, description=(
        "`/health` says delivery is stalled when a dispatcher has not reported, or a notification to a "
        "working listener has waited, this long"))
    #: "process": under gunicorn, one dispatcher process beside the workers
    #: (app/events/process.py); "workers": a dispatcher in every worker
    event_dispatcher: Literal["process", "workers"] = Field("process", description=(
        "`process`: under gunicorn one dispatcher process beside the workers delivers (requests never "
        "wait for it); `workers`: one in each worker"))
    event_dispatcher_nice: int = Field(10, ge=-20, le=19, description=(
        "the dispatcher process's CPU niceness: requests get the cores first"))
    background_workers: bool = Field(True, description=(
        "run event delivery and asynchronous evaluation threads in this process"))

    # the decision log (app/decisions): every answer recorded in batches
    decision_log: bool = Field(True, description="record every answer (answers then carry an id)")
    decision_retention_days: float = Field(30.0, gt=0, description="for how many days an answer's id resolves")
    decision_batch_size: int = Field(500, ge=1, description="the decision log's batch size")
    decision_flush_seconds: float = Field(0.1, gt=0, description="the decision log's write interval")
    decision_buffer_max: int = Field(50_000, ge=1, description="the decision log's per-worker buffer bound")
    decision_purge_seconds: float = Field(3600.0, gt=0, description=(
        "how often each worker removes the answers older than the retention window"))
    decision_file_warn_mb: float = Field(400.0, ge=0, description=(
        "TinyDB: a day's decision file over this many MB is logged as a warning (use PostgreSQL)"))

    # processes and logs
    bind: str = Field("127.0.0.1:8080", description=(
        "gunicorn's listening address (gunicorn.conf.py): `HOST:PORT`, `[IPv6]:PORT` or `unix:PATH`"))
    workers: int = Field(2, ge=1, description="gunicorn worker processes")
    threads: int = Field(4, ge=1, description="threads per gunicorn worker")
    log_format: Literal["json", "console"] = Field("console", description=(
        "`json`: one JSON object per line; `console`: aligned text for a developer; gunicorn.conf.py "
        "makes `json` the default under gunicorn"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="lowest level logged")

    @field_validator("api_keys", "admin_keys", "metrics_keys", "callback_allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("bind", "store_url", "public_base_url", "callback_allowed_hosts")
    @classmethod
    def _address(cls, value: Any, info) -> Any:
        """The addresses gunicorn, the store, the links and the callbacks
        would otherwise take as written and fail on later, or quietly
        misread (app/addresses.py)."""
        if value is None:
            return value
        if info.field_name == "callback_allowed_hosts":
            return [addresses.callback_host(entry) for entry in value]
        if info.field_name == "store_url":
            addresses.store_directory(value)
            return value
        return (addresses.bind_address if info.field_name == "bind" else addresses.base_url)(value)

    @field_validator("data_dir", "rules_dir", "catalog_dir")
    @classmethod
    def _folder(cls, value: Path) -> Path:
        """A folder setting that names a file is refused at start (the
        service would fail on its first read or write there, or serve
        nothing); a folder that does not exist yet is fine (data_dir is
        made at start; the others are reported when read)."""
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a folder")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: Any, info) -> Any:
        if isinstance(value, str):
            return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()
        return value

    @classmethod
    def variable(cls, field_name: str) -> str:
        """The environment variable of a field: `RECO_<FIELD>` or its alias."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return next(name for name in alias.choices if str(name).startswith(ENV_PREFIX))
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """Overrides, then the environment (from_env's mapping when given);
        no .env or secrets files: the process environment is the one source."""
        return init_settings, _MappingEnvSource(settings_cls)

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        """Environment first (os.environ, or the mapping given), explicit
        overrides (tests, factories) last. Raises SettingsError naming each
        bad variable, TypeError for an unknown override."""
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting {unknown[0]!r}")
        token = _ENVIRON.set(environ)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SettingsError(_explain(exc, os.environ if environ is None else environ, overrides)) from None
        finally:
            _ENVIRON.reset(token)


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("reco_settings_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over from_env's mapping
    (os.environ when none was given)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # keys lowercased: the source matches names case-insensitively
        environ = _ENVIRON.get()
        environ = os.environ if environ is None else environ
        return {key.lower(): value for key, value in environ.items()
                if key.startswith(ENV_PREFIX) and value != ""}


def _explain(exc: ValidationError, environ: Mapping[str, str], overrides: dict) -> str:
    """One line per bad value, each naming its variable with the value as
    written (an override's as given); a secret's value is not repeated."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        field = next((f for f in Settings.model_fields if name in (f, Settings.variable(f))), None)
        if field is None:
            lines.append(f"{name}: {error['msg']}")
            continue
        variable = Settings.variable(field)
        value = overrides[field] if field in overrides else environ.get(variable, error.get("input"))
        shown = "" if field in SECRET_FIELDS else f"={value!r}"
        lines.append(f"{variable}{shown}: {error['msg']}")
    return "\n".join(lines)


#: fields whose values an error message does not repeat
SECRET_FIELDS = frozenset({"api_keys", "admin_keys", "metrics_keys", "secret_key"})


def setting_default(field_name: str) -> Any:
    """The default of a setting, from its one home (its field above), for a
    part built without the settings: `open_store(url)` in a tool or a test, a
    RuleService in a test. KeyError for a name that is no field."""
    return Settings.model_fields[field_name].get_default(call_default_factory=True)
