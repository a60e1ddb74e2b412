"""/health's `rules.workers` lists the processes that answer requests on this
host, not every process that built the app: a `flask` command run on the
host (an operator's `flask shell`, a long `flask rules diff`) loads the rule
set too, but it answers nobody, and listed beside the workers it showed as
a worker of its own (serving whatever it loaded: a false disagreement while
an activation went on) and left its file behind when it exited."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from helpers import ROOT, wait_until

pytestmark = pytest.mark.backends("tinydb", reason="the served-versions files of one host; the store plays no part")


def gunicorn_workers(service) -> list[int] | None:
    workers = requests.get(service.url + "/health", timeout=10).json()["rules"]["workers"]
    return sorted(w["pid"] for w in workers) if len(workers) == 2 else None


def test_a_flask_command_on_the_host_is_not_listed_as_a_worker(make_server, tmp_path):
    service = make_server(data_dir=tmp_path / "data", workers=2)
    workers = wait_until(lambda: gunicorn_workers(service), timeout=60)
    assert workers, "the server's two workers never showed in /health"
    shell = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "shell"], cwd=ROOT, env=service.env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        shell.stdin.write("print('app ' + 'loaded', flush=True)\n")
        shell.stdin.flush()
        lines = []
        while "app loaded" not in "".join(lines):
            line = shell.stdout.readline()
            assert line, "flask shell exited: " + "".join(lines)
            lines.append(line)
        listed = [w["pid"] for w in requests.get(service.url + "/health", timeout=10).json()["rules"]["workers"]]
        assert shell.pid not in listed
        assert sorted(listed) == workers
    finally:
        shell.stdin.close()
        shell.wait(60)
    assert sorted(int(path.stem) for path in (tmp_path / "data" / "workers").glob("*.json")) == workers
