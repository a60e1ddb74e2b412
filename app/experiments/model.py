"""The experiments file of a rule set: `rules/<set>.experiments.yaml`.

Shape (docs/experiments.md has the full description)::

    version: 3                        # the file's own version, +1 on every change
    experiments:
      - id: checkout-upsell           # letters, digits, '.', '_', '-'
        status: running               # draft | running | stopped | completed
        start: 2026-12-01T00:00:00Z   # ISO 8601 with a time zone (optional)
        end: 2027-01-01T00:00:00Z     # optional; after start
        channels: [web]               # optional: every channel when absent
        primaryMetric: accepted       # shown | clicked | leads | accepted (per decision)
        control: baseline             # the arm the others are compared with
        arms:                         # contiguous bucket ranges, in this order
          - {name: challenger, version: "1.1.0", weight: 45}
          - {name: baseline, version: "1.0.0", weight: 45}
          - {name: holdout, holdout: true, weight: 10}

Every arm serves a recorded version of the rule set (its content fixed by
the lock file or the ledger) or is a holdout (answers with no items).
Weights are percentages that add up to 100, with at most two decimals (one
bucket of 10,000 is 0.01 %).

`parse_experiments` returns (ExperimentsFile or None, problems); each
Problem names file:line:column, a check code and a hint (the lint's types,
app/rules/model/errors.py), so `flask rules lint` and the Studio list them
beside rule file findings. Versions are checked against `versions`:
{version: {"hash", "recordedHash", "valid"}} (RuleService.versions() in the
server; the rule files and the lock file in the offline lint)."""
from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..rules.model.common import VERSION_RE, iso, parse_time
from ..rules.model.errors import Problem, RuleSetError
from ..rules.model.ruleset import ID_RE, read_ruleset_file
from ..rules.model.yamlload import PosDict, PosList, load_text, read_text_file
from ..rules.repository.layout import EXPERIMENTS_SUFFIX as SUFFIX, experiments_path, rule_files
from ..rules.repository.registry import recorded_hashes
from ..timeutil import names_zone

STATUSES = ("draft", "running", "stopped", "completed")
METRICS = ("shown", "clicked", "leads", "accepted")
_TOP_KEYS = ("version", "experiments")
_EXPERIMENT_KEYS = ("id", "name", "description", "status", "start", "end", "channels",
                    "primaryMetric", "control", "arms", "promoted")
_ARM_KEYS = ("name", "version", "holdout", "weight", "description")


