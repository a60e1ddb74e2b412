"""app/events/process.py's Supervisor on its own, with the product's way of
starting a process (subprocess.Popen, as in production: the test servers'
masters fork their dispatcher's first start instead, tests/warmdispatcher.py):
it sees its dispatcher's exit and starts it again, kills one that hung
(its alive file older than `hung_after`), and holds no descriptor of a
process it no longer watches. Both ways it waits: on a pidfd (Linux 5.3+)
and, where there is none, polling Popen.wait as before."""
from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from app.events import process
from helpers import PATIENCE, wait_until


def pidfds() -> int:
    """How many pidfds this process holds (proc(5): anon_inode:[pidfd])."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[pidfd]":
                count += 1
        except OSError:
            pass
    return count


class Log:
    """The supervisor's logger: what it said, in order."""

    def __init__(self):
        self.lines: list[str] = []

    def info(self, message, *args):
        self.lines.append(message % args)

    error = info


@pytest.fixture(params=["pidfd", "polling"])
def supervisor(request, monkeypatch):
    """A Supervisor whose dispatcher is whatever `started` (a list of
    `sh -c` scripts, one per start, the last one repeated) says; its
    `.started` holds the Popen objects it got."""
    if request.param == "pidfd":
        probe = process._pidfd(os.getpid())
        if probe is None:
            pytest.skip("no pidfd_open here (Linux before 5.3)")
        os.close(probe)
    else:
        monkeypatch.setattr(process, "_pidfd", lambda pid: None)
    monkeypatch.setenv(process.WAKE_ENV, "")         # start() sets it for the workers
    monkeypatch.setattr(process, "RESTART_DELAY_SECONDS", 0.2)
    before = pidfds()
    watcher = process.Supervisor(logger=Log())
    watcher.scripts = []
    watcher.started = []

    def start_process(command, env):
        assert command[1:] == ["-m", "app.events", process.COMMAND] and env[process.ALIVE_ENV]
        script = watcher.scripts[min(len(watcher.started), len(watcher.scripts) - 1)]
        child = subprocess.Popen(["sh", "-c", script])
        watcher.started.append(child)
        return child

    watcher.start_process = start_process
    yield watcher
    watcher.stop()
    for child in watcher.started:
        if child.poll() is None:
            child.kill()
            child.wait()
    for thread in threading.enumerate():
        if thread.name == "event-dispatcher-supervisor":
            thread.join(PATIENCE)
            assert not thread.is_alive(), "the supervisor's thread did not end with stop()"
    assert pidfds() == before, "a pidfd was left open"


def test_an_exited_dispatcher_is_seen_and_started_again(supervisor):
    supervisor.scripts = ["exit 3", "exec sleep 600"]
    supervisor.start()
    assert wait_until(lambda: len(supervisor.started) == 2, PATIENCE), supervisor.log.lines
    assert supervisor.started[0].returncode == 3
    assert "event dispatcher process exited (3); starting it again" in supervisor.log.lines
    assert supervisor.started[1].poll() is None


def test_a_hung_dispatcher_is_killed_and_started_again(supervisor):
    supervisor.scripts = ["exec sleep 600"]        # alive, never touches its alive file
    supervisor.hung_after = 1.0
    supervisor.start()
    assert wait_until(lambda: len(supervisor.started) >= 2, PATIENCE), supervisor.log.lines
    first = supervisor.started[0]
    assert first.returncode == -signal.SIGKILL
    assert any(line.startswith(f"event dispatcher process (pid {first.pid}) silent for")
               for line in supervisor.log.lines), supervisor.log.lines


def test_stop_ends_the_dispatcher_and_is_not_taken_for_an_exit(supervisor):
    supervisor.scripts = ["exec sleep 600"]
    supervisor.start()
    supervisor.stop()
    assert supervisor.started[0].wait(PATIENCE) == -signal.SIGTERM
    for thread in threading.enumerate():
        if thread.name == "event-dispatcher-supervisor":
            thread.join(PATIENCE)
    assert len(supervisor.started) == 1, supervisor.log.lines      # not started again
