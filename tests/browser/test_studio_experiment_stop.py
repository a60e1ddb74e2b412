"""Stopping a running experiment from the Studio, in Chromium against a real
server: its queries go back to the active version at once, the page says
so, and the audit history records the stop with the logged-in name (the
CLI's stop is tests/experiments/test_experiments_cli.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, Client, ServiceProcess
from test_studio import KEY, login

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from experiment_project import R, make_rules, query  # noqa: E402


def test_stop_a_running_experiment_in_the_studio(tmp_path, page):
    rules = make_rules(tmp_path / "project")
    server = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                            env={"RECO_ADMIN_KEYS": KEY}).start()
    try:
        api = Client(server.url)
        assert api.post(R, json=query("s-1", channel="22")).json()["experiment"]["id"] == "holdout-test"
        login(page, server.url)
        page.goto(server.url + "/studio/experiments")
        page.get_by_role("link", name="holdout-test").click()
        page.locator("#stop-experiment").click()
        expect(page.locator(".flash.ok")).to_contain_text("holdout-test: stop done, now stopped")
        expect(page.locator("#experiment")).to_contain_text("stopped")
        expect(page.locator("#start-experiment")).to_be_visible()            # a stopped one can start again
        after = api.post(R, json=query("s-1", channel="22")).json()
        assert "experiment" not in after and after["recommendationItem"]
        history = requests.get(server.url + "/admin/rules/history", timeout=10,
                               headers={"Authorization": f"Bearer {KEY}"}).json()
        entries = history if isinstance(history, list) else next(v for v in history.values() if isinstance(v, list))
        stops = [e for e in entries if e["action"] == "experiment-stop"]
        assert [e.get("experimentId") for e in stops] == ["holdout-test"] and "Ana PM" in stops[0]["by"], stops
        assert page.console_errors == []
    finally:
        server.stop()
