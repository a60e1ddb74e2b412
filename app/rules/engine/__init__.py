"""The engine: a rule set compiled to durable-rules (compiler, durable_runtime)
and the policies that turn fired rules into a ranked recommendation
(policies); `Engine` (engine.py) ties them together for one rule set version.
Imports only app.rules.model.
"""
from .engine import Engine

__all__ = ["Engine"]
