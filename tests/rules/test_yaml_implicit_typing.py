"""YAML 1.1 implicit typing in rule, case, catalog and context files (an id
must stay the text written). PyYAML reads plain `NO`/`on` as booleans, `0701` as the octal 449,
`1_000` as 1000, `12:30` as the sexagesimal 750, `0x1F` as 31, dates as
dates and `~` as null.

- Ids and names (offering, category, channel, place ids in the catalog, the
  rules, the cases and context files; every mapping key) keep the text typed:
  an id is never a number, so YAML's reading is never what was meant.
- Segment and characteristic values are compared as text, and `on`/`NO` may
  be meant as the boolean or the text: lint reports file:line and "quote it";
  values whose YAML reading keeps the text (`12`, `true`) stay allowed."""
from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from app import create_app
from rulehelpers import DEMO_CATALOG, ROOT

# Plain scalars whose YAML 1.1 reading is not the text typed.
RETYPED = ["0701", "1_000", "12:30", "0x1F", "NO", "on", "2026-01-01", "1.50", "-012"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    (tmp_path / "rules").mkdir()
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def _cli(project, *args):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules",
                     catalog_dir=project / "catalog", background_workers=False)
    result = app.test_cli_runner().invoke(args=["rules", *args])
    return result.exit_code, result.output


def _write(path, text):
    path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize("typed", RETYPED)
def test_ids_keep_the_text_typed_in_catalog_rules_cases_and_contexts(project, typed):
    catalog = project / "catalog"
    with open(catalog / "offerings.yaml", "a") as handle:   # appended to productOffering
        handle.write(f"  - id: {typed}\n    name: Odd id\n    lifecycleStatus: Active\n"
                     f"    category:\n      - {{id: {typed}, name: odd}}\n")
    with open(catalog / "channels.yaml", "a") as handle:
        handle.write(f"  - {{id: {typed}, name: odd channel}}\n")
    _write(project / "rules" / "odd.yaml", f"""\
        id: odd
        version: "1.0.0"
        status: test
        description: ids that YAML 1.1 would retype
        limit: 4
        rules:
          - id: OWNS
            kind: up-sell
            description: owners of the odd offering, in its channel
            when:
              owns_category: [{typed}]
              channel: {{any_of: [{typed}]}}
            recommend:
              - {{offering: "7002", priority: 10}}
          - id: CART
            kind: cross-sell
            description: the odd offering in the cart
            when:
              cart: {typed}
            recommend:
              - {{offering: {typed}, priority: 20}}
        """)
    _write(project / "rules" / "odd.cases.yaml", f"""\
        ruleset: odd
        cases:
          - name: owner
            context: {{customer: {{segment: standard}}, owns: [{typed}], channel: {typed},
                      time: "2026-10-01T00:00:00Z"}}
            expect: ["7002"]
            expect_rules: {{"7002": [OWNS]}}
          - name: cart
            context: {{customer: none, cart: [{typed}], channel: "21", time: "2026-10-01T00:00:00Z"}}
            expect: []
            absent: [{typed}]
        """)
    code, output = _cli(project, "lint")
    assert code == 0 and " 0 errors" in output, output
    code, output = _cli(project, "test")
    assert code == 0, output
    # A JSON context (exact text, as an HTTP client sends it) meets the same ids.
    (project / "ctx.json").write_text(json.dumps({
        "customer": {"segment": "standard"}, "owns": [typed], "channel": typed,
        "time": "2026-10-01T00:00:00Z"}))
    code, output = _cli(project, "explain", "--json", "ctx.json")
    assert code == 0, output
    assert [item["offering"]["id"] for item in json.loads(output)["items"]] == ["7002"]


RULE = """\
id: values
version: "1.0.0"
status: test
description: values compared as text
limit: 4
rules:
  - id: V1
    kind: up-sell
    description: one value test
    when:
      {condition}
    recommend:
      - {{offering: "7002", priority: 10}}
"""


@pytest.mark.parametrize("condition,typed,reading", [
    ("segment: NO", "NO", "the boolean false"),
    ("segment: [premium, on]", "on", "the boolean true"),
    ("characteristic: {country: NO}", "NO", "the boolean false"),
    ("characteristic: {zone: {none_of: [0701]}}", "0701", "the number 449"),
    ("characteristic: {slot: {any_of: [12:30]}}", "12:30", "the number 750"),
    ("characteristic: {budget: 1_000}", "1_000", "the number 1000"),
    ("characteristic: {since: 2026-01-01}", "2026-01-01", "the date 2026-01-01"),
    ("characteristic: {plan: ~}", "~", "null"),
])
def test_lint_names_a_retyped_value_with_the_fix(project, condition, typed, reading):
    _write(project / "rules" / "values.yaml", RULE.format(condition=condition))
    code, output = _cli(project, "lint")
    assert code == 1, output
    expected = f"values.yaml:11:{7 + condition.index(typed)}: error: rule V1: "
    line = next(line for line in output.splitlines() if "YAML reads" in line)
    assert expected in line, output
    assert f"YAML reads {typed} as {reading}, not the text '{typed}': quote it (\"{typed}\")" in line


@pytest.mark.parametrize("condition", [
    'segment: "NO"', "characteristic: {country: \"NO\", tenure: 12, active: true}",
    "characteristic: {on: premium}",    # a key: kept as the text "on"
])
def test_values_whose_reading_keeps_the_text_are_accepted(project, condition):
    _write(project / "rules" / "values.yaml", RULE.format(condition=condition))
    code, output = _cli(project, "lint")
    assert code == 0 and " 0 errors" in output, output


def test_a_case_written_like_the_rule_no_longer_passes_both_sides_false(project):
    _write(project / "rules" / "values.yaml", RULE.format(condition='characteristic: {country: "NO"}'))
    _write(project / "rules" / "values.cases.yaml", """\
        ruleset: values
        cases:
          - name: norway
            context:
              customer: {segment: standard, characteristics: {country: NO}}
              time: "2026-10-01T00:00:00Z"
            expect: ["7002"]
        """)
    code, output = _cli(project, "lint")
    assert code == 1, output
    assert ("values.cases.yaml:5:64: error: case norway: country: YAML reads NO as the boolean false, "
            "not the text 'NO': quote it (\"NO\")") in output, output
