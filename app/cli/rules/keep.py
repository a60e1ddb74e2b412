"""`flask rules keep`: the working copy kept as rules/versions/<id>@<version>.yaml
(before it is edited), with its cases."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import click

from ...services import services
from .common import current_settings, echo_line, fail
from .group import rules


def _refuse_recorded_with_other_content(rules_dir, ruleset_id, working) -> None:
    """registry.VersionChanged (with the next free version) when the working
    copy's version is recorded (locked or activated) with other content: a
    kept copy is written once, so it must be the recorded content."""
    from ...rules.model.common import ruleset_fingerprint
    from ...rules.model.yamlload import load_file
    from ...rules.repository.registry import VersionChanged, next_free_version, recorded_hashes

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
    from ...rules import RuleSetError
    from ...rules.authoring.lockfile import keep_version
    from ...rules.model.yamlload import display_path
    from ...rules.repository.layout import working_copy_path

    settings = current_settings()
    ruleset_id = ruleset_id or services().rules.status().get("rulesetId")
    try:
        working = working_copy_path(settings.rules_dir, ruleset_id)
    except RuleSetError as exc:
        fail(exc)
    if not working.exists():
        echo_line(f"error: no working copy {display_path(working)}", err=True)
        raise click.exceptions.Exit(1)
    try:
        _refuse_recorded_with_other_content(settings.rules_dir, ruleset_id, working)
        target = keep_version(working)
    except RuleSetError as exc:
        fail(exc)
    echo_line(f"kept {display_path(working)} as {display_path(target)}")
    from ...rules.model.ruleset import peek_header
    from ...rules.authoring.keptcases import keep_cases
    _rid, version = peek_header(working)
    kept_cases = keep_cases(settings.rules_dir, ruleset_id, version) if version else None
    if kept_cases is not None:
        echo_line(f"kept its cases as {display_path(kept_cases)}")