@dataclass(frozen=True)
class Arm:
    name: str
    version: str | None          # None: the holdout
    weight: float                 # percent
    line: int = 1

    @property
    def holdout(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class Experiment:
    id: str
    status: str
    arms: tuple[Arm, ...]
    control: str
    primary_metric: str = "accepted"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    channels: tuple[str, ...] = ()
    name: str = ""
    promoted: str | None = None
    line: int = 1

    def arm(self, name: str) -> Arm | None:
        return next((arm for arm in self.arms if arm.name == name), None)

    def live(self, now: dt.datetime) -> bool:
        """Running and inside [start, end)."""
        return (self.status == "running" and (self.start is None or now >= self.start)
                and (self.end is None or now < self.end))


@dataclass(frozen=True)
class ExperimentsFile:
    ruleset_id: str
    version: int
    experiments: tuple[Experiment, ...] = field(default_factory=tuple)

    def get(self, experiment_id: str) -> Experiment | None:
        return next((e for e in self.experiments if e.id == experiment_id), None)


def is_experiments_file(path) -> bool:
    return Path(path).name.endswith(SUFFIX)


def ruleset_id_of(path) -> str:
    return Path(path).name[: -len(SUFFIX)]


def _problem(file: str, where, code: str, message: str, hint: str, severity: str = "error") -> Problem:
    line, column = where
    return Problem(file, line, column, message, None, severity, code, hint)


def _did_you_mean(word, options) -> str:
    found = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"did you mean {found[0]!r}? " if found else ""


def _unknown_keys(raw: PosDict, known, file: str, what: str) -> list[Problem]:
    return [_problem(file, raw.key_at(key), "unknown-key", f"unknown key {key!r} in {what}",
                     f"{_did_you_mean(key, known)}known keys: {', '.join(known)}")
            for key in raw if key not in known]


def _time(raw: PosDict, key: str, file: str, problems: list) -> dt.datetime | None:
    if raw.get(key) is None:
        return None
    value = raw[key]
    when = parse_time(value) if isinstance(value, (str, dt.datetime, dt.date)) else None
    if when is None:
        problems.append(_problem(file, raw.at(key), "invalid-time",
                                 f"{key}: {value!r} is not an ISO 8601 time",
                                 'write e.g. 2026-12-01T00:00:00Z (UTC) or 2026-12-01T09:00:00+01:00'))
    elif names_zone(value) is False:
        # as in rule files (`time-zone`, app/rules/authoring/zones.py): read as
        # UTC, which is not what an author in another zone meant
        read_as = iso(when)
        problems.append(_problem(file, raw.at(key), "time-zone",
                                 f"{key}: {value.isoformat() if isinstance(value, dt.date) else value} has no time zone: it would be read as UTC ({read_as})",
                                 f'write the zone meant: "{read_as}" for UTC, or its offset, '
                                 f'e.g. "{read_as[:-1]}+01:00"'))
    return when


def parse_experiments(text: str, file: str, ruleset_id: str, versions: dict[str, dict] | None,
                      channels: set[str] | None = None) -> tuple[ExperimentsFile | None, list[Problem]]:
    """(the file, problems); the file is None when any problem is an error.
    `versions`: None skips the version checks (no rule set could be read).
    `channels`: the catalog's channel ids (lint): an experiment's channel
    that is not one of them is a warning (`unknown-channel`), since no
    query names it and the experiment would never serve there; None skips
    it (serving, so that a channel removed from the catalog stops nothing)."""
    try:
        doc = load_text(text, file)
    except RuleSetError as exc:
        return None, [replace(p, code=p.code or "yaml-syntax",
                              hint=p.hint or "fix the YAML syntax at this line") for p in exc.problems]
    problems: list[Problem] = []
    if not isinstance(doc, PosDict):
        return None, [_problem(file, (1, 1), "not-a-mapping", "an experiments file is a mapping",
                               "start with `version: 1` and `experiments:` (docs/experiments.md)")]
    problems += _unknown_keys(doc, _TOP_KEYS, file, "the experiments file")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problems.append(_problem(file, doc.at("version"), "invalid-file-version",
                                 f"version: {version!r} is not the file's version",
                                 "write `version: 1` (a whole number, raised by one on every change)"))
    raw_list = doc.get("experiments")
    if raw_list is None:
        raw_list = PosList()
    if not isinstance(raw_list, list):
        problems.append(_problem(file, doc.at("experiments"), "invalid-experiments",
                                 "experiments must be a list", "write `experiments:` then `- id: ...` items"))
        raw_list = PosList()
    experiments: list[Experiment] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_list):
        where = raw_list.at(index) if isinstance(raw_list, PosList) else (1, 1)
        if not isinstance(raw, PosDict):
            problems.append(_problem(file, where, "invalid-experiment", "an experiment is a mapping",
                                     "write `- id: <id>` with status, arms, control, ..."))
            continue
        experiment = _experiment(raw, file, versions, ruleset_id, problems, channels)
        # by the id as written: a copy with other errors is a duplicate all the same
        exp_id = raw.get("id")
        if isinstance(exp_id, str) and ID_RE.match(exp_id):
            if exp_id in seen:
                problems.append(_problem(file, raw.at("id"), "duplicate-experiment",
                                         f"experiment {exp_id!r} is declared twice",
                                         "give each experiment its own id"))
            seen.add(exp_id)
        if experiment is not None:
            experiments.append(experiment)
    problems += _overlaps(experiments, file)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return ExperimentsFile(ruleset_id, version, tuple(experiments)), problems


