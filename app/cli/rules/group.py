"""The `flask rules` command group, and what it does for every command: a
disk that refuses a write is one clear line, never a traceback."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import errno
import os

import click
from flask.cli import AppGroup


class RulesGroup(AppGroup):
    """`flask rules`: a disk that refuses a write (full, over quota, read-only)
    is one clear line and exit code 1, never a traceback. Every file these
    commands write is replaced atomically (app/atomicfile.py), so nothing was
    changed."""

    def invoke(self, ctx):
        from ...store import StoreUnavailable

        try:
            return super().invoke(ctx)
        except (OSError, StoreUnavailable) as exc:
            refused = _refused_write(exc)
            if refused is None:
                raise
            where = os.path.dirname(refused.filename) if isinstance(refused.filename, str) else "a folder"
            raise click.ClickException(f"cannot write in {where or '.'}: {refused.strerror}. Nothing was "
                                       "changed; make room (or make it writable) and run the command "
                                       "again") from None


def _refused_write(exc: BaseException) -> OSError | None:
    """The OSError of a disk that refused a write (full, over quota,
    read-only) behind `exc`: itself, or the cause of the store's
    StoreUnavailable (the activation history and versions live in the store)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


rules = RulesGroup("rules", help="Rule authoring: lint, test, explain, diff, keep, lock, versions, activate.")
