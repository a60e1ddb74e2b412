"""The command-line output helpers that other commands reuse (bulk loads,
benchmarks): a progress bar only on a terminal, items passed through
unchanged, tables that a pipe never wraps."""
from __future__ import annotations

import io
import sys

from app.cli.output import print_table, progress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_passes_items_through_and_draws_nothing_in_a_pipe(monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert list(progress(iter(range(5)), "Loading customers", total=5)) == [0, 1, 2, 3, 4]
    with progress_bar("Loading products", total=2) as advance:
        advance(2)
    assert piped.getvalue() == ""


def test_progress_bar_on_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "100")
    with progress_bar("Loading customers", total=1500) as advance:
        for _ in range(3):
            advance(500)
    drawn = terminal.getvalue()
    assert "Loading customers" in drawn and "1500/1500" in drawn
    assert "\x1b[" in drawn                      # drawn and then erased (transient)


def test_a_piped_table_is_never_wrapped(monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stdout", piped)
    long_path = "rules/versions/" + "x" * 150 + ".yaml"
    print_table(("VERSION", "FILE"), [("1.0.0", long_path)])
    lines = piped.getvalue().splitlines()
    assert lines[0].split() == ["VERSION", "FILE"] and lines[2].split() == ["1.0.0", long_path]
    assert "\x1b[" not in piped.getvalue()
