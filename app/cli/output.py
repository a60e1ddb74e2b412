"""Terminal output of the command-line tools through rich: tables, and
progress bars for long work (rules diff over recorded contexts, bulk loads,
benchmarks).

Progress goes to stderr and only when stderr is a terminal: piped or
redirected output (scripts, CI logs, the tests) gets no bar and no control
characters, and `flask rules diff ... > report.txt` still shows the bar on
the terminal while the file gets only the report. On a terminal the bar is
removed when the work is done (transient), so what stays is the result.
Colour follows rich: none when not a terminal, none with NO_COLOR.

Reuse for any long loop::

    from app.cli.output import progress, progress_bar

    for row in progress(rows, "Loading customers"):          # an iterable
        store.insert("customer", row)

    with progress_bar("Loading customers", total=len(rows)) as advance:
        for batch in batches(rows, 500):                     # or by steps
            store.insert_many("customer", batch)
            advance(len(batch))
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

# Wide enough that a table is never wrapped when written to a file or a pipe;
# on a terminal rich uses the terminal's width.
PIPE_WIDTH = 1000


def stdout_console() -> Console:
    """A console on the current sys.stdout (click's test runner replaces it)."""
    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if terminal else PIPE_WIDTH, soft_wrap=not terminal)


def _stderr_console() -> Console:
    return Console(file=sys.stderr)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric_from: int | None = None,
          row_styles: Sequence[str | None] | None = None) -> Table:
    """A borderless table, the header bold; columns from `numeric_from` on are
    right-aligned (numbers); `row_styles` gives a rich style per row."""
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for index, name in enumerate(header):
        right = numeric_from is not None and index >= numeric_from
        out.add_column(name, justify="right" if right else "left", no_wrap=True)
    styles = list(row_styles or [])
    for index, row in enumerate(rows):
        out.add_row(*row, style=styles[index] if index < len(styles) else None)
    return out


def print_table(*args, **kwargs) -> None:
    stdout_console().print(table(*args, **kwargs))


def render_table(*args, **kwargs) -> list[str]:
    """The table's lines as plain text (for tests and callers that need text)."""
    console = Console(width=PIPE_WIDTH, no_color=True, color_system=None)
    with console.capture() as captured:
        console.print(table(*args, **kwargs))
    return [line.rstrip() for line in captured.get().splitlines()]


def _bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None) -> Iterator:
    """A bar for work done in steps; yields `advance(n=1)`."""
    with _bar(_stderr_console()) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def progress(items: Iterable, description: str, total: int | None = None) -> Iterator:
    """Yield from `items` while a bar counts them (total: len(items) when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    with progress_bar(description, total) as advance:
        for item in items:
            yield item
            advance()
