"""Small helpers shared by the catalog, rule and case loaders."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
import re

from ...timeutil import DateTimeOutOfRange, isoformat_as_given, parse_datetime
from .errors import Problem
from .yamlload import PosDict, PosList

UTC = dt.timezone.utc


def parse_time(value) -> dt.datetime | None:
    """An aware UTC datetime from an ISO 8601 string, a datetime or a date,
    read by the service's one parser (app/timeutil.py). Naive values are taken
    as UTC. Returns None when the value is not a time, or is one outside the
    representable range (the loaders then report it at its file and line)."""
    try:
        return parse_datetime(value)
    except DateTimeOutOfRange:
        return None


def in_window(when: dt.datetime, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    """Validity windows include their start and exclude their end; a missing
    bound is open. Offerings and rules share this rule, so they never disagree."""
    if start is not None and when < start:
        return False
    return end is None or when < end


def iso(value: dt.datetime) -> str:
    return isoformat_as_given(value)


def plain(value):
    """PosDict/PosList/datetimes -> plain JSON-able dicts, lists and strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return iso(parse_time(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def freeze(obj) -> bytes:
    """`obj` (a checked rule set or catalog) as bytes, to be thawed into a
    compact copy once the caller has dropped it and the parsed document.

    What a loader keeps is made while the parsed document (every key, value
    and position of the file) is alive, and is strewn over the memory the
    document took; Python's allocator gives an arena back to the system
    only when nothing in it survives, so a worker kept the document's
    footprint: at 10,000 rules, 207 MiB of RSS for 20 MiB of live objects;
    for a 1,000-offering catalog, 24 MiB. Frozen, the originals and the
    document dropped, then thawed, the survivors sit in fresh memory: 35-50 MiB
    and 11 MiB remain, for 0.38 s of CPU at 10,000 rules (BENCHMARKS.md, "Memory and activation").
    The caller must hold no reference to the originals when it thaws, or the
    copy fills the holes around them. Only objects the loader has just built
    are pickled, never outside data."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


thaw = pickle.loads


def canonical_json(value) -> str:
    """One text per meaning: the parsed document (positions, comments, quoting,
    key order and layout gone) as sorted, compact JSON. Hashes of rule and
    catalog files are taken over this, so an editor-schema comment or a
    re-indent changes no fingerprint (a version is its rules, not its layout)."""
    return _canonical_text(plain(value))


def _canonical_text(data) -> str:
    """canonical_json of a value plain() already made."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=repr)   # bytes, sets: errors later, but hashing must not fail first


def ruleset_fingerprint(doc) -> str:
    """Hash of a rule set's meaning: the parsed document without `version`
    (first 16 hex digits of SHA-256). The lock file records it per version and
    X-Ruleset-Hash sends it, so the two can be compared."""
    data = plain(doc)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "version"}
    return hashlib.sha256(_canonical_text(data).encode("utf-8")).hexdigest()[:16]   # plain once, not twice


def as_id(value) -> str | None:
    """Offering, channel and category ids are strings; YAML integers are accepted."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


# Semantic Versioning 2.0.0 (https://semver.org, the regular expression it
# suggests), anchored with \Z so that no trailing newline passes:
# MAJOR.MINOR.PATCH (decimal, no leading zeros), an optional pre-release
# (-rc.1: dot-separated [0-9A-Za-z-] identifiers, numeric ones without leading
# zeros) and optional build metadata (+build.5). No "/", "\\", ".." segment or
# control character can pass (re.ASCII: \d is 0-9 only, not any Unicode digit
# that looks like one and that int() reads), so a version is safe in a file name
# (rules/versions/<id>@<version>.yaml). Groups: major, minor, patch, pre-release
# (build metadata does not count for precedence, SemVer section 10).
_SEMVER_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                        rf"(?:-({_SEMVER_ID}(?:\.{_SEMVER_ID})*))?"
                        r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?\Z", re.ASCII)


def version_key(version: str) -> tuple:
    """Sort key for "MAJOR.MINOR.PATCH[-pre]" (a pre-release sorts before its release)."""
    match = VERSION_RE.match(version or "")
    if not match:
        return (-1, -1, -1, 0, version or "")
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


class Checker:
    """Collects problems for one file, with positions taken from PosDict/PosList."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, where, message: str, rule: str | None = None, severity: str = "error",
            code: str | None = None) -> None:
        """`code`: the lint check name (authoring/lint.py; None: "schema")."""
        line, column = where if isinstance(where, tuple) else getattr(where, "pos", (1, 1))
        self.problems.append(Problem(self.file, line, column, message, rule, severity, code))

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def mapping(self, value, where, what: str, rule: str | None = None) -> bool:
        if not isinstance(value, dict):
            self.add(where, f"{what} must be a mapping, got {type_name(value)}", rule)
            return False
        return True

    def sequence(self, value, where, what: str, rule: str | None = None) -> bool:
        if not isinstance(value, list):
            self.add(where, f"{what} must be a list, got {type_name(value)}", rule)
            return False
        return True

    def unknown_keys(self, mapping: PosDict, allowed, what: str, rule: str | None = None) -> None:
        for key in mapping:
            if key not in allowed and not (isinstance(key, str) and key.startswith("@")):
                hint = ", ".join(sorted(allowed))
                self.add(mapping.key_at(key), f"unknown field {key!r} in {what} (allowed: {hint})", rule)


