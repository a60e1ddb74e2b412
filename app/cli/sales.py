"""`flask sales ...`: the conversion report for product managers, without
going through HTTP.

    flask --app wsgi sales conversion                 # table per rule set version and rule
    flask --app wsgi sales conversion --json          # the same JSON as GET /conversionReport
    flask --app wsgi sales conversion --rule-set telco-demo --version 3
"""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

sales = AppGroup("sales", help="TMF699 sales leads made from recommendations.")


@sales.command("conversion")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--rule-set", "rule_set_id", metavar="ID", help="Only this rule set.")
@click.option("--version", "rule_set_version", metavar="VERSION",
              help="Only this rule set version.")
def conversion(as_json: bool, rule_set_id: str | None, rule_set_version: str | None) -> None:
    """How many recommended items became leads, and where the leads are, per
    rule set version and rule. Colour only on a terminal (and not with NO_COLOR)."""
    from ..sales import report_rows
    from ..sales.report import HEADER
    from ..sales.resource import current_report
    from .output import print_table

    report = current_report(current_app.extensions["reco"].store, rule_set_id, rule_set_version)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = report_rows(report)
    if not rows:
        click.echo("No recommended items yet (only stored, asynchronous TMF680 queries count).")
        return
    print_table(HEADER, rows, numeric_from=3, row_styles=["bold" if row[2] == "all" else None for row in rows])
    click.echo(f"\nITEMS: recommended items in stored queries; WITH LEAD: of those, items that "
               f"became a lead; LEADS by current status. Generated {report['generatedAt']}.")
