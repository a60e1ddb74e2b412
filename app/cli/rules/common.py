"""What every `flask rules` command shares: its output (colour only on a
terminal, never with NO_COLOR), how a bad rule set stops it (exit code 1 with
file:line:column problems), who runs it, and the time it evaluates at."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import datetime as dt
import getpass
import json
import os

import click

from ...services import services


def use_color():
    return False if os.environ.get("NO_COLOR") else None     # None: click strips unless a terminal


def echo_line(line: str = "", err: bool = False) -> None:
    click.echo(line, color=use_color(), err=err)


def report_style():
    from ...rules.authoring.report import ansi, plain
    return plain if os.environ.get("NO_COLOR") else ansi


def current_settings():
    return services().settings


def fail(exc, code: int = 1):
    """Print a RuleSetError (with its file:line:column problems) and exit."""
    problems = getattr(exc, "problems", None) or []
    first = str(exc).splitlines()[0] if str(exc) else "error"
    echo_line(click.style(f"error: {first}", fg="red", bold=True), err=True)
    for problem in problems:
        echo_line(f"  {problem}", err=True)
    raise click.exceptions.Exit(code)


def user_name() -> str:
    """Who runs the command, for the activation history."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):      # no login name and no passwd entry (some containers)
        return "unknown user"


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def evaluation_time(value: str | None) -> dt.datetime:
    from ...rules.model.common import UTC, parse_time
    if value is None:
        return dt.datetime.now(UTC)
    when = parse_time(value)
    if when is None:
        raise click.BadParameter(f"{value!r} is not a date-time like 2026-10-01T00:00:00Z")
    return when


def catalog_or_fail():
    from ...rules import RuleSetError, load_catalog
    try:
        return load_catalog(current_settings().catalog_dir)
    except RuleSetError as exc:
        fail(exc)

