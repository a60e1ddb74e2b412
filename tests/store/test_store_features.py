"""What a backend can do beyond the store contract is declared on the Store
interface (app/store/base.py), and the instrumented store the app uses
(app/observability/store.py) reports its inner store's features, so callers
ask `store.shared` instead of comparing `store.backend` or probing with
getattr."""
from __future__ import annotations

import re
from pathlib import Path

from app.observability.store import instrument_store
from app.store import Store

FEATURES = ("backend", "shared", "sql", "queries_in_backend", "display_url")
APP = Path(__file__).resolve().parents[2] / "app"


def test_each_backend_declares_its_features_and_the_instrumented_store_reports_them(store, store_url):
    postgres = store_url.startswith("postgresql")
    expected = {"backend": "postgresql" if postgres else "tinydb", "shared": postgres, "sql": postgres,
                "queries_in_backend": postgres}
    assert {name: getattr(store, name) for name in expected} == expected
    assert isinstance(store.display_url, str) and ":change-me@" not in store.display_url
    if postgres:
        assert "@" not in store.display_url or ":" not in store.display_url.split("@")[0].split("//")[-1]
    instrumented = instrument_store(store)
    assert isinstance(instrumented, Store)
    assert {name: getattr(instrumented, name) for name in FEATURES} == {
        name: getattr(store, name) for name in FEATURES}
    # a store whose schema is current (TinyDB has none): nothing to report
    store.check_schema()
    instrumented.check_schema()


def test_no_module_probes_a_store_for_its_backend():
    probe = re.compile(r"getattr\([^)]*(?:store|sink)[^)]*,\s*['\"](?:backend|check_schema|display_url)['\"]"
                       r"|\.backend\s*[!=]=")
    found = [f"{path.relative_to(APP)}:{number}: {line.strip()}"
             for path in APP.rglob("*.py") if path.parent.name != "store" or path.name == "__init__.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if probe.search(line)]
    assert not found, "ask the Store interface for a feature instead:\n" + "\n".join(found)
