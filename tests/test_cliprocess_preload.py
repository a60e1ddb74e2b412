"""The gunicorn zygote's preload (tests/cliprocess.py): the app modules it
imports before a master forks reach no prometheus-client, whose
multiprocess mode must be chosen in each worker after gunicorn.conf.py has
set PROMETHEUS_MULTIPROC_DIR, and they are most of the app."""
from __future__ import annotations

import subprocess
import sys

import cliprocess
from helpers import ROOT


def test_the_preloaded_app_modules_import_no_prometheus_client():
    modules = cliprocess.app_modules_without_metrics()
    probe = ("import importlib, sys\n"
             f"for name in {modules!r}:\n"
             "    importlib.import_module(name)\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             f"{cliprocess.AFTER_THE_FORK!r} or m == 'gunicorn.config'))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_what_imports_the_metrics_is_left_to_the_worker_and_the_rest_is_preloaded():
    modules = set(cliprocess.app_modules_without_metrics())
    # metrics at module level, and what imports them at module level
    assert not {"app.observability.metrics", "app.decisions.metrics", "app.api.health",
                "app.recommend.recommender", "app.events.bus"} & modules
    # imported by create_app, and free of metrics (a TYPE_CHECKING import does not count)
    assert {"app", "app.services", "app.api.tmf", "app.rules.engine.engine",
            "app.store.tinydb_store", "app.store.postgres_store", "app.error_handlers"} <= modules
    assert not [name for name in modules if "migrations" in name or name.endswith("__main__")]
