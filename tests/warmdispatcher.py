"""The event dispatcher (`python -m app.events dispatch`) of a test server,
forked from its warm gunicorn master instead of a new interpreter.

Why: the master starts the dispatcher when ready (gunicorn.conf.py,
app/events/process.py Supervisor), and a new interpreter spent 0.6 s of CPU
on TinyDB, 1.0 s on PostgreSQL, nearly all of it importing structlog, rich,
pydantic-settings, marshmallow, psycopg ...: 17 % of the suite's CPU went
into dispatchers starting. A master forked from the gunicorn zygote
(tests/cliprocess.py) has imported those already, so its dispatcher is
forked from it, as the master itself was forked from the zygote.

`install()` runs in such a master before gunicorn does (cliprocess._child);
it sets `Supervisor.start_process` (the product's seam: how the supervisor
starts the process, subprocess.Popen's signature) once app.events.process
is imported (not before: it imports prometheus-client, which must see the
PROMETHEUS_MULTIPROC_DIR that gunicorn.conf.py sets). Only the first start
is forked: from the master's main thread while it is the only thread (at
`when_ready`, before the supervisor's watcher thread and the workers). A
restart (from the watcher thread: forking a threaded process is unsafe), a
command other than `[sys.executable, "-m", "app.events", "dispatch"]`, or an
environment that changes what the interpreter read at its start
(cliprocess.STARTUP_VARIABLES) starts a new interpreter as before.

The forked child becomes the dispatcher as a Popen'd one would be:

* file descriptors: 0-2 the master's (Popen's default: inherited); every
  other one the master had is released, as close_fds=True does, so no
  listening socket or pipe of the master stays open in the dispatcher after
  the master is gone. They are replaced by /dev/null rather than closed, so
  that a master's object collected later in the child (a socket, a file)
  closes /dev/null, never a descriptor the dispatcher opened since;
* signals: handlers the master installed (gunicorn's, SIGCHLD's) back to
  the default, as exec does; ignored ones stay ignored, SIGINT raises
  KeyboardInterrupt, the wake-up fd is unset (a new interpreter's state);
* session and process group the master's (Popen without
  start_new_session/process_group does not call setsid or setpgid): a
  signal to the master's group (ServiceProcess.kill) reaches it too;
* `python -m`: the environment given (os.environ), sys.argv, sys.path as
  the master's interpreter had it at its start, runpy of app.events as
  __main__; its exit status from SystemExit (an uncaught exception: the
  traceback, 1); non-daemon threads joined, atexit handlers run (the
  master's are dropped), then os._exit;
* /proc/<pid>/cmdline reads `<python> -m app.events dispatch` (followed by
  empty arguments: the master's argument area is longer), by which tests
  and tools tell the dispatcher from the workers. What it cannot have:
  /proc/<pid>/environ is the zygote's (the kernel's copy from the last
  exec), and the modules the master had imported stay imported.

The master gets a `ForkedDispatcher`: the part of subprocess.Popen the
supervisor uses (pid, args, returncode, poll, wait(timeout), send_signal,
terminate, kill), with Popen's behaviour when gunicorn's reaper
(waitpid(-1)) took the exit status first: returncode 0.
tests/test_warmdispatcher.py compares it with an exec'd one.
"""
from __future__ import annotations

import atexit
import ctypes
import importlib.abc
import importlib.util
import logging
import os
import select
import signal
import subprocess
import sys
import threading

from cliprocess import PopenSignals, run_as_main

MODULE = "app.events.process"
#: STARTUP_VARIABLES that a module reads on import rather than the interpreter
#: at start: in the master they hold what gunicorn.conf.py set before the import
READ_ON_IMPORT = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def install(startup_variables: tuple[str, ...], started_with: dict) -> None:
    """In a master forked from the zygote, before gunicorn runs (its sys.path
    set as `python -m` sets it): fork its dispatcher's first start (see the
    module). `started_with`: the STARTUP_VARIABLES of the environment its
    interpreter started in (the zygote's)."""
    assert MODULE not in sys.modules, f"{MODULE} must be imported by the master itself"
    path = list(sys.path)

    def start_process(command, **options):
        if _forkable(command, options, started_with, startup_variables):
            return _fork(list(command), options["env"], path)
        return subprocess.Popen(command, **options)

    def patch(module):
        module.Supervisor.start_process = staticmethod(start_process)

    sys.meta_path.insert(0, _AfterImport(MODULE, patch))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `then(module)` once `name` has been imported (no sooner)."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            self.then(module)
        spec.loader.exec_module = exec_module
        return spec


