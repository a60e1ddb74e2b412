"""Experiments of the rule set in service, for the API, the CLI and the
Studio: list, read, report, and the changes (start, stop, weights,
promote), each written to the experiments file and to the audit history.

A change rewrites rules/<set>.experiments.yaml atomically with its
`version` raised by one, after the new content passed every check the lint
makes (so a change can never leave a file that serves no experiment), and
appends an entry to the rule ledger's history (app/rules/repository/ledger.py,
the same history as saves and activations: who, when, what):

    {"action": "experiment-start" | "experiment-stop" | "experiment-weights"
               | "experiment-promote", "by", "at", "rulesetId",
     "experimentId", "fileVersion", "weights" | "arm" | "version", ...}

`expected_version`: the file version the caller read (the Studio's form
sends it): a change made meanwhile by someone else is refused with 409
STALE_EXPERIMENTS instead of being overwritten. The rewrite keeps data, not
comments (the file is data; docs/experiments.md says so).

Errors are TMFErrors (status, code): 404 EXPERIMENT_NOT_FOUND, 409
EXPERIMENT_REFUSED / STALE_EXPERIMENTS, 422 INVALID_EXPERIMENTS (the
file's problems, file:line: message, in `details`)."""
from __future__ import annotations

import datetime as dt
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import yaml

from ..atomicfile import replace_file
from ..errors import TMFError
from ..rules.model.common import UTC, iso, parse_time
from ..rules.model.errors import RuleSetError
from ..rules.model.yamlload import dump_text
from ..rules.authoring import governance
from ..rules.repository.ledger import history_entry
from .model import (Experiment, ExperimentsFile, experiments_path, parse_experiments, read_experiments,
                    shown_path)
from .report import arm_counts, experiment_report

ACTIONS = ("start", "stop", "weights", "promote")


def _versions(rules, rid: str) -> dict[str, dict]:
    """The rule set's versions as the files are NOW: the service's own list
    follows the files only when its watcher looks (RECO_RULES_CHECK_INTERVAL,
    woken by queries), so a version recorded a moment ago by the CLI or
    another worker would be refused, or a removed one accepted. refresh()
    is a stat of the files when nothing changed, and a look at the shared
    pointer and the ledger's records (a version recorded on another host
    has no lock-file entry here)."""
    rules.refresh(look_now=True)
    return {v["version"]: v for v in rules.versions(rid)}


def ruleset_id(services, requested: str | None = None) -> str:
    rid = requested or services.rules.status().get("rulesetId")
    if not rid:
        raise TMFError(503, "No rule set is loaded", code="RULESET_UNAVAILABLE")
    if rid not in services.rules.status().get("rulesets", []):
        raise TMFError(404, f"No rule set {rid!r}", code="RULESET_NOT_FOUND")
    return rid


def load(services, rid: str, check_versions: bool = True) -> tuple[ExperimentsFile | None, list]:
    """(the file, its problems) of rule set `rid`, checked against its versions
    (`check_versions` False: the structure only, for reading an experiment and
    stopping it when an arm's version is gone)."""
    path = experiments_path(services.settings.rules_dir, rid)
    return read_experiments(path, rid, _versions(services.rules, rid) if check_versions else None,
                            shown_path(services.settings.rules_dir, path))


def _file_or_fail(services, rid: str, check_versions: bool = True) -> ExperimentsFile:
    found, problems = load(services, rid, check_versions)
    if found is None:
        raise TMFError(422, f"{rid}'s experiments file has errors: fix it first", code="INVALID_EXPERIMENTS",
                       details={"problems": [str(p) for p in problems if p.severity == "error"]})
    return found


def get(services, rid: str, experiment_id: str) -> Experiment:
    """One experiment as declared, also when an arm's version is gone (its
    report stays readable; `listing` shows the file's problems)."""
    experiment = _file_or_fail(services, rid, check_versions=False).get(experiment_id)
    if experiment is None:
        raise TMFError(404, f"{rid} has no experiment {experiment_id!r}", code="EXPERIMENT_NOT_FOUND")
    return experiment


