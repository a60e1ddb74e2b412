"""The event dispatcher in a process of its own, next to the gunicorn workers.

Why: in a worker, the dispatcher's loop and its delivery threads share the
interpreter lock with the requests, so with 1,000 hubs every create waited
behind serialising and sending notifications (BENCHMARKS.md "Event
delivery"). In its own process, at a lower CPU priority
(`RECO_EVENT_DISPATCHER_NICE`, default 10: the kernel gives the requests the
cores first), the requests never wait for its lock, and delivery uses the
time the requests leave.

How (RECO_EVENT_DISPATCHER=process, the default under gunicorn.conf.py):

* the gunicorn master starts it when ready (`when_ready`), before the
  workers, and a supervisor thread of the master starts it again one second
  after it exits; it ends with the master (`on_exit`; and it stops by itself
  when its parent is gone, so a master killed with SIGKILL leaves none);
* workers do not run a dispatcher; after a commit they wake this one with
  one datagram on a UNIX socket (`RECO_EVENT_WAKE_SOCKET`, set by the
  master; a lost datagram costs at most `event_poll_seconds`);
* several hosts (PostgreSQL) each run one; they share the hubs through the
  store's claims exactly as workers did;
* a hung one (stopped, deadlocked, its loop stuck) is killed and started
  again: its loop touches a file (`RECO_EVENT_ALIVE_FILE`) with each
  heartbeat (status.Heartbeat), and the supervisor kills it (SIGKILL, which
  also ends a stopped process and frees its TinyDB file locks) when the file
  is older than twice the lease (`hung_after_seconds`). The new one frees
  the dead one's leases at once (lease.release_dead_leases). So a
  single host (TinyDB) recovers from a hung dispatcher too, and another
  host's dispatcher (PostgreSQL) takes its hubs sooner, after the lease.

RECO_EVENT_DISPATCHER=workers keeps the dispatcher in every worker (as
under a server other than gunicorn, or `flask run`)."""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ..config import Settings
from ..observability.logs import configure_logging
from ..observability.store import instrument_store
from ..store import open_configured_store
from .lease import lease_seconds

log = logging.getLogger(__name__)

WAKE_ENV = "RECO_EVENT_WAKE_SOCKET"
#: `python -m app.events dispatch`: the process's command line, by which
#: tools that count a master's workers leave it out
COMMAND = "dispatch"
PARENT_ENV = "RECO_EVENT_DISPATCHER_PARENT"
ALIVE_ENV = "RECO_EVENT_ALIVE_FILE"
RESTART_DELAY_SECONDS = 1.0
WATCH_SECONDS = 1.0


def touch(path: str | None) -> None:
    """Mark the dispatcher's loop alive now; never raises."""
    if path:
        try:
            with open(path, "ab"):
                pass
            os.utime(path)
        except OSError:
            pass


def hung_after_seconds(environ=os.environ) -> float:
    """How long a silent dispatcher process is left before it is killed:
    twice the lease (lease.lease_seconds), so its hubs are free by then."""
    return 2 * lease_seconds(Settings.from_env(environ))


