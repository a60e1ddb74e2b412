"""The JSON report of a regression case run: one shape for every tool that
gives one (`flask rules test --json` per cases file, `POST /admin/rules/test`
for the Rule Studio), so a script and the Studio read the same keys.

Shape::

    {"cases": "rules/telco-demo.cases.yaml",
     "ruleset": {"id", "version", "file"},
     "results": [{"name", "passed", "expected", "absent", "actual", "messages",
                  "line", "description", "why": [lines of a failure's reasons]}],
     "coverage": [{"rule", "name", "line", "cases": n, "counted": bool}],
     "coveragePercent": 87.5, "passed": n, "failed": n}
"""
from __future__ import annotations

from pathlib import Path

from ..engine.engine import Engine
from ..model.yamlload import display_path
from .cases import Case, CaseResult, coverage, load_cases, run_case
from .report import coverage_percent, failure_lines


def matching(cases: list[Case], keyword: str | None) -> list[Case]:
    """The cases whose name contains `keyword`, ignoring case (as pytest -k);
    all of them without one."""
    if not keyword:
        return cases
    wanted = keyword.lower()
    return [case for case in cases if wanted in case.name.lower()]


def cases_report(engine: Engine, cases_file: Path, results: list[CaseResult]) -> dict:
    """The report of `results` (the cases of `cases_file` run on `engine`)."""
    counts = coverage(engine, results)
    ruleset = engine.ruleset
    failed = sum(1 for result in results if not result.passed)
    return {
        "cases": display_path(cases_file),
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "file": ruleset.file},
        "results": [{"name": r.case.name, "passed": r.passed, "expected": r.case.expect,
                     "absent": r.case.absent, "actual": r.actual, "messages": r.messages,
                     "line": r.case.line, "description": r.case.description,
                     "why": [] if r.passed else failure_lines(engine, r)[1:]} for r in results],
        "coverage": [{"rule": rule.id, "name": rule.name, "line": rule.line, "cases": counts.get(rule.id, 0),
                      "counted": rule.fires_by_status} for rule in ruleset.rules],
        "coveragePercent": round(coverage_percent(engine, counts), 1),
        "passed": len(results) - failed, "failed": failed,
    }


def run_matching(engine: Engine, cases_file: Path, keyword: str | None = None) -> list[CaseResult]:
    """Run the cases of `cases_file` whose name contains `keyword` (all
    without one); RuleSetError for a bad cases file."""
    return [run_case(engine, case) for case in matching(load_cases(cases_file, engine.catalog), keyword)]
