"""`flask rules diff`: what a change of rules would change, over the
regression cases, recorded contexts and recorded answers."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

from pathlib import Path

import click

from ..output import progress
from .common import catalog_or_fail, current_settings, echo_line, evaluation_time, fail, print_json, report_style
from .group import rules
from .resolve import resolve_ruleset


@rules.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--contexts", "contexts_file", type=click.Path(exists=True, path_type=Path), metavar="FILE.jsonl",
              help="Also compare these recorded contexts (one JSON context or case per line).")
@click.option("--cases/--no-cases", default=True, help="Compare the rule set's regression cases (default: yes).")
@click.option("--details", is_flag=True,
              help="After the summary, what changes in each changed context (see --limit).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="With --details: list at most N contexts (0: all).")
@click.option("--all", "show_all", is_flag=True, help="Details of the contexts that do not change too.")
@click.option("--fail-on-change", is_flag=True, help="Exit code 1 when any context changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--recorded", type=click.IntRange(min=0), default=None, metavar="N",
              help="Also replay the last N recorded answers (decision log), weighted.")
@click.option("--since", "recorded_since", metavar="DATE-TIME",
              help="Replay the answers recorded since then (with --until, --channel).")
@click.option("--until", "recorded_until", metavar="DATE-TIME", help="... and before this.")
@click.option("--channel", "recorded_channel", metavar="ID", help="... only of this channel.")
def diff_command(old, new, contexts_file, cases, details, limit, show_all, fail_on_change, as_json,
                 recorded=None, recorded_since=None, recorded_until=None, recorded_channel=None):
    """What changes from OLD to NEW: the rules changed and a summary over the
    contexts (items gained, lost, reordered, recommended for other reasons);
    with --details, each changed context. A progress bar counts the contexts
    on a terminal.

    OLD and NEW are rule files, ID@VERSION or VERSION (a version in rules/ or
    rules/versions/), or git:REV:PATH (a committed file, e.g.
    git:HEAD:rules/telco-demo.yaml)."""
    from ...rules import RuleSetError
    from ...rules.authoring.cases import load_cases
    from ...rules.authoring.contexts import load_contexts_jsonl
    from ...rules.authoring.diff import diff_engines
    from ...rules.engine.engine import Engine
    from ...rules.authoring.report import diff_lines
    from ...rules.repository.layout import cases_path

    settings = current_settings()
    catalog = catalog_or_fail()
    try:
        new_rs = resolve_ruleset(new, catalog)
        old_rs = resolve_ruleset(old, catalog, other_id=new_rs.id)
        old_engine, new_engine = Engine(old_rs, catalog), Engine(new_rs, catalog)
        contexts = []
        if cases:
            cases_file = cases_path(settings.rules_dir, new_rs.id)
            if cases_file.exists():
                contexts += [(c.name, "case", c.context) for c in load_cases(cases_file)]
        if contexts_file is not None:
            contexts += [(name, "recorded", ctx) for name, ctx in load_contexts_jsonl(contexts_file, evaluation_time(None))]
    except RuleSetError as exc:
        fail(exc)
    weights = None
    if recorded is not None or recorded_since or recorded_until or recorded_channel:
        from ..decisions import recorded_situations_of
        situations, weights, skipped = recorded_situations_of(
            recorded, recorded_since, recorded_until, recorded_channel)
        contexts += situations
        if skipped:
            echo_line(f"{skipped} recorded answers could not be read as contexts and were skipped.",
                  err=True)
    if not contexts:
        echo_line("No contexts to compare: add regression cases or give --contexts FILE.jsonl "
              "or --recorded N.", err=True)
        raise click.exceptions.Exit(1)
    report = diff_engines(old_engine, new_engine, progress(contexts, "Comparing contexts"))
    if as_json:
        data = report.as_dict()
        if weights is not None:
            from ...decisions.replay import weighted_summary
            data["recordedTraffic"] = weighted_summary(data["contexts"], weights)
        print_json(data)
    else:
        for line in diff_lines(report, report_style(), show_all, details, limit or None):
            echo_line(line)
        if weights is not None:
            from ...decisions.replay import summary_line, weighted_summary
            echo_line(summary_line(weighted_summary(report.as_dict()["contexts"], weights)))
        if report.changed and not (details or show_all):
            echo_line(f"Add --details to see what changes in each of the {len(report.changed)} changed contexts.")
    raise click.exceptions.Exit(1 if fail_on_change and report.changed else 0)