def send_wake(path: str) -> None:
    """One datagram to the dispatcher process; never blocks, never raises."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"w", path)
    except OSError:
        pass             # not running (restarting) or its queue full: it polls


class Supervisor:
    """Starts the dispatcher process and starts it again when it exits.

    `start_process(command, env=...)` starts it: subprocess.Popen, or a
    callable with its signature returning an object with Popen's pid, poll,
    wait(timeout), terminate, kill and returncode. The tests' gunicorn
    masters, forked from a warm interpreter, fork the first start from the
    master instead of starting a new interpreter (tests/warmdispatcher.py)."""

    start_process = staticmethod(subprocess.Popen)

    def __init__(self, logger=log):
        self.log = logger
        self.folder = tempfile.mkdtemp(prefix=f"reco-events-{os.getpid()}-")
        self.wake_path = os.path.join(self.folder, "wake")
        self.alive_path = os.path.join(self.folder, "alive")
        self.hung_after = hung_after_seconds()
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        os.environ[WAKE_ENV] = self.wake_path       # inherited by the workers forked next
        self._spawn()
        threading.Thread(target=self._watch, name="event-dispatcher-supervisor",
                         daemon=True).start()

    def _spawn(self) -> None:
        touch(self.alive_path)           # its start-up counts as alive
        self.process = self.start_process([sys.executable, "-m", "app.events", COMMAND],
                                          env={**os.environ, WAKE_ENV: self.wake_path,
                                               ALIVE_ENV: self.alive_path,
                                               PARENT_ENV: str(os.getpid())})
        self.log.info("event dispatcher process started (pid %s)", self.process.pid)

    def _silent_for(self) -> float:
        try:
            return time.time() - os.stat(self.alive_path).st_mtime
        except OSError:
            return 0.0

    def _wait(self) -> int:
        """Until the process exits; kills it when it has hung. Between two
        looks (WATCH_SECONDS) the thread sleeps in poll() on a pidfd
        (Linux 5.3+), which wakes when the process exits (poll, not select:
        select refuses a descriptor numbered 1024 or more): Popen.wait(timeout)
        polls waitpid every 50 ms instead, which was most of an idle master's
        CPU (0.13 s a minute, the master, worker and dispatcher of an idle
        server 0.22 s). Without pidfds (an older kernel) it polls as before."""
        pidfd = _pidfd(self.process.pid)
        exited = select.poll()
        if pidfd is not None:
            exited.register(pidfd, select.POLLIN)
        try:
            while True:
                if pidfd is None:
                    try:
                        return self.process.wait(WATCH_SECONDS)
                    except subprocess.TimeoutExpired:
                        pass
                elif exited.poll(WATCH_SECONDS * 1000):
                    return self.process.wait()
                silent = self._silent_for()
                if silent > self.hung_after and not self._stopping.is_set():
                    self.log.error("event dispatcher process (pid %s) silent for %.0f s: killing it",
                                   self.process.pid, silent)
                    self.process.kill()
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self._wait()
            if self._stopping.wait(RESTART_DELAY_SECONDS):
                return
            self.log.error("event dispatcher process exited (%s); starting it again", code)
            self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for path in (self.wake_path, self.alive_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        try:
            os.rmdir(self.folder)
        except OSError:
            pass


def _pidfd(pid: int) -> int | None:
    """A descriptor that poll() reports readable once `pid` has exited, or
    None (no pidfd_open here, or the process is gone already: Popen.wait
    then answers at once)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def wanted(environ=os.environ) -> bool:
    """Whether gunicorn should run the dispatcher as its own process."""
    settings = Settings.from_env(environ)
    return settings.background_workers and settings.event_dispatcher == "process"


def main() -> int:
    """The process: an EventBus on the service's store, its dispatcher
    started, woken by datagrams; ends on SIGTERM or when its parent is gone.
    Not the whole app: delivery needs the store and the settings, and the
    app would also load and compile the rule files (at 10,000 rules some
    330 MiB and seconds of CPU at every start) for nothing."""
    from .bus import EventBus       # here, not above: bus imports this module (send_wake), a cycle

    # the master's pid as it gave it: it may die before this process runs
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    try:
        os.nice(settings.event_dispatcher_nice)
    except OSError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = instrument_store(open_configured_store(settings))
    dispatcher = EventBus(store, settings).dispatcher
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    path = os.environ.get(WAKE_ENV)
    if path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            os.unlink(path)
        except OSError:
            pass
        sock.bind(path)

        def listen():
            while True:
                try:
                    sock.recv(64)
                except OSError:
                    return
                dispatcher.wake()
        threading.Thread(target=listen, name="event-wake", daemon=True).start()
    dispatcher.start()
    while not stop.wait(1.0):
        if os.getppid() != parent:          # the master is gone
            break
    dispatcher.stop()
    store.close()
    return 0
