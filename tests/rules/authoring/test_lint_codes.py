"""Lint check codes are set where a problem is found (the loader, the
engine's limits, the cases reader), not read back from the English message:
the problem the model raises already carries its code, and rewording a
message cannot change a check's name."""
from __future__ import annotations

import datetime as dt

import pytest

from app.rules import RuleSetError, load_catalog
from app.rules.authoring.lint import lint_ruleset_file
from app.rules.model.ruleset import parse_ruleset
from rulehelpers import DEMO_CATALOG

NOW = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
HEADER = 'id: coded\nversion: "1.0.0"\nrules:\n'
RULE = '  - id: R1\n    kind: cross-sell\n    when: {when}\n    recommend:\n      - {{offering: "{offering}", priority: {priority}}}\n'


def rule(when='{cart: "6547"}', offering="6542", priority="10") -> str:
    return RULE.format(when=when, offering=offering, priority=priority)


CASES = {
    "unknown-offering": HEADER + rule(offering="9999"),
    "unknown-channel": HEADER + rule(when='{channel: "999"}'),
    "unknown-condition": HEADER + rule(when='{weather: "rain"}'),
    "empty-condition": HEADER + rule(when="{}"),
    "priority-range": HEADER + rule(priority="-5"),
    "duplicate-rule-id": HEADER + rule() + rule(),
    "validity-window": HEADER + rule() + '    validFor: {startDateTime: "2026-12-01T00:00:00Z", '
                                         'endDateTime: "2026-11-01T00:00:00Z"}\n',
    "duplicate-key": HEADER + rule().replace("    kind: cross-sell\n", "    kind: cross-sell\n    kind: up-sell\n"),
    "yaml-syntax": HEADER + "  - [unclosed\n",
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(DEMO_CATALOG)


@pytest.mark.parametrize("code", sorted(CASES))
def test_the_model_sets_the_code_where_it_finds_the_problem(code, catalog):
    with pytest.raises(RuleSetError) as raised:
        parse_ruleset(CASES[code], "coded.yaml", catalog)
    assert code in {p.code for p in raised.value.problems}, [(p.code, p.message) for p in raised.value.problems]


@pytest.mark.parametrize("code", sorted(CASES))
def test_lint_reports_the_code_the_model_set_with_a_hint(code, catalog, tmp_path):
    path = tmp_path / "coded.yaml"
    path.write_text(CASES[code], encoding="utf-8")
    problems, _acknowledged = lint_ruleset_file(path, catalog, NOW, tmp_path)
    found = [p for p in problems if p.code == code]
    assert found and all(p.hint for p in found), [(p.code, p.message) for p in problems]
