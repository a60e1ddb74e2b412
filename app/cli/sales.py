"""`flask sales ...`: the conversion report for product managers, without
going through HTTP.

    flask --app wsgi sales conversion                 # table per rule set version and rule
    flask --app wsgi sales conversion --json          # the same JSON as GET /conversionReport
    flask --app wsgi sales conversion --rule-set telco-demo --version 3
"""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` (gunicorn's config, each worker, each
# test) loads this module through app/cli/__init__.py.

import json

import click
from flask.cli import AppGroup

from ..services import services

sales = AppGroup("sales", help="TMF699 sales leads made from recommendations.")


@sales.command("conversion")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--rule-set", "rule_set_id", metavar="ID", help="Only this rule set.")
@click.option("--version", "rule_set_version", metavar="VERSION",
              help="Only this rule set version.")
@click.option("--since", metavar="DATE-TIME", help="Funnel: decisions at or after (RFC 3339).")
@click.option("--until", metavar="DATE-TIME", help="Funnel: decisions before (RFC 3339).")
@click.option("--channel", metavar="ID", help="Funnel: only decisions of this channel.")
@click.option("--by", "funnel_by", default="ruleSetVersion", show_default=True,
              type=click.Choice(["ruleSetVersion", "rule", "offering", "channel", "segment"]),
              help="Funnel table: one row per this.")
def conversion(as_json: bool, rule_set_id: str | None, rule_set_version: str | None,
               since: str | None, until: str | None, channel: str | None,
               funnel_by: str) -> None:
    """How many recommended items became leads, and where the leads are, per
    rule set version and rule; then the funnel of every recorded decision
    (decisions, items, shown, clicked, leads, accepted). Colour only on a
    terminal (and not with NO_COLOR)."""
    from ..decisions.conversion import conversion_report, parse_range
    from ..errors import TMFError
    from ..sales import report_rows
    from ..sales.report import HEADER
    from .output import print_table

    try:
        bounds = parse_range(since, until)
    except TMFError as exc:
        raise click.BadParameter(exc.message) from None
    report = conversion_report(services(), rule_set_id, rule_set_version,
                               *bounds, channel)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = report_rows(report)
    if not rows:
        click.echo("No recommended items yet (only stored, asynchronous TMF680 queries count).")
    else:
        print_table(HEADER, rows, numeric_from=3,
                    row_styles=["bold" if row[2] == "all" else None for row in rows])
        click.echo(f"\nITEMS: recommended items in stored queries; WITH LEAD: of those, items "
                   f"that became a lead; LEADS by current status. Generated "
                   f"{report['generatedAt']}.")
    if "funnel" in report:
        click.echo("")
        _print_funnel(report["funnel"], funnel_by)


FUNNEL_KEYS = {"ruleSetVersion": None, "rule": "ruleId", "offering": "offeringId",
               "channel": "channelId", "segment": "segment"}


def _print_funnel(funnel: dict, by: str) -> None:
    """Every recorded decision, one row per `by` (and rule set version)."""
    from .output import print_table

    key = FUNNEL_KEYS[by]
    counts = ("decisions", "items", "shown", "clicked", "leads", "accepted")
    header = ("RULE SET", "VERSION") + ((by.upper(),) if key else ()) + tuple(
        name.upper() for name in counts)
    rows = [(row["ruleSetId"], row["ruleSetVersion"]) + ((str(row[key]),) if key else ())
            + tuple(str(row[name]) for name in counts)
            for row in funnel[f"by{by[0].upper()}{by[1:]}"]]
    total = funnel["total"]
    click.echo(f"Funnel of every recorded decision: {total['decisions']} decisions, "
               f"{total['items']} items, {total['shown']} shown, {total['clicked']} clicked, "
               f"{total['leads']} leads, {total['accepted']} accepted.")
    if rows:
        print_table(header, rows, numeric_from=len(header) - len(counts))
    click.echo("")