def _forkable(command, options, started_with: dict, startup_variables) -> bool:
    if list(options) != ["env"] or list(command) != [sys.executable, "-m", "app.events", "dispatch"]:
        return False
    if threading.current_thread() is not threading.main_thread() or threading.active_count() != 1:
        return False
    if len(os.listdir("/proc/self/task")) != 1:      # a thread Python does not know of
        return False
    env = options["env"]
    for name in {*env, *started_with, *os.environ}:
        if not name.startswith(startup_variables):
            continue
        had = os.environ.get(name) if name in READ_ON_IMPORT else started_with.get(name)
        if env.get(name) != had:
            return False
    return True


def _fork(command: list[str], env: dict, path: list[str]) -> "ForkedDispatcher":
    for stream in (sys.stdout, sys.stderr):
        stream.flush()             # or the child writes the master's buffered output again
    pid = os.fork()
    if pid == 0:
        _become(command, env, path)            # never returns
    return ForkedDispatcher(pid, command)


def _become(command: list[str], env: dict, path: list[str]) -> None:
    status = 1
    try:
        _release_descriptors()
        _default_signals()
        _set_cmdline(command)
        atexit._clear()
        atexit.register(logging.shutdown)    # as logging's import registers it
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path
        sys.path[0] = os.getcwd()           # `python -m`: the working directory first
        sys.argv = ["-m", *command[3:]]
        status = run_as_main(command[2])
    finally:
        os._exit(status)


def _release_descriptors() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in sorted(int(name) for name in os.listdir("/proc/self/fd")):
        if fd > 2 and fd != null:
            try:
                os.dup2(null, fd, inheritable=False)
            except OSError:
                pass                          # the listing's own descriptor, gone
    os.close(null)


def _default_signals() -> None:
    signal.set_wakeup_fd(-1)
    for number in signal.valid_signals():
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        if callable(handler):
            signal.signal(number, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) == signal.SIG_DFL:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _set_cmdline(command: list[str]) -> None:
    """Write `command` over this process's argument area, which
    /proc/<pid>/cmdline reads (arg_start, arg_end: /proc/<pid>/stat fields
    48-49, proc(5)), NUL-padded; left as it is when it does not fit."""
    with open("/proc/self/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])
    text = b"\0".join(os.fsencode(part) for part in command) + b"\0"
    if start and len(text) <= end - start:
        ctypes.memmove(start, text.ljust(end - start, b"\0"), end - start)


class ForkedDispatcher(PopenSignals):
    """The part of subprocess.Popen that app/events/process.py uses, for a
    child this master forked."""

    def __init__(self, pid: int, args: list[str]):
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._lock = threading.Lock()
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:       # already exited and reaped by gunicorn
            self._pidfd = None

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    # reaped by someone else (gunicorn's waitpid(-1)): its
                    # status is lost, and subprocess.Popen reports 0 then too
                    self._exited(0)
                else:
                    if pid:
                        self._exited(os.waitstatus_to_exitcode(status))
            return self.returncode

    def _exited(self, code: int) -> None:
        # the pidfd stays open (one per master: only the first start is
        # forked), so a wait() selecting on it never meets a reused number
        self.returncode = code

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is not None:
            return self.returncode
        pidfd = self._pidfd
        if pidfd is not None:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout)
        if self.poll() is None:               # readable: it has exited
            with self._lock:
                if self.returncode is None:
                    try:
                        _, status = os.waitpid(self.pid, 0)
                        self._exited(os.waitstatus_to_exitcode(status))
                    except ChildProcessError:
                        self._exited(0)
        return self.returncode

