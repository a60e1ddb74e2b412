"""Application factory: one place that wires settings, store, rules engine,
event delivery and the API blueprints, so tests and gunicorn build the same
service. Reached as `app.create_app` (app/__init__.py hands it out on first
use, so processes that serve no HTTP do not import Flask)."""
from __future__ import annotations

import functools
import logging
import os
import time

from flask import Flask

from .api.deferred_doc import DeferredDocApi
from .auth import install_auth
from .cli import register_cli
from .config import Settings
from .error_handlers import register_error_handlers
from .jsonbody import NfcRequest, install_accept_patch, install_nfc_path_values
from .services import Services, install, services_of

__version__ = "0.1.0"


class TmfApi(DeferredDocApi):
    """Documents the TMF Error body as every operation's default error; the
    document is built on first need (app/api/deferred_doc.py)."""

    @property
    def ERROR_SCHEMA(self):  # noqa: N802 - flask-smorest's attribute name
        from .api.tmf import ErrorSchema   # light start-up, as create_app's imports
        return ErrorSchema


def start_background(app: Flask) -> None:
    """Start event delivery and asynchronous evaluation in this process
    (idempotent; does nothing when RECO_BACKGROUND_WORKERS is off, or for an
    app that create_app did not build: gunicorn.conf.py serves any WSGI app,
    e.g. the benchmark's bare Flask endpoint)."""
    reco = services_of(app)
    if reco is not None and reco.settings.background_workers:
        reco.events.start()
        reco.jobs.poller.ensure_started()


#: seconds between two checks, on the request path, that this process's
#: background threads run (start_background restarts one that died)
BACKGROUND_CHECK_S = 1.0


def _background_check(app: Flask):
    """A before-request function that calls start_background at most once a
    second, and at once in a new process (a fork): its idempotent checks
    (locks, thread liveness, the pid) cost 4 µs of thread CPU, paid by every
    request before; now a clock read and os.getpid, about 0.3 µs."""
    next_check = {"pid": None, "at": 0.0}

    def _start_background():
        now = time.monotonic()
        if now < next_check["at"] and next_check["pid"] == os.getpid():
            return
        start_background(app)
        next_check.update(pid=os.getpid(), at=now + BACKGROUND_CHECK_S)

    return _start_background


def report_schema(store) -> None:
    """A worker does not serve against a database schema it does not know
    (its queries would fail half-way): PostgreSQL answers every call with StoreUnavailable
    (503, the reason and the fix) until the schema is the one this code
    knows, and /health/ready says so. Logged here at start for operators;
    not raised, so `flask store upgrade` itself can load the app. Not logged
    when a `flask` command other than `run` builds the app: `store upgrade`
    is the fix, `store check` says it itself, and the others are not serving."""
    import click                          # light start-up, as create_app's imports

    from .store import StoreUnavailable   # light start-up, as create_app's imports

    command = click.get_current_context(silent=True)
    if command is not None and command.info_name != "run":
        return
    try:
        store.check_schema()
    except StoreUnavailable as exc:
        logging.getLogger(__name__).error("not serving until the store is usable: %s", exc)


def activation_pointer(store):
    """On PostgreSQL the active rule set version lives in the shared store, so
    an activation on one host switches every worker on every host; on TinyDB
    it is the file in the data directory (None: the rule service's default)."""
    from .rules.repository.pointer import StorePointer   # light start-up, as create_app's imports

    return StorePointer(store) if store.shared else None


