"""`flask rules ...`: rule authoring for product managers.

    flask --app wsgi rules lint [PATH...]          # syntax, schema, meaning, versions (exit 1 on errors)
    flask --app wsgi rules test [PATH]             # regression cases: table, failures explained, coverage
    flask --app wsgi rules explain CONTEXT.json    # every rule, every policy step, the final list
    flask --app wsgi rules diff OLD NEW            # what a change would change: summary (--details: per context)
    flask --app wsgi rules keep [ID]               # keep the working copy in rules/versions/ (before editing)
    flask --app wsgi rules lock [ID]               # record the content hash of new versions
    flask --app wsgi rules versions [ID]           # the versions found, which one is active
    flask --app wsgi rules activate ID VERSION     # switch every worker, no restart
    flask --app wsgi rules rollback ID             # back to the last different healthy version
    flask --app wsgi rules history [ID]            # who saved, recorded, approved, activated what, when

Colour only on a terminal, never with NO_COLOR; the text is otherwise the
same everywhere (stable for scripts and tests). See rules/README.md.

One module per command family, each registering its commands on the group
(group.py); what they share is in common.py, and resolve.py reads the rule
set a command names (a file, ID@VERSION, VERSION, git:REV:PATH).
"""
from __future__ import annotations

from . import activation, cases, diff, explain, keep, lint, lock, versions  # noqa: F401  (they register their commands)
from .group import rules

__all__ = ["rules"]
