"""`flask rules lock`: the content hash of every version, recorded in
rules/<id>.lock.json, so that a version means one thing forever."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import click

from ...services import services
from .common import current_settings, echo_line, fail, report_style
from .group import rules


@rules.command("lock")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--amend", is_flag=True,
              help="Re-record versions whose content changed (only for versions never activated or released).")
def lock_command(ruleset_id, amend):
    """Record the content hash of every version in rules/<id>.lock.json (commit
    it with the rule set). A recorded version whose content changed is refused:
    bump its version instead."""
    from ...rules import RuleSetError
    from ...rules.authoring.lockfile import lock_rulesets
    from ...rules.repository.layout import lock_path
    from ...rules.model.yamlload import display_path

    settings = current_settings()
    if amend:
        # a version that was activated is recorded for good: --amend cannot change what it means
        activated = {(c.ruleset_id, c.version) for c in _lock_preview(settings.rules_dir, ruleset_id)}
        refused = sorted(f"{rid} {version}" for rid, version in activated
                         if version in services().rules.ledger.recorded(rid))
        if refused:
            echo_line(f"error: {', '.join(refused)} changed since it was activated: a version that went live "
                  "means one thing forever; give the change a new version (--amend is only for versions "
                  "never activated)", err=True)
            raise click.exceptions.Exit(1)
    try:
        changes = lock_rulesets(settings.rules_dir, ruleset_id, amend, ledger=services().rules.ledger)
    except RuleSetError as exc:
        fail(exc)
    style = report_style()
    for change in changes:
        role = {"refused": "fail", "recorded": "ok", "amended": "warn"}.get(change.action)
        echo_line(style(str(change), role) if role else str(change))
    for rid in sorted({c.ruleset_id for c in changes}):
        echo_line(f"lock file: {display_path(lock_path(settings.rules_dir, rid))}")
    raise click.exceptions.Exit(1 if any(c.action == "refused" for c in changes) else 0)


def _lock_preview(rules_dir, ruleset_id) -> list:
    """The lock changes `flask rules lock --amend` would make that re-record a changed version."""
    from ...rules.authoring.lockfile import read_lock, version_files
    from ...rules.repository.layout import lock_path

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

