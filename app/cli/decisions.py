"""`flask decisions ...`: the decision log on the command line.

    flask --app wsgi decisions export --last 1000 > contexts.jsonl   # for `rules diff --contexts`
    flask --app wsgi decisions export --since 2026-12-01 --channel web -o week.jsonl
    flask --app wsgi decisions erase --party <id>      # a person's decisions and reactions
    flask --app wsgi decisions purge                   # what is older than the retention window
"""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` (gunicorn's config, each worker, each
# test) loads this module through app/cli/__init__.py.

import json

import click
from flask.cli import AppGroup

from ..services import services

decisions_cli = AppGroup("decisions", help="The decision log: every recommendation answer.")


def _log():
    log = services().decisions
    if log is None:
        raise click.ClickException("the decision log is off (RECO_DECISION_LOG)")
    return log


def _records(last, since, until, channel):
    from ..decisions.conversion import parse_range
    from ..errors import TMFError

    try:
        start, end = parse_range(since, until)
    except TMFError as exc:
        raise click.BadParameter(exc.message) from None
    return _log().sink.records(start, end, channel, last)


def recorded_situations_of(last, since, until, channel):
    """(situations, weights, skipped) for `flask rules diff --recorded`."""
    from ..decisions.replay import recorded_situations

    return recorded_situations(_records(last, since, until, channel),
                               services().recommender.parties)


@decisions_cli.command("export")
@click.option("--last", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the last N recorded answers.")
@click.option("--since", metavar="DATE-TIME", help="Answers recorded at or after (RFC 3339).")
@click.option("--until", metavar="DATE-TIME", help="Answers recorded before.")
@click.option("--channel", metavar="ID", help="Only answers of this channel.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="Write here instead of standard output.")
def export(last, since, until, channel, output):
    """Recorded answers as JSON Lines, one per answer, oldest first:
    {"name": "decision <id>", "context": <case context>}, the context as the
    engine would see it now (the customer and its products read from the
    store), ready for `flask rules diff --contexts FILE`."""
    from ..decisions.replay import recorded_situations
    from ..rules.authoring.contexts import context_to_case

    parties = services().recommender.parties
    written = skipped = 0
    for record in _records(last, since, until, channel):
        situations, _weights, missed = recorded_situations([record], parties)
        skipped += missed
        for _name, _source, context in situations:
            output.write(json.dumps({"name": f"decision {record['id']}",
                                     "context": context_to_case(context)},
                                    ensure_ascii=False) + "\n")
            written += 1
    click.echo(f"{written} recorded answers exported"
               + (f", {skipped} skipped (no longer a valid query)" if skipped else "") + ".",
               err=True)


def _party_id(_ctx, _param, value: str) -> str:
    """An id that names someone: not empty nor blanks only."""
    if not value.strip():
        raise click.BadParameter("an empty id names no one")
    return value


@decisions_cli.command("erase")
@click.option("--party", "party_id", required=True, metavar="ID", callback=_party_id,
              help="A customer id or engaged party id.")
def erase(party_id):
    """Remove a person's recorded answers, reactions and stored TMF680
    queries (GDPR art. 17). Sales leads are kept (TMF699 deletes them)."""
    from ..decisions.erase import erase_party

    done = erase_party(services(), party_id)
    click.echo(f"Erased party {', '.join(done.party_ids)}: {done.decisions} recorded answers, "
               f"{done.reactions} reactions, {done.queries} stored queries.")


@decisions_cli.command("purge")
def purge():
    """Remove the recorded answers and the reactions older than
    RECO_DECISION_RETENTION_DAYS now (the workers also do it every
    RECO_DECISION_PURGE_SECONDS)."""
    removed = _log().purge()
    click.echo(f"{removed} recorded answers older than "
               f"{services().settings.decision_retention_days:g} days removed.")
