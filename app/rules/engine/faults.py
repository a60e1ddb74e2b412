"""Fault injection for end-to-end tests of a failed engine build (never set in
production): durable-rules refusing a rule set is rare and process-local (a
heap state, memory pressure), so a test of what a gunicorn worker does when
it happens needs to cause it on demand.

RECO_FAULT_ENGINE_BUILDS=<path of a file holding "N" or "N:PID">: the next N
engine builds on this host, in whichever processes (or only in process PID),
fail as if durable-rules had refused the rule set; each failed build
decrements N under an exclusive lock (fcntl), so the count is shared by the
gunicorn master's workers.
Unset (the default): nothing happens, at the cost of one environment read per
build (builds happen only when rule files change).
"""
from __future__ import annotations

import fcntl
import os

ENV = "RECO_FAULT_ENGINE_BUILDS"


def injected_build_failure() -> str | None:
    """A message if this build must fail, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        with open(path, "r+", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            count, _colon, pid = handle.read().strip().partition(":")
            left = int(count or 0)
            if left <= 0 or (pid and int(pid) != os.getpid()):
                return None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{left - 1}:{pid}" if pid else str(left - 1))
    except (OSError, ValueError):
        return None
    return f"injected build failure ({ENV}, {left - 1} left)"
