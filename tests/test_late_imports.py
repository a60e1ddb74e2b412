"""An import inside a function is there to break a real import cycle or to
keep start-up light, and a comment says which (docs/layers.md): on its line,
above its block of imports, or once for the module ("... imported inside the
functions that use them, to keep start-up light"). Any other import goes at
the top, where a reader and import-linter's contracts see it first."""
from __future__ import annotations

import ast
import re

from helpers import ROOT

#: a module-level note that covers every late import of the module
MODULE_REASON = re.compile(r"inside (?:the|their) functions?[\s\S]{0,120}?(?:start-up|cycle)")


def unexplained_late_imports() -> list[str]:
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if MODULE_REASON.search(text):
            continue
        lines = text.splitlines()
        for function in ast.walk(ast.parse(text)):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                first = node.lineno - 1
                while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                    first -= 1
                if "#" not in lines[node.lineno - 1] and not (first > 0 and lines[first - 1].strip().startswith("#")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_every_import_inside_a_function_says_why():
    found = unexplained_late_imports()
    assert found == [], "move to the top, or say which cycle or start-up cost it avoids:\n" + "\n".join(found)