def _experiment(raw: PosDict, file: str, versions, ruleset_id: str, problems: list,
                known_channels: set[str] | None = None) -> Experiment | None:
    before = len([p for p in problems if p.severity == "error"])
    problems += _unknown_keys(raw, _EXPERIMENT_KEYS, file, "an experiment")
    exp_id = raw.get("id")
    if not isinstance(exp_id, str) or not ID_RE.match(exp_id):
        problems.append(_problem(file, raw.at("id"), "invalid-id", f"id: {exp_id!r} is not an experiment id",
                                 "use letters, digits, '.', '_' and '-' (e.g. checkout-upsell)"))
        exp_id = "?"
    status = raw.get("status", "draft")
    if status not in STATUSES:
        problems.append(_problem(file, raw.at("status"), "invalid-status", f"status: {status!r} is unknown",
                                 f"{_did_you_mean(status, STATUSES)}use one of {', '.join(STATUSES)}"))
    metric = raw.get("primaryMetric", "accepted")
    if metric not in METRICS:
        problems.append(_problem(file, raw.at("primaryMetric"), "invalid-metric",
                                 f"primaryMetric: {metric!r} is unknown",
                                 f"{_did_you_mean(metric, METRICS)}use one of {', '.join(METRICS)} "
                                 "(decisions with such an item, per decision)"))
    start, end = _time(raw, "start", file, problems), _time(raw, "end", file, problems)
    if start and end and end <= start:
        problems.append(_problem(file, raw.at("end"), "end-before-start", "end is not after start",
                                 "set end after start, or remove end to run until stopped"))
    channels = raw.get("channels") or []
    if isinstance(channels, str):
        channels = [channels]
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        problems.append(_problem(file, raw.at("channels"), "invalid-channels",
                                 "channels must be a list of channel ids",
                                 "write e.g. `channels: [\"21\", \"22\"]` (ids are text: write them in quotes)"))
        channels = []
    for index, channel in enumerate(channels if known_channels else []):
        if channel not in known_channels:
            listed = raw["channels"]
            problems.append(_problem(file, listed.at(index) if isinstance(listed, PosList) else raw.at("channels"),
                                     "unknown-channel",
                                     f"experiment {exp_id} runs on channel {channel!r}, which the catalog does "
                                     "not have: no query names it, so the experiment never serves there",
                                     f"{_did_you_mean(channel, sorted(known_channels))}use a channel id of "
                                     "catalog/channels.yaml", severity="warning"))
    arms = _arms(raw, file, versions, ruleset_id, problems, serving=status == "running")
    control = raw.get("control")
    names = [arm.name for arm in arms]
    if control is None or control not in names:
        problems.append(_problem(file, raw.at("control") if "control" in raw else raw.key_at("id"),
                                 "unknown-control",
                                 f"control: {control!r} names no arm of {exp_id}" if control is not None
                                 else f"experiment {exp_id} has no control arm",
                                 f"{_did_you_mean(control, names) if control else ''}"
                                 f"set `control:` to one of {', '.join(names) or 'its arms'}"))
    promoted = raw.get("promoted")
    if len([p for p in problems if p.severity == "error"]) > before:
        return None
    return Experiment(exp_id, status, tuple(arms), control, metric, start, end,
                      tuple(channels), str(raw.get("name") or ""), promoted, raw.pos[0])


