"""`flask rules activate` and `flask rules rollback`: which version serves,
in every worker of the host, without a restart; recorded in the history."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import click

from ...services import services
from .common import echo_line, fail, report_style, user_name
from .group import rules


@rules.command("activate")
@click.argument("ruleset_id", metavar="ID")
@click.argument("version", required=False)
@click.option("--latest", is_flag=True, help="Unpin: serve the highest valid version from now on.")
def activate_command(ruleset_id, version, latest):
    """Activate VERSION of rule set ID in every worker, without a restart (the
    pointer file in the data directory; use the server's RECO_DATA_DIR).
    Recorded in the activation history the Rule Studio lists."""
    from ...rules import RuleSetError
    from ...rules.authoring.governance import activate
    from ...rules.authoring.workbench import lock_states

    if bool(version) == bool(latest):
        raise click.UsageError("give a VERSION, or --latest")
    from ...rules.repository.pointer import Superseded

    reco = services()
    try:
        status = activate(reco.rules, ruleset_id, None if latest else version, f"{user_name()} (flask rules)",
                          require_approval=reco.settings.rules_require_approval)
        if status["activation"] is None:
            echo_line(f"{ruleset_id} {version} is already active: nothing was done.")
            return
    except RuleSetError as exc:
        fail(exc)
    except Superseded as exc:
        now = (exc.pointer.get(ruleset_id) or {}).get("version") or "the highest valid version"
        raise click.ClickException(
            f"superseded: {exc}; {ruleset_id} {version or '(latest)'} was NOT activated. "
            f"Now pinned: {now}. Check, then run the command again if it should win.")
    status = status["status"]
    pointer = reco.rules.pointer.location
    style = report_style()
    if status.get("rulesetId") != ruleset_id:
        echo_line(f"Recorded for {ruleset_id}; note that this service serves {status.get('rulesetId')} "
              f"(RECO_RULESET).")
    what = "pinned" if not latest else "unpinned: the highest valid version serves"
    echo_line(style(f"{ruleset_id} {status.get('version')} is active ({what}).", "ok"))
    echo_line(f"Pointer: {pointer}. Every worker of this host answers with it from its next request on "
          f"(it checks {reco.rules.activator.stamp_path.name} before each request); check with GET /health (rules.hash "
          f"{status.get('hash')}).")
    locks = lock_states(reco.settings.rules_dir, ruleset_id)
    if locks.get(status.get("version")) not in (None, "recorded"):
        echo_line(style(f"note: version {status.get('version')} is {locks[status.get('version')]} in the lock file: "
                    "run `flask rules lint`", "warn"))



@rules.command("rollback")
@click.argument("ruleset_id", metavar="ID")
def rollback_command(ruleset_id):
    """Activate the version that served before the current one (the last
    different, healthy version that was not itself rolled back away from), as
    the Rule Studio's "Roll back" does. Recorded in the history."""
    from ...rules import RuleSetError
    from ...rules.repository.pointer import Superseded
    from ...rules.authoring.governance import rollback

    reco = services()
    try:
        done = rollback(reco.rules, ruleset_id, f"{user_name()} (flask rules)")
    except RuleSetError as exc:
        fail(exc)
    except Superseded as exc:
        raise click.ClickException(f"superseded: {exc}; nothing was rolled back")
    entry = done["activation"]
    echo_line(report_style()(f"{ruleset_id} {entry['version']} is active again (it was {entry['fromVersion']}).", "ok"))
