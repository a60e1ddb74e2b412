"""`pytest.mark.xdist_group` sends a group's tests to one worker under
`--dist loadgroup` (bin/test): a module's shared server (docs/testing.md,
"Shared servers or a server of its own") is then started once per run, not
once per worker. On pytest 9.2, pytest-xdist 3.8's group suffix is lost
(pytest-dev/pytest-xdist#1386) and the four tests of the probe ran on both
workers: pyproject.toml keeps pytest below 9.2 until that is fixed."""
from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT


def test_a_groups_tests_run_on_one_worker(tmp_path):
    # only pytest-xdist among the plugins: the others (schemathesis,
    # hypothesis) cost each worker seconds of CPU to import
    env = {**os.environ, "XDIST_PROBE_DIR": str(tmp_path), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "xdist", "-p", "no:cacheprovider",
                           "-n", "2", "--dist", "loadgroup", str(ROOT / "tests" / "xdist_group_probe.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert sorted(workers) == ["0", "1", "3", "@2"], workers
    assert len(set(workers.values())) == 1, workers
