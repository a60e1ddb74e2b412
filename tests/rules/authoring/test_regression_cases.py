"""The product managers' rule sets (rules/ and catalog/ of the checkout) are
judged here by their own regression cases, one test per case, and by lint:
nothing else in the suite reads them, so editing them (docs/rules-tutorial.md)
never breaks a test that knows the shipped demo (those use tests/demo/)."""
from __future__ import annotations

import pytest

from app.rules.authoring.cases import coverage, engine_for, load_cases, run_case
from app.rules.authoring.lint import lint
from app.rules.repository.layout import find_cases_files, ruleset_file_for
from rulehelpers import DEMO_CATALOG, DEMO_RULES, PRODUCT_CATALOG, PRODUCT_RULES

CASE_FILES = find_cases_files(PRODUCT_RULES)
PARAMS = [pytest.param(path, case, id=f"{path.name[:-len('.cases.yaml')]}::{case.name}")
          for path in CASE_FILES for case in load_cases(path)]
_engines: dict = {}


def _engine(cases_file, catalog_dir=PRODUCT_CATALOG):
    if cases_file not in _engines:
        _engines[cases_file] = engine_for(ruleset_file_for(cases_file), catalog_dir)
    return _engines[cases_file]


@pytest.mark.parametrize("cases_file, case", PARAMS)
def test_case(cases_file, case):
    result = run_case(_engine(cases_file), case)
    assert result.passed, f"{case.file}:{case.line}: {case.name}: " + "; ".join(result.messages)


def test_rules_and_catalog_lint_without_errors():
    report = lint(None, PRODUCT_RULES, PRODUCT_CATALOG)
    assert [str(p) for p in report.problems if p.severity == "error"] == []


def test_demo_cases_exist_for_the_public_examples():
    names = {case.name.split("-")[0] for path in find_cases_files(DEMO_RULES) for case in load_cases(path)}
    assert {"E1", "E2", "E3", "E4", "E5", "E6"} <= names


@pytest.mark.parametrize("cases_file", find_cases_files(DEMO_RULES), ids=lambda p: p.name)
def test_demo_cases_fire_every_rule(cases_file):
    engine = _engine(cases_file, DEMO_CATALOG)
    results = [run_case(engine, case) for case in load_cases(cases_file)]
    never = [rule for rule, count in coverage(engine, results).items() if count == 0]
    assert never == []
