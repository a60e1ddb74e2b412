"""`flask` command groups (click). Each group lives in its own module; this
list is the only place that knows them all."""
from __future__ import annotations

from importlib import import_module

from flask import Flask

COMMAND_GROUPS = (
    "app.cli.rules:rules",
    "app.cli.sales:sales",
    "app.cli.decisions:decisions_cli",
    "app.cli.store:store_cli",
    "app.cli.experiments:experiments_cli",
)


def register_cli(app: Flask) -> None:
    for spec in COMMAND_GROUPS:
        module_name, attribute = spec.split(":")
        app.cli.add_command(getattr(import_module(module_name), attribute))