def create_app(settings: Settings | None = None, *, tracer_provider=None, **overrides) -> Flask:
    """The service. settings: Settings.from_env(**overrides) when None
    (SettingsError names a bad variable); tracer_provider: an OpenTelemetry
    TracerProvider (tests, embedding), else one from OTEL_* or none."""
    # imported here, not above, to keep start-up light: `import app.config` (gunicorn's
    # config, the event dispatcher process) runs this package's top level
    from .api import catalog, customer, health, inventory, metrics, recommendation, sales
    from .api import experiments as experiments_api
    from .api import reactions, rules_admin
    from .api.docs import SWAGGER_UI_SETTINGS, install_docs
    from .api.tmf import ListLimitPlugin, TmfMarshmallowPlugin, install_doc_fields
    from .contact import history_source
    from .decisions.recording import record_decision
    from .decisions.wiring import install_decision_log
    from .events import EventBus
    from .experiments.router import ExperimentRouter
    from .observability.logs import configure_logging
    from .observability.metrics import observe_reload
    from .observability.requests import install_request_observability, outgoing_trace_headers
    from .observability.store import instrument_store
    from .observability.tracing import provider_from_env
    from .recommend import Recommender
    from .recommend.jobs import RecommendationJobs
    from .resources.service import ResourceService
    from .rules import RuleService
    from .rules.model.source import set_max_file_bytes
    from .rules.repository.store_ledger import StoreLedger
    from .store import open_configured_store

    settings = settings or Settings.from_env(**overrides)
    app = Flask(__name__)
    app.request_class = NfcRequest   # query strings in Unicode NFC (app/textform.py)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="TMF Recommendation Engine",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        **SWAGGER_UI_SETTINGS,   # served from the installed package, not a CDN
    )
    app.json.sort_keys = False
    # `/customer//x` is no resource: a 404 TMF Error, not a 308 (with an HTML
    # body) to another URL that a client would re-send its POST or DELETE to.
    app.url_map.merge_slashes = False
    configure_logging(settings.log_format, settings.log_level)
    # First, so that every request has its id and is measured, even one
    # that authentication refuses.
    install_request_observability(app, tracer_provider or provider_from_env())

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = instrument_store(open_configured_store(settings))
    report_schema(store)
    events = EventBus(store, settings, trace_headers=outgoing_trace_headers)
    set_max_file_bytes(settings.max_rule_file_bytes)     # before the first rule file is read
    rules = RuleService(settings.rules_dir, settings.catalog_dir, settings.data_dir,
                        ruleset_id=settings.ruleset_id, pointer=activation_pointer(store),
                        check_interval=settings.rules_check_interval,
                        retired_budget=settings.rules_retired_budget,
                        ledger=StoreLedger(store), on_reload=observe_reload)
    recommender = Recommender(rules, store, experiments=ExperimentRouter(
        rules, check_interval=min(1.0, settings.rules_check_interval)))
    tmf_apis = (recommendation, customer, inventory, sales)
    resources = {module.KIND.collection: ResourceService(module.KIND, store, events)
                 for module in tmf_apis}
    decisions = install_decision_log(settings, store, events, resources, recommendation.KIND)
    recommender.parties.history = history_source(store, decisions)   # contact policies
    jobs = RecommendationJobs(store, resources[recommendation.KIND.collection], recommender)
    jobs.record_decision = functools.partial(record_decision, decisions, mode="async")
    install(app, Services(settings, store, events, rules, recommender, jobs, resources, decisions))

    api = TmfApi(app, spec_kwargs={
        "marshmallow_plugin": TmfMarshmallowPlugin(),
        "extra_plugins": [ListLimitPlugin(settings.max_page_size)],
        "info": {"description": (
            "TMF680 Recommendation, TMF629 Customer, TMF637 Product Inventory, "
            "TMF699 Sales Management and TMF620 Product Catalog (productOffering, "
            "read-only), v4.0.0. "
            "Errors use the TMF Error body.")}})
    install_doc_fields(api)
    for module in tmf_apis:
        api.register_blueprint(module.blp)
    api.register_blueprint(reactions.blp)   # TMF680 extension: reactions to recommended items
    api.register_blueprint(catalog.blp)   # TMF620, read-only, from the catalog files
    api.register_blueprint(health.blp)
    install_docs(app)   # /docs/assets: Swagger UI, not in the OpenAPI document
    api.register_blueprint(rules_admin.blp)  # /admin/rules: tooling for the Rule Studio and operators
    api.register_blueprint(experiments_api.blp)  # /admin/experiments: A/B tests of rule versions
    app.register_blueprint(metrics.blp)      # /metrics: for Prometheus, not in the OpenAPI document
    from .studio import init_app as init_studio   # light start-up, as the imports above
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    init_studio(app, settings.data_dir, secret)   # /studio: the product managers' web page
    register_error_handlers(app)
    install_accept_patch(app)
    install_nfc_path_values(app)     # path ids in NFC, as query strings
    install_auth(app, settings.api_keys, settings.admin_keys, settings.protect_reads,
                 settings.metrics_keys)
    register_cli(app)

    if settings.background_workers:
        # gunicorn.conf.py's post_worker_init starts them with each worker, so
        # a restarted service with no traffic still delivers its backlog and
        # runs queued queries. Not here: `flask --app wsgi rules ...` builds
        # this app too, and a CLI command must not deliver events. Under any
        # other server they start with the first request (cheap check).
        app.before_request(_background_check(app))

    return app
