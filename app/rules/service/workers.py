"""Which rule set version each worker process of this host serves, for
/health: gunicorn workers reload on their own, so after a build that failed
in one of them the host can serve two versions at once. Each process writes
one small JSON file, `<state dir>/workers/<pid>.json`, when what it serves
changes (from when it takes requests: not a `flask` command); readers drop
the files of processes that are gone (same host: kill(pid, 0)). A server
that starts forgets the files of its previous run (forget_previous_run,
from gunicorn's master): after a crash or a container restart their pids
are reused, by other processes that kill(pid, 0) finds alive, and /health
would list them as workers serving an old version.

Also the retry schedule of a build that durable-rules refused (an
`EngineBuildError`, process-local and possibly transient): BUILD_RETRY_DELAYS
within one reload, then RELOAD_BACKOFF between reloads while a lagging
process keeps serving the version it has.

And when a worker that could build nothing leaves: only while a sibling
serves or the host's workers have not already left HOST_BUILD_EXITS times
in a row without any build succeeding since (`<state dir>/workers/build-exits`).
Past that every replacement fails alike (a refusal that is not transient):
leaving again would only have gunicorn fork, build and lose workers without
end, with no process to answer /health; the worker stays instead, answers
503 with the refusal in /health, retries after RELOAD_BACKOFF, and leaves
once a sibling serves (app/gunicorn_worker.py decides, with these files).
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ..repository.files import write_json_atomic

# seconds slept before the 2nd, 3rd and 4th attempt of one build
BUILD_RETRY_DELAYS = (0.1, 0.4, 1.6)
# seconds before a process that failed a build tries the reload again
# (doubling from the first value up to the last)
RELOAD_BACKOFF = (1.0, 30.0)
# workers of one host that may leave in a row, none serving and no build
# succeeding between, before the next one stays (and answers 503)
HOST_BUILD_EXITS = 4
BUILD_EXITS_FILE = "build-exits"


def reload_backoff(failures: int) -> float:
    """Seconds to wait after the `failures`-th failed reload in a row (1, 2, 4, ... 30)."""
    first, cap = RELOAD_BACKOFF
    return min(cap, first * 2 ** max(0, failures - 1))


class ServedVersions:
    """The per-host registry of served versions (one file per process)."""

    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / "workers"
        self._last: dict | None = None
        self._accepting = False

    def record(self, served: dict) -> None:
        """Write this process's entry if it changed, once the process takes
        requests (mark_accepting; until then the entry is kept to be written
        then): a `flask` command builds the app and its rule set too, but
        answers nobody, and is no worker for /health to list. `served`:
        rulesetId, version, hash (None when it serves nothing), buildFailure
        (text or None). Never raises: /health loses one process's line, the
        worker keeps serving."""
        if served == self._last:
            return
        if not self._accepting:
            self._last = dict(served)
            return
        if served.get("hash") and not served.get("buildFailure"):
            self._clear_exits()          # a build succeeded: the host's refusals are not persistent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.folder / f"{os.getpid()}.json",
                              {"pid": os.getpid(), **served, "accepting": self._accepting})
            self._last = dict(served)
        except OSError:
            pass

    def mark_accepting(self) -> None:
        """Say that this process now takes requests (a gunicorn worker whose
        app is built, at the start of its request loop; until then its rule
        service may already serve a version while the app around it is still
        being built): its entry is written, with "accepting": true."""
        self._accepting = True
        if self._last is not None:
            last, self._last = self._last, None
            self.record(last)

    def leave_after_build_failure(self) -> bool:
        """Whether this process, which serves nothing because its build was
        refused, should leave to be replaced (True: counted in the host's
        exits in a row) or stay (False: HOST_BUILD_EXITS workers of this host
        left already and no other live process serves). A sibling that
        serves shows the refusal is this process's own: leave, uncounted.
        Errors of the folder: leave (what gunicorn replacing the worker did
        before)."""
        if self.sibling_serves():
            return True                  # not counted: the host serves
        try:
            return self._count_exit() <= HOST_BUILD_EXITS
        except OSError:
            return True

    def sibling_serves(self) -> bool:
        """Whether another live process of this host serves a version."""
        return any(entry.get("hash") and entry.get("pid") != os.getpid() for entry in self.report()["workers"])

    def _count_exit(self) -> int:
        """Add one to the host's exits in a row (under an exclusive lock: the
        workers of one host may fail at once) and return the new count."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / BUILD_EXITS_FILE, "a+", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                count = int(handle.read().strip() or 0) + 1
            except ValueError:
                count = 1
            handle.seek(0)
            handle.truncate()
            handle.write(str(count))
        return count

    def _clear_exits(self) -> None:
        try:
            (self.folder / BUILD_EXITS_FILE).unlink(missing_ok=True)
        except OSError:
            pass

    def report(self) -> dict:
        """{"workers": [entry, ...] by pid, "agree": whether every live process
        serves the same rulesetId, version and hash}."""
        entries = []
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            paths = []
        for path in paths:
            try:
                pid = int(path.stem)
            except ValueError:
                continue
            if not _alive(pid):
                try:           # a read-only or full data directory: /health still answers
                    path.unlink(missing_ok=True)
                except OSError:
                    pass
                continue
            try:
                entries.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        served = {(e.get("rulesetId"), e.get("version"), e.get("hash")) for e in entries}
        return {"workers": entries, "agree": len(served) <= 1}

    def serving_since(self, since: float, hash: str | None = None) -> list[int]:
        """Pids of the other live processes of this host that recorded,
        at or after `since` (epoch seconds, the file's mtime), that they
        accept requests and serve a version without a build failure (the
        version of `hash` when given): a replacement that is ready."""
        ready = []
        try:
            paths = list(self.folder.glob("*.json"))
        except OSError:
            return ready
        for path in paths:
            try:
                pid = int(path.stem)
                if pid == os.getpid() or path.stat().st_mtime < since or not _alive(pid):
                    continue
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if entry.get("accepting") and entry.get("hash") and not entry.get("buildFailure") \
                    and hash in (None, entry["hash"]):
                ready.append(pid)
        return ready


def forget_previous_run(state_dir: Path) -> int:
    """Remove every process's entry under `state_dir`, and the count of
    workers that left in a row (the gunicorn master,
    before it forks its workers: none of them has written yet). Returns how
    many were removed; never raises (a read-only data directory: /health may
    then show stale lines, the server still starts)."""
    removed = 0
    folder = Path(state_dir) / "workers"
    try:
        paths = [*folder.glob("*.json"), folder / BUILD_EXITS_FILE]
    except OSError:
        return removed
    for path in paths:
        try:
            if path.exists():
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
