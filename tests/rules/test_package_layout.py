"""The rules package keeps its seams: the runtime (model, engine, repository,
service) never imports the authoring tools, each layer imports only the layers
below it, and no module imports another module's private names.

Read from the source (every import statement, including late ones inside
functions) and checked once more by importing the runtime in a fresh
interpreter, so a lazy import hidden in a function cannot slip through."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "app" / "rules"

# which subpackages of app.rules each subpackage may import
ALLOWED = {
    "model": set(),
    "engine": {"model"},
    "repository": {"model"},
    "service": {"model", "engine", "repository"},
    "authoring": {"model", "engine", "repository", "service"},
}
RUNTIME = ("model", "engine", "repository", "service")


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of every import in a module of app.rules."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = parts[:-1]                       # a module's package; for __init__.py the package itself
    return imports_in(path.read_text(encoding="utf-8"), ".".join(package))


def imports_in(source: str, package: str) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["app", "rules"] and parts[2] in ALLOWED else None


MODULES = sorted(RULES.rglob("*.py"))


def test_the_package_has_the_five_parts_and_nothing_loose():
    loose = sorted(p.name for p in RULES.glob("*.py") if p.name != "__init__.py")
    assert loose == []
    assert {p.name for p in RULES.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(RULES)) for p in MODULES])
def test_each_layer_imports_only_the_layers_below_it(path):
    own = layer_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
    allowed = ALLOWED[own] | {own} if own else set(RUNTIME)   # app/rules/__init__.py: the runtime facade
    wrong = [(line, target) for line, target, _names in imports_of(path)
             if target.startswith("app.rules.") and layer_of(target) not in allowed]
    assert wrong == [], f"{path.relative_to(ROOT)} imports across the layering: {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(RULES)) for p in MODULES])
def test_no_private_name_is_imported_from_another_module(path):
    private = [(line, target, name) for line, target, names in imports_of(path)
               for name in names if target.startswith("app.") and name.startswith("_")]
    assert private == []


def test_importing_the_runtime_loads_no_authoring_tool():
    code = ("import sys, app.rules, app.rules.service, app.rules.repository.layout, app.rules.repository.files\n"
            "print(sorted(m for m in sys.modules if m.startswith('app.rules.authoring')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_check_itself_sees_a_late_relative_import():
    """A late import inside a function, written relative, still counts."""
    targets = imports_in("def f():\n    from ..authoring.lint import lint\n    from ..model.common import _x\n",
                         "app.rules.engine")
    assert (2, "app.rules.authoring.lint", ["lint"]) in targets
    assert layer_of("app.rules.authoring.lint") == "authoring" and "authoring" not in ALLOWED["engine"]
    assert (3, "app.rules.model.common", ["_x"]) in targets
