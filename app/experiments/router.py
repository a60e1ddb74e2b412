"""The answering path's one call into experiments: which engine answers a
query, and the arm it is in.

Per request: one monotonic clock read; when a running experiment applies,
one SHA-256 of ~40 bytes and a walk over its arms' boundaries. Everything
else (reading and checking the file, compiling every arm's version,
boundaries) is done when the file or the rule service changes, at most
once per `check_interval` seconds (a stat), not per request.

Every arm's engine is compiled at load (RuleService.engine_of, which keeps
the compiled engines), so all arms serve at once; a file with errors, or
an arm whose version cannot be compiled, serves no experiment (the active
version answers everybody) and says why in `problems`, /health and the log."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from ..rules.model.errors import Problem, RuleSetError
from ..rules.repository.layout import stat_key
from .assign import arm_index, assignment_key, boundaries, bucket
from .model import Experiment, experiments_path, read_experiments, shown_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Live:
    """A running experiment ready to serve: its arms' engines (None: holdout)."""
    experiment: Experiment
    bounds: tuple[int, ...]
    engines: tuple
    channels: frozenset


class ExperimentRouter:
    def __init__(self, rules, check_interval: float = 1.0):
        self.rules = rules
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._key = None
        self._live: tuple[Live, ...] = ()
        self.file = None               # the ExperimentsFile read last (None: it has errors)
        self.problems: list[Problem] = []

    # ------------------------------------------------------------------ per request
    def route(self, query: dict, now: dt.datetime | None = None):
        """(engine or None for a holdout, {"id", "arm"}) of the experiment
        this query is in, or None (not in any: the active version answers)."""
        if time.monotonic() >= self._next_check:
            self.refresh()
        live = self._live
        if not live:
            return None
        key = assignment_key(query)
        if key is None:
            return None
        now = now or dt.datetime.now(dt.timezone.utc)
        channel = _first_channel(query)
        for entry in live:
            experiment = entry.experiment
            if not experiment.live(now) or (entry.channels and channel not in entry.channels):
                continue
            index = arm_index(entry.bounds, bucket(experiment.id, key))
            arm = experiment.arms[index]
            return entry.engines[index], {"id": experiment.id, "arm": arm.name}
        return None

    # ------------------------------------------------------------------ per change
    def refresh(self, force: bool = False) -> None:
        """Read the experiments file again when it or the rule service changed."""
        with self._lock:
            self._next_check = time.monotonic() + self.check_interval
            status = self.rules.status()
            rid = status.get("rulesetId")
            if not rid:
                self._live, self.file = (), None
                return
            try:
                path = experiments_path(self.rules.rules_dir, rid)
            except RuleSetError:
                return
            versions = {v["version"]: v for v in status.get("versions") or []}
            signature = (rid, stat_key(path), tuple(sorted((v, str(e.get("recordedHash")), str(e.get("hash")),
                                                             e.get("valid")) for v, e in versions.items())))
            if signature == self._key and not force:
                return
            self._key = signature
            shown = shown_path(self.rules.rules_dir, path)
            found, problems = read_experiments(path, rid, versions, shown)
            live = []
            if found is not None:
                for experiment in found.experiments:
                    if experiment.status != "running":
                        continue
                    try:
                        engines = tuple(None if arm.holdout else self.rules.engine_of(arm.version, rid)
                                        for arm in experiment.arms)
                    except RuleSetError as exc:
                        problems.append(Problem(shown, experiment.line, 1,
                                                f"experiment {experiment.id} does not run: {exc}"))
                        continue
                    live.append(Live(experiment, tuple(boundaries([a.weight for a in experiment.arms])),
                                     engines, frozenset(experiment.channels)))
            if any(p.severity == "error" for p in problems):
                log.error("experiments of %s: %s", rid, "; ".join(str(p) for p in problems[:3]))
            self.file, self.problems, self._live = found, problems, tuple(live)

    def status(self, now: dt.datetime | None = None) -> dict:
        """{"running": the experiments that serve now (running and inside
        [start, end)), "errors": the file's errors}."""
        now = now or dt.datetime.now(dt.timezone.utc)
        return {"running": [entry.experiment.id for entry in self._live if entry.experiment.live(now)],
                "errors": [str(p) for p in self.problems if p.severity == "error"]}


def _first_channel(query: dict) -> str | None:
    channel = query.get("channel")
    if isinstance(channel, list):
        channel = channel[0] if channel else None
    return str(channel["id"]) if isinstance(channel, dict) and channel.get("id") is not None else None

