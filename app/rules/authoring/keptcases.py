"""Regression cases kept per version: the cases that judged a version are
kept beside its kept copy, so that fixing a case for 1.2.0 does not change the
verdict on 1.0.0 (one cases file used to serve every version).

    rules/<id>.cases.yaml                    the working cases (judge the working copy)
    rules/versions/<id>@<version>.cases.yaml the cases of one version, written once

They are kept when the working copy's version changes (a save in the Studio,
`flask rules keep`) and when a version is activated from the working copy,
whichever comes first, and never replaced (edit them by hand to fix a case of
that version). A version without kept cases is judged by the working cases.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..repository.files import StagedFile
from ..repository.layout import cases_path, kept_cases_path
from .lockfile import MODELINE_RE


def cases_for_version(rules_dir: Path, ruleset_id: str, version: str | None) -> Path:
    """The cases that judge `version`: its kept cases, else the working cases."""
    if version:
        kept = kept_cases_path(rules_dir, ruleset_id, version)
        if kept.is_file():
            return kept
    return cases_path(rules_dir, ruleset_id)


def keep_cases(rules_dir: Path, ruleset_id: str, version: str) -> Path | None:
    """Copy the working cases to rules/versions/<id>@<version>.cases.yaml
    unless that file exists (written once); the editor-schema line is
    rewritten for the deeper folder. The kept path, or None when there are no
    working cases or they were kept before."""
    staged = stage_cases(rules_dir, ruleset_id, version)
    if staged is None:
        return None
    return staged.path if staged.commit() else None


def stage_cases(rules_dir: Path, ruleset_id: str, version: str) -> StagedFile | None:
    """keep_cases' file written and durable beside its name, not yet kept
    (StagedFile: commit() keeps it, discard() drops it), so that a step
    that keeps the cases after another change (an activation) meets a full
    disk (OSError) before it changes anything; None when there are no
    working cases or they were kept before."""
    working = cases_path(rules_dir, ruleset_id)
    target = kept_cases_path(rules_dir, ruleset_id, version)
    if not working.is_file() or target.exists():
        return None
    text = working.read_text(encoding="utf-8")

    def rebase(match) -> str:
        old = match.group(2)
        if old.startswith(("http://", "https://")):
            return match.group(0)
        resolved = (working.parent / old).resolve()
        return match.group(1) + Path(os.path.relpath(resolved, target.parent.resolve())).as_posix()

    return StagedFile(target, MODELINE_RE.sub(rebase, text, count=1).encode("utf-8"))
