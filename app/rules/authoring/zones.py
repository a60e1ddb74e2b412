"""Date-times without a zone in rule, catalog and cases files.

The rules guide (rules/README.md) says dates carry a zone; the loader reads a
date-time without one (`time: {from: 2027-03-28T02:30:00}`) or a bare date
(`endDateTime: 2026-12-31`) as UTC (app/timeutil.py), which is not what an
author in Paris or New York meant: the window opens hours early or late, and
on a daylight-saving day a local time may not exist at all (02:30 on
2027-03-28 in Europe/Paris). The reading is defined but the intent is not, so
lint reports every such value as an error at its line, with the fix: the same
instant written with `Z` (what is read today) or with the offset meant.

Checked: the values of `startDateTime` and `endDateTime` (validFor of rules
and offerings), every value under a `time` key (the time test of a rule,
the evaluation time of a regression case) and every value of a comparison
(`before`, `after`, `between`, ...: a characteristic compared with a date
is read the same way), at any depth. Numbers are no date-time, so a
comparison of numbers is not reported.
"""
from __future__ import annotations

import datetime as dt

from ..model.common import iso, parse_time
from ..model.conditions import COMPARATORS
from ..model.errors import Problem
from ..model.yamlload import PosDict, PosList
from ...timeutil import names_zone

CODE = "time-zone"
TIME_KEYS = frozenset({"startDateTime", "endDateTime"})
WINDOW_KEY = "time"
#: Keys whose values may be dates: the time window, validFor, comparisons.
TIMED_KEYS = TIME_KEYS | {WINDOW_KEY, "between"} | frozenset(COMPARATORS)


def zone_less_times(doc, file: str) -> list[Problem]:
    """An error for every date-time without a zone in a parsed rule, catalog
    or cases document (PosDict/PosList from app/rules/model/yamlload.py)."""
    found: list[Problem] = []
    stack = [(doc, False, (1, 1))]
    while stack:
        node, timed, pos = stack.pop()
        if isinstance(node, PosDict):
            for key, value in node.items():
                stack.append((value, timed or key in TIMED_KEYS, node.at(key)))
        elif isinstance(node, PosList):
            for index, value in enumerate(node):
                stack.append((value, timed, node.at(index)))
        elif timed and names_zone(node) is False:
            found.append(_finding(file, pos, node))
    return sorted(found, key=lambda p: (p.line, p.column))


def _finding(file: str, pos: tuple[int, int], value) -> Problem:
    read_as = iso(parse_time(value))
    text = value.strip() if isinstance(value, str) else value.isoformat()
    kind = "a date-time without a zone" if isinstance(value, dt.datetime) or len(text) > 10 \
        else "a date without a time and zone"
    return Problem(file, pos[0], pos[1], f"{text} is {kind}: it is read as UTC ({read_as})",
                   severity="error", code=CODE,
                   hint=f"write the zone meant: \"{read_as}\" for UTC, or its offset, e.g. "
                        f"\"{read_as[:-1]}+01:00\"")
