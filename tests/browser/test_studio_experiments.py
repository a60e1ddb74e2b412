"""The Studio's Experiments page in Chromium against a real server: start a
draft experiment, change its weights, read a running one's report (counts equal to the API's,
charts drawn, the method stated) and promote its winner, which activates
the winner's version and completes the experiment; each recorded with the
logged-in name. STUDIO_SCREENSHOTS=1 rewrites docs/studio/experiments.png
(docs/experiments.md shows it)."""
from __future__ import annotations

import sys
from pathlib import Path

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, Client, ServiceProcess, wait_until
from test_studio import KEY, login, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from experiment_project import R, make_rules, query  # noqa: E402

REACTIONS = "/tmf-api/recommendationManagement/v4/recommendationReaction"


def test_start_read_report_and_promote_in_the_studio(tmp_path, page):
    rules = make_rules(tmp_path / "project")
    server = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                            env={"RECO_ADMIN_KEYS": KEY}).start()
    admin = {"Authorization": f"Bearer {KEY}"}
    try:
        api = Client(server.url)
        for n in range(120):
            answer = api.post(R, json=query(f"b-{n}")).json()
            for item in answer["recommendationItem"][: 1 + n % 2]:
                api.post(REACTIONS, json={"reactionType": "shown", "recommendation": {
                    "id": answer["id"], "itemId": item["id"]}}).raise_for_status()
                if n % 3 == 0:
                    api.post(REACTIONS, json={"reactionType": "accepted", "recommendation": {
                        "id": answer["id"], "itemId": item["id"]}}).raise_for_status()
        assert wait_until(lambda: sum(a["decisions"] for a in api.get(
            "/admin/experiments/split/report", headers=admin).json()["arms"]) == 120, 20)
        login(page, server.url)

        # start the draft canary
        page.goto(server.url + "/studio/experiments")
        expect(page.locator("#experiment-list")).to_contain_text("canary")
        page.get_by_role("link", name="canary").click()
        page.locator("#start-experiment").click()
        expect(page.locator(".flash.ok")).to_contain_text("canary: start done, now running")
        assert "experiment" in api.post(R, json=query("b-1", channel="23")).json()
        # the canary grows from 5 % to 25 %
        page.locator("input[name='weight.canary']").fill("25")
        page.locator("input[name='weight.stable']").fill("75")
        page.locator("#change-weights").click()
        expect(page.locator(".flash.ok")).to_contain_text("canary 25 %, stable 75 %")
        # a sum other than 100 is refused, and says why
        page.locator("input[name='weight.canary']").fill("30")
        page.locator("#change-weights").click()
        expect(page.locator(".flash.error")).to_contain_text("add up to 105, not 100")

        # read the running split's report: the API's counts, the charts, the method
        page.goto(server.url + "/studio/experiments/split")
        api_report = api.get("/admin/experiments/split/report", headers=admin).json()
        for arm in api_report["arms"]:
            row = page.locator(f"#report-table tr[data-arm='{arm['name']}']")
            for count in ("decisions", "items", "shown", "accepted"):
                expect(row.locator(f".count-{count}")).to_have_text(str(arm[count]))
        expect(page.locator("#rate-chart svg rect.bar")).to_have_count(2)
        expect(page.locator("#uplift-chart svg circle")).to_have_count(1)
        expect(page.locator("#method")).to_contain_text("mSPRT")
        expect(page.locator("#sample-ratio")).to_contain_text("chi-square")
        shot(page, "experiments")

        # promote the control: its version serves everybody, the experiment is completed
        page.get_by_label("Promote").select_option("control")
        page.locator("#promote-experiment").click()
        expect(page.locator(".flash.ok")).to_contain_text("split: promote done, now completed")
        expect(page.locator("#experiment")).to_contain_text("completed")
        assert api.get("/admin/rules", headers=admin).json()["version"] == "1.0.0"
        after = api.post(R, json=query("b-2")).json()
        assert "experiment" not in after
        history = requests.get(server.url + "/admin/rules/history", headers=admin, timeout=10).json()
        entries = history if isinstance(history, list) else next(v for v in history.values() if isinstance(v, list))
        mine = [(e["action"], e.get("experimentId"), e["by"]) for e in entries if e["action"].startswith("experiment-")]
        assert [m[:2] for m in mine] == [("experiment-promote", "split"), ("experiment-weights", "canary"),
                                          ("experiment-start", "canary")]
        assert all("Ana PM" in by for _a, _e, by in mine), mine
        assert page.console_errors == []
    finally:
        server.stop()