def describe(experiment: Experiment) -> dict:
    return {"id": experiment.id, "name": experiment.name, "status": experiment.status,
            "start": iso(experiment.start) if experiment.start else None,
            "end": iso(experiment.end) if experiment.end else None,
            "channels": list(experiment.channels), "primaryMetric": experiment.primary_metric,
            "control": experiment.control, "promoted": experiment.promoted,
            "arms": [{"name": a.name, "version": a.version, "holdout": a.holdout, "weight": a.weight}
                     for a in experiment.arms]}


def listing(services, rid: str) -> dict:
    found, problems = load(services, rid)
    router = services.recommender.experiments
    if router is not None:
        router.refresh()
    return {"rulesetId": rid, "file": shown_path(services.settings.rules_dir,
                                                 experiments_path(services.settings.rules_dir, rid)),
            "version": found.version if found else None,
            "experiments": [describe(e) for e in found.experiments] if found else [],
            "running": router.status()["running"] if router is not None else [],
            "problems": [p.as_dict() for p in problems]}


def report(services, rid: str, experiment_id: str, now: dt.datetime | None = None) -> dict:
    """The report (app/experiments/report.py); 409 without the decision log."""
    experiment = get(services, rid, experiment_id)
    decisions = services.decisions
    if decisions is None:
        raise TMFError(409, "The report reads the decision log, which is off (RECO_DECISION_LOG)",
                       code="DECISION_LOG_OFF")
    now = now or dt.datetime.now(UTC)
    until = min(experiment.end, now) if experiment.end else None
    counts = arm_counts(decisions.sink, services.store, experiment.id, experiment.start, until)
    found = experiment_report(experiment, counts, now,
                              _expected_shares(services, rid, experiment, decisions, until))
    found["rulesetId"] = rid
    return found


def _expected_shares(services, rid: str, experiment: Experiment, decisions, until) -> dict | None:
    """{arm: expected decisions} for the sample-ratio check when the weights
    changed during the experiment (a canary's 5 %, 25 %, 100 %): each period
    between two `experiment-weights` entries of the audit history counts with
    the weights it ran with, so a ramp is no mismatch. None: unchanged."""
    changes = sorted((e for e in services.rules.ledger.history(rid)
                      if e.get("action") == "experiment-weights" and e.get("experimentId") == experiment.id
                      and isinstance(e.get("weights"), dict) and isinstance(e.get("fromWeights"), dict)),
                     key=lambda e: e.get("at") or "")
    changes = [e for e in changes if (when := parse_time(e.get("at"))) is not None
               and (experiment.start is None or when > experiment.start) and (until is None or when < until)]
    if not changes:
        return None
    bounds = [experiment.start] + [parse_time(e["at"]) for e in changes] + [until]
    weights = [changes[0]["fromWeights"]] + [e["weights"] for e in changes]
    expected = {arm.name: 0.0 for arm in experiment.arms}
    for since, before, period in zip(bounds, bounds[1:], weights):
        counts = arm_counts(decisions.sink, services.store, experiment.id, since, before)
        total = sum(c["decisions"] for c in counts.values())
        for name in expected:
            expected[name] += total * float(period.get(name, 0)) / 100
    return expected


def explaining(services, query: dict):
    """(engine, experiment) that answer the TMF680 `query` now, for its
    explanation (the Playground, `flask rules explain`), so that "why did
    she get this" is answered by the version that answered her: in a
    running experiment the arm's engine and {"id", "arm", "holdout"} (a
    holdout: the active version's engine, after which its empty answer is
    named); else (None, None): the caller's choice (the active version)."""
    router = services.recommender.experiments
    routed = router.route(query) if router is not None else None
    if routed is None:
        return None, None
    engine, experiment = routed
    return (engine if engine is not None else services.rules.engine), {**experiment, "holdout": engine is None}


def explanation_line(experiment: dict, version: str) -> str:
    """The text explanation's line naming the query's experiment arm."""
    if experiment["holdout"]:
        return (f"Experiment {experiment['id']}, arm {experiment['arm']}: a holdout, answered with no items "
                f"(explained below with the active version {version})")
    return f"Experiment {experiment['id']}, arm {experiment['arm']}: answered by version {version}"


