"""RuleService: the facade the app, the CLI and the tests use for rule sets
(recommend, explain, engine, engine_of, versions, activate, status, poll,
refresh, reload). Built the way gorules/zen keeps its engine apart from its
loaders, from parts that each do one job:

* source.py      where the catalog and rule set texts come from (the files, or
                 memory), and the cache of what parsing them found;
* versions.py    the version registry: every version, what was recorded for
                 it, the pointer, and which versions should serve, in order;
* engines.py     the compiled engines of this process;
* activator.py   pinning a version (compare-and-set of the pointer), its
                 history entry, and the stamp that tells this host's workers;
* watcher.py     reload off the request path (a thread per process);
* workers.py     what each worker of the host serves, and the build retries.

Where the files live (rule sets, kept versions, cases, the active pointer) is
repository.layout's business; see rules/README.md.

Reload: a new version is compiled completely before one reference is
swapped, so a request sees the old or the new version, never a mix; a file
with errors never replaces a working version (status() lists the errors).
refresh() checks the files in the caller's thread and waits for it (admin
calls, health, the CLI, tests). A reload parses only the files whose stat
changed (and re-checks every version when the catalog changed), with the
garbage collector paused while it parses and what it built frozen out of
later collections (gc.freeze).

Memory: durable-rules cannot free a compiled version safely (see
Engine.close), so a version that leaves service stays in the process.
`retired_rules` counts the rules of those versions; once it passes
`retired_budget`, `recycle_wanted` turns true and the gunicorn worker
(app/gunicorn_worker.py) finishes its requests and is replaced by a fresh one,
as gunicorn's max_requests does. A worker keeps the parsed rules of the
version it serves only; the gunicorn master parses the files once before it
forks (source.prepare_before_fork), and what checking found per file is
recorded in the state directory, so a fresh worker parses little more than
what it serves.
"""
from __future__ import annotations

import datetime as dt
import gc
import logging
import time
import threading
from dataclasses import dataclass
from pathlib import Path

from ...config import setting_default
from ..engine.engine import Engine
from ..engine.policies import Recommendation
from ..model.catalog import Catalog
from ..model.common import UTC, iso
from ..model.errors import Problem, RuleSetError
from ..model.facts import Context
from ..model.yamlload import display_path
from ..repository.layout import pointer_path
from ..repository.ledger import MemoryLedger
from ..repository.pointer import FilePointer, Pointer
from .activator import Activator
from .engines import EngineCache
from .source import FileRuleSource, RuleSource
from .versions import Loaded, VersionEntry, VersionRegistry
from .watcher import Watcher
from .workers import ServedVersions, reload_backoff

log = logging.getLogger(__name__)


@dataclass
class Active:
    engine: Engine
    pinned: bool
    loaded_at: dt.datetime


def kept_as_pinned(current: Active, pinned_version: str | None) -> Active:
    """The version that keeps serving (the wanted one is broken), pinned only
    when the pointer pins it now: an unpin that leaves it serving (the
    higher versions broken) must not report it pinned still."""
    pinned = current.engine.ruleset.version == pinned_version
    return current if current.pinned == pinned else Active(current.engine, pinned, current.loaded_at)


