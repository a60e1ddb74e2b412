"""The experiments files in `flask rules lint` and the Studio's findings:
added to the rule lint's report (app/rules/authoring/lint.py LintReport),
so one command checks rule sets, cases, lock files and experiments. Kept
here, not in the rules package, which knows nothing of experiments."""
from __future__ import annotations

from pathlib import Path

from ..rules import load_catalog
from ..rules.model.errors import Problem, RuleSetError
from ..rules.model.yamlload import display_path
from ..rules.repository.layout import EXPERIMENTS_SUFFIX, experiments_files, rules_dir_of
from .model import lint_experiments_file


def _catalog(catalog_dir: Path):
    try:
        return load_catalog(catalog_dir)
    except (RuleSetError, OSError):
        return None          # the rule lint reports the catalog's errors


def add_experiment_findings(report, paths, rules_dir: Path, catalog_dir: Path) -> None:
    """Lint the experiments files among `paths` (files or folders; None: the
    rules folder) into `report` (files, problems, kept sorted by place)."""
    targets: list[Path] = []
    for raw in paths or [rules_dir]:
        path = Path(raw)
        if path.is_dir():
            targets += experiments_files(path)
        elif path.name.endswith(EXPERIMENTS_SUFFIX) and path.exists():
            targets.append(path)
    if not targets:
        return
    catalog = _catalog(catalog_dir)
    found: list[Problem] = []
    for path in targets:
        report.files.append(display_path(path))
        try:
            found += lint_experiments_file(path, rules_dir_of(path), catalog)
        except (RecursionError, ValueError) as exc:
            found.append(Problem(display_path(path), 1, 1, f"the YAML is unreadable ({exc})", None,
                                 "error", "yaml-syntax", "simplify the file"))
    report.problems = sorted(dict.fromkeys([*report.problems, *found]),
                             key=lambda p: (p.file, p.line, p.column, p.severity != "error", p.code or ""))
