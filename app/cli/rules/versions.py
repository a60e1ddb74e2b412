"""`flask rules versions` and `flask rules history`: the versions of a rule
set, which one serves, and who changed what, when."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import click

from ...services import services
from ..output import print_table
from .common import echo_line, print_json
from .group import rules


@rules.command("versions")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def versions_command(ruleset_id, as_json):
    """The versions of a rule set (default: the one in service), which one is active and pinned."""
    from ...rules.authoring.workbench import lock_states

    reco = services()
    reco.rules.refresh()
    ruleset_id = ruleset_id or reco.rules.status().get("rulesetId")
    rows = reco.rules.versions(ruleset_id)
    if not rows:
        echo_line(f"No rule set {ruleset_id!r} in {reco.settings.rules_dir}.", err=True)
        raise click.exceptions.Exit(1)
    locks = lock_states(reco.settings.rules_dir, ruleset_id)
    if as_json:
        print_json([{**row, "lock": locks.get(row["version"])} for row in rows])
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
            echo_line(f"  {row['version']}: {error}")
    status = reco.rules.status()
    if not status.get("pinned"):
        echo_line(f"No version is pinned: the highest valid version serves ({status.get('version')}).")



@rules.command("history")
@click.argument("ruleset_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def history_command(ruleset_id, as_json):
    """The audit history of a rule set (default: the one in service), newest
    first: every save, record (a version's hash fixed), approval, activation
    and roll back, with who and when (the same list as the Rule Studio's)."""
    from ...rules.authoring.governance import history

    reco = services()
    reco.rules.refresh()
    ruleset_id = ruleset_id or reco.rules.status().get("rulesetId")
    entries = history(reco.rules, ruleset_id)
    if as_json:
        print_json(entries)
        return
    if not entries:
        echo_line(f"No history recorded for {ruleset_id!r} yet.")
        return
    print_table(("WHEN (UTC)", "WHO", "WHAT", "VERSION", "FROM", "HASH"),
                [(e.get("at", ""), e.get("by", ""), e.get("action", "") + (f" {e['experimentId']}" if e.get("experimentId") else ""),
                  e.get("version") or ("-" if e.get("experimentId") else "(highest)"),
                  e.get("fromVersion") or "-", e.get("hash") or "-") for e in entries])

