"""The service's parts, built once by the app factory (app/factory.py) and
read through one accessor, `services()`, by the APIs, the Studio, the CLI
and the workers: one typed object instead of a dict every caller unpacks.

Kept in `app.extensions["reco"]` (Flask's place for an extension's state),
so a test or a tool holding the app reaches the same object."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:     # types only: importing the parts here would load them all
    from .config import Settings
    from .decisions.log import DecisionLog
    from .events.bus import EventBus
    from .recommend import Recommender
    from .recommend.jobs import RecommendationJobs
    from .resources.service import ResourceService
    from .rules import RuleService
    from .store import Store

EXTENSION = "reco"


@dataclass
class Services:
    settings: Settings
    store: Store
    events: EventBus
    rules: RuleService
    recommender: Recommender
    jobs: RecommendationJobs
    #: TMF collection name ("queryProductRecommendation", "customer", ...) -> its service
    resources: dict[str, ResourceService]
    #: None when RECO_DECISION_LOG is off
    decisions: DecisionLog | None = None


def install(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION] = services


def services(app: Flask | None = None) -> Services:
    """The services of `app`, else of the app handling this request or
    command (Flask's current_app: RuntimeError outside one)."""
    return (app or current_app).extensions[EXTENSION]


def services_of(app) -> Services | None:
    """The services of `app`, or None for a WSGI app create_app did not
    build (gunicorn.conf.py and the worker class serve any app, e.g. the
    benchmark's bare Flask endpoint)."""
    return getattr(app, "extensions", {}).get(EXTENSION)
