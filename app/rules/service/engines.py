"""The compiled engines of this process, one per (rule set, version, hash,
catalog, href base), built on first use and kept: durable-rules cannot free
a compiled version safely (see Engine.close), so a version that leaves
service stays in the process. `retired_rules` counts the rules of those
versions; the service asks to be recycled once they pass its budget.

A build that durable-rules refuses (EngineBuildError, process-local and
possibly transient) is retried after workers.BUILD_RETRY_DELAYS; the last
refusal is kept in `build_failed_now` for the reload to report."""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

from ..engine.engine import Engine, EngineBuildError
from ..model.catalog import Catalog
from ..model.ruleset import RuleSet
from .versions import VersionEntry
from .workers import BUILD_RETRY_DELAYS

log = logging.getLogger(__name__)


class EngineCache:
    def __init__(self, href_base: str = ""):
        self.href_base = href_base
        self._engines: OrderedDict = OrderedDict()
        self.build_failed_now: str | None = None   # the last refusal of the reload under way

    def get(self, entry: VersionEntry, catalog: Catalog, reread: Callable[[VersionEntry, Catalog], RuleSet]) -> Engine:
        """The engine of `entry` under `catalog`, compiled on first use (the
        rule set read again with `reread` when its parse was released).
        Raises RuleSetError (EngineBuildError after the retries)."""
        key = (entry.ruleset_id, entry.version, entry.hash, catalog.hash, self.href_base)
        engine = self._engines.get(key)
        if engine is None:
            ruleset = entry.ruleset or reread(entry, catalog)
            for delay in (*BUILD_RETRY_DELAYS, None):
                try:
                    engine = Engine(ruleset, catalog, self.href_base)
                    break
                except EngineBuildError as exc:
                    if delay is None:
                        self.build_failed_now = str(exc).splitlines()[-1]
                        raise
                    log.warning("durable-rules refused %s@%s, retrying in %.1f s: %s", entry.ruleset_id,
                                entry.version, delay, str(exc).splitlines()[-1])
                    time.sleep(delay)
            self._engines[key] = engine      # kept: durable memory is never freed anyway
        return engine

    def retired_rules(self, active: Engine | None) -> int:
        """Rules in compiled versions kept in memory but not in service."""
        return sum(len(engine.ruleset.rules) for engine in list(self._engines.values()) if engine is not active)
