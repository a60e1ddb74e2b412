"""The recommendation service's package. The app factory lives in
app/factory.py; `from app import create_app` (wsgi.py, `flask --app app`,
the tests) reaches it through this module's __getattr__ (PEP 562), so that a
process that only needs part of the package (the event dispatcher,
`python -m app.events dispatch`, a fresh interpreter per server) does not
import Flask, flask-smorest and the API it never serves: measured, 0.4 s of
the dispatcher's 1.0 s of start-up CPU (python -X importtime, load 7).
"""
from __future__ import annotations

#: what app/factory.py offers under the package's name
_FACTORY = ("create_app", "start_background", "activation_pointer", "report_schema",
            "TmfApi", "BACKGROUND_CHECK_S", "__version__")


def __getattr__(name: str):
    if name in _FACTORY:
        # on first use: start-up of processes that serve no HTTP stays light
        from . import factory
        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
