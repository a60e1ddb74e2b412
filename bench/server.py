"""gunicorn servers for the benchmark: the project's service and the bare Flask app,
both started with the project's gunicorn.conf.py (gthread, 4 threads, keep-alive,
access log to stdout), pinned with taskset, on a free loopback port.

The only change to the configuration is gunicorn's access log, off in production
(the app logs each request itself), on here with the same format for both
servers: `BENCH <pid> <status> <µs> <method> <path>`, which gives the server-side
time of every request (gunicorn's %(D)s: from the request read to the response
written) and which worker served it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ACCESS_FORMAT = "BENCH %(p)s %(s)s %(D)s %(m)s %(U)s"
ACCESS_RE = re.compile(r"^BENCH <(\d+)> (\d{3}) (\d+) (\S+) (\S+)")
HAVE_TASKSET = shutil.which("taskset") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    if cpus and HAVE_TASKSET and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpus, *cmd]
    return cmd


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def smaps_rollup_kib(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup in KiB (Rss, Pss, Shared_Clean, Shared_Dirty,
    Private_Clean, Private_Dirty, Anonymous, ...): a forked worker's RSS counts
    the pages it still shares with its master; Pss and Private_* do not."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(x) for x in handle.read().split()]
    except OSError:
        return []


def is_event_dispatcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"app.events\x00dispatch" in handle.read()
    except OSError:
        return False


class Server:
    """One gunicorn master and its workers."""

    def __init__(self, app: str, workdir: Path, *, workers: int = 1, cpus: str | None = None,
                 env: dict | None = None, health_path: str = "/health", name: str = "server",
                 root: Path = ROOT):
        self.app = app
        self.root = Path(root)          # the tree served (bench/http_compare.py: an earlier commit's)
        self.workers = workers
        self.cpus = cpus
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_path = health_path
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.env.setdefault("PYTHONPATH", str(self.root))
        self.log_path = Path(workdir) / f"{name}-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_seconds = None

    def start(self, timeout: float = 180.0) -> "Server":
        cmd = pinned([sys.executable, "-m", "gunicorn", "-c", str(self.root / "gunicorn.conf.py"),
                      "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers),
                      "--access-logfile", "-", "--access-logformat", ACCESS_FORMAT, self.app], self.cpus)
        self.log = open(self.log_path, "ab")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        session = requests.Session()
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.tail()}")
            try:
                if session.get(self.url + self.health_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"server did not start: {self.tail()}")
        self._wait_all_workers(deadline)
        self.ready_seconds = time.perf_counter() - self.started_at
        return self

    def _wait_all_workers(self, deadline: float) -> None:
        """Each worker loads the app (and its rules) on its own after the fork: wait
        until every worker has answered a request (seen in the access log)."""
        while time.time() < deadline:
            pids = set(self.worker_pids())
            seen = {entry[0] for entry in self.access_entries()}
            if len(pids) >= self.workers and pids <= seen:
                return
            try:
                requests.get(self.url + self.health_path, timeout=5, headers={"Connection": "close"})
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not every worker became ready: {self.tail()}")

    def worker_pids(self) -> list[int]:
        """The master's children but the event dispatcher process
        (app/events/process.py), which serves no request."""
        return [pid for pid in (children(self.process.pid) if self.process else [])
                if not is_event_dispatcher(pid)]

    def worker_rss_kib(self) -> dict[int, int]:
        return {pid: rss for pid in self.worker_pids() if (rss := rss_kib(pid)) is not None}

    def log_offset(self) -> int:
        self.log.flush()
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def access_entries(self, start: int = 0, end: int | None = None) -> list[tuple[int, int, int, str, str]]:
        """(worker pid, status, server µs, method, path) of each request logged in [start, end)."""
        out = []
        with open(self.log_path, "rb") as handle:
            handle.seek(start)
            data = handle.read() if end is None else handle.read(max(0, end - start))
        for line in data.decode("utf-8", "replace").splitlines():
            match = ACCESS_RE.match(line)
            if match:
                out.append((int(match[1]), int(match[2]), int(match[3]), match[4], match[5]))
        return out

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(10)
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def service_env(data_dir: Path, rules_dir: Path, catalog_dir: Path, ruleset: str) -> dict:
    return {
        "RECO_DATA_DIR": str(data_dir),
        "RECO_RULES_DIR": str(rules_dir),
        "RECO_CATALOG_DIR": str(catalog_dir),
        "RECO_RULESET": ruleset,
        "RECO_THREADS": os.environ.get("RECO_THREADS", "4"),
    }
