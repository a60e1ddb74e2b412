"""The Studio over recorded traffic, in Chromium against a real server: the
impact view replays recorded answers weighted ("of 5 recorded answers, 4
would change: 7301 lost 4 times") and the Conversion page shows the funnel
of every answer. STUDIO_SCREENSHOTS=1 rewrites docs/studio/impact-recorded.png
and conversion-funnel.png."""
from __future__ import annotations

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, Client, ServiceProcess
from test_impact_recorded import recorded_traffic, rules_with_new_version
from test_studio import KEY, login, shot


def test_impact_and_funnel_over_recorded_answers(tmp_path, page):
    rules = rules_with_new_version(tmp_path)
    server = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                            env={"RECO_ADMIN_KEYS": KEY}).start()
    try:
        api = Client(server.url)
        recorded_traffic(api, KEY)
        first = requests.get(server.url + "/tmf-api/recommendationManagement/v4/"
                             "recommendationReaction", timeout=10)
        assert first.json() == []
        login(page, server.url)
        page.goto(server.url + "/studio/impact?old=1.0.0&new=1.1.0")
        page.get_by_label("Regression cases").uncheck()
        page.get_by_label("Recent stored queries").fill("0")
        page.get_by_label("Recorded answers (last N)").fill("100")
        page.get_by_role("button", name="Compare").click()
        recorded = page.locator("#impact-recorded-summary")
        expect(recorded).to_have_text("Of 5 recorded answers (2 distinct situations), "
                                      "4 would change: 7301 lost 4 times.")
        expect(page.locator("#impact-summary")).to_contain_text("1 of 2 situations change")
        expect(page.locator("#impact-result table").first).to_contain_text("recorded")
        shot(page, "impact-recorded")

        # only channel 22: nothing changes there
        page.get_by_label("of channel").fill("22")
        page.get_by_role("button", name="Compare").click()
        expect(recorded).to_have_text("Of 1 recorded answers (1 distinct situations), 0 would change.")

        page.goto(server.url + "/studio/conversion?by=channel")
        table = page.locator("#funnel-table")
        expect(page.locator("#funnel")).to_contain_text(
            "5 decisions (instant and asynchronous), 11 items, 0 shown, 0 clicked, 0 leads")
        rows = [row.split("\t") for row in table.locator("tbody tr").all_inner_texts()]
        assert [row[2:4] for row in rows] == [["21", "4"], ["22", "1"]]
        shot(page, "conversion-funnel")
        assert page.console_errors == []
    finally:
        server.stop()