def _arms(raw: PosDict, file: str, versions, ruleset_id: str, problems: list,
          serving: bool = True) -> list[Arm]:
    raw_arms = raw.get("arms")
    if not isinstance(raw_arms, PosList) or len(raw_arms) < 2:
        problems.append(_problem(file, raw.at("arms") if "arms" in raw else raw.key_at("id"), "too-few-arms",
                                 "an experiment needs a list of at least two arms",
                                 'write `arms:` with e.g. `- {name: challenger, version: "1.1.0", weight: 50}` '
                                 'and `- {name: control, version: "1.0.0", weight: 50}`'))
        return []
    arms: list[Arm] = []
    total = 0.0
    invalid = False
    for index, arm in enumerate(raw_arms):
        where = raw_arms.at(index)
        if not isinstance(arm, PosDict):
            problems.append(_problem(file, where, "invalid-arm", "an arm is a mapping",
                                     'write `- {name: control, version: "1.0.0", weight: 50}`'))
            continue
        problems += _unknown_keys(arm, _ARM_KEYS, file, "an arm")
        name = arm.get("name")
        if not isinstance(name, str) or not ID_RE.match(name):
            problems.append(_problem(file, arm.at("name"), "invalid-arm-name", f"name: {name!r} is not an arm name",
                                     "use letters, digits, '.', '_' and '-' (e.g. control)"))
            continue
        if any(a.name == name for a in arms):
            problems.append(_problem(file, arm.at("name"), "duplicate-arm", f"arm {name!r} is declared twice",
                                     "give each arm its own name"))
        weight = arm.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100 \
                or abs(round(weight * 100) - weight * 100) > 1e-6:
            problems.append(_problem(file, arm.at("weight") if "weight" in arm else arm.key_at("name"),
                                     "invalid-weight", f"arm {name}: weight {weight!r} is not a percentage",
                                     "write a number from 0 to 100 with at most two decimals (e.g. 5, 25, 12.5)"))
            weight, invalid = 0.0, True
        total += float(weight)
        holdout = arm.get("holdout") is True
        version = arm.get("version")
        if holdout and version is not None:
            problems.append(_problem(file, arm.at("version"), "holdout-with-version",
                                     f"arm {name} is a holdout and names version {version!r}",
                                     "a holdout answers with no items: remove `version:` or `holdout: true`"))
            continue
        if not holdout:
            version = _arm_version(arm, name, file, versions, ruleset_id, problems, serving)
            if version is None:
                continue
        arms.append(Arm(name, None if holdout else version, float(weight), where[0]))
    if abs(total - 100.0) > 1e-6 and not invalid:     # a sum without the invalid weights misleads
        problems.append(_problem(file, raw.at("arms"), "weights-not-100",
                                 f"the arms' weights add up to {total:g}, not 100",
                                 "make the weights of all arms add up to 100 (percent of the experiment's traffic)"))
    return arms


def _arm_version(arm: PosDict, name: str, file: str, versions, ruleset_id: str, problems: list,
                 serving: bool = True) -> str | None:
    """The arm's version, checked against `versions`. An experiment that does
    not serve (draft, stopped, completed) may name a version that is gone,
    unrecorded or changed: a warning (old versions' files get cleaned up; that
    must not stop every other experiment of the file), checked again as an
    error when it is started."""
    version = arm.get("version")
    typed = arm.typed.get("version") if hasattr(arm, "typed") else None
    if not isinstance(version, str):
        version = typed if typed else version
    if version is None:
        problems.append(_problem(file, arm.key_at("name"), "arm-without-version",
                                 f"arm {name} names no version",
                                 'give it `version: "1.1.0"` (a recorded version) or `holdout: true`'))
        return None
    version = str(version)
    if not VERSION_RE.match(version):
        problems.append(_problem(file, arm.at("version"), "invalid-version",
                                 f"arm {name}: version {version!r} is not a semantic version",
                                 'write MAJOR.MINOR.PATCH in quotes, e.g. "1.1.0"'))
        return None
    if versions is None:
        return version
    severity = "error" if serving else "warning"
    found = versions.get(version)
    if found is None:
        problems.append(_problem(file, arm.at("version"), "unknown-version",
                                 f"arm {name}: {ruleset_id} has no version {version!r}",
                                 f"{_did_you_mean(version, versions)}known versions: "
                                 f"{', '.join(sorted(versions)) or 'none'}", severity=severity))
        return None if serving else version
    if not found.get("recordedHash"):
        problems.append(_problem(file, arm.at("version"), "unrecorded-version",
                                 f"arm {name}: {ruleset_id} {version} is not recorded: its content could still change",
                                 f"record it first (`flask rules lock {ruleset_id}` or the Studio's Lock button)",
                                 severity=severity))
        return None if serving else version
    if found.get("hash") and found["hash"] != found["recordedHash"]:
        problems.append(_problem(file, arm.at("version"), "changed-version",
                                 f"arm {name}: the file of {ruleset_id} {version} holds other content "
                                 f"(hash {found['hash']}) than recorded (hash {found['recordedHash']})",
                                 "restore the recorded content, or give the change a new version and name that",
                                 severity=severity))
        return None if serving else version
    if not found.get("valid", True):
        problems.append(_problem(file, arm.at("version"), "invalid-arm-version",
                                 f"arm {name}: {ruleset_id} {version} has errors", "fix that rule file first",
                                 severity=severity))
        return None if serving else version
    return version


