"""The rule set a command names: a file, `ID@VERSION`, a bare `VERSION`
(of the rule set in service, or of the other side of a diff), or
`git:REV:PATH` (a committed file)."""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` loads this package through app/cli/__init__.py.

import subprocess
from pathlib import Path

import click

from ...services import services
from .common import current_settings


def resolve_ruleset(spec: str, catalog, other_id: str | None = None):
    """A rule set from a file, `ID@VERSION`, a bare VERSION, or `git:REV:PATH`."""
    from ...rules import RuleSetError
    from ...rules.model.common import VERSION_RE
    from ...rules.model.ruleset import load_ruleset, parse_ruleset, peek_header
    from ...rules.repository.layout import rule_files

    settings = current_settings()
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

