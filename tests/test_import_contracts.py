"""The layering of app/ (.importlinter: one layer per concern, each importing
only the layers below it; the rules package free of HTTP; domain code free of
Flask's request state), checked by import-linter over every module, imports
inside functions included.

The second test plants one wrong-way import of each kind the layering
forbids in a copy of app/ and checks that import-linter reports every one of
them, so a contract that stopped catching its kind would fail here."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the command line of lint-imports (its options are stable across import-linter 2.x)
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command(['--no-cache'])"

# (module that gets the import, the import, the module it names) -- a late
# import inside a function where the issue found one, a top-level one elsewhere
PLANTED = [
    ("app.config", "def _planted():\n    from .store import open_store\n", "app.store"),
    ("app.errors", "from .store.base import StoreUnavailable\n", "app.store.base"),
    ("app.store.base", "def _planted():\n    from ..rules.repository import files\n", "app.rules.repository.files"),
    ("app.rules.service.rule_service", "from ...observability.metrics import observe_reload\n",
     "app.observability.metrics"),
    ("app.observability.scrape", "from ..recommend.jobs import JOBS\n", "app.recommend.jobs"),
    ("app.resources.service", "from ..events.records import EVENTS\n", "app.events.records"),
    ("app.recommend.jobs", "def _planted():\n    from ..decisions.recording import record_decision\n",
     "app.decisions.recording"),
    ("app.api.rules_admin", "from ..studio import init_app\n", "app.studio"),
    ("app.cli.rules.explain", "def _planted():\n    from ...studio import init_app\n", "app.studio"),
    ("app.studio", "from ..api import tmf\n", "app.api.tmf"),
    ("app.rules.engine.engine", "from ..authoring import lint\n", "app.rules.authoring.lint"),
    ("app.rules.model.common", "from flask import request\n", "flask"),
    ("app.events.bus", "from flask import g\n", "flask"),
]


def run_lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd), "NO_COLOR": "1", "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-c", LINT], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_every_import_in_app_keeps_the_contracts():
    done = run_lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def module_file(root: Path, module: str) -> Path:
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_a_planted_wrong_way_import_of_each_kind_is_reported(tmp_path):
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__", "spec"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    expected = []
    for module, code, target in PLANTED:
        path = module_file(tmp_path, module)
        text = path.read_text(encoding="utf-8")
        line = text.count("\n") + 1 + code.rstrip("\n").count("\n")
        path.write_text(text + code, encoding="utf-8")
        expected.append(f"{module} -> {target} (l.{line})")
    done = run_lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = " ".join(done.stdout.split())
    missed = [one for one in expected if one not in report]
    assert missed == [], (missed, done.stdout)
