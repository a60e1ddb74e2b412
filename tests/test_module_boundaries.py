"""Module boundaries outside the rules package: an API module imports no other
API module (only the shared TMF helpers in app/api/tmf.py, the admin API's
argument parsing in app/api/admin_arguments.py, and a blueprint's own schemas,
app/api/<blueprint>_schemas.py), and the CLI imports no API module; what they share lives in the domain (app/recommend, app/sales)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
SHARED_API_HELPERS = {"app.api.tmf", "app.api.admin_arguments"}


def api_imports(path: Path) -> list[tuple[int, str]]:
    package = ".".join(path.relative_to(APP.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names] if not node.module or target == "app.api" else [target]
            found.extend((node.lineno, name) for name in names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
    return [(line, name) for line, name in found if name.startswith("app.api.") or name == "app.api"]


MODULES = sorted((APP / "api").glob("*.py")) + sorted((APP / "cli").rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.relative_to(APP).as_posix() for p in MODULES])
def test_no_api_module_is_imported_by_another_api_module_or_the_cli(path):
    allowed = SHARED_API_HELPERS | {f"app.api.{path.stem}_schemas"} if path.parent.name == "api" else set()
    wrong = [(line, name) for line, name in api_imports(path) if name not in allowed]
    assert wrong == []
