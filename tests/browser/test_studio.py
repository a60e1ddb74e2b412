"""Rule Studio end to end: Chromium against a real server process, on a
temporary copy of rules/ and catalog/ (saving and activating change them).

Set STUDIO_SCREENSHOTS=1 to (re)write the screenshots of docs/studio.md in docs/studio/.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, ServiceProcess

KEY = "studio-test-key"
SHOTS = ROOT / "docs" / "studio"
E1 = {"segment": "none", "cart": ["6547"], "channel": "21", "owns": []}
E6 = {"segment": "premium", "cart": ["6547"], "channel": "22", "owns": ["6542", "7002"]}


def _copy_tree(tmp_path: Path) -> tuple[Path, Path]:
    rules, catalog = tmp_path / "rules", tmp_path / "catalog"
    shutil.copytree(DEMO_RULES, rules)
    shutil.copytree(DEMO_CATALOG, catalog)
    # keep the editor-schema line valid in the copy (lint checks it)
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    return rules, catalog


@pytest.fixture
def studio(tmp_path):
    """A server with an admin key, on copies of rules/ and catalog/."""
    rules, catalog = _copy_tree(tmp_path)
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=catalog,
                             env={"RECO_ADMIN_KEYS": KEY}).start()
    service.rules_dir = rules
    yield service
    service.stop()


@pytest.fixture(scope="module")
def studio_to_read(tmp_path_factory):
    """One server like `studio` for this module's tests that only read and
    explain (no save, activation, query or lead: the pages they check show
    the demo as shipped), started once: its tests are one xdist_group. A
    test that changes anything takes `studio`."""
    rules, catalog = _copy_tree(tmp_path_factory.mktemp("studio-to-read"))
    service = ServiceProcess(rules.parent / "data", rules_dir=rules, catalog_dir=catalog,
                             env={"RECO_ADMIN_KEYS": KEY}).start()
    service.rules_dir = rules
    yield service
    service.stop()


def login(page, url: str, name: str = "Ana PM", key: str = KEY) -> None:
    page.goto(url + "/studio/login")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/studio/?$"))


def shot(page, name: str) -> None:
    if os.environ.get("STUDIO_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def explain(page, situation: dict, version_b: str | None = None) -> list[list[str]]:
    """Fill the playground's form, explain, and return each panel's items in order."""
    page.get_by_label("Customer segment").select_option(situation["segment"])
    page.get_by_label("Owned offerings").select_option(situation["owns"])
    page.get_by_label("Cart").select_option(situation["cart"])
    page.get_by_label("Channel").select_option(situation["channel"])
    page.get_by_label("Time (UTC)").fill("2026-10-01T00:00:00Z")
    page.get_by_label("Compare with").select_option(version_b or "")
    page.get_by_role("button", name="Explain").click()
    panels = page.locator("#answers section.answer")
    expect(panels).to_have_count(2 if version_b else 1)
    return [panel.locator("ol.items > li").evaluate_all("items => items.map(i => i.dataset.offering)")
            for panel in panels.all()]


def health_version(url: str) -> str:
    return requests.get(url + "/health", timeout=10).json()["rules"]["version"]


# --------------------------------------------------------------------------- tests
@pytest.mark.xdist_group("studio-to-read")
def test_reading_needs_a_key_and_every_page_loads(studio_to_read, page, blocked_requests):
    studio = studio_to_read
    page.goto(studio.url + "/studio/cases")
    assert "/studio/login" in page.url                  # reading needs a key when keys are set
    page.get_by_label("Your name").fill("Ana PM")
    page.get_by_label("Admin key").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "This key is not valid."
    page.console_errors.clear()                         # the refused login's 401
    login(page, studio.url)
    for link, heading in [("Rule sets", "Rule sets and versions"), ("Playground", "Playground"),
                          ("Cases", "Regression cases"), ("Impact", "Impact of a change"),
                          ("Edit", "Edit the working copy of telco-demo"), ("Conversion", "Which rules sell")]:
        page.get_by_role("navigation").get_by_role("link", name=link, exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert page.get_by_role("link", name=link, exact=True).get_attribute("aria-current") == "page"
    page.keyboard.press("Tab")                                  # keyboard: the skip link first, then the pages
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    response = page.goto(studio.url + "/studio")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.locator("table.rules tbody tr").count() == 8          # R1..R8 of the active version
    assert page.get_by_text("Serving telco-demo 1.0.0").is_visible()
    assert page.console_errors == [] and blocked_requests == []


@pytest.mark.xdist_group("studio-to-read")
def test_playground_explains_e1_and_e6_in_order(studio_to_read, page):
    studio = studio_to_read
    login(page, studio.url)
    page.goto(studio.url + "/studio/playground")
    # a slow answer (held 1.5 s here) shows the "Working…" indicator, which goes away after
    page.evaluate("""() => { window.busySeen = false;
        new MutationObserver(() => { if (!document.getElementById('busy').hidden) window.busySeen = true; })
            .observe(document.getElementById('busy'), {attributes: true}); }""")
    page.route("**/admin/rules/explain*", lambda route: (time.sleep(1.5), route.continue_()))
    assert explain(page, E1) == [["6542", "6543", "7301"]]
    page.unroute("**/admin/rules/explain*")
    assert page.evaluate("window.busySeen") is True
    expect(page.locator("#busy")).to_be_hidden()
    assert explain(page, E6) == [["6550", "7003", "6543", "7402"]]
    # the explained answer: failed conditions with their line, each policy step, names and prices
    answer = " ".join(page.locator("#answers section.answer").first.inner_text().split())
    assert "4. limit: dropped 7301 Device Insurance (R3): over-limit, only the best 4 items are returned" in answer
    assert "1. owned-or-in-cart: dropped 6542 TMFone Case (R1): owned" in answer
    assert re.search(r"R6 fiber-upsell \(line \d+\) no a condition failed: owns has any of \[7101\].*? \(line \d+:\d+\)", answer)
    assert "6550 TMFone Pro · devices · 1099 EUR one-time" in answer
    # a pasted case context gives the same answer as the form
    page.get_by_label("A case context, a case, or a TMF680 query body").fill(
        '{"customer": "none", "cart": ["6547"], "channel": "21", "time": "2026-10-01T00:00:00Z"}')
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#answers ol.items > li")).to_have_count(3)
    items = page.locator("#answers ol.items > li").evaluate_all("items => items.map(i => i.dataset.offering)")
    assert items == ["6542", "6543", "7301"]


R6_OLD = 'channel: "23"'
R6_NEW = 'channel: ["22", "23"]'


def test_edit_cases_impact_activate_and_roll_back(studio, page):
    login(page, studio.url)
    page.goto(studio.url + "/studio/cases")
    page.get_by_role("button", name="Run the cases").click()
    expect(page.locator("#cases-summary")).to_contain_text("23 passed, 0 failed")
    shot(page, "cases")

    # edit: lint as you type marks the line, completion offers catalog offerings
    page.goto(studio.url + "/studio/edit")
    source = page.get_by_label("Rule set YAML")
    expect(source).to_have_value(re.compile("id: telco-demo"))
    original = source.input_value()
    assert R6_OLD in original
    source.fill(original.replace('version: "1.0.0"', 'version: "1.1.0"').replace(R6_OLD, 'channel: "29"'))
    finding = page.locator("#findings li", has_text="unknown channel '29'")
    finding.wait_for()
    line = int(finding.get_by_role("button").inner_text().split(":")[0])
    assert page.locator("#gutter .mark-error").first.inner_text() == str(line)
    source.press("Control+End")
    source.press("Enter")
    source.type('      - {offering: "710')
    page.locator("#completions").get_by_role("option", name=re.compile("7101 Fiber 500")).wait_for()
    shot(page, "edit")
    source.press("ArrowDown")                                   # keyboard: the second option, Enter inserts it
    expect(page.locator("#completions [aria-selected=true]")).to_have_text("7102 Fiber 1000")
    source.press("Enter")
    expect(page.locator("#completions")).to_be_hidden()
    assert source.input_value().endswith('      - {offering: "7102')
    source.press("Enter")                                       # field names from the JSON Schema
    source.type("        prio")
    expect(page.locator("#completions").get_by_role("option").first).to_contain_text("priority")
    source.press("Escape")
    expect(page.locator("#completions")).to_be_hidden()
    source.fill(original.replace('version: "1.0.0"', 'version: "1.1.0"').replace(R6_OLD, R6_NEW))
    expect(page.locator("#lint-status")).to_have_text(re.compile("^0 errors"))
    page.get_by_role("button", name="Save working copy").click()
    saved = page.locator("#save-result")
    saved.wait_for()
    assert "nothing was activated" in saved.inner_text()
    assert "kept rules/" in saved.inner_text() or "kept " in saved.inner_text()
    assert health_version(studio.url) == "1.0.0"                # saving activates nothing
    assert (studio.rules_dir / "versions" / "telco-demo@1.0.0.yaml").exists()
    assert R6_NEW in (studio.rules_dir / "telco-demo.yaml").read_text()

    # the edited version fails the case that says Fiber 1000 is offered in stores only
    page.goto(studio.url + "/studio/cases?version=1.1.0")
    page.get_by_role("button", name="Run the cases").click()
    expect(page.locator("#cases-summary")).to_contain_text("22 passed, 1 failed")
    failed = page.locator("#cases-result tr.fail")
    assert failed.count() == 1 and "R6-no-fiber-upsell-outside-store" in failed.inner_text()
    assert "R6 fiber-upsell (priority 15)" in failed.inner_text()
    page.get_by_label("Filter by name").fill("E1")
    page.get_by_role("button", name="Run the cases").click()
    expect(page.locator("#cases-summary")).to_have_text(re.compile("^1 passed, 0 failed"))

    # impact on the cases and on an uploaded contexts file, with its chart
    contexts = studio.rules_dir.parent / "recorded.jsonl"
    contexts.write_text('{"customer": {"segment": "standard"}, "owns": ["7101"], "channel": "22", '
                        '"time": "2026-10-01T00:00:00Z"}\n{"cart": ["6547"], "channel": "21"}\n')
    page.goto(studio.url + "/studio/impact?old=1.0.0&new=1.1.0")
    page.get_by_label("Contexts file (JSON Lines)").set_input_files(str(contexts))
    page.get_by_role("button", name="Compare").click()
    summary = page.locator("#impact-summary")
    summary.wait_for()
    assert summary.inner_text().startswith("2 of 25 situations change: 2 items gained, 0 lost")
    assert page.get_by_role("img", name="How often each offering is gained and lost").is_visible()
    assert page.locator("#impact-result table").nth(1).inner_text().split("\n")[1].split("\t")[:3] == \
        ["R6", "changed", "when"]
    page.get_by_text("R6-no-fiber-upsell-outside-store (case)").click()
    expect(page.locator("#impact-result details[open]")).to_contain_text("gained 7102 Fiber 1000 at #1 (rules R6)")
    shot(page, "impact")

    # activate after the impact summary; /health follows; roll back in one step
    page.goto(studio.url + "/studio")
    page.get_by_role("button", name="Record new versions in the lock file").click()
    expect(page.locator(".flash")).to_contain_text("telco-demo 1.1.0")
    expect(page.locator(".flash")).to_contain_text("telco-demo.yaml): recorded")
    assert page.get_by_role("button", name="Record new versions in the lock file").count() == 0
    page.get_by_role("link", name="Review and activate 1.1.0").click()
    assert "1 of 23 cases change" in page.locator("#impact-summary").inner_text()
    page.get_by_role("button", name="Activate 1.1.0").click()
    assert "telco-demo 1.1.0 is active (it was 1.0.0)" in page.locator(".flash").inner_text()
    assert health_version(studio.url) == "1.1.0"
    history = page.locator("table.activations").inner_text()
    assert "Ana PM" in history and "activate" in history and "pin-before-save" in history
    page.get_by_role("button", name="Roll back to 1.0.0").click()
    assert "1.0.0 is active again" in page.locator(".flash").inner_text()
    assert health_version(studio.url) == "1.0.0"
    assert page.locator("table.activations tbody tr").first.inner_text().split("\t")[1:] == [
        "Ana PM (key " + hashlib.sha256(KEY.encode()).hexdigest()[:12] + ")", "rollback", "1.1.0", "1.0.0"]
    shot(page, "activations")

    # playground: both versions side by side on the situation that changed
    page.goto(studio.url + "/studio/playground")
    fiber = {"segment": "standard", "owns": ["7101"], "cart": [], "channel": "22"}
    assert explain(page, fiber, version_b="1.1.0") == [[], ["7102"]]
    page.locator("#answers").evaluate("el => { el.scrollIntoView(); window.scrollBy(0, -150); }")
    shot(page, "playground")


def _stored_query(url: str) -> str:
    """The demo's E1 asked asynchronously (stored); its id once it is done."""
    base = url + "/tmf-api/recommendationManagement/v4/queryProductRecommendation"
    query = {"instantSyncRecommendation": False, "channel": [{"id": "21"}],
             "validFor": {"startDateTime": "2026-10-01T00:00:00Z"},
             "shoppingCart": [{"id": "c1", "@type": "ShoppingCart",
                               "cartItem": [{"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
    created = requests.post(base, json=query, timeout=10)
    assert created.status_code == 201, created.text
    query_id = created.json()["id"]
    for _ in range(100):
        if requests.get(f"{base}/{query_id}", timeout=10).json()["state"] == "done":
            return query_id
        time.sleep(0.1)
    raise AssertionError("the stored query was not answered")


def test_conversion_report_page(studio, page):
    first, _second = _stored_query(studio.url), _stored_query(studio.url)
    lead = requests.post(studio.url + "/tmf-api/sales/v4/salesLead", timeout=10, json={
        "@type": "RecommendationSalesLead", "recommendation": {"id": first, "itemId": "3"}})
    assert lead.status_code == 201, lead.text
    login(page, studio.url)
    page.goto(studio.url + "/studio/conversion")
    card = page.locator("section.card")
    assert "6 items recommended, 1 became a lead (16.7%), 1 leads." in card.inner_text()
    rates = page.get_by_role("img", name="Conversion rate per rule")
    assert rates.locator("text.value").all_text_contents() == ["0.0%", "50.0%"]          # R1 0 of 4, R3 1 of 2
    assert card.locator("tbody tr").first.inner_text().split("\t")[:4] == ["R1", "4", "0", "0.0%"]
    shot(page, "conversion")


EVIL = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">"


@pytest.fixture(scope="module")
def studio_without_keys(tmp_path_factory):
    """One server with no key configured, on a copy of the demo whose first
    rule's description is markup (EVIL), for this module's tests of a Studio
    without keys: they only read pages and send changes that must be refused
    (a refused one changes nothing), so neither sees the other. Its tests
    are one xdist_group, so a parallel run starts it once."""
    rules, catalog = _copy_tree(tmp_path_factory.mktemp("studio-without-keys"))
    working = rules / "telco-demo.yaml"
    text = working.read_text()
    text = text.replace("description: A phone in the cart sells its case and screen protector.",
                        "description: '" + EVIL + "'")
    assert EVIL in text
    working.write_text(text)
    service = ServiceProcess(rules.parent / "data", rules_dir=rules, catalog_dir=catalog).start()
    yield service
    service.stop()


@pytest.mark.xdist_group("studio-without-keys")
def test_a_rule_description_with_markup_stays_text(studio_without_keys, page):
    page.goto(studio_without_keys.url + "/studio")
    cell = page.locator("table.rules td.description").first
    assert cell.inner_text() == EVIL
    assert page.evaluate("window.__xss") is None
    assert page.locator("table.rules script, table.rules img").count() == 0


def test_state_changes_need_the_key_and_the_csrf_token(studio, page):
    url = studio.url
    working = requests.get(url + "/admin/rules/telco-demo/working-copy",
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()["text"]
    # no key: refused
    for method, path, body in [("put", "/admin/rules/telco-demo/working-copy", {"text": working}),
                               ("post", "/admin/rules/activate", {"rulesetId": "telco-demo", "version": "1.0.0"}),
                               ("post", "/admin/rules/rollback", {"rulesetId": "telco-demo"})]:
        refused = requests.request(method, url + path, json=body, timeout=10)
        assert refused.status_code == 401 and refused.json()["@type"] == "Error"
    form = requests.post(url + "/studio/activate", data={"rulesetId": "telco-demo", "version": "1.0.0"},
                         allow_redirects=False, timeout=10)
    assert form.status_code == 401 and "admin key" in form.text
    # a logged-in browser without the CSRF token: refused, nothing changes
    login(page, url)
    status = page.evaluate("""async () => {
        const r = await fetch('/admin/rules/activate', {method: 'POST', headers: {'Content-Type': 'application/json'},
                              body: JSON.stringify({rulesetId: 'telco-demo', version: '1.0.0'})});
        return [r.status, (await r.json()).code];
    }""")
    assert status == [401, "UNAUTHORIZED"] or status == [403, "CSRF_FAILED"]
    form = page.request.post(url + "/studio/activate", form={"rulesetId": "telco-demo", "version": "1.0.0"})
    assert form.status == 403 and "CSRF token" in form.text()
    assert requests.get(url + "/admin/rules/activations", headers={"Authorization": f"Bearer {KEY}"},
                        timeout=10).json() == []
    # with the token (as the page sends it) the same request works
    ok = page.evaluate("""async () => {
        const token = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/admin/rules/activate', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
            body: JSON.stringify({rulesetId: 'telco-demo', version: '1.0.0'})});
        return r.status;
    }""")
    assert ok == 200


@pytest.mark.xdist_group("studio-without-keys")
def test_without_configured_keys_the_studio_reads_but_never_changes(studio_without_keys, page):
    service = studio_without_keys
    before = (service.rules_dir / "telco-demo.yaml").read_text()
    page.goto(service.url + "/studio/edit")
    assert page.get_by_role("button", name="Save working copy").is_disabled()
    refused = requests.post(service.url + "/admin/rules/activate",
                            json={"rulesetId": "telco-demo", "version": "1.0.0"}, timeout=10)
    assert refused.status_code == 403 and refused.json()["code"] == "ADMIN_KEY_REQUIRED"
    assert (service.rules_dir / "telco-demo.yaml").read_text() == before
