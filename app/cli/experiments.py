"""`flask experiments ...`: experiments of the rule set in service
(app/experiments; docs/experiments.md).

    flask --app wsgi experiments list
    flask --app wsgi experiments report checkout-upsell [--json]
    flask --app wsgi experiments start checkout-upsell
    flask --app wsgi experiments weights checkout-upsell challenger=25 control=75
    flask --app wsgi experiments stop checkout-upsell
    flask --app wsgi experiments promote checkout-upsell challenger

Changes are written to rules/<set>.experiments.yaml and the audit history
(`--by`, default the login name), like `flask rules activate`."""
from __future__ import annotations

# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` (gunicorn's config, each worker, each
# test) loads this module through app/cli/__init__.py.

import getpass
import json

import click
from flask.cli import AppGroup

from ..errors import TMFError
from ..services import services

experiments_cli = AppGroup("experiments", help="A/B tests of rule versions, holdouts and canaries.")
_RULESET = click.option("--ruleset", "ruleset_id", metavar="ID", help="The rule set (default: the one in service).")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _fail(exc: TMFError):
    click.echo(click.style(f"error: {exc.message}", fg="red", bold=True), err=True)
    for problem in (exc.details or {}).get("problems", []) if isinstance(exc.details, dict) else []:
        click.echo(f"  {problem}", err=True)
    raise click.exceptions.Exit(1)


def _json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@experiments_cli.command("list")
@_RULESET
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(ruleset_id, as_json):
    """The experiments of the rule set, and the file's problems (file:line)."""
    from ..experiments import service
    try:
        found = service.listing(services(), service.ruleset_id(services(), ruleset_id))
    except TMFError as exc:
        _fail(exc)
    if as_json:
        _json(found)
        return
    click.echo(f"{found['file']} (version {found['version']})")
    for experiment in found["experiments"]:
        arms = ", ".join(f"{a['name']}={a['version'] or 'holdout'}:{a['weight']:g}%" for a in experiment["arms"])
        click.echo(f"  {experiment['id']:<20} {experiment['status']:<10} control {experiment['control']}: {arms}")
    for problem in found["problems"]:
        click.echo(f"  {problem['severity']}: {problem['text']}" + (f"\n    fix: {problem['hint']}"
                                                                     if problem.get("hint") else ""))
    if any(p["severity"] == "error" for p in found["problems"]):
        raise click.exceptions.Exit(1)


@experiments_cli.command("report")
@click.argument("experiment_id")
@_RULESET
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_command(experiment_id, ruleset_id, as_json):
    """The report per arm: counts, rates with intervals, uplift, sample ratio, method."""
    from ..experiments import service
    from ..experiments.report import report_lines
    reco = services()
    try:
        found = service.report(reco, service.ruleset_id(reco, ruleset_id), experiment_id)
    except TMFError as exc:
        _fail(exc)
    if as_json:
        _json(found)
        return
    for line in report_lines(found):
        click.echo(line)


def _change(experiment_id, ruleset_id, action, by, **kwargs):
    from ..experiments import service
    reco = services()
    try:
        done = service.change(reco, service.ruleset_id(reco, ruleset_id), experiment_id, action,
                              by or f"{_user()} (flask experiments)", activate=service.activation(reco),
                              **kwargs)
    except TMFError as exc:
        _fail(exc)
    experiment = done["experiment"]
    arms = ", ".join(f"{a['name']} {a['weight']:g}%" for a in experiment["arms"])
    click.echo(f"{experiment['id']}: {experiment['status']} ({arms}); file version {done['fileVersion']}, "
               f"recorded by {done['history'][0]['by']} at {done['history'][0]['at']}")


_BY = click.option("--by", help="Who, for the audit history (default: \"<login name> (flask experiments)\").")


@experiments_cli.command("start")
@click.argument("experiment_id")
@_RULESET
@_BY
def start_command(experiment_id, ruleset_id, by):
    """Start (or restart) an experiment: every arm's version must compile."""
    _change(experiment_id, ruleset_id, "start", by)


@experiments_cli.command("stop")
@click.argument("experiment_id")
@_RULESET
@_BY
def stop_command(experiment_id, ruleset_id, by):
    """Stop an experiment: the active version answers everybody again."""
    _change(experiment_id, ruleset_id, "stop", by)


@experiments_cli.command("weights")
@click.argument("experiment_id")
@click.argument("weights", nargs=-1, required=True, metavar="ARM=PERCENT...")
@_RULESET
@_BY
def weights_command(experiment_id, weights, ruleset_id, by):
    """Set every arm's weight, e.g. `challenger=25 control=75` (adding up to 100)."""
    parsed = {}
    for text in weights:
        name, _, value = text.partition("=")
        if name in parsed:
            raise click.BadParameter(f"{text!r}: arm {name} is named twice: give each arm one weight")
        try:
            parsed[name] = float(value)
        except ValueError:
            raise click.BadParameter(f"{text!r}: write ARM=PERCENT, e.g. challenger=25") from None
    _change(experiment_id, ruleset_id, "weights", by, weights=parsed)


@experiments_cli.command("promote")
@click.argument("experiment_id")
@click.argument("arm")
@_RULESET
@_BY
def promote_command(experiment_id, arm, ruleset_id, by):
    """Activate ARM's version for everybody and complete the experiment."""
    _change(experiment_id, ruleset_id, "promote", by, arm=arm)
