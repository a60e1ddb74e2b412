"""Errors of rule and catalog files: every one names file, line and column."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding in a rule, catalog or case file (line and column are 1-based).

    `rule` is the id of what the finding is about and `subject` says what
    that is: "rule" (a rule of the rule set) or "policy" (a contact
    policy: app/rules/model/contact.py), so that every rendering names a
    policy as a policy ("policy P1: ..."), not as a rule."""

    file: str
    line: int
    column: int
    message: str
    rule: str | None = None
    severity: str = "error"
    code: str | None = None        # lint check name, set where the problem is found, e.g. "unknown-offering"
    hint: str | None = None        # what to do about it (lint)
    subject: str = "rule"          # what `rule` names: "rule" or "policy"

    @property
    def about(self) -> str:
        """"rule R1: ", "policy P1: " or "" (no subject): the prefix of every
        rendering of the finding (CLI, API `text`, Studio)."""
        return f"{self.subject} {self.rule}: " if self.rule else ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.about}{self.message}"

    def as_dict(self) -> dict:
        """`rule` holds a rule's id, `policy` a contact policy's (the other
        None), `about` the prefix the text starts its message with."""
        return {"file": self.file, "line": self.line, "column": self.column,
                "rule": self.rule if self.subject == "rule" else None,
                "policy": self.rule if self.subject == "policy" else None,
                "about": self.about, "severity": self.severity, "message": self.message,
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