def retyped(source: str, value) -> str:
    """The problem and fix for a plain YAML scalar whose YAML 1.1 reading
    changed the text the author typed (see yamlload)."""
    if value is None:
        reading = "null"
    elif isinstance(value, bool):
        reading = f"the boolean {str(value).lower()}"
    elif isinstance(value, (int, float)):
        reading = f"the number {value!r}"
    elif isinstance(value, (dt.date, dt.datetime)):
        reading = f"the date {plain(value)}"
    else:
        reading = type_name(value)
    return f"YAML reads {source} as {reading}, not the text {source!r}: quote it (\"{source}\")"


def type_name(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (dt.date, dt.datetime)):
        return "a date"
    return type(value).__name__


def read_valid_for(check: "Checker", item, what: str = "", rule: str | None = None):
    """The `validFor` of an offering or a rule (TMF TimePeriod: startDateTime,
    endDateTime; a missing or null bound is open). Returns (ok, start, end) as
    aware UTC datetimes or None; problems go to `check`, prefixed with `what`
    (e.g. "offering 6542: ") so the catalog and the rule loader say the same."""
    if "validFor" not in item:
        return True, None, None
    valid_for = item["validFor"]
    if not check.mapping(valid_for, item.at("validFor"), f"{what}validFor", rule):
        return False, None, None
    check.unknown_keys(valid_for, {"startDateTime", "endDateTime"}, "validFor", rule)
    ok, bounds = True, {}
    for key in ("startDateTime", "endDateTime"):
        raw = valid_for.get(key)
        if raw is None:
            continue
        bounds[key] = parse_time(raw)
        if bounds[key] is None:
            check.add(valid_for.at(key), f"{what}validFor.{key} must be a date-time like "
                      f"2026-11-15T00:00:00Z, got {type_name(raw)}", rule)
            ok = False
    start, end = bounds.get("startDateTime"), bounds.get("endDateTime")
    if start and end and end <= start:
        check.add(item.at("validFor"), f"{what}validFor ends before it starts", rule, code="validity-window")
        ok = False
    return ok, start, end


def id_items(raw, where, key: str | None = None) -> tuple[list[tuple[str, tuple]], list[tuple[object, tuple]]]:
    """One id or a list of ids (offerings, channels, categories, rules...), as
    written in a rule, case or catalog file -> ([(id, position)], [(bad item,
    position)]). With `key`, a mapping item gives its `key` (owns: {offering:
    ...}). Positions are (line, column) from PosList/PosDict, else `where`.
    The one reader the condition parser, the cases loader and lint share."""
    items = raw if isinstance(raw, list) else [raw]
    good, bad = [], []
    for index, item in enumerate(items):
        pos = raw.at(index) if isinstance(raw, PosList) else where
        if key is not None and isinstance(item, dict):
            pos = item.at(key) if isinstance(item, PosDict) and key in item else pos
            item = item.get(key)
        value = as_id(item)
        if value is None:
            bad.append((item, pos))
        else:
            good.append((value, pos))
    return good, bad


def id_problem(what: str, item) -> str:
    return f"{what}: expected an id (text or number), got {type_name(item)}"
