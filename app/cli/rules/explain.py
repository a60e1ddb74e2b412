"""`flask rules explain`: one context through every rule and policy step."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import json
from pathlib import Path

import click

from ...services import services
from .common import catalog_or_fail, echo_line, evaluation_time, fail, print_json, report_style
from .group import rules
from .resolve import resolve_ruleset


@rules.command("explain")
@click.argument("context_file", metavar="CONTEXT.json", type=click.Path(exists=True, path_type=Path))
@click.option("--version", "version", metavar="VERSION",
              help="Explain with this loaded version (default: the active one).")
@click.option("--rules", "rules_spec", metavar="FILE|ID@VERSION", help="Explain with this rule file or version.")
@click.option("--time", "time_text", metavar="DATETIME",
              help="Evaluation time when the context has none (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain_command(context_file, version, rules_spec, time_text, as_json):
    """Explain one context: every rule (fired, or which condition failed),
    every policy step (what was dropped and why), the final list.

    CONTEXT.json is a case context ({"cart": ["6547"], "channel": "21",
    "time": ...}), a whole case, or a TMF680 query body (its customer is
    looked up in this service's store)."""
    from ...errors import TMFError
    from ...experiments.service import explaining, explanation_line
    from ...recommend.query import context_from_query
    from ...rules import RuleSetError
    from ...rules.authoring.contexts import explain_as_case, load_context_file
    from ...rules.engine.engine import Engine
    from ...rules.authoring.report import explain_lines

    reco = services()
    try:
        doc, _name, context = load_context_file(context_file, evaluation_time(time_text))
        query = context is None
        if query:
            context = context_from_query(doc, reco.recommender.parties, evaluation_time(time_text))
        experiment = None
        if rules_spec:
            catalog = catalog_or_fail()
            engine = Engine(resolve_ruleset(rules_spec, catalog), catalog)
        else:
            reco.rules.refresh()
            engine, experiment = explaining(reco, doc) if query and not version else (None, None)
            engine = engine or reco.rules.engine_of(version)
    except RuleSetError as exc:
        fail(exc)
    except TMFError as exc:
        echo_line(f"error: {context_file}: {exc.message}", err=True)
        for line in _detail_lines(exc.details):
            echo_line(f"  {line}", err=True)
        raise click.exceptions.Exit(1)
    # the case context carries the history the contact policies read for
    # the query's party (a customer or not), so a case made of it reproduces
    # what they suppressed
    explained, case_context = explain_as_case(engine, context)
    if experiment:
        explained["experiment"] = experiment
    if as_json:
        explained["context"] = case_context
        print_json(explained)
        return
    if experiment:
        echo_line(explanation_line(experiment, engine.ruleset.version))
    for line in explain_lines(explained, engine.catalog, report_style()):
        echo_line(line)
    if query:
        echo_line()
        echo_line("As a case context (for a cases file or a --contexts JSONL file):")
        echo_line("  " + json.dumps(case_context, ensure_ascii=False))


def _detail_lines(details, path: str = "") -> list[str]:
    """A TMF Error's `details` (marshmallow's nested messages, e.g.
    {"shoppingCart": {"0": {"cartItem": ["Unknown field."]}}}) as lines
    "shoppingCart.0.cartItem: Unknown field.", what the HTTP answer names."""
    if isinstance(details, dict):
        return [line for key, value in details.items()
                for line in _detail_lines(value, f"{path}.{key}" if path else str(key))]
    if isinstance(details, list) and all(isinstance(item, str) for item in details):
        return [f"{path}: {' '.join(details)}"] if details else []
    if isinstance(details, list):
        return [line for index, item in enumerate(details) for line in _detail_lines(item, f"{path}.{index}")]
    return [f"{path}: {details}"] if details is not None else []
