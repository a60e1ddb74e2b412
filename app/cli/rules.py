"""`flask rules ...`: rule authoring for product managers.

    flask --app wsgi rules lint [PATH...]          # syntax, schema, meaning, versions (exit 1 on errors)
    flask --app wsgi rules test [PATH]             # regression cases: table, failures explained, coverage
    flask --app wsgi rules explain CONTEXT.json    # every rule, every policy step, the final list
    flask --app wsgi rules diff OLD NEW            # what a change would change: summary (--details: per context)
    flask --app wsgi rules keep [ID]               # keep the working copy in rules/versions/ (before editing)
    flask --app wsgi rules lock [ID]               # record the content hash of new versions
    flask --app wsgi rules versions [ID]           # the versions found, which one is active
    flask --app wsgi rules activate ID VERSION     # switch every worker, no restart
    flask --app wsgi rules rollback ID             # back to the last different healthy version
    flask --app wsgi rules history [ID]            # who saved, recorded, approved, activated what, when

Colour only on a terminal, never with NO_COLOR; the text is otherwise the
same everywhere (stable for scripts and tests). See rules/README.md.
"""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` (gunicorn's config, each worker, each
# test) loads this module through app/cli/__init__.py.

import datetime as dt
import errno
import getpass
import json
import os
import subprocess
from pathlib import Path

import click
from flask.cli import AppGroup

from ..services import services
from .output import print_table, progress

class RulesGroup(AppGroup):
    """`flask rules`: a disk that refuses a write (full, over quota, read-only)
    is one clear line and exit code 1, never a traceback. Every file these
    commands write is replaced atomically (app/atomicfile.py), so nothing was
    changed."""

    def invoke(self, ctx):
        from ..store import StoreUnavailable

        try:
            return super().invoke(ctx)
        except (OSError, StoreUnavailable) as exc:
            refused = _refused_write(exc)
            if refused is None:
                raise
            where = os.path.dirname(refused.filename) if isinstance(refused.filename, str) else "a folder"
            raise click.ClickException(f"cannot write in {where or '.'}: {refused.strerror}. Nothing was "
                                       "changed; make room (or make it writable) and run the command "
                                       "again") from None


def _refused_write(exc: BaseException) -> OSError | None:
    """The OSError of a disk that refused a write (full, over quota,
    read-only) behind `exc`: itself, or the cause of the store's
    StoreUnavailable (the activation history and versions live in the store)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


rules = RulesGroup("rules", help="Rule authoring: lint, test, explain, diff, keep, lock, versions, activate.")


# --------------------------------------------------------------------------- helpers
def _color():
    return False if os.environ.get("NO_COLOR") else None     # None: click strips unless a terminal


def _echo(line: str = "", err: bool = False) -> None:
    click.echo(line, color=_color(), err=err)


def _style():
    from ..rules.authoring.report import ansi, plain
    return plain if os.environ.get("NO_COLOR") else ansi


def _settings():
    return services().settings


def _fail(exc, code: int = 1):
    """Print a RuleSetError (with its file:line:column problems) and exit."""
    problems = getattr(exc, "problems", None) or []
    first = str(exc).splitlines()[0] if str(exc) else "error"
    _echo(click.style(f"error: {first}", fg="red", bold=True), err=True)
    for problem in problems:
        _echo(f"  {problem}", err=True)
    raise click.exceptions.Exit(code)


def _user() -> str:
    """Who runs the command, for the activation history."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):      # no login name and no passwd entry (some containers)
        return "unknown user"


def _json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _now(value: str | None) -> dt.datetime:
    from ..rules.model.common import UTC, parse_time
    if value is None:
        return dt.datetime.now(UTC)
    when = parse_time(value)
    if when is None:
        raise click.BadParameter(f"{value!r} is not a date-time like 2026-10-01T00:00:00Z")
    return when


def _catalog():
    from ..rules import RuleSetError, load_catalog
    try:
        return load_catalog(_settings().catalog_dir)
    except RuleSetError as exc:
        _fail(exc)


# --------------------------------------------------------------------------- lint
@rules.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings fail too (exit code 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--now", "now_text", metavar="DATETIME",
              help="Check expiry against this time instead of now (e.g. 2026-12-31T00:00:00Z).")
@click.option("--show-acknowledged", is_flag=True, help="Also list the warnings acknowledged with lint-ignore.")
def lint_command(paths, strict, as_json, now_text, show_acknowledged):
    """Check rule sets, their cases, lock files, experiments files and the catalog (default: all of them).

    Every finding names file:line:column, the rule, the check and what to do.
    Exit code 1 on errors (or on warnings with --strict), else 0."""
    from ..rules.authoring.lint import lint
    from ..rules.authoring.report import lint_lines

    settings = _settings()
    report = lint(list(paths) or None, settings.rules_dir, settings.catalog_dir, _now(now_text))
    from ..experiments.lint import add_experiment_findings
    add_experiment_findings(report, list(paths) or None, settings.rules_dir, settings.catalog_dir)
    if as_json:
        _json(report.as_dict())
    else:
        for line in lint_lines(report, _style(), show_acknowledged):
            _echo(line)
    raise click.exceptions.Exit(report.exit_code(strict))


# --------------------------------------------------------------------------- test
def _cases_targets(path: Path | None, rules_dir: Path) -> list[Path]:
    from ..rules.model.ruleset import peek_header
    from ..rules import RuleSetError
    from ..rules.repository.layout import cases_file_for, cases_path, find_cases_files, is_cases_file

    if path is None:
        return find_cases_files(rules_dir)
    if path.is_dir():
        return find_cases_files(path)
    if is_cases_file(path):
        return [path]
    beside = cases_file_for(path)
    if beside.exists():
        return [beside]
    rid, _version = peek_header(path)
    try:
        candidate = cases_path(rules_dir, rid) if rid else None
    except RuleSetError:          # an id that is no file name has no cases file
        candidate = None
    return [candidate] if candidate is not None and candidate.exists() else [beside]


@rules.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--rules", "rule_file", type=click.Path(exists=True, path_type=Path),
              help="Run the cases against this rule file (e.g. rules/versions/<id>@<version>.yaml).")
@click.option("-k", "keyword", metavar="TEXT", help="Only the cases whose name contains TEXT.")
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Fail when fewer than PERCENT of the rules fire in some case.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def test_command(path, rule_file, keyword, fail_under, as_json):
    """Run the regression cases beside each rule set (or PATH: a cases file, a
    rule file or a directory). Prints a pass/fail table, expected vs actual
    with the reasons of every item on failure, and which rules never fired."""
    from ..rules import RuleSetError
    from ..rules.authoring.case_report import cases_report, run_matching
    from ..rules.authoring.cases import coverage, engine_for
    from ..rules.repository.layout import ruleset_file_for
    from ..rules.authoring.report import case_lines, coverage_percent
    from ..rules.model.yamlload import display_path

    settings = _settings()
    targets = _cases_targets(path, settings.rules_dir)
    if not targets:
        _echo("No regression cases found (rules/<id>.cases.yaml).", err=True)
        raise click.exceptions.Exit(1)
    exit_code = 0
    out = []
    for cases_file in targets:
        given_rule_file = path is not None and path.is_file() and path.resolve() != cases_file.resolve()
        try:
            target_rules = rule_file or (path if given_rule_file else ruleset_file_for(cases_file))
            engine = engine_for(target_rules, settings.catalog_dir)
            results = run_matching(engine, cases_file, keyword)
        except RuleSetError as exc:
            _fail(exc)
        counts = coverage(engine, results)
        percent = coverage_percent(engine, counts)
        if any(not r.passed for r in results) or (fail_under is not None and percent < fail_under):
            exit_code = 1
        if as_json:
            out.append(cases_report(engine, cases_file, results))
            continue
        if out:
            _echo()
        out.append(cases_file)
        for line in case_lines(engine, display_path(cases_file), results, counts, _style(), fail_under):
            _echo(line)
    if as_json:
        _json({"files": out, "ok": exit_code == 0})
    raise click.exceptions.Exit(exit_code)


# --------------------------------------------------------------------------- explain
def _resolve_ruleset(spec: str, catalog, other_id: str | None = None):
    """A rule set from a file, `ID@VERSION`, a bare VERSION, or `git:REV:PATH`."""
    from ..rules import RuleSetError
    from ..rules.model.common import VERSION_RE
    from ..rules.model.ruleset import load_ruleset, parse_ruleset, peek_header
    from ..rules.repository.layout import rule_files

    settings = _settings()
    path = Path(spec)
    if path.exists():
        return load_ruleset(path, catalog)
    if spec.startswith("git:"):
        rev, _, file = spec[4:].partition(":")
        if not rev or not file:
            raise click.BadParameter(f"{spec!r}: write git:REV:PATH, e.g. git:HEAD:rules/telco-demo.yaml")
        try:
            top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                                 check=True).stdout.strip()
            relative = Path(file).resolve().relative_to(Path(top).resolve()).as_posix()
            text = subprocess.run(["git", "show", f"{rev}:{relative}"], capture_output=True, text=True,
                                  check=True, cwd=top).stdout
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise click.BadParameter(f"{spec!r}: git could not show it: {detail.strip()}") from None
        return parse_ruleset(text, spec, catalog)
    rid, _, version = spec.rpartition("@")
    if not rid:
        if not VERSION_RE.match(spec):
            raise click.BadParameter(f"{spec!r} is not a file, ID@VERSION, VERSION or git:REV:PATH")
        rid = other_id or services().rules.status().get("rulesetId")
    for candidate in rule_files(settings.rules_dir):
        if peek_header(candidate) == (rid, version):
            return load_ruleset(candidate, catalog)
    raise RuleSetError(f"no file in {settings.rules_dir} holds {rid}@{version}")


@rules.command("explain")
@click.argument("context_file", metavar="CONTEXT.json", type=click.Path(exists=True, path_type=Path))
@click.option("--version", "version", metavar="VERSION",
              help="Explain with this loaded version (default: the active one).")
@click.option("--rules", "rules_spec", metavar="FILE|ID@VERSION", help="Explain with this rule file or version.")
@click.option("--time", "time_text", metavar="DATETIME",
              help="Evaluation time when the context has none (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain_command(context_file, version, rules_spec, time_text, as_json):
    """Explain one context: every rule (fired, or which condition failed),
    every policy step (what was dropped and why), the final list.

    CONTEXT.json is a case context ({"cart": ["6547"], "channel": "21",
    "time": ...}), a whole case, or a TMF680 query body (its customer is
    looked up in this service's store)."""
    from ..errors import TMFError
    from ..recommend.query import context_from_query
    from ..rules import RuleSetError
    from ..rules.authoring.contexts import context_to_case, load_context_file
    from ..rules.engine.engine import Engine
    from ..rules.authoring.report import explain_lines

    reco = services()
    try:
        doc, _name, context = load_context_file(context_file, _now(time_text))
        query = context is None
        if query:
            context = context_from_query(doc, reco.recommender.parties, _now(time_text))
        if rules_spec:
            catalog = _catalog()
            engine = Engine(_resolve_ruleset(rules_spec, catalog), catalog)
        else:
            reco.rules.refresh()
            engine = reco.rules.engine_of(version)
    except RuleSetError as exc:
        _fail(exc)
    except TMFError as exc:
        _echo(f"error: {context_file}: {exc.message}", err=True)
        raise click.exceptions.Exit(1)
    explained = engine.explain(context)
    if as_json:
        explained["context"] = context_to_case(context)
        _json(explained)
        return
    for line in explain_lines(explained, engine.catalog, _style()):
        _echo(line)
    if query:
        _echo()
        _echo("As a case context (for a cases file or a --contexts JSONL file):")
        _echo("  " + json.dumps(context_to_case(context), ensure_ascii=False))


# --------------------------------------------------------------------------- diff
@rules.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--contexts", "contexts_file", type=click.Path(exists=True, path_type=Path), metavar="FILE.jsonl",
              help="Also compare these recorded contexts (one JSON context or case per line).")
@click.option("--cases/--no-cases", default=True, help="Compare the rule set's regression cases (default: yes).")
@click.option("--details", is_flag=True,
              help="After the summary, what changes in each changed context (see --limit).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="With --details: list at most N contexts (0: all).")
@click.option("--all", "show_all", is_flag=True, help="Details of the contexts that do not change too.")
@click.option("--fail-on-change", is_flag=True, help="Exit code 1 when any context changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--recorded", type=click.IntRange(min=0), default=None, metavar="N",
              help="Also replay the last N recorded answers (decision log), weighted.")
@click.option("--since", "recorded_since", metavar="DATE-TIME",
              help="Replay the answers recorded since then (with --until, --channel).")
@click.option("--until", "recorded_until", metavar="DATE-TIME", help="... and before this.")
@click.option("--channel", "recorded_channel", metavar="ID", help="... only of this channel.")
def diff_command(old, new, contexts_file, cases, details, limit, show_all, fail_on_change, as_json,
                 recorded=None, recorded_since=None, recorded_until=None, recorded_channel=None):
    """What changes from OLD to NEW: the rules changed and a summary over the
    contexts (items gained, lost, reordered, recommended for other reasons);
    with --details, each changed context. A progress bar counts the contexts
    on a terminal.

    OLD and NEW are rule files, ID@VERSION or VERSION (a version in rules/ or
    rules/versions/), or git:REV:PATH (a committed file, e.g.
    git:HEAD:rules/telco-demo.yaml)."""
    from ..rules import RuleSetError
    from ..rules.authoring.cases import load_cases
    from ..rules.authoring.contexts import load_contexts_jsonl
    from ..rules.authoring.diff import diff_engines
    from ..rules.engine.engine import Engine
    from ..rules.authoring.report import diff_lines
    from ..rules.repository.layout import cases_path

    settings = _settings()
    catalog = _catalog()
    try:
        new_rs = _resolve_ruleset(new, catalog)
        old_rs = _resolve_ruleset(old, catalog, other_id=new_rs.id)
        old_engine, new_engine = Engine(old_rs, catalog), Engine(new_rs, catalog)
        contexts = []
        if cases:
            cases_file = cases_path(settings.rules_dir, new_rs.id)
            if cases_file.exists():
                contexts += [(c.name, "case", c.context) for c in load_cases(cases_file)]
        if contexts_file is not None:
            contexts += [(name, "recorded", ctx) for name, ctx in load_contexts_jsonl(contexts_file, _now(None))]
    except RuleSetError as exc:
        _fail(exc)
    weights = None
    if recorded is not None or recorded_since or recorded_until or recorded_channel:
        from .decisions import recorded_situations_of
        situations, weights, skipped = recorded_situations_of(
            recorded, recorded_since, recorded_until, recorded_channel)
        contexts += situations
        if skipped:
            _echo(f"{skipped} recorded answers could not be read as contexts and were skipped.",
                  err=True)
    if not contexts:
        _echo("No contexts to compare: add regression cases or give --contexts FILE.jsonl "
              "or --recorded N.", err=True)
        raise click.exceptions.Exit(1)
    report = diff_engines(old_engine, new_engine, progress(contexts, "Comparing contexts"))
    if as_json:
        data = report.as_dict()
        if weights is not None:
            from ..decisions.replay import weighted_summary
            data["recordedTraffic"] = weighted_summary(data["contexts"], weights)
        _json(data)
    else:
        for line in diff_lines(report, _style(), show_all, details, limit or None):
            _echo(line)
        if weights is not None:
            from ..decisions.replay import summary_line, weighted_summary
            _echo(summary_line(weighted_summary(report.as_dict()["contexts"], weights)))
        if report.changed and not (details or show_all):
            _echo(f"Add --details to see what changes in each of the {len(report.changed)} changed contexts.")
    raise click.exceptions.Exit(1 if fail_on_change and report.changed else 0)


# --------------------------------------------------------------------------- lock
@rules.command("lock")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--amend", is_flag=True,
              help="Re-record versions whose content changed (only for versions never activated or released).")
def lock_command(ruleset_id, amend):
    """Record the content hash of every version in rules/<id>.lock.json (commit
    it with the rule set). A recorded version whose content changed is refused:
    bump its version instead."""
    from ..rules import RuleSetError
    from ..rules.authoring.lockfile import lock_rulesets
    from ..rules.repository.layout import lock_path
    from ..rules.model.yamlload import display_path

    settings = _settings()
    if amend:
        # a version that was activated is recorded for good: --amend cannot change what it means
        activated = {(c.ruleset_id, c.version) for c in _lock_preview(settings.rules_dir, ruleset_id)}
        refused = sorted(f"{rid} {version}" for rid, version in activated
                         if version in services().rules.ledger.recorded(rid))
        if refused:
            _echo(f"error: {', '.join(refused)} changed since it was activated: a version that went live "
                  "means one thing forever; give the change a new version (--amend is only for versions "
                  "never activated)", err=True)
            raise click.exceptions.Exit(1)
    try:
        changes = lock_rulesets(settings.rules_dir, ruleset_id, amend, ledger=services().rules.ledger)
    except RuleSetError as exc:
        _fail(exc)
    style = _style()
    for change in changes:
        role = {"refused": "fail", "recorded": "ok", "amended": "warn"}.get(change.action)
        _echo(style(str(change), role) if role else str(change))
    for rid in sorted({c.ruleset_id for c in changes}):
        _echo(f"lock file: {display_path(lock_path(settings.rules_dir, rid))}")
    raise click.exceptions.Exit(1 if any(c.action == "refused" for c in changes) else 0)


def _lock_preview(rules_dir, ruleset_id) -> list:
    """The lock changes `flask rules lock --amend` would make that re-record a changed version."""
    from ..rules.authoring.lockfile import read_lock, version_files
    from ..rules.repository.layout import lock_path

    out = []
    for item in version_files(rules_dir):
        if ruleset_id is not None and item.ruleset_id != ruleset_id:
            continue
        try:
            recorded = read_lock(lock_path(rules_dir, item.ruleset_id)) or {}
        except Exception:  # noqa: BLE001 - lock_rulesets reports a broken lock file itself
            recorded = {}
        if recorded.get(item.version) not in (None, item.hash):
            out.append(item)
    return out


def _refuse_recorded_with_other_content(rules_dir, ruleset_id, working) -> None:
    """registry.VersionChanged (with the next free version) when the working
    copy's version is recorded (locked or activated) with other content: a
    kept copy is written once, so it must be the recorded content."""
    from ..rules.model.common import ruleset_fingerprint
    from ..rules.model.yamlload import load_file
    from ..rules.repository.registry import VersionChanged, next_free_version, recorded_hashes

    doc = load_file(working)
    version = doc.get("version") if isinstance(doc, dict) else None
    recorded = recorded_hashes(rules_dir, services().rules.ledger, ruleset_id)
    found = ruleset_fingerprint(doc) if isinstance(version, str) else None
    if found is not None and recorded.get(version, found) != found:
        taken = set(recorded) | {row["version"] for row in services().rules.versions(ruleset_id)}
        raise VersionChanged(ruleset_id, version, recorded[version], found, next_free_version(version, taken))


@rules.command("keep")
@click.argument("ruleset_id", required=False, metavar="[ID]")
def keep_command(ruleset_id):
    """Keep the working copy rules/<ID>.yaml as rules/versions/<ID>@<VERSION>.yaml
    (before you edit it), so that it stays available to diff and to roll back to."""
    from ..rules import RuleSetError
    from ..rules.authoring.lockfile import keep_version
    from ..rules.model.yamlload import display_path
    from ..rules.repository.layout import working_copy_path

    settings = _settings()
    ruleset_id = ruleset_id or services().rules.status().get("rulesetId")
    try:
        working = working_copy_path(settings.rules_dir, ruleset_id)
    except RuleSetError as exc:
        _fail(exc)
    if not working.exists():
        _echo(f"error: no working copy {display_path(working)}", err=True)
        raise click.exceptions.Exit(1)
    try:
        _refuse_recorded_with_other_content(settings.rules_dir, ruleset_id, working)
        target = keep_version(working)
    except RuleSetError as exc:
        _fail(exc)
    _echo(f"kept {display_path(working)} as {display_path(target)}")
    from ..rules.model.ruleset import peek_header
    from ..rules.authoring.keptcases import keep_cases
    _rid, version = peek_header(working)
    kept_cases = keep_cases(settings.rules_dir, ruleset_id, version) if version else None
    if kept_cases is not None:
        _echo(f"kept its cases as {display_path(kept_cases)}")


# --------------------------------------------------------------------------- versions, activate
def _lock_state(rules_dir, ruleset_id) -> dict:
    from ..rules.authoring.workbench import lock_states
    return lock_states(rules_dir, ruleset_id)


@rules.command("versions")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def versions_command(ruleset_id, as_json):
    """The versions of a rule set (default: the one in service), which one is active and pinned."""
    reco = services()
    reco.rules.refresh()
    ruleset_id = ruleset_id or reco.rules.status().get("rulesetId")
    rows = reco.rules.versions(ruleset_id)
    if not rows:
        _echo(f"No rule set {ruleset_id!r} in {reco.settings.rules_dir}.", err=True)
        raise click.exceptions.Exit(1)
    locks = _lock_state(reco.settings.rules_dir, ruleset_id)
    if as_json:
        _json([{**row, "lock": locks.get(row["version"])} for row in rows])
        return
    table, styles = [], []
    for row in rows:
        state = "active" if row["active"] else ("broken" if not row["valid"] else "")
        if row["pinned"]:
            state += " (pinned)" if state else "pinned"
        table.append((row["version"], row["status"] or "-", state or "-", locks.get(row["version"], "-"), row["file"]))
        styles.append("green" if row["active"] else ("red" if not row["valid"] else None))
    print_table(("VERSION", "STATUS", "STATE", "LOCK", "FILE"), table, row_styles=styles)
    for row in rows:
        for error in row["errors"]:
            _echo(f"  {row['version']}: {error}")
    status = reco.rules.status()
    if not status.get("pinned"):
        _echo(f"No version is pinned: the highest valid version serves ({status.get('version')}).")


@rules.command("activate")
@click.argument("ruleset_id", metavar="ID")
@click.argument("version", required=False)
@click.option("--latest", is_flag=True, help="Unpin: serve the highest valid version from now on.")
def activate_command(ruleset_id, version, latest):
    """Activate VERSION of rule set ID in every worker, without a restart (the
    pointer file in the data directory; use the server's RECO_DATA_DIR).
    Recorded in the activation history the Rule Studio lists."""
    from ..rules import RuleSetError
    from ..rules.repository.layout import pointer_path
    from ..rules.authoring.governance import activate

    if bool(version) == bool(latest):
        raise click.UsageError("give a VERSION, or --latest")
    from ..rules.repository.pointer import Superseded

    reco = services()
    try:
        status = activate(reco.rules, ruleset_id, None if latest else version, f"{_user()} (flask rules)",
                          require_approval=reco.settings.rules_require_approval)
        if status["activation"] is None:
            _echo(f"{ruleset_id} {version} is already active: nothing was done.")
            return
    except RuleSetError as exc:
        _fail(exc)
    except Superseded as exc:
        now = (exc.pointer.get(ruleset_id) or {}).get("version") or "the highest valid version"
        raise click.ClickException(
            f"superseded: {exc}; {ruleset_id} {version or '(latest)'} was NOT activated. "
            f"Now pinned: {now}. Check, then run the command again if it should win.")
    status = status["status"]
    pointer = getattr(reco.rules.pointer, "location", pointer_path(reco.settings.data_dir))
    style = _style()
    if status.get("rulesetId") != ruleset_id:
        _echo(f"Recorded for {ruleset_id}; note that this service serves {status.get('rulesetId')} "
              f"(RECO_RULESET).")
    what = "pinned" if not latest else "unpinned: the highest valid version serves"
    _echo(style(f"{ruleset_id} {status.get('version')} is active ({what}).", "ok"))
    _echo(f"Pointer: {pointer}. Every worker of this host answers with it from its next request on "
          f"(it checks {reco.rules.activator.stamp_path.name} before each request); check with GET /health (rules.hash "
          f"{status.get('hash')}).")
    locks = _lock_state(reco.settings.rules_dir, ruleset_id)
    if locks.get(status.get("version")) not in (None, "recorded"):
        _echo(style(f"note: version {status.get('version')} is {locks[status.get('version')]} in the lock file: "
                    "run `flask rules lint`", "warn"))


@rules.command("history")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def history_command(ruleset_id, as_json):
    """The audit history of a rule set (default: the one in service), newest
    first: every save, record (a version's hash fixed), approval, activation
    and roll back, with who and when (the same list as the Rule Studio's)."""
    from ..rules.authoring.governance import history

    reco = services()
    reco.rules.refresh()
    ruleset_id = ruleset_id or reco.rules.status().get("rulesetId")
    entries = history(reco.rules, ruleset_id)
    if as_json:
        _json(entries)
        return
    if not entries:
        _echo(f"No history recorded for {ruleset_id!r} yet.")
        return
    print_table(("WHEN (UTC)", "WHO", "WHAT", "VERSION", "FROM", "HASH"),
                [(e.get("at", ""), e.get("by", ""), e.get("action", "") + (f" {e['experimentId']}" if e.get("experimentId") else ""),
                  e.get("version") or ("-" if e.get("experimentId") else "(highest)"),
                  e.get("fromVersion") or "-", e.get("hash") or "-") for e in entries])


@rules.command("rollback")
@click.argument("ruleset_id", metavar="ID")
def rollback_command(ruleset_id):
    """Activate the version that served before the current one (the last
    different, healthy version that was not itself rolled back away from), as
    the Rule Studio's "Roll back" does. Recorded in the history."""
    from ..rules import RuleSetError
    from ..rules.repository.pointer import Superseded
    from ..rules.authoring.governance import rollback

    reco = services()
    try:
        done = rollback(reco.rules, ruleset_id, f"{_user()} (flask rules)")
    except RuleSetError as exc:
        _fail(exc)
    except Superseded as exc:
        raise click.ClickException(f"superseded: {exc}; nothing was rolled back")
    entry = done["activation"]
    _echo(_style()(f"{ruleset_id} {entry['version']} is active again (it was {entry['fromVersion']}).", "ok"))
