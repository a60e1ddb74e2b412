"""bin/setup, which bin/serve and bin/test run first: on a ready checkout it
must be silent and instant, and install again only when pyproject.toml
changed (a newcomer runs it on every serve and test). Run against fake Pythons in a scratch copy, so the
test needs no network and does not touch the project's .venv."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from helpers import ROOT

# A stand-in for a working Python: `-c` probes succeed, `-m venv DIR` makes
# DIR/bin/python (a copy of itself), `-m pip ...` is recorded in pip.log.
FAKE_PYTHON = """#!/usr/bin/env bash
case "$1" in
  -c) exit 0 ;;
  -m)
    if [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
    if [ "$2" = pip ]; then shift 2; echo "$*" >> "$(dirname "$0")/../../pip.log"; exit 0; fi ;;
esac
exit 3
"""
# What a pyenv shim prints for a version that is installed but not selected.
NOISY_SHIM = """#!/usr/bin/env bash
echo "pyenv: $(basename "$0"): command not found" >&2
exit 127
"""


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _setup_copy(tmp_path: Path) -> tuple[Path, dict]:
    project = tmp_path / "project"
    (project / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "setup", project / "bin" / "setup")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    fakes = tmp_path / "fakebin"
    fakes.mkdir()
    _script(fakes / "python3.12", NOISY_SHIM)
    _script(fakes / "python3", FAKE_PYTHON)
    # No pyenv to ask for the real 3.12: the fakes are the only Pythons.
    _script(fakes / "pyenv", "#!/usr/bin/env bash\nexit 1\n")
    env = dict(os.environ, PATH=f"{fakes}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHON", None)
    return project, env


def _run(project: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(project / "bin" / "setup")], env=env,
                          capture_output=True, text=True, timeout=300)


def _pip_calls(project: Path) -> list[str]:
    log = project / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def test_first_run_installs_without_the_probe_errors(tmp_path):
    project, env = _setup_copy(tmp_path)
    done = _run(project, env)
    assert done.returncode == 0, done.stderr
    assert "command not found" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "bin/setup: installing the project and its test tools into .venv"]
    assert any(call.startswith("install -q -e") for call in _pip_calls(project))


def test_ready_checkout_is_silent_and_installs_nothing(tmp_path):
    project, env = _setup_copy(tmp_path)
    assert _run(project, env).returncode == 0
    calls = len(_pip_calls(project))
    again = _run(project, env)
    assert again.returncode == 0
    assert again.stdout == "" and again.stderr == ""
    assert len(_pip_calls(project)) == calls


def test_changed_pyproject_installs_again(tmp_path):
    project, env = _setup_copy(tmp_path)
    assert _run(project, env).returncode == 0
    calls = len(_pip_calls(project))
    with open(project / "pyproject.toml", "a") as handle:
        handle.write("\n# a new dependency would go here\n")
    assert _run(project, env).returncode == 0
    assert len(_pip_calls(project)) > calls
    calls = len(_pip_calls(project))
    assert _run(project, env).returncode == 0
    assert len(_pip_calls(project)) == calls
