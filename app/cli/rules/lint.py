"""`flask rules lint`: syntax, schema, meaning and versions of the rule files."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

from pathlib import Path

import click

from .common import current_settings, echo_line, evaluation_time, print_json, report_style
from .group import rules


@rules.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings fail too (exit code 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--now", "now_text", metavar="DATETIME",
              help="Check expiry against this time instead of now (e.g. 2026-12-31T00:00:00Z).")
@click.option("--show-acknowledged", is_flag=True, help="Also list the warnings acknowledged with lint-ignore.")
def lint_command(paths, strict, as_json, now_text, show_acknowledged):
    """Check rule sets, their cases, lock files, experiments files and the catalog (default: all of them).

    Every finding names file:line:column, the rule, the check and what to do.
    Exit code 1 on errors (or on warnings with --strict), else 0."""
    from ...rules.authoring.lint import lint
    from ...rules.authoring.report import lint_lines

    settings = current_settings()
    report = lint(list(paths) or None, settings.rules_dir, settings.catalog_dir, evaluation_time(now_text))
    from ...experiments.lint import add_experiment_findings
    add_experiment_findings(report, list(paths) or None, settings.rules_dir, settings.catalog_dir)
    if as_json:
        print_json(report.as_dict())
    else:
        for line in lint_lines(report, report_style(), show_acknowledged):
            echo_line(line)
    raise click.exceptions.Exit(report.exit_code(strict))

