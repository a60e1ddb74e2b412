"""Rule Studio, governed: Chromium against a real server process. A recorded
version cannot be saved with other content (the next free version is offered),
two people editing at once never overwrite each other (the later one sees the
earlier one's change), the Back button cannot re-activate, a changed version
is never offered for activation, unsaved edits are not lost without a prompt,
and with four eyes an author cannot approve their own version."""
from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from helpers import ServiceProcess
from test_studio import KEY, _copy_tree, health_version, login

OTHER_KEY = "studio-reviewer-key"
R6_OLD, R6_NEW = 'channel: "23"', 'channel: ["22", "23"]'


@pytest.fixture
def studio(tmp_path):
    rules, catalog = _copy_tree(tmp_path)
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=catalog,
                             env={"RECO_ADMIN_KEYS": f"{KEY},{OTHER_KEY}"}).start()
    service.rules_dir = rules
    yield service
    service.stop()


def edit_and_save(page, url: str, change) -> str:
    page.goto(url + "/studio/edit")
    source = page.get_by_label("Rule set YAML")
    expect(source).to_have_value(re.compile("id: telco-demo"))
    source.fill(change(source.input_value()))
    page.get_by_role("button", name="Save working copy").click()
    result = page.locator("#save-result")
    expect(result).to_be_visible()
    return result.inner_text()


def test_a_recorded_version_is_refused_with_the_next_free_version(studio, page):
    login(page, studio.url)
    done = edit_and_save(page, studio.url, lambda t: t.replace('version: "1.0.0"', 'version: "1.1.0"')
                         .replace(R6_OLD, R6_NEW))
    assert "nothing was activated" in done
    page.goto(studio.url + "/studio/activate?rulesetId=telco-demo&version=1.1.0")
    page.get_by_role("button", name="Activate 1.1.0").click()
    expect(page.locator(".flash")).to_contain_text("telco-demo 1.1.0 is active")
    kept_before = studio.rules_dir.joinpath("telco-demo.yaml").read_text()
    # the same version with other content: refused, nothing written, 1.1.1 offered
    refused = edit_and_save(page, studio.url, lambda t: t.replace('{offering: "6542", priority: 20}',
                                                                  '{offering: "6542", priority: 45}'))
    assert "Not saved: telco-demo 1.1.0 is already recorded with other content" in refused
    assert studio.rules_dir.joinpath("telco-demo.yaml").read_text() == kept_before
    page.get_by_role("button", name="Use version 1.1.1").click()
    source = page.get_by_label("Rule set YAML")
    assert 'version: "1.1.1"' in source.input_value()
    page.get_by_role("button", name="Save working copy").click()
    expect(page.locator("#save-result")).to_contain_text("telco-demo.yaml (telco-demo 1.1.1); nothing was activated")
    assert health_version(studio.url) == "1.1.0"


def test_two_editors_the_later_save_sees_the_earlier_change(studio, browser):
    pages = []
    for name in ("Ana PM", "Ben PM"):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        login(page, studio.url, name=name)
        page.goto(studio.url + "/studio/edit")
        expect(page.get_by_label("Rule set YAML")).to_have_value(re.compile("id: telco-demo"))
        pages.append(page)
    ana, ben = pages
    for page, change in ((ana, R6_NEW), (ben, 'channel: ["21", "23"]')):
        source = page.get_by_label("Rule set YAML")
        source.fill(source.input_value().replace('version: "1.0.0"', 'version: "1.1.0"').replace(R6_OLD, change))
    ana.get_by_role("button", name="Save working copy").click()
    expect(ana.locator("#save-result")).to_contain_text("nothing was activated")
    ben.get_by_role("button", name="Save working copy").click()
    result = ben.locator("#save-result")
    expect(result).to_contain_text("was changed since you opened it by Ana PM")
    diff = ben.locator("#conflict-diff").inner_text()
    assert any(line.startswith("+") and R6_NEW in line for line in diff.splitlines())
    assert result.evaluate("el => { const r = el.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; }")
    assert R6_NEW in studio.rules_dir.joinpath("telco-demo.yaml").read_text()            # Ana's save stands
    for page in pages:
        page.context.close()


