"""A rule set's contact policies in the Studio, in Chromium against a real
server: the overview's "Rule or policy" table lists each policy with its
scope and what it suppresses (it listed only the rules), and a policy
whose id and description hold HTML (the rule file's lint allows any text
there) is shown as written on every Studio page, its markup never run
(the Playground's why-not text names it)."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, DEMO_RULES, ServiceProcess
from test_studio import KEY, login
from test_studio_contact import R, REACTIONS, iso, query

EVIL_ID = 'P<img src=x onerror="window.__xss = 1">'
EVIL_DESCRIPTION = '<script>window.__xss = 2</script>at most three & "quoted"'
POLICY = f"""
contactPolicies:
  - id: {json.dumps(EVIL_ID)}
    description: {json.dumps(EVIL_DESCRIPTION)}
    kind: maxImpressions
    scope: {{offering: "6542"}}
    count: 3
    days: 7
"""


def test_policy_html_is_text_on_every_studio_page(tmp_path, page):
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    path = rules / "telco-demo.yaml"
    path.write_text(path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"') + POLICY)
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                             env={"RECO_ADMIN_KEYS": KEY}).start()
    try:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        for n in range(3):
            answer = requests.post(service.url + R, json=query(now - dt.timedelta(days=2)), timeout=30).json()
            item = next(i for i in answer["recommendationItem"] if i["productOffering"]["id"] == "6542")
            shown = requests.post(service.url + REACTIONS, timeout=30, json={
                "reactionType": "shown", "reactionDate": iso(now - dt.timedelta(days=2, minutes=-n)),
                "channel": {"id": "21"}, "recommendation": {"id": answer["id"], "itemId": item["id"]}})
            assert shown.status_code == 201, shown.text

        login(page, service.url)
        page.goto(service.url + "/studio/playground")
        page.get_by_label("A case context, a case, or a TMF680 query body").fill(json.dumps(query(now)))
        page.get_by_role("button", name="Explain").click()
        expect(page.locator("#answers ol.items > li")).to_have_count(2)
        answer = page.locator("#answers section.answer").first.inner_text()
        assert f"(policy {EVIL_ID})" in answer, answer
        assert page.evaluate("window.__xss") is None
        for where in ("/studio/", "/studio/cases", "/studio/impact", "/studio/edit", "/studio/activate",
                      "/studio/experiments"):
            response = page.goto(service.url + where)
            assert response.status < 400, where
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__xss") is None, where
            assert page.locator("img[src=x]").count() == 0, where
        page.goto(service.url + "/studio/")
        row = page.locator("table.rules tbody tr").filter(has_text=EVIL_ID)
        expect(row).to_have_count(1)
        cells = [" ".join(c.split()) for c in row.locator("td").all_inner_texts()]
        assert cells[0].startswith(EVIL_ID) and "line " in cells[0], cells
        assert cells[1:] == ["contact policy (maxImpressions)", EVIL_DESCRIPTION, "offering 6542",
                             "suppressed after 3 impressions in 7 days"], cells
        assert page.evaluate("window.__xss") is None
    finally:
        service.stop()
