"""The Studio's Playground shows the experiment arm that answered a pasted
TMF680 query, in Chromium against a real server: by default it explains a
query as served (its experiment arm's version), names the experiment and
the arm above the items, says when the arm is a holdout, and a version
chosen explicitly explains that version with no arm."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, ServiceProcess
from test_studio import KEY, login

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from experiment_project import make_rules, query  # noqa: E402

from app.experiments.assign import bucket  # noqa: E402

PASTE = "A case context, a case, or a TMF680 query body"


def explain(page, body: dict, version: str = "") -> tuple[str, list[str]]:
    """The first answer panel's text (one line) and its items, in order."""
    page.get_by_label(PASTE).fill(json.dumps(body))
    page.get_by_label("Version", exact=True).select_option(version)
    page.evaluate("() => document.querySelectorAll('#answers section').forEach((s) => s.dataset.stale = '1')")
    page.get_by_role("button", name="Explain").click()
    panel = page.locator("#answers section.answer:not([data-stale])").first
    expect(panel).to_be_visible()
    return (" ".join(panel.inner_text().split()),
            panel.locator("ol.items > li").evaluate_all("items => items.map(i => i.dataset.offering)"))


def test_the_playground_names_the_arm_that_answered(tmp_path, page):
    rules = make_rules(tmp_path / "project")
    server = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                            env={"RECO_ADMIN_KEYS": KEY}).start()
    try:
        control = next(f"c-{n}" for n in range(200) if bucket("split", f"party:c-{n}") >= 5000)
        challenger = next(f"c-{n}" for n in range(200) if bucket("split", f"party:c-{n}") < 5000)
        held = next(f"h-{n}" for n in range(200) if bucket("holdout-test", f"party:h-{n}") < 5000)
        login(page, server.url)
        page.goto(server.url + "/studio/playground")
        expect(page.get_by_label("Version", exact=True)).to_have_value("")     # as served, by default

        text, items = explain(page, query(challenger))
        assert "Experiment split, arm challenger: answered by version 1.1.0" in text, text
        assert items == ["6542"]
        expect(page.locator("#answers section.answer p.experiment")).to_have_attribute("data-arm", "challenger")
        text, items = explain(page, query(control))
        assert "Experiment split, arm control: answered by version 1.0.0" in text, text
        assert items == ["6542", "6543", "7301"]
        text, _items = explain(page, query(held, channel="22"))
        assert "Experiment holdout-test, arm holdout: a holdout, answered with no items" in text, text

        # a version chosen: that version explains, no arm is named
        text, items = explain(page, query(challenger), "1.0.0")
        assert "Experiment" not in text and items == ["6542", "6543", "7301"]
        expect(page.locator("#answers p.experiment")).to_have_count(0)
        # a case context is no TMF680 query: the active version (1.1.0 here, one item), no arm
        active = requests.get(server.url + "/health", timeout=10).json()["rules"]["version"]
        text, items = explain(page, {"customer": "none", "cart": ["6547"], "channel": "21",
                                     "time": "2026-10-01T00:00:00Z"})
        assert text.startswith(f"telco-demo {active} ") and "Experiment" not in text, text
        assert items == (["6542"] if active == "1.1.0" else ["6542", "6543", "7301"])
        assert page.console_errors == []
    finally:
        server.stop()