def test_the_back_button_does_not_activate_again(studio, page):
    login(page, studio.url)
    edit_and_save(page, studio.url, lambda t: t.replace('version: "1.0.0"', 'version: "1.1.0"')
                  .replace(R6_OLD, R6_NEW))
    page.goto(studio.url + "/studio/activate?rulesetId=telco-demo&version=1.1.0")
    page.get_by_role("button", name="Activate 1.1.0").click()
    expect(page.locator(".flash")).to_contain_text("telco-demo 1.1.0 is active (it was 1.0.0)")
    page.go_back()                                          # the review page again
    page.get_by_role("button", name="Activate 1.1.0").click()
    expect(page.locator(".flash")).to_contain_text("telco-demo 1.1.0 was already active: nothing was done")
    expect(page.get_by_role("button", name=re.compile("^Roll back"))).to_have_text("Roll back to 1.0.0")  # not itself
    # a form made while 1.1.0 served, sent after someone else rolled back: recognised, nothing done
    page.goto(studio.url + "/studio/activate?rulesetId=telco-demo&version=1.0.0")
    rolled = requests.post(studio.url + "/admin/rules/rollback", json={"rulesetId": "telco-demo"},
                           headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=30)
    assert rolled.status_code == 200 and rolled.json()["activation"]["version"] == "1.0.0"
    page.get_by_role("button", name="Activate 1.0.0").click()
    expect(page.locator(".flash")).to_contain_text("this form was made when 1.1.0 served; 1.0.0 serves now: "
                                                   "nothing was done")
    assert page.get_by_role("button", name=re.compile("^Roll back")).count() == 0       # never forward
    assert health_version(studio.url) == "1.0.0"
    history = requests.get(studio.url + "/admin/rules/activations", headers={"Authorization": f"Bearer {KEY}"},
                           timeout=10).json()
    assert [h["action"] for h in history] == ["rollback", "activate", "pin-before-save"]


def test_a_changed_version_is_not_offered_and_unsaved_edits_prompt(studio, page):
    login(page, studio.url)
    edit_and_save(page, studio.url, lambda t: t.replace('version: "1.0.0"', 'version: "1.1.0"')
                  .replace(R6_OLD, R6_NEW))
    kept = studio.rules_dir / "versions" / "telco-demo@1.0.0.yaml"
    kept.write_text(kept.read_text().replace('{offering: "6542", priority: 20}', '{offering: "6542", priority: 45}'))
    page.goto(studio.url + "/studio")
    versions = page.locator("table", has=page.locator("caption", has_text="Versions"))
    row = versions.locator("tbody tr", has=page.locator("td", has_text=re.compile(r"^1\.0\.0$")))
    expect(row).to_contain_text("changed since recorded: cannot be activated")
    assert page.get_by_role("link", name="Review and activate 1.0.0").count() == 0
    page.goto(studio.url + "/studio/activate?rulesetId=telco-demo&version=1.0.0")
    expect(page.get_by_role("alert")).to_contain_text("cannot be activated")
    assert page.get_by_role("button", name="Activate 1.0.0").count() == 0
    # unsaved changes: leaving asks first
    page.goto(studio.url + "/studio/edit")
    source = page.get_by_label("Rule set YAML")
    expect(source).to_have_value(re.compile("id: telco-demo"))
    source.press("End")
    source.type(" # edited")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.get_by_role("navigation").get_by_role("link", name="Cases", exact=True).click()
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"] and page.url.endswith("/studio/edit")


def test_four_eyes_the_author_cannot_approve(tmp_path, browser):
    rules, catalog = _copy_tree(tmp_path)
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=catalog,
                             env={"RECO_ADMIN_KEYS": f"{KEY},{OTHER_KEY}", "RECO_RULES_REQUIRE_APPROVAL": "1"}).start()
    try:
        ana = browser.new_context().new_page()
        login(ana, service.url, name="Ana PM")
        edit_and_save(ana, service.url, lambda t: t.replace('version: "1.0.0"', 'version: "1.1.0"')
                      .replace(R6_OLD, R6_NEW))
        ana.goto(service.url + "/studio/activate?rulesetId=telco-demo&version=1.1.0")
        assert ana.get_by_role("button", name="Activate 1.1.0").is_disabled()
        ana.get_by_role("button", name="Approve 1.1.0").click()
        expect(ana.locator(".flash")).to_contain_text("the approver must be another key than the author")
        ben = browser.new_context().new_page()
        login(ben, service.url, name="Ben Reviewer", key=OTHER_KEY)
        ben.goto(service.url + "/studio/activate?rulesetId=telco-demo&version=1.1.0")
        ben.get_by_role("button", name="Approve 1.1.0").click()
        expect(ben.locator("#approval")).to_contain_text("Approved by Ben Reviewer")
        ana.reload()
        ana.get_by_role("button", name="Activate 1.1.0").click()
        expect(ana.locator(".flash")).to_contain_text("telco-demo 1.1.0 is active")
        history = ana.locator("table.history tbody tr").all_inner_texts()
        assert [row.split("\t")[2] for row in history][:4] == ["activate", "record", "approve", "save"]
    finally:
        service.stop()


