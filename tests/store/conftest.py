"""Fixtures for the app.store tests.

Makes the repository root and this directory importable (also for
``spawn``-ed multiprocessing children and subprocesses, which inherit
``sys.path`` / get ``PYTHONPATH``), so the tests work with both
``python -m pytest`` and a bare ``pytest``.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (REPO_ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from app.store import open_store  # noqa: E402


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def store(store_url):
    """The store contract: each test that uses it runs on TinyDB and on
    PostgreSQL (``store_url`` is parametrised in tests/conftest.py)."""
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def tinydb_store(data_dir):
    """For what only the file backend has (files, locks, fork handling)."""
    s = open_store(data_dir)
    yield s
    s.close()


@pytest.fixture
def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    return env