class RuleService:
    def __init__(self, rules_dir: Path | None, catalog_dir: Path | None, state_dir: Path,
                 ruleset_id: str | None = None, href_base: str = "", pointer: Pointer | None = None,
                 check_interval: float = setting_default("rules_check_interval"),
                 retired_budget: int = setting_default("rules_retired_budget"),
                 ledger=None, on_reload=None, source: RuleSource | None = None):
        """`pointer`: where the active version is recorded (app.rules.repository.pointer:
        the file in `state_dir` by default, the shared store on PostgreSQL).
        `ledger`: the version records and audit history
        (app.rules.repository.ledger; in memory by default).
        `on_reload(seconds, failed)`: told of every reload, how long it took
        and whether it raised (the app factory counts them in its metrics;
        this package knows nothing of them).
        `source`: where the rule sets and the catalog come from (source.py);
        by default the files in `rules_dir` and `catalog_dir`."""
        self.on_reload = on_reload
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.rules_dir = Path(rules_dir) if rules_dir is not None else None
        self.catalog_dir = Path(catalog_dir) if catalog_dir is not None else None
        self.state_dir = Path(state_dir)
        self.requested_id = ruleset_id
        self.href_base = href_base
        self.pointer_path = pointer_path(self.state_dir)
        self.pointer = pointer or FilePointer(self.pointer_path)
        self.source = source or FileRuleSource(self.rules_dir, self.catalog_dir, self.state_dir, self.pointer_path)
        self.registry = VersionRegistry(self.source, self.pointer, self.ledger,
                                        self.rules_dir if source is None else None)
        self.activator = Activator(self.registry, self.state_dir)
        self.engines = EngineCache(href_base)
        self.watcher = Watcher(self.refresh, check_interval)
        self.retired_budget = retired_budget
        self.served = ServedVersions(self.state_dir)  # what each process of this host serves (/health)
        self.build_failure: str | None = None         # durable refused the last build, after retries
        self._reload_lock = threading.Lock()
        self._active: Active | None = None
        self._loaded: Loaded | None = None
        self._signature = None
        self._ruleset_id: str | None = ruleset_id
        self._id_note: str | None = None
        self._errors: list[Problem] = []
        self._build_failures = 0                      # reloads in a row with such a failure
        self._retry_at = 0.0                          # monotonic time of the next retry
        self.reload()

    # ------------------------------------------------------------------ public API
    def recommend(self, ctx: Context) -> Recommendation:
        return self._engine().recommend(ctx)

    def explain(self, ctx: Context) -> dict:
        return self._engine().explain(ctx)

    @property
    def engine(self) -> Engine:
        """The engine in service (raises RuleSetError when there is none)."""
        return self._engine()

    @property
    def catalog(self) -> Catalog | None:
        return self.source.catalog

    @property
    def check_interval(self) -> float:
        return self.watcher.check_interval

    @property
    def last_reload_failure(self) -> str | None:
        """Why the last background reload raised, if it did."""
        return self.watcher.last_reload_failure

    def engine_of(self, version: str | None = None, ruleset_id: str | None = None) -> Engine:
        """The engine of one loaded version (compiled on first use), e.g. to
        explain a version before activating it; the engine in service when
        `version` is None. Raises RuleSetError for unknown or broken versions."""
        if version is None and ruleset_id in (None, self._ruleset_id):
            return self._engine()
        ruleset_id = ruleset_id or self._ruleset_id
        loaded = self._loaded
        entry = self.registry.entry(loaded, ruleset_id, version)
        if loaded.catalog is None:
            raise RuleSetError(f"{ruleset_id}@{entry.version} has errors", entry.problems)
        with self._reload_lock:
            return self._engine_for(entry, loaded.catalog)

    def poll(self) -> None:
        """For the request path: one stat and a clock read. When an activation
        on this host changed the stamp file since this worker last looked, the
        worker reloads now, before it answers (its other threads wait for
        that reload): the request that follows an activation is answered by
        the activated version, in every worker and thread (without this, 10
        of 10 first requests after `flask rules activate` got the old
        version; marking the stamp seen before the reload was done, 2 of 16
        requests sent at once). Otherwise, at most every `check_interval`
        seconds it wakes the watcher thread, which reloads in the background
        (rule files changed by hand, activations on other hosts)."""
        self.activator.catch_up(self.watcher.refresh_now)
        self.watcher.poll()

    def refresh(self, look_now: bool = False) -> None:
        """Reload now if a rule, catalog or pointer file changed (stat), in the
        caller's thread; waits for a reload already under way. `look_now`:
        read the shared pointer and the ledger's records now, not as last
        polled (VersionRegistry.look_now; admin calls that check versions)."""
        if look_now:
            self.registry.look_now()
        if self._signature is None and time.monotonic() < self._retry_at:
            return                       # a failed build: the next retry waits for its backoff
        if self._signature == self.registry.signature():
            return
        with self._reload_lock:
            if self._signature != self.registry.signature():
                self._reload_locked()

    @property
    def served_hash(self) -> str | None:
        """The hash of the version in service (None when there is none)."""
        active = self._active
        return active.engine.ruleset.hash if active is not None else None

    @property
    def retired_rules(self) -> int:
        """Rules in compiled versions kept in memory but not in service."""
        return self.engines.retired_rules(self._active.engine if self._active else None)

    @property
    def recycle_wanted(self) -> bool:
        """True once retired versions hold more than `retired_budget` rules: the
        worker should be replaced (its memory cannot be freed in place)."""
        return self.retired_rules > self.retired_budget

    @property
    def exit_wanted(self) -> bool:
        """True when this process serves nothing because durable-rules refused
        to build the rule set even after retries (not because of the files,
        which its sibling workers read alike): the gunicorn worker exits and
        is replaced, instead of answering 503 beside healthy siblings."""
        return self._active is None and self.build_failure is not None

    def reload(self) -> None:
        """Reload now (blocking)."""
        with self._reload_lock:
            self._reload_locked()

    def versions(self, ruleset_id: str | None = None) -> list[dict]:
        active = self._active
        return self.registry.listing(self._loaded, ruleset_id or self._ruleset_id,
                                     active.engine.ruleset if active else None)

    def activate(self, ruleset_id: str, version: str | None, by: str = "unknown",
                 action: str = "activate", record_history: bool = True) -> dict:
        """Pin `version` of `ruleset_id` (None: unpin, follow the highest version).

        The version must load and compile, and its content must be the one
        recorded for it (app.rules.repository.registry); a version never
        recorded is recorded first (ledger), so from now on it means this
        content. Every worker of this host answers with it from its next
        request on (poll); other hosts within their pointer's poll time.
        Recorded in the ledger's history as `action` by `by`; the status
        returned carries that entry as "activation" (None when `version` was
        already pinned: nothing is done, nothing recorded). With
        `record_history` off the entry is returned but not appended: the
        caller appends it once the step it belongs to is done (a save's pin,
        taken back when the save fails).
        Raises RuleSetError when refused, app.rules.repository.pointer.Superseded when
        another activation changed the pointer since this one read it
        (compare-and-set): nothing is written. When the history entry cannot
        be written (StoreUnavailable: a full disk, the store down) the pin is
        taken back (Activator.take_back) and the error raised: nothing changed.
        """
        with self._reload_lock:
            self._reload_locked()
            loaded = self._loaded
            if loaded.catalog is None:
                raise RuleSetError("the catalog has errors", loaded.problems)
            entry = None
            if version is None:
                if not loaded.versions.get(ruleset_id):
                    raise RuleSetError(f"unknown rule set {ruleset_id!r}")
            else:
                entry = self.registry.entry(loaded, ruleset_id, version)
                self._engine_for(entry, loaded.catalog)   # compiles (and checks) first
            before = self._active.engine.ruleset.version if (
                self._active and self._active.engine.ruleset.id == ruleset_id) else None
            current = loaded.pointer.get(ruleset_id) or {}
            if version is not None and current.get("version") == version and current.get("hash") == entry.hash \
                    and before == version:
                return {**self.status(), "activation": None}       # already so: a re-sent form does nothing
            if version is not None:
                self.registry.record_version(ruleset_id, version, entry, by)
            revision = self.activator.pin(loaded, ruleset_id, version, entry.hash if entry else None)
            try:
                self._reload_locked()
                served = self._active.engine.ruleset if self._active else None
                entry_out = self.activator.history_entry(ruleset_id, version, action, by, before, served,
                                                         record_history)
            except BaseException:
                # the history entry refused (a full disk, the store down): the
                # pin goes with it, or the version serves unrecorded
                self.activator.take_back(revision, self._reload_locked)
                raise
            self.activator.settle()
            self.activator.announce(revision, ruleset_id, version, entry_out["at"])
        return {**self.status(), "activation": entry_out}

    def status(self) -> dict:
        active = self._active
        loaded = self._loaded
        catalog = self.source.catalog
        info = {
            "ok": active is not None,
            "rulesetId": self._ruleset_id,
            "version": active.engine.ruleset.version if active else None,
            "hash": active.engine.ruleset.hash if active else None,
            "file": active.engine.ruleset.file if active else None,
            "pinned": active.pinned if active else False,
            "loadedAt": iso(active.loaded_at) if active else None,
            "rules": len(active.engine.ruleset.rules) if active else 0,
            "chunks": len(active.engine.plans) if active else 0,
            "catalog": {"hash": catalog.hash if catalog else None,
                        "offerings": len(catalog.offerings) if catalog else 0},
            "rulesets": sorted(loaded.versions) if loaded else [],
            "versions": self.versions(self._ruleset_id) if self._ruleset_id else [],
            "errors": [str(p) for p in self._errors],
            "buildFailure": self.build_failure,
        }
        if self._id_note:
            info["note"] = self._id_note
        return info

    # ------------------------------------------------------------------ internals
    def _engine(self) -> Engine:
        active = self._active
        if active is None:
            raise RuleSetError("no valid rule set is loaded", self._errors)
        return active.engine

    def _engine_for(self, entry: VersionEntry, catalog: Catalog) -> Engine:
        return self.engines.get(entry, catalog, self.source.reread)

    def _log_problems(self, problems: list[Problem], chosen: Active | None) -> None:
        """One log line per reload that found errors (a reload happens only
        when a file changed, so this is not repeated per request): operators
        who read the logs, not /health, learn that a file does not load."""
        errors = [str(problem) for problem in problems if problem.severity == "error"]
        if not errors:
            return
        serving = (f"serving {chosen.engine.ruleset.id}@{chosen.engine.ruleset.version}"
                   if chosen is not None else "no valid rule set: recommendations answer 503")
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        log.error("rule files have %d error(s), %s: %s%s", len(errors), serving,
                  "; ".join(errors[:3]), more)

    def _note_build_outcome(self, chosen: Active | None) -> None:
        """After a reload: when durable refused a build (after its retries),
        forget the files' signature so that a later poll reloads again, after
        a doubling backoff, while the version in hand (if any) keeps serving;
        record what this process serves for /health either way."""
        failure = self.engines.build_failed_now
        self.build_failure = failure
        if failure is not None:
            self._build_failures += 1
            self._signature = None
            self._retry_at = time.monotonic() + reload_backoff(self._build_failures)
        else:
            self._build_failures = 0
        ruleset = chosen.engine.ruleset if chosen is not None else None
        self.served.record({"rulesetId": ruleset.id if ruleset else None,
                            "version": ruleset.version if ruleset else None,
                            "hash": ruleset.hash if ruleset else None,
                            "buildFailure": failure})

    def _last_good_from_master(self, entry: VersionEntry, ruleset_id: str, catalog: Catalog,
                               problems: list[Problem]) -> Engine | None:
        """A fresh worker (a replacement after a crash or a recycle) whose
        rule file no longer loads: the version the gunicorn master parsed from
        that file before the fork, which its sibling workers have been serving
        since they started, instead of answering 503 beside them (a broken file
        never replaces a working version, on the whole host). None when the
        master had no valid parse of it. The engine is compiled here, so the
        worker's own compile problems still count."""
        parsed = self.source.master_parse(entry.path)
        if parsed is None or parsed.ruleset_id != ruleset_id or parsed.ruleset is None:
            return None
        good = VersionEntry(parsed.ruleset_id, parsed.version, entry.path, parsed.ruleset, [], parsed.hash,
                            parsed.status)
        try:
            engine = self._engine_for(good, catalog)
        except RuleSetError as exc:
            problems.extend(exc.problems)
            return None
        problems.append(Problem(display_path(entry.path), 1, 1,
                                f"{display_path(entry.path)} does not load; still serving "
                                f"{parsed.ruleset_id}@{parsed.version} as this host loaded it before the file changed",
                                severity="warning"))
        log.error("%s does not load; serving %s@%s as parsed before the file changed",
                  display_path(entry.path), parsed.ruleset_id, parsed.version)
        return engine

    def _reload_locked(self) -> None:
        started, failed = time.perf_counter(), True
        try:
            self._reload_locked_untimed()
            failed = False
        finally:
            if self.on_reload is not None:
                self.on_reload(time.perf_counter() - started, failed)

    def _reload_locked_untimed(self) -> None:
        self.engines.build_failed_now = None
        signature = self.registry.signature()
        loaded = self.registry.discover()
        problems = list(loaded.problems)
        ruleset_id, self._id_note = self.registry.choose_id(loaded, self.requested_id)
        self._ruleset_id = ruleset_id
        chosen: Active | None = None
        current = self._active
        if loaded.catalog is not None and ruleset_id is not None:
            entries = loaded.versions.get(ruleset_id, {})
            pinned_version = (loaded.pointer.get(ruleset_id) or {}).get("version")
            candidates = self.registry.candidates(loaded, ruleset_id,
                                                  current.engine.ruleset if current else None, problems)
            chosen = self._serve_first_that_compiles(candidates, ruleset_id, pinned_version, loaded.catalog,
                                                     problems)
            if not entries:
                problems.append(Problem(display_path(self.source.location), 1, 1,
                                        f"no rule set with id {ruleset_id!r}"))
                # a deploy that removes and re-creates the file must not take answers down
                if current is not None and current.engine.ruleset.id == ruleset_id:
                    chosen = current
        elif current is not None:
            chosen = current                 # no catalog: keep serving what we have
        self._loaded = loaded
        self._errors = problems
        self._active = chosen                # the one atomic swap
        if chosen is not None:
            self.source.forget_master_parses()   # from now on the current version is the last good one
        self._log_problems(problems, chosen)
        self._signature = signature
        self._note_build_outcome(chosen)
        self.registry.release_unserved(self._loaded, self.source.release_unserved(
            chosen.engine.ruleset if chosen is not None else None))
        # What a reload built lives until the worker ends (a version in service,
        # or a retired one durable cannot free): move it out of the collector's
        # sight, or every full collection on the request path walks millions of
        # objects (p50 at 10,000 rules 6.5 -> 2.5 ms in-process, bench.compare).
        gc.freeze()

    def _serve_first_that_compiles(self, candidates: list[tuple[VersionEntry, bool]], ruleset_id: str,
                                   pinned_version: str | None, catalog: Catalog,
                                   problems: list[Problem]) -> Active | None:
        """The first candidate that compiles, as the Active to swap in; a
        broken file never replaces a working version: the current engine stays
        when the wanted version is broken."""
        current = self._active
        for entry, pinned in candidates:
            if not entry.valid:
                if current is not None and current.engine.ruleset.id == ruleset_id:
                    return kept_as_pinned(current, pinned_version)
                fallback = self._last_good_from_master(entry, ruleset_id, catalog, problems)
                if fallback is not None:
                    return Active(fallback, pinned, dt.datetime.now(UTC))
                continue
            try:
                engine = self._engine_for(entry, catalog)
            except RuleSetError as exc:
                problems.extend(exc.problems)
                entry.problems.extend(exc.problems)
                if current is not None and current.engine.ruleset.id == ruleset_id:
                    return kept_as_pinned(current, pinned_version)
                continue
            if current is not None and current.engine is engine:
                return Active(engine, pinned, current.loaded_at)
            return Active(engine, pinned, dt.datetime.now(UTC))
        return None
