"""Rule sources: where the catalog and the rule set versions come from, and
the cache of what parsing them found (gorules/zen's DecisionLoader: the
engine asks a loader, it never finds files itself).

Two sources behind one interface (:class:`RuleSource`):

* :class:`FileRuleSource`: the rules folder and the catalog folder
  (repository.layout says which files count). A file is parsed again only
  when its stat or the catalog changed; what checking found is shared with
  the other processes of the host (the checks file in the state directory)
  and with the workers the gunicorn master forks (prepare_before_fork).
* :class:`MemoryRuleSource`: texts held in memory, for tests and tools that
  build a service without a rules folder.

`scan(problems)` returns the catalog (None when it has errors and none was
loaded before: the problems say why) and one :data:`Parsed` per rule file,
in the order rule_files() gives (top-level files first, so a working copy
wins over a kept copy of the same version).
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
from pathlib import Path
from typing import NamedTuple, Protocol

from ..model.catalog import Catalog, load_catalog
from ..model.errors import Problem, RuleSetError
from ..model.ruleset import RuleSet, parse_ruleset, read_ruleset_file
from ..model.yamlload import display_path, load_text
from ..repository.files import write_json_atomic
from ..repository.layout import checks_path, file_stats, rule_files, stat_key, stat_signature

log = logging.getLogger(__name__)


class Parsed(NamedTuple):
    """What one rule file holds: its header even when the rest is broken (to
    list the broken version beside the others), the checked rule set (None
    when it has errors, or when its parse was released: see reread), the
    problems, the rule set's hash (None: it did not check) and status."""

    path: Path
    ruleset_id: str | None
    version: str | None
    ruleset: RuleSet | None
    problems: list
    hash: str | None
    status: str | None


class RuleSource(Protocol):
    """What the rule service asks of a source."""

    #: shown in the problems that concern the whole source
    location: Path
    #: the last valid catalog (None before one loaded)
    catalog: Catalog | None

    def signature(self) -> tuple:
        """Equal signatures mean nothing a scan reads has changed (cheap: stats)."""

    def scan(self, problems: list[Problem]) -> tuple[Catalog | None, list[Parsed]]:
        """The catalog and every rule file, parsed only where they changed."""

    def ruleset_ids(self) -> set[str]:
        """The rule set ids the files are named for."""

    def reread(self, parsed: Parsed, catalog: Catalog) -> RuleSet:
        """The rule set of a valid version whose parse was released; RuleSetError
        when it is no longer what was checked (same hash)."""

    def release_unserved(self, served: RuleSet | None) -> set[int]:
        """Forget the parses of versions that do not serve; the id()s released."""

    def master_parse(self, path: Path) -> Parsed | None:
        """A valid parse of `path` made before the fork by the gunicorn master,
        for a file that has changed since (the host's last good version)."""

    def forget_master_parses(self) -> None:
        """A version serves: from now on it is the last good one."""


