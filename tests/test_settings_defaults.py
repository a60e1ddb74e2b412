"""Each setting's default has one home, its field in app/config.py's
Settings: a parameter that the code fills from a setting
(`Part(x=settings.field)`, or positionally) declares no default of its own,
which would be a second copy that drifts (a tool or test building the part
bare would run with another value than the service). It may default to
`setting_default("field")`, which reads the field, or to None where None
means something else ("off").

Found from the call sites over all of app/, so a new constructor that takes
a setting is checked too; a call through `**options` is followed to where
the options go (open_store -> PostgresStore)."""
from __future__ import annotations

import ast

from helpers import ROOT

from app.config import Settings, setting_default


def _functions() -> dict[str, list[tuple[str, ast.FunctionDef]]]:
    """name -> (file, def) of every function in app/; a class's name maps to
    its __init__."""
    found: dict[str, list] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, []).append((where, node))
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        found.setdefault(node.name, []).append((where, item))
    return found


def _setting_of(node: ast.expr) -> str | None:
    """`settings.FIELD` or `<...>.settings.FIELD`: FIELD."""
    if isinstance(node, ast.Attribute) and node.attr in Settings.model_fields:
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        if name == "settings":
            return node.attr
    return None


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _params(function: ast.FunctionDef) -> tuple[list[ast.arg], dict[str, ast.expr | None]]:
    args = function.args
    positional = args.posonlyargs + args.args
    defaults: dict[str, ast.expr | None] = {a.arg: None for a in positional + args.kwonlyargs}
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        defaults[arg.arg] = default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        defaults[arg.arg] = default
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    return positional, defaults


def _own_default(default: ast.expr | None, field: str) -> bool:
    """Whether `default` is a value of its own (not absent, None, or
    setting_default(field))."""
    if default is None or (isinstance(default, ast.Constant) and default.value is None):
        return False
    return not (isinstance(default, ast.Call) and _callee(default) == "setting_default"
                and [ast.literal_eval(a) for a in default.args] == [field])


def linked_parameters() -> list[tuple[str, str, str, bool]]:
    """(file:line, function, parameter, field) of every parameter app/ fills
    from a setting, and whether it declares a default of its own."""
    functions = _functions()
    found = set()

    def check(name: str, given: dict[str, str], depth: int = 0) -> None:
        for where, function in functions.get(name, []):
            _positional, defaults = _params(function)
            rest = function.args.kwarg.arg if function.args.kwarg else None
            forwarded = {}
            for param, field in given.items():
                if param in defaults:
                    found.add((f"{where}:{function.lineno}", name, param, field,
                               _own_default(defaults[param], field)))
                elif rest is not None:
                    forwarded[param] = field
            if forwarded and depth < 3:
                for call in ast.walk(function):
                    # `**options`, or `**{**defaults, **options}`
                    if isinstance(call, ast.Call) and any(
                            k.arg is None and any(isinstance(n, ast.Name) and n.id == rest for n in ast.walk(k.value))
                            for k in call.keywords):
                        check(_callee(call), forwarded, depth + 1)

    for path in sorted((ROOT / "app").rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(call, ast.Call) or _callee(call) not in functions:
                continue
            given = {k.arg: _setting_of(k.value) for k in call.keywords if k.arg and _setting_of(k.value)}
            for _where, function in functions[_callee(call)]:
                positional, _defaults = _params(function)
                for arg, value in zip(positional, call.args):
                    if _setting_of(value):
                        given.setdefault(arg.arg, _setting_of(value))
            if given:
                check(_callee(call), given)
    return sorted(found)


def test_no_parameter_filled_from_a_setting_repeats_its_default():
    repeated = [f"{where} {name}({param}=...) repeats the default of {Settings.variable(field)}: "
                "take it from the settings" for where, name, param, field, own in linked_parameters() if own]
    assert repeated == []


def test_the_check_sees_the_parts_built_from_settings():
    """The parts this check was written for are found from their call sites,
    through open_store's options too (a check that found none would pass
    for nothing)."""
    linked = {(name, param): field for _where, name, param, field, _own in linked_parameters()}
    assert linked[("DecisionLog", "batch_size")] == "decision_batch_size"
    assert linked[("PostgresStore", "pool_size")] == "store_pool_size"
    assert linked[("configure_logging", "fmt")] == "log_format"
    assert linked[("RuleService", "check_interval")] == "rules_check_interval"
    assert setting_default("decision_batch_size") == Settings.model_fields["decision_batch_size"].default
