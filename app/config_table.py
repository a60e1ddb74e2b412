"""The configuration table of docs/configuration.md, written from the fields
of app.config.Settings, so that a variable, its default and its meaning are
written once (in the class) and the document cannot drift from the code.

    python -m app.config_table           # rewrite the table in docs/configuration.md
    python -m app.config_table --check   # exit 1 when the committed table is stale

The table sits between the markers START and END; the text around them is
the document's own.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import INTERNAL_VARIABLES, PROJECT_ROOT, Settings

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
DOCUMENT = PROJECT_ROOT / "docs" / "configuration.md"


def default_text(name: str) -> str:
    """A field's default as an operator writes it: `unset`, `true`, `a,b`,
    a path relative to the project folder, a number without a needless `.0`."""
    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(value)}`" if value else "none"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(PROJECT_ROOT)}`"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The markdown between the markers (markers excluded), ending in a newline."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        lines.append(f"| `{Settings.variable(name)}` | {default_text(name)} | {_cell(field.description or '')} |")
    lines += ["", "Set by the service for the processes it starts (not settings; leave them unset):", "",
              "| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in INTERNAL_VARIABLES.items()]
    return "\n".join(lines) + "\n"


def updated(document: str) -> str:
    """The document with its table replaced; ValueError without both markers."""
    try:
        head, rest = document.split(START, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"the document has no {START} ... {END} markers") from None
    return f"{head}{START}\n{render()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.config_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the table is stale, change nothing")
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    current = args.document.read_text(encoding="utf-8")
    wanted = updated(current)
    if args.check:
        if wanted != current:
            print(f"{args.document}: the settings table is stale; run python -m app.config_table", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.document.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
