"""The Studio names a contact policy as a policy in its lint findings, in
Chromium against a real server: the editor's findings as you type and the
rule sets page's findings table say "policy P1", with line and fix, never
"rule P1"."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from test_studio import login, studio  # noqa: F401  (the fixture)

POLICIES = """
contactPolicies:
  - id: P1
    kind: maxImpressions
    scope: {offering: "6547"}
    count: 3
    days: 7
  - id: P2
    kind: maxImpressions
    count: 0
    days: 7
"""


def test_editor_and_overview_name_policies_as_policies(studio, page):  # noqa: F811
    login(page, studio.url)
    page.goto(studio.url + "/studio/edit")
    source = page.get_by_label("Rule set YAML")
    expect(source).to_have_value(re.compile("id: telco-demo"))
    text = source.input_value().replace('version: "1.0.0"', 'version: "1.1.0"') + POLICIES
    source.fill(text)
    p1 = page.locator("#findings li", has_text="contact-policy-unused")
    expect(p1).to_contain_text("policy P1: applies to offering 6547, which no rule recommends")
    expect(p1.locator(".fix")).to_contain_text("fix: scope it to an offering or category")
    line = text.splitlines().index("  - id: P1") + 1
    expect(p1.get_by_role("button")).to_have_text(re.compile(rf"^{line}:\d+$"))
    expect(page.locator("#findings li", has_text="contact-policy-never")).to_contain_text("policy P2: count 0")
    expect(page.locator("#findings")).not_to_contain_text(re.compile(r"rule P\d"))

    # saved to the rules folder, the rule sets page lists them as policies too
    (studio.rules_dir / "telco-demo.yaml").write_text(text)
    page.goto(studio.url + "/studio")
    row = page.locator("table.findings tr", has_text="contact-policy-unused")
    expect(row).to_contain_text("policy P1")
    expect(row.locator(".fix")).to_be_visible()
    expect(page.locator("table.findings")).not_to_contain_text(re.compile(r"rule P\d"))