def test_a_playground_situation_saved_as_a_case(studio, page):
    from test_studio import E1, explain
    login(page, studio.url)
    page.goto(studio.url + "/studio/playground")
    page.set_viewport_size({"width": 1280, "height": 600})
    assert explain(page, E1) == [["6542", "6543", "7301"]]
    answers = page.locator("#answers")
    assert answers.evaluate("el => el.getBoundingClientRect().top < innerHeight")        # scrolled into view
    page.get_by_label("Case name").fill("anonymous phone buyer in the app")
    page.get_by_role("button", name="Save as case").click()
    expect(page.locator("#save-case-result")).to_contain_text("Added case anonymous phone buyer in the app to")
    cases = (studio.rules_dir / "telco-demo.cases.yaml").read_text()
    assert cases.startswith("# yaml-language-server")                                   # comments kept
    assert 'name: "anonymous phone buyer in the app"' in cases and 'expect: ["6542", "6543", "7301"]' in cases
    page.get_by_role("button", name="Save as case").click()                             # the same name again
    expect(page.locator("#save-case-result")).to_contain_text("duplicate case name")
    page.goto(studio.url + "/studio/cases")
    page.get_by_role("button", name="Run the cases").click()
    expect(page.locator("#cases-summary")).to_contain_text("24 passed, 0 failed")
    expect(page.locator("#cases-result tbody tr").first).to_contain_text("6542 TMFone Case")      # names by ids
    # the rules table says which way priority ranks, with offering names beside the ids
    page.goto(studio.url + "/studio")
    rules = page.locator("table.rules")
    expect(rules.locator("thead")).to_contain_text("priority: the smaller ranks first")
    expect(rules.locator("tbody tr").first).to_contain_text("6542 TMFone Case (20)")


def test_completion_fits_the_key_being_edited(studio, page):
    login(page, studio.url)
    page.goto(studio.url + "/studio/edit")
    source = page.get_by_label("Rule set YAML")
    expect(source).to_have_value(re.compile("id: telco-demo"))
    source.press("Control+End")
    source.press("Enter")
    source.type('      - {offering: "7102", priority: 1')
    page.wait_for_timeout(300)
    expect(page.locator("#completions")).to_be_hidden()          # a priority is no offering id
    source.press("Enter")
    source.type('    when: {cart: {any_of: ["65')
    expect(page.locator("#completions").get_by_role("option").first).to_contain_text("6547")
    source.press("Escape")
    source.press("Enter")
    source.type('    when: {channel: "2')
    expect(page.locator("#completions").get_by_role("option").first).to_contain_text("21 ")


def test_names_beside_ids_in_the_explanation_and_the_impact(tmp_path, page):
    """The Playground's explanation (situation, proposed, dropped) and the
    impact's before/after lists name each offering and the channel beside its
    id; a name with markup stays text."""
    from test_studio import E6, explain
    rules, catalog = _copy_tree(tmp_path)
    evil = '<img src=x onerror="window.__xss = 1">Fiber 1000'
    offerings = catalog / "offerings.yaml"
    offerings.write_text(offerings.read_text().replace("name: Fiber 1000\n", f"name: '{evil}'\n", 1))
    service = ServiceProcess(tmp_path / "data", rules_dir=rules, catalog_dir=catalog,
                             env={"RECO_ADMIN_KEYS": KEY}).start()
    service.rules_dir = rules
    try:
        login(page, service.url)
        page.goto(service.url + "/studio/playground")
        assert explain(page, E6) == [["6550", "7003", "6543", "7402"]]
        answer = " ".join(page.locator("#answers section.answer").first.inner_text().split())
        assert "channel 22 web shop" in answer
        assert "owns 6542 TMFone Case, 7002 Mobile 50GB" in answer and "cart 6547 TMFone" in answer
        assert "1. owned-or-in-cart: dropped 6542 TMFone Case (R1): owned" in answer
        assert re.search(r"proposed: .*6550 TMFone Pro \(R\w+, priority \d+\)", answer)
        assert re.search(r"4\. limit: dropped 7301 Device Insurance \(R3\)", answer)
        # the impact of 1.1.0 (R6 also on the web shop): before/after with names, markup as text
        edit_and_save(page, service.url, lambda t: t.replace('version: "1.0.0"', 'version: "1.1.0"')
                      .replace(R6_OLD, R6_NEW))
        page.goto(service.url + "/studio/impact?old=1.0.0&new=1.1.0")
        page.get_by_role("button", name="Compare").click()
        page.locator("#impact-summary").wait_for()
        page.get_by_text("R6-no-fiber-upsell-outside-store (case)").click()
        opened = page.locator("#impact-result details[open]")
        expect(opened).to_contain_text(f"after 7102 {evil}")
        expect(opened).to_contain_text("before (nothing)")
        assert page.evaluate("window.__xss") is None
        assert page.locator("#impact-result img, #answers img").count() == 0
    finally:
        service.stop()
