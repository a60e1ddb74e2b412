"""`reco_rule_fired_total`: how often each rule fired, counted with plain
integer increments on the request path and turned into a Prometheus counter
only when GET /metrics is scraped.

Why not a prometheus-client Counter child per rule: in multiprocess mode
every `inc()` takes a lock and writes its value to the worker's mmap'd file;
about 44 rules fire per instant request at 1,000 rules, which cost 62 µs of
a 3.4 ms request (py-spy over a live worker).

How: per process and rule set version (id + content hash), an array of
64-bit counts, one slot per rule of that version that fired in this process
(slots in first-fired order). Under gunicorn (PROMETHEUS_MULTIPROC_DIR) the
array is an mmap'd file `rulefired_<pid>_<version key>.bin` in that
directory, beside `....ids`: a JSON header line, then one rule id per line,
appended (O_APPEND) after the slot exists, so a reader never pairs an id
with a slot that is not there. A scrape, in whichever worker, sums the
files of every process that served that version, dead ones included, like
prometheus-client's multiprocess counters (the directory is emptied when
the master starts: gunicorn.conf.py). Without it (flask run, in-process
tests) the arrays are plain lists of this process.
"""
from __future__ import annotations

import json
import mmap
import os
import re
import threading
from pathlib import Path

from prometheus_client.core import CounterMetricFamily

NAME = "reco_rule_fired"
DOC = ("Rules whose conditions held in a recommendation, by rule set id and rule id "
       "(bounded by the rules of the loaded rule sets).")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
#: The start of this module's file names in the metrics folder (gunicorn.conf.py
#: removes a previous run's at start, beside prometheus-client's *.db files).
FILE_PREFIX = "rulefired_"

_lock = threading.Lock()
_pid = os.getpid()
_tables: dict[tuple[str, str], "_Table"] = {}


def _folder() -> Path | None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")
    return Path(folder) if folder else None


class _Table:
    """The counts of one rule set version in this process."""

    def __init__(self, key: tuple[str, str], folder: Path | None):
        self.slots: dict[str, int] = {}
        self.ids: list[str] = []
        self.counts = []                          # a list, or a memoryview ('q') of the mmap'd file
        self.capacity = 0
        self.files = None
        if folder is not None:
            base = f"{FILE_PREFIX}{os.getpid()}_{_SAFE.sub('_', key[0])}.{_SAFE.sub('_', key[1])}"
            self.files = (folder / f"{base}.bin", folder / f"{base}.ids")
            with open(self.files[1], "w", encoding="utf-8") as handle:
                handle.write(json.dumps({"rulesetId": key[0], "hash": key[1]}) + "\n")

    def add(self, rule_ids: list[str]) -> None:
        """Give each of `rule_ids` (new to this table, no repeats) a slot,
        then append them to the ids file in one write: a new version's first
        requests fire dozens of rules it has not counted yet, and one open
        and write per id made those requests slower."""
        first = len(self.ids)
        if self.files is None:
            self.counts.extend([0] * len(rule_ids))
        else:
            needed = first + len(rule_ids)
            if needed > self.capacity:
                capacity = max(64, 2 * self.capacity)
                while capacity < needed:
                    capacity *= 2
                self._grow(capacity)
            with open(self.files[1], "a", encoding="utf-8") as handle:
                handle.write("".join(rule_id + "\n" for rule_id in rule_ids))
        for offset, rule_id in enumerate(rule_ids):
            self.ids.append(rule_id)
            self.slots[rule_id] = first + offset

    def _grow(self, capacity: int) -> None:
        fd = os.open(self.files[0], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 8 * capacity)
            counts = memoryview(mmap.mmap(fd, 8 * capacity)).cast("q")
        finally:
            os.close(fd)
        self.counts, self.capacity = counts, capacity   # the same file: the counts so far are in it


def count_fired(ruleset_id: str, ruleset_hash: str, rule_ids) -> None:
    """Add one to the count of each rule of `rule_ids` (a list of ids of the
    version `ruleset_id`/`ruleset_hash`)."""
    global _pid
    key = (ruleset_id, ruleset_hash)
    with _lock:
        if _pid != os.getpid():                  # a forked child: its own files and counts
            _pid = os.getpid()
            _tables.clear()
        try:
            _count(key, rule_ids)
        except OSError:                          # e.g. a full disk: the request goes on, uncounted
            _tables[key] = _Table(key, None)


def _count(key, rule_ids) -> None:
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = _Table(key, _folder())
    slots, counts = table.slots, table.counts
    new = None
    for rule_id in rule_ids:
        slot = slots.get(rule_id)
        if slot is None:
            if new is None:
                new = []
            new.append(rule_id)
        else:
            counts[slot] += 1
    if new:                                      # rules this process has not counted yet
        table.add(list(dict.fromkeys(new)))
        counts = table.counts
        for rule_id in new:
            counts[slots[rule_id]] += 1


def collect() -> CounterMetricFamily:
    """The counter family at scrape time: the counts of every process, summed
    by (rule set id, rule id) over versions."""
    items = []
    folder = _folder()
    if folder is None:
        with _lock:
            items = [(key[0], list(t.ids), list(t.counts)) for key, t in _tables.items()]
    else:
        for ids_path in sorted(folder.glob(f"{FILE_PREFIX}*.ids")):
            try:
                lines = ids_path.read_text(encoding="utf-8").split("\n")
                header = json.loads(lines[0])
                data = ids_path.with_suffix(".bin").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            ids = lines[1:-1]                    # the last part has no newline yet (or is empty)
            counts = memoryview(data[: len(data) // 8 * 8]).cast("q").tolist()
            items.append((header["rulesetId"], ids, counts))
    totals: dict[tuple[str, str], int] = {}
    for ruleset_id, ids, counts in items:
        for rule_id, count in zip(ids, counts):
            if count:
                totals[(ruleset_id, rule_id)] = totals.get((ruleset_id, rule_id), 0) + count
    family = CounterMetricFamily(NAME, DOC, labels=["ruleset_id", "rule_id"])
    for (ruleset_id, rule_id), count in sorted(totals.items()):
        family.add_metric([ruleset_id, rule_id], count)
    return family
