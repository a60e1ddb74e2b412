"""Authoring tools for rule writers: lint (with analysis), regression cases,
contexts, diff between versions, lock files and the text reports the CLI and
the admin API print. The runtime (model, engine, repository, service) never
imports this package (the rules-layers contract of .importlinter, checked by
tests/test_import_contracts.py).
"""
