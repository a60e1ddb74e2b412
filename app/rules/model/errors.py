"""Errors of rule and catalog files: every one names file, line and column."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding in a rule, catalog or case file (line and column are 1-based)."""

    file: str
    line: int
    column: int
    message: str
    rule: str | None = None
    severity: str = "error"
    code: str | None = None        # lint check name, set where the problem is found, e.g. "unknown-offering"
    hint: str | None = None        # what to do about it (lint)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        rule = f"rule {self.rule}: " if self.rule else ""
        return f"{where}: {rule}{self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column,
                "rule": self.rule, "severity": self.severity, "message": self.message,
                "code": self.code, "hint": self.hint, "text": str(self)}


class RuleSetError(LookupError):
    """A rule set, catalog or case file could not be used, or no rule set is loaded.

    `problems` lists every finding (file:line:column: message). It is a
    LookupError so that callers can treat "no usable rule set" like a missing
    resource.
    """

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(str(p) for p in self.problems)
        super().__init__(message)
