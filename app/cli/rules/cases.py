"""`flask rules test`: the regression cases beside each rule set, their
failures explained, and which rules never fired."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

from pathlib import Path

import click

from .common import current_settings, echo_line, fail, print_json, report_style
from .group import rules


def _cases_targets(path: Path | None, rules_dir: Path) -> list[Path]:
    from ...rules.model.ruleset import peek_header
    from ...rules import RuleSetError
    from ...rules.repository.layout import cases_file_for, cases_path, find_cases_files, is_cases_file

    if path is None:
        return find_cases_files(rules_dir)
    if path.is_dir():
        return find_cases_files(path)
    if is_cases_file(path):
        return [path]
    beside = cases_file_for(path)
    if beside.exists():
        return [beside]
    rid, _version = peek_header(path)
    try:
        candidate = cases_path(rules_dir, rid) if rid else None
    except RuleSetError:          # an id that is no file name has no cases file
        candidate = None
    return [candidate] if candidate is not None and candidate.exists() else [beside]


@rules.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--rules", "rule_file", type=click.Path(exists=True, path_type=Path),
              help="Run the cases against this rule file (e.g. rules/versions/<id>@<version>.yaml).")
@click.option("-k", "keyword", metavar="TEXT", help="Only the cases whose name contains TEXT.")
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Fail when fewer than PERCENT of the rules fire in some case.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def test_command(path, rule_file, keyword, fail_under, as_json):
    """Run the regression cases beside each rule set (or PATH: a cases file, a
    rule file or a directory). Prints a pass/fail table, expected vs actual
    with the reasons of every item on failure, and which rules never fired."""
    from ...rules import RuleSetError
    from ...rules.authoring.case_report import cases_report, run_matching
    from ...rules.authoring.cases import coverage, engine_for
    from ...rules.repository.layout import ruleset_file_for
    from ...rules.authoring.report import case_lines, coverage_percent
    from ...rules.model.yamlload import display_path

    settings = current_settings()
    targets = _cases_targets(path, settings.rules_dir)
    if not targets:
        echo_line("No regression cases found (rules/<id>.cases.yaml).", err=True)
        raise click.exceptions.Exit(1)
    exit_code = 0
    out = []
    for cases_file in targets:
        given_rule_file = path is not None and path.is_file() and path.resolve() != cases_file.resolve()
        try:
            target_rules = rule_file or (path if given_rule_file else ruleset_file_for(cases_file))
            engine = engine_for(target_rules, settings.catalog_dir)
            results = run_matching(engine, cases_file, keyword)
        except RuleSetError as exc:
            fail(exc)
        counts = coverage(engine, results)
        percent = coverage_percent(engine, counts)
        if any(not r.passed for r in results) or (fail_under is not None and percent < fail_under):
            exit_code = 1
        if as_json:
            out.append(cases_report(engine, cases_file, results))
            continue
        if out:
            echo_line()
        out.append(cases_file)
        for line in case_lines(engine, display_path(cases_file), results, counts, report_style(), fail_under):
            echo_line(line)
    if as_json:
        print_json({"files": out, "ok": exit_code == 0})
    raise click.exceptions.Exit(exit_code)

