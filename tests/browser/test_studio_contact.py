"""The contact-policy step in the Studio's Playground, in Chromium against a
real server: a party that was shown the TMFone Case three times this week
(reactions posted over HTTP) gets it dropped, and the Playground's
explanation of that party's query names the policy and why."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, DEMO_RULES, ServiceProcess
from test_studio import KEY, login

R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
REACTIONS = "/tmf-api/recommendationManagement/v4/recommendationReaction"
POLICY = """
contactPolicies:
  - id: P1
    description: at most three impressions of the case in a week
    kind: maxImpressions
    scope: {offering: "6542"}
    count: 3
    days: 7
"""


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def query(now: dt.datetime) -> dict:
    """The demo's E1 (TMFone in the cart, app channel 21) for party p-1."""
    return {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
            "relatedParty": {"id": "p-1", "role": "customer"}, "validFor": {"startDateTime": iso(now)},
            "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}


def test_playground_names_the_contact_policy_that_dropped_an_item(tmp_path, page):
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    path = rules / "telco-demo.yaml"
    path.write_text(path.read_text().replace('version: "1.0.0"', 'version: "1.1.0"') + POLICY)
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=DEMO_CATALOG,
                             env={"RECO_ADMIN_KEYS": KEY}).start()
    try:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        for n in range(3):                       # three impressions of 6542 this week
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
        items = page.locator("#answers ol.items > li").evaluate_all("items => items.map(i => i.dataset.offering)")
        assert items == ["6543", "7301"]
        answer = " ".join(page.locator("#answers section.answer").first.inner_text().split())
        assert "contact-policy" in answer, answer
        assert "dropped 6542" in answer and "shown 3 times in 7 days (policy P1)" in answer, answer
    finally:
        service.stop()