@contextlib.contextmanager
def gc_paused():
    """Parsing makes many small objects and no cycles: the collector was most
    of a reload's time (measured with a profile of a reload)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


# What the gunicorn master parsed and checked before forking its workers
# (prepare_before_fork): path -> (stat key, catalog hash, parse result), and
# (catalog stat key, catalog). A worker takes what still matches its files.
_PREFORK_FILES: dict[Path, tuple] = {}
_PREFORK_CATALOG: list = []


def prepare_before_fork(rules_dir: Path, catalog_dir: Path) -> None:
    """Parse and check the catalog and every rule file once, in the process
    that will fork the workers (gunicorn.conf.py's when_ready), so that a
    worker, and each replacement gunicorn forks later, only compiles: at
    10,000 rules parsing and checking were 3.5 of a cold worker's 5-6 CPU
    seconds (measured with bench.operator_bench). Only plain Python objects are made
    here, no durable-rules state and no thread, so nothing unsafe crosses the
    fork; what the files no longer match (stat, catalog) is ignored by the
    worker, and a file that does not parse is simply read again there."""
    with gc_paused():
        try:
            catalog = load_catalog(Path(catalog_dir))
        except RuleSetError:
            return                       # the worker reports it
        _PREFORK_CATALOG[:] = [tuple(file_stats(Path(catalog_dir), recursive=True)), catalog]
        for path in rule_files(Path(rules_dir)):
            key = stat_key(path)
            if key is not None:
                _PREFORK_FILES[path] = (key, catalog.hash, parse_rule_file(path, catalog))
    gc.freeze()                          # shared pages stay shared: the collector will not write to them


def parse_rule_file(path: Path, catalog: Catalog) -> tuple:
    """(id, version, rule set or None, problems, hash, status) of one file."""
    rid, version, ruleset, problems = read_ruleset_file(path, catalog)
    return (rid, version, ruleset, problems, ruleset.hash if ruleset else None,
            ruleset.status if ruleset else None)


class FileRuleSource:
    """The rule and catalog files (see the module docstring)."""

    def __init__(self, rules_dir: Path, catalog_dir: Path, state_dir: Path, pointer_path: Path):
        self.rules_dir = Path(rules_dir)
        self.catalog_dir = Path(catalog_dir)
        self.location = self.rules_dir
        self.pointer_path = pointer_path         # its stat is part of the signature
        self.catalog: Catalog | None = None
        self._catalog_key = None                 # file stats the last catalog was read from
        self._files: dict[Path, tuple] = {}      # path -> (stat key, catalog hash, parse result, reload number)
        self._generation = 0                     # scans so far (a parse is released two scans later)
        self._checks_path = checks_path(state_dir)
        self._checks: dict | None = None          # the checks file as read at the first scan
        self._parsed_files = 0                   # files parsed by the scan under way
        # path -> a valid parse the gunicorn master made before the fork of a
        # file that has changed since: this host's last good version when
        # the file no longer loads (see master_parse)
        self._master_parses: dict[Path, tuple] = {}

    def signature(self) -> tuple:
        """(path, inode, mtime, size) of every rule, catalog and pointer file."""
        return stat_signature(self.rules_dir, self.catalog_dir, self.pointer_path)

    def ruleset_ids(self) -> set[str]:
        return {path.stem.split("@")[0] for path in rule_files(self.rules_dir)}

    def scan(self, problems: list[Problem]) -> tuple[Catalog | None, list[Parsed]]:
        self._generation += 1
        self._parsed_files = 0
        found = []
        with gc_paused():
            catalog = self._load_catalog(problems)
            paths = rule_files(self.rules_dir)
            for stale in set(self._files) - set(paths):
                del self._files[stale]
            for path in paths:
                if catalog is None:      # the header still names the version in status()
                    rid, version, _rs, _p = read_ruleset_file(path, Catalog())
                    found.append(Parsed(path, rid, version, None,
                                        [Problem(display_path(path), 1, 1, "not loaded: no valid catalog")],
                                        None, None))
                else:
                    found.append(Parsed(path, *self._read_rule_file(path, catalog)))
            if self._parsed_files and catalog is not None:
                self._write_checks(catalog)
        return catalog, found

    def _load_catalog(self, problems: list[Problem]) -> Catalog | None:
        """The catalog, parsed again only when one of its files changed."""
        key = tuple(file_stats(self.catalog_dir, recursive=True))
        if key == self._catalog_key and self.catalog is not None:
            return self.catalog
        if _PREFORK_CATALOG and _PREFORK_CATALOG[0] == key:
            self._catalog_key, self.catalog = _PREFORK_CATALOG
            _PREFORK_CATALOG.clear()
            return self.catalog
        try:
            catalog = load_catalog(self.catalog_dir)
        except RuleSetError as exc:
            problems.extend(exc.problems or [Problem(display_path(self.catalog_dir), 1, 1, str(exc))])
            catalog = self.catalog               # keep serving with the last good catalog
            if catalog is not None:
                problems.append(Problem(display_path(self.catalog_dir), 1, 1,
                                        "catalog not reloaded: still using the last valid catalog", severity="warning"))
            return catalog
        self._catalog_key = key
        self.catalog = catalog
        return catalog

    def _read_rule_file(self, path: Path, catalog: Catalog) -> tuple:
        """(id, version, rule set, problems, hash, status) of one file, parsed
        only when its stat or the catalog changed since the last scan."""
        key = stat_key(path)
        cached = self._files.get(path)
        if cached is not None and key is not None and cached[0] == key and cached[1] == catalog.hash:
            return cached[2]
        prefork = _PREFORK_FILES.pop(path, None)
        known = self._checked(path, key, catalog.hash)
        if prefork is not None and key is not None and prefork[0] == key and prefork[1] == catalog.hash:
            result = prefork[2]
        else:
            if prefork is not None and prefork[2][2] is not None and prefork[1] == catalog.hash:
                self._master_parses[path] = prefork[2]   # changed since: see master_parse
            if known is not None:
                result = known
            else:
                result = parse_rule_file(path, catalog)
                self._parsed_files += 1
        self._files[path] = (key, catalog.hash, result, self._generation)
        return result

    def _checked(self, path: Path, key, catalog_hash: str) -> tuple | None:
        """What checking `path` found, from the checks file another process of
        this host wrote, when its stat and the catalog are the same: a fresh
        worker then parses only the version it serves, not every kept version
        (after 40 activations of 1,000 rules a replacement worker parsed 41
        files, 10 s, before its first answer). The summary only
        lists and chooses: a version is read again, and its hash compared,
        before it is compiled (reread)."""
        if self._checks is None:
            try:
                self._checks = json.loads(self._checks_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._checks = {}
        entry = self._checks.get("files", {}).get(str(path)) if isinstance(self._checks, dict) else None
        try:
            if (key is None or entry is None or entry["stat"] != list(key)
                    or entry["catalog"] != catalog_hash or entry["hash"] is None):
                return None
            return (entry["id"], entry["version"], None, [], entry["hash"], entry["status"])
        except (KeyError, TypeError):
            return None

    def _write_checks(self, catalog: Catalog) -> None:
        """Record what checking found for each valid file (see _checked)."""
        files = {str(path): {"stat": list(key), "catalog": catalog_hash, "id": result[0], "version": result[1],
                             "hash": result[4], "status": result[5]}
                 for path, (key, catalog_hash, result, _generation) in self._files.items()
                 if key is not None and result[4] is not None and not result[3]}
        try:
            write_json_atomic(self._checks_path, {"files": files})
        except OSError as exc:            # a cache: serving goes on without it
            log.warning("could not write %s: %s", self._checks_path, exc)

    def release_unserved(self, served: RuleSet | None) -> set[int]:
        """Forget the parsed rule sets of versions that do not serve: a kept
        version costs about 3 MiB of RSS per 1,000 rules in every worker, and
        a rule set directory gains one kept file per activation (after 50
        activations of 1,000 rules, about 165 MiB of versions nobody used in
        every worker and in each replacement). What a
        version needs to be listed and chosen stays (id, version, hash,
        status, problems); its file is read again if it is ever compiled.
        A parse is kept for the scan that made it and the next one: a new
        version is usually activated right after it is written, and the watcher
        may have parsed it in between (released at once, it was parsed twice:
        activation p50 1.65 s instead of 0.96 s in the 50 x 1,000 benchmark)."""
        released = set()
        for path, (key, catalog_hash, result, generation) in list(self._files.items()):
            if result[2] is not None and result[2] is not served and generation < self._generation - 1:
                self._files[path] = (key, catalog_hash, result[:2] + (None,) + result[3:], generation)
                released.add(id(result[2]))
        return released

    def reread(self, parsed: Parsed, catalog: Catalog) -> RuleSet:
        with gc_paused():
            _rid, _version, ruleset, problems = read_ruleset_file(parsed.path, catalog)
        if ruleset is None or ruleset.hash != parsed.hash or ruleset.version != parsed.version:
            raise RuleSetError(f"{display_path(parsed.path)} changed since it was checked; "
                               "it is checked again on the next reload", problems)
        return ruleset

    def master_parse(self, path: Path) -> Parsed | None:
        parsed = self._master_parses.get(path)
        return None if parsed is None else Parsed(path, *parsed)

    def forget_master_parses(self) -> None:
        self._master_parses.clear()


class MemoryRuleSource:
    """Rule set texts held in memory, by file name (``"<id>.yaml"`` or
    ``"<id>@<version>.yaml"``), over a catalog given as an object: nothing is
    read from disk. `put()` and `remove()` change the texts; the next
    refresh() of the service sees the change (the signature counts changes).
    A text is parsed when it changes, and kept."""

    def __init__(self, catalog: Catalog, texts: dict[str, str] | None = None):
        self.catalog = catalog
        self.location = Path("<memory>")
        self._texts: dict[str, str] = {}
        self._parsed: dict[str, Parsed] = {}
        self._changes = 0
        for name, text in (texts or {}).items():
            self.put(name, text)

    def put(self, name: str, text: str) -> None:
        self._texts[name] = text
        self._parsed.pop(name, None)
        self._changes += 1

    def remove(self, name: str) -> None:
        self._texts.pop(name, None)
        self._parsed.pop(name, None)
        self._changes += 1

    def signature(self) -> tuple:
        return ("memory", self._changes)

    def ruleset_ids(self) -> set[str]:
        return {name.split("@")[0].removesuffix(".yaml") for name in self._texts}

    def scan(self, problems: list[Problem]) -> tuple[Catalog | None, list[Parsed]]:
        # top-level names (no "@") first, as rule_files() lists a working copy first
        names = sorted(self._texts, key=lambda name: ("@" in name, name))
        return self.catalog, [self._parse(name) for name in names]

    def _parse(self, name: str) -> Parsed:
        if name not in self._parsed:
            path = self.location / name
            try:
                ruleset = parse_ruleset(self._texts[name], name, self.catalog)
                parsed = Parsed(path, ruleset.id, ruleset.version, ruleset, [], ruleset.hash, ruleset.status)
            except RuleSetError as exc:
                try:
                    doc = load_text(self._texts[name], name)
                except RuleSetError:
                    doc = None
                header = doc if isinstance(doc, dict) else {}
                rid, version = header.get("id"), header.get("version")
                parsed = Parsed(path, rid if isinstance(rid, str) else None,
                                version if isinstance(version, str) else None, None,
                                exc.problems or [Problem(name, 1, 1, str(exc))], None, None)
            self._parsed[name] = parsed
        return self._parsed[name]

    def reread(self, parsed: Parsed, catalog: Catalog) -> RuleSet:
        found = self._parse(parsed.path.name)
        if found.ruleset is None or found.hash != parsed.hash:
            raise RuleSetError(f"{parsed.path.name} changed since it was checked", found.problems)
        return found.ruleset

    def release_unserved(self, served: RuleSet | None) -> set[int]:
        return set()                     # the texts are in memory anyway

    def master_parse(self, path: Path) -> Parsed | None:
        return None

    def forget_master_parses(self) -> None:
        pass