# ----------------------------------------------------------------------- changes
def activation(services):
    """promote's activation: the same as the Studio's and `flask rules
    activate`'s (app/rules/authoring/governance.py activate, with
    RECO_RULES_REQUIRE_APPROVAL); returns the history entry it recorded."""
    def activate(rid: str, version: str, who: str):
        return governance.activate(services.rules, rid, version, who,
                                  require_approval=services.settings.rules_require_approval)["activation"]
    return activate


@contextmanager
def _changing(data_dir: Path, rid: str):
    """One change of a rule set's experiments at a time on this host (an
    exclusive flock on `<data dir>/experiments-<set>.lock`, a fresh open file
    per call, so it serialises the threads of a worker as well as the
    workers): the fileVersion check, the rewrite and the history entry are
    one step, so of two changes sent at once from the same version one is
    refused (409 STALE_EXPERIMENTS) instead of both being acknowledged and
    one lost. Not the rules folder's own flock, which activation takes."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(data_dir) / f"experiments-{rid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                  # releases the flock


def change(services, rid: str, experiment_id: str, action: str, by: str, *,
           weights: dict | None = None, arm: str | None = None, expected_version: int | None = None,
           activate=None, now: dt.datetime | None = None) -> dict:
    """Apply one change; returns {"experiment", "history": [entries]}.
    `activate(rid, version, by)` activates a version (promote: the caller's
    activation, with its approval rules). One change at a time (_changing)."""
    if action not in ACTIONS:
        raise TMFError(400, f"unknown action {action!r}: one of {', '.join(ACTIONS)}", code="INVALID_BODY")
    with _changing(services.settings.data_dir, rid):
        return _change(services, rid, experiment_id, action, by, weights=weights, arm=arm,
                       expected_version=expected_version, activate=activate, now=now)


def _change(services, rid: str, experiment_id: str, action: str, by: str, *, weights, arm,
            expected_version, activate, now) -> dict:
    if action not in ACTIONS:
        raise TMFError(400, f"unknown action {action!r}: one of {', '.join(ACTIONS)}", code="INVALID_BODY")
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    path = experiments_path(services.settings.rules_dir, rid)
    shown = shown_path(services.settings.rules_dir, path)     # no server path in a client's message
    # stop only takes traffic away: it works when an arm's version is gone
    check_versions = action != "stop"
    current = _file_or_fail(services, rid, check_versions)
    if expected_version is not None and expected_version != current.version:
        raise TMFError(409, f"{shown} changed since it was read (version {current.version}, "
                            f"not {expected_version}): reload and try again", code="STALE_EXPERIMENTS")
    experiment = current.get(experiment_id)
    if experiment is None:
        raise TMFError(404, f"{rid} has no experiment {experiment_id!r}", code="EXPERIMENT_NOT_FOUND")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw = next(e for e in data["experiments"] if isinstance(e, dict) and e.get("id") == experiment_id)
    extra: dict = {}
    promoted_entry = None
    if action == "start":
        if experiment.status == "completed":
            raise _refused(f"{experiment_id} is completed (promoted {experiment.promoted}): declare a new experiment")
        if experiment.status == "running" and (experiment.end is None or experiment.end > now):
            raise _refused(f"{experiment_id} is already running")
        # running but past its end (it serves nobody): started again, without the end
        raw["status"] = "running"
        if experiment.start is None or experiment.start > now:
            raw["start"] = iso(now)
        if experiment.end is not None and experiment.end <= now:
            raw.pop("end", None)
        _check_arms_compile(services, rid, experiment)
        if services.settings.rules_require_approval:
            _check_arms_approved(services, rid, experiment)
    elif action == "stop":
        if experiment.status != "running":
            raise _refused(f"{experiment_id} is not running (it is {experiment.status})")
        raw["status"] = "stopped"
    elif action == "weights":
        if experiment.status == "completed":
            raise _refused(f"{experiment_id} is completed (promoted {experiment.promoted}): its weights are "
                           "the record of how it ran; declare a new experiment")
        weights = _weights(weights, experiment)
        for item in raw["arms"]:
            item["weight"] = weights[item["name"]]
        extra["weights"] = weights
        extra["fromWeights"] = {a.name: a.weight for a in experiment.arms}
    elif action == "promote":
        chosen = experiment.arm(arm or "")
        if chosen is None:
            raise TMFError(400, f"{experiment_id} has no arm {arm!r}: one of "
                                f"{', '.join(a.name for a in experiment.arms)}", code="INVALID_BODY")
        if chosen.holdout:
            raise _refused(f"arm {chosen.name} is a holdout: it has no version to activate")
        if experiment.status == "completed":
            raise _refused(f"{experiment_id} is completed already (promoted {experiment.promoted})")
        if activate is None:
            raise _refused("no activation available")
        try:
            promoted_entry = activate(rid, chosen.version, by)
        except RuleSetError as exc:
            raise TMFError(409, f"{rid} {chosen.version} was not activated: {str(exc).splitlines()[0]}",
                           code="EXPERIMENT_REFUSED") from None
        raw["status"] = "completed"
        raw["promoted"] = chosen.name
        if experiment.end is None or experiment.end > now:
            raw["end"] = iso(now)
        extra.update(arm=chosen.name, version=chosen.version)
    data["version"] = current.version + 1
    text = _HEADER + dump_text(_plain(data))
    checked, problems = parse_experiments(text, shown, rid,
                                          _versions(services.rules, rid) if check_versions else None)
    if checked is None:
        raise TMFError(422, f"the change would leave {shown} with errors",
                       code="INVALID_EXPERIMENTS",
                       details={"problems": [str(p) for p in problems if p.severity == "error"]})
    replace_file(path, text.encode("utf-8"))
    entry = services.rules.ledger.append(history_entry(
        rid, f"experiment-{action}", by, version=extra.pop("version", None), experimentId=experiment_id,
        fileVersion=checked.version, **extra))
    router = services.recommender.experiments
    if router is not None:
        router.refresh(force=True)
    history = [entry] + ([promoted_entry] if isinstance(promoted_entry, dict) else [])
    return {"experiment": describe(checked.get(experiment_id)), "fileVersion": checked.version,
            "history": history}


_HEADER = ("# Experiments of this rule set (docs/experiments.md). Rewritten by the Studio and\n"
           "# `flask experiments ...` on every start, stop, weight change and promotion.\n")


def _refused(message: str) -> TMFError:
    return TMFError(409, message, code="EXPERIMENT_REFUSED")


def _weights(weights, experiment: Experiment) -> dict[str, float]:
    names = [a.name for a in experiment.arms]
    if not isinstance(weights, dict) or set(weights) != set(names) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= 100 for w in weights.values()):
        raise TMFError(400, f"weights must give every arm ({', '.join(names)}) a percentage from 0 to 100",
                       code="INVALID_BODY")
    if abs(sum(weights.values()) - 100) > 1e-6:
        raise TMFError(400, f"the weights add up to {sum(weights.values()):g}, not 100", code="INVALID_BODY")
    if any(abs(round(w * 100) - w * 100) > 1e-6 for w in weights.values()):
        raise TMFError(400, "a weight has at most two decimals (a bucket is 0.01 %)", code="INVALID_BODY")
    return {name: (int(w) if float(w).is_integer() else float(w)) for name, w in weights.items()}


def _check_arms_compile(services, rid: str, experiment: Experiment) -> None:
    for arm in experiment.arms:
        if arm.holdout:
            continue
        try:
            services.rules.engine_of(arm.version, rid)
        except RuleSetError as exc:
            raise _refused(f"arm {arm.name}: {rid} {arm.version} cannot serve: {str(exc).splitlines()[0]}") from None


def _check_arms_approved(services, rid: str, experiment: Experiment) -> None:
    """Four eyes (RECO_RULES_REQUIRE_APPROVAL) for the versions an experiment
    serves: each arm's version serves now, served before or is approved
    (governance.unapproved_to_serve), as an activation's must be; else an
    author alone could serve an unapproved version to most customers by
    starting an experiment."""
    for arm in experiment.arms:
        if not arm.holdout:
            refused = governance.unapproved_to_serve(services.rules, rid, arm.version)
            if refused is not None:
                raise TMFError(409, f"arm {arm.name}: {refused}", code="APPROVAL_REQUIRED")


def _plain(value):
    """YAML-ready data: times as ISO 8601 text (safe_load read them as datetimes)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value