def _overlaps(experiments: list[Experiment], file: str) -> list[Problem]:
    """Two running experiments on a common channel: only the first serves."""
    found = []
    running = [e for e in experiments if e.status == "running"]
    for index, later in enumerate(running):
        for earlier in running[:index]:
            shared = (not earlier.channels or not later.channels
                      or set(earlier.channels) & set(later.channels))
            overlap = ((earlier.end is None or later.start is None or later.start < earlier.end)
                       and (later.end is None or earlier.start is None or earlier.start < later.end))
            if shared and overlap:
                found.append(_problem(file, (later.line, 1), "overlapping-experiments",
                                      f"experiment {later.id} runs on the channels and time of {earlier.id}: "
                                      f"its traffic is all {earlier.id}'s", "give them different channels or "
                                      "times, or stop one", severity="warning"))
    return found


def read_experiments(path: Path, ruleset_id: str, versions, shown: str | None = None,
                     channels: set[str] | None = None) -> tuple[ExperimentsFile | None, list[Problem]]:
    """The file at `path` (None and no problems when there is none).
    `shown`: the file's name in problems (the service passes it relative to
    the rules folder, so no message shows where the server keeps its files);
    default: as the command line shows it (display_path)."""
    if not Path(path).exists():
        return ExperimentsFile(ruleset_id, 0, ()), []
    try:
        name, text = read_text_file(path)
    except RuleSetError as exc:
        return None, [replace(p, file=shown) if shown else p for p in exc.problems]
    return parse_experiments(text, shown or name, ruleset_id, versions, channels)


def shown_path(rules_dir: Path, path: Path) -> str:
    """`path` relative to the rules folder, for messages a client reads
    (an experiments file is always in it: experiments_path)."""
    try:
        return str(Path(path).relative_to(Path(rules_dir)))
    except ValueError:
        return Path(path).name


def offline_versions(rules_dir: Path, ruleset_id: str, catalog) -> dict[str, dict]:
    """{version: {"hash", "recordedHash", "valid"}} from the rule files and the
    lock file (the lint, which runs without the service's ledger)."""
    recorded = recorded_hashes(Path(rules_dir), None, ruleset_id)
    found: dict[str, dict] = {}
    for path in rule_files(Path(rules_dir)):
        if path.stem.split("@")[0] != ruleset_id:
            continue
        rid, version, ruleset, problems = read_ruleset_file(path, catalog)
        if rid == ruleset_id and version and version not in found:
            found[version] = {"hash": ruleset.hash if ruleset is not None else None,
                              "recordedHash": recorded.get(version),
                              "valid": ruleset is not None and not any(p.severity == "error" for p in problems)}
    return found


def lint_experiments_file(path: Path, rules_dir: Path, catalog) -> list[Problem]:
    """Every problem of one experiments file (for `flask rules lint`)."""
    rid = ruleset_id_of(path)
    versions = offline_versions(rules_dir, rid, catalog) if catalog is not None else None
    channels = set(catalog.channels) if catalog is not None and catalog.channels else None
    _found, problems = read_experiments(path, rid, versions, channels=channels)
    return problems


__all__ = ["Arm", "Experiment", "ExperimentsFile", "experiments_path", "is_experiments_file", "shown_path",
           "parse_experiments", "read_experiments", "lint_experiments_file"]
