"""What a rule writer acknowledges in the file itself: a warning accepted
with a reason (`# lint-ignore: <code> -- why`, on its line or alone on the
line above; an acknowledgement that matches nothing is itself reported), and
the editor schema line (`# yaml-language-server: $schema=...`), which must
point at a schema this project ships."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..model.errors import Problem
from ..model.yamlload import display_path
from .findings import finding

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
IGNORE_RE = re.compile(r"#.*?\blint-ignore\b:?\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)?")
MODELINE_RE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")


@dataclass
class Ignore:
    line: int            # the line the comment applies to
    column: int          # where the comment is
    comment_line: int
    codes: tuple[str, ...]
    used: set = field(default_factory=set)


def read_ignores(text: str, file: str) -> tuple[list[Ignore], list[Problem]]:
    ignores, problems = [], []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if "lint-ignore" not in line or "#" not in line:
            continue
        match = IGNORE_RE.search(line)
        if not match:
            continue
        column = match.start() + 1
        if not match.group(1):
            problems.append(finding(file, (number, column), "unused-ignore", "lint-ignore names no check",
                                    "name the check, e.g. `# lint-ignore: retired-offering -- why`"))
            continue
        target = number
        if line.lstrip().startswith("#"):
            target = number + 1
            while target <= len(lines) and (not lines[target - 1].strip()
                                            or lines[target - 1].lstrip().startswith("#")):
                target += 1
        codes = tuple(c.strip() for c in match.group(1).split(","))
        ignores.append(Ignore(target, column, number, codes))
    return ignores, problems


def apply_ignores(problems: list[Problem], ignores: list[Ignore], file: str) -> tuple[list[Problem], list[Problem]]:
    kept, acknowledged = [], []
    for problem in problems:
        hit = None
        if problem.file == file and problem.severity != "error":
            hit = next((i for i in ignores if i.line == problem.line and problem.code in i.codes), None)
        if hit is None:
            kept.append(problem)
        else:
            hit.used.add(problem.code)
            acknowledged.append(problem)
    for ignore in ignores:
        for code in ignore.codes:
            if code not in ignore.used:
                kept.append(finding(file, (ignore.comment_line, ignore.column), "unused-ignore",
                                    f"lint-ignore: {code} acknowledges no warning on line {ignore.line}",
                                    "remove it (errors cannot be ignored; the check name must match)"))
    return kept, acknowledged


def modeline_problems(text: str, path: Path, schema_name: str) -> list[Problem]:
    """The `# yaml-language-server: $schema=...` line must point at a shipped schema."""
    for number, line in enumerate(text.splitlines()[:10], start=1):
        match = MODELINE_RE.search(line)
        if not match:
            continue
        target = match.group(1)
        if target.startswith(("http://", "https://")):
            return []
        resolved = (path.parent / target).resolve()
        relative = Path(os.path.relpath(SCHEMA_DIR / schema_name, path.parent.resolve())).as_posix()
        if not resolved.is_file():
            return [finding(display_path(path), (number, match.start(1) + 1), "schema-modeline",
                            f"the editor schema {target!r} does not exist",
                            f"write `$schema={relative}` so that editors validate and complete this file")]
        if resolved.name != schema_name:
            return [finding(display_path(path), (number, match.start(1) + 1), "schema-modeline",
                            f"the editor schema is {resolved.name}, but this is a file for {schema_name}",
                            f"write `$schema={relative}`")]
        return []
    return []
