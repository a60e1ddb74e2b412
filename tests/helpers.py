"""Test helpers: the real service as a process, a webhook listener, an HTTP
client for the three APIs and the check every TMF error must pass."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

import cliprocess

ROOT = Path(__file__).resolve().parent.parent


def _demo_copy() -> Path:
    """The product's tests run on their own copy of the telco demo.

    rules/ and catalog/ belong to product managers: the rules tutorial edits
    them, and the result is judged by the rule set's own cases and lint
    (tests/rules/authoring/test_regression_cases.py), not by tests that know the demo by
    heart (file counts, version 1.0.0, 23 cases). Those run on tests/demo/, a
    frozen copy of the shipped demo, copied once per session into a temporary
    project layout (rules/, catalog/, app/rules/schemas/ for the editor-schema
    lines) so that no test can write into the checkout."""
    base = Path(tempfile.mkdtemp(prefix="reco-demo-"))
    shutil.copytree(ROOT / "tests" / "demo" / "rules", base / "rules")
    shutil.copytree(ROOT / "tests" / "demo" / "catalog", base / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", base / "app" / "rules" / "schemas")
    atexit.register(shutil.rmtree, base, True)
    return base


DEMO = _demo_copy()
DEMO_RULES = DEMO / "rules"         # the shipped demo's rule set, cases and lock file
DEMO_CATALOG = DEMO / "catalog"     # the shipped demo's catalog
PRODUCT_RULES = ROOT / "rules"      # the product managers' files: only cases and lint judge them
PRODUCT_CATALOG = ROOT / "catalog"
# In-process apps and `flask` subprocesses default to the copy too.
os.environ["RECO_RULES_DIR"] = str(DEMO_RULES)
os.environ["RECO_CATALOG_DIR"] = str(DEMO_CATALOG)


# Ports for servers the tests start, below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 on Linux): a port the
# kernel hands out for bind(0) is free only until the caller closes it, and
# under pytest-xdist another worker's server, a client connection or a
# PostgreSQL cluster may take it before gunicorn binds it ("Address already
# in use"). Each xdist worker (PYTEST_XDIST_WORKER, gw0, gw1, ...) draws from
# its own block, so two workers never pick the same port; within a block a
# port is handed out again only after the block wraps, and is checked to be
# free (another program on the machine may hold it).
PORT_BASE = 15000
PORT_BLOCK = 800


def _port_numbers():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = PORT_BASE + (index % 20) * PORT_BLOCK
    offset = os.getpid() % PORT_BLOCK   # two sessions at once start apart
    while True:
        yield first + offset % PORT_BLOCK
        offset += 1


_PORTS = _port_numbers()


def free_port() -> int:
    """A loopback port that no process holds now and that no other test of
    this run will be given (see PORT_BASE)."""
    for _ in range(PORT_BLOCK):
        port = next(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this worker's block of {PORT_BLOCK}")


class ServiceProcess:
    """One gunicorn server of the project, started and stopped by a test."""

    def __init__(self, data_dir: Path, workers: int = 1, env: dict | None = None,
                 rules_dir: Path | None = None, catalog_dir: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.workers = workers
        self.env = dict(os.environ)
        if rules_dir is None:
            # a copy of the demo's rules per server: an activation or a save
            # writes into its rules folder (kept versions and their cases),
            # and the shipped demo folder is every other test's input
            rules_dir = data_dir.parent / f"rules-{self.port}"
            rules_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(DEMO_RULES, rules_dir)
        self.rules_dir = rules_dir
        self.env.update({
            "RECO_DATA_DIR": str(data_dir),
            "RECO_RULES_DIR": str(rules_dir),
            "RECO_CATALOG_DIR": str(catalog_dir or DEMO_CATALOG),
            "RECO_EVENT_BACKOFF_SECONDS": "0.2",
            # an attempt's deadline: a loaded machine's pauses (the
            # dispatcher runs at nice 10) must not make a listener's answer
            # late, or the notification is sent again and a test that counts
            # deliveries sees a duplicate (2 s did, two PostgreSQL hosts);
            # tests of slow or hanging listeners set their own
            "RECO_EVENT_TIMEOUT_SECONDS": "30",
        })
        self.env.update(env or {})
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        # where its records are: for app.store.open_store in a test
        self.store_url = self.env.get("RECO_STORE_URL") or str(data_dir)

    def start(self) -> "ServiceProcess":
        """Start gunicorn and wait until it serves /health. free_port() checks
        a port free just before gunicorn binds it, but another program (another
        person's test run on a shared machine) may take it in between: gunicorn
        then gives up with "Address already in use" and it is started again on
        another port. Until gunicorn says it listens, a /health answer on the
        port may be that other program's, so it does not count."""
        for _ in range(5):
            self.log = open(self.log_path, "ab")
            since = self.log.tell()
            # forked from a warm interpreter (tests/cliprocess.py): a
            # master that has imported gunicorn and the libraries once
            self.process = cliprocess.popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                 "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers), "wsgi:app"],
                cwd=ROOT, env=self.env, log_path=self.log_path)
            if self._started(since):
                return self
            self.log.close()
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = self.log_path.parent / f"server-{self.port}.log"
        raise RuntimeError(f"no free port for a server: {self.log_path.read_text()[-3000:]}")

    def _started(self, since: int) -> bool:
        """True once the server answers /health; False when its port was
        taken (see start); raises when it exits otherwise or is not up in time."""
        deadline = time.time() + 2 * PATIENCE
        while time.time() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                written = log.read()
            if self.process.poll() is not None:
                if b"Address already in use" in written:
                    return False
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            if b"Listening at" in written:
                try:
                    if requests.get(self.url + "/health", timeout=1).status_code in (200, 503):
                        return True
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(30)
        if getattr(self, "log", None):
            self.log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Listener:
    """A webhook receiver on loopback that records every notification.

    It answers `status`, or `decide(body, n)` for the n-th request when given;
    `events` are the accepted bodies, `requests` every (body, status answered)
    and `paths` every request's path. With `hold` (a threading.Event) every
    request waits for it before it is answered (a listener that keeps the
    connection open without answering); `arrived` counts the requests read."""

    def __init__(self, status: int = 201, decide=None, hold: threading.Event | None = None):
        self.arrived = 0
        self.events: list[dict] = []
        self.headers: list[dict] = []       # the HTTP headers of each recorded event
        self.requests: list[tuple[dict, int]] = []
        self.paths: list[str] = []
        self.status = status
        self.condition = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with listener.condition:
                    listener.arrived += 1
                if hold is not None:
                    hold.wait(120)
                with listener.condition:
                    status = listener.status if decide is None else decide(body, len(listener.requests))
                    listener.requests.append((body, status))
                    listener.paths.append(self.path)
                    if status < 300:
                        listener.events.append(body)
                        listener.headers.append(dict(self.headers))
                    listener.condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/listener"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 15.0) -> list[dict]:
        deadline = time.time() + timeout
        with self.condition:
            while True:
                found = [event for event in self.events if predicate(event)]
                if found:
                    return found
                remaining = deadline - time.time()
                if remaining <= 0:
                    return []
                self.condition.wait(remaining)

    def delivered(self) -> list[dict]:
        with self.condition:
            return list(self.events)

    def of_type(self, event_type: str, timeout: float = 15.0) -> list[dict]:
        return self.wait_for(lambda e: e.get("eventType") == event_type, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Client:
    """Thin HTTP helper with the three base paths."""

    CUSTOMER = "/tmf-api/customerManagement/v4"
    INVENTORY = "/tmf-api/productInventory/v4"
    RECOMMENDATION = "/tmf-api/recommendationManagement/v4"

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        kwargs.setdefault("headers", {"Content-Type": "application/merge-patch+json"})
        if "json" in kwargs:
            kwargs["data"] = json.dumps(kwargs.pop("json"))
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def refused(response, status: int, code: str, message: str | None = None) -> dict:
    """The TMF Error of a Flask test client's `response`: its status, its
    `code` and, when given, its exact `message` (the admin API's pinned
    answers)."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["@type"] == "Error" and body["status"] == str(status) and body["reason"], body
    assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
    return body


def assert_tmf_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["@type"] == "Error"
    assert body["status"] == str(status)
    assert body["code"] and body["reason"] and body["message"]
    assert "Traceback" not in response.text
    return body


#: How long a test waits for what must happen (a delivery, a server's
#: background work, a worker noticing a change), in seconds. Generous: under
#: bin/test on a 2-core machine (six workers, each with its servers) a step
#: that takes 50 ms alone took over 20 s, and a wait returns as soon as what
#: it waits for has happened, so a long deadline costs a passing test nothing.
#: Bounds the product promises (a lease, a retention) are asserted as such.
PATIENCE = 60.0


def wait_until(predicate, timeout: float, interval: float = 0.2):
    """The predicate's first truthy value within `timeout` seconds, else its
    last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def if_match(client, headers: dict, ruleset: str = "telco-demo") -> dict:
    """`headers` plus If-Match: the ETag of the rule set's working copy as it
    is now, as an editor that has just read it sends it with a save
    (PUT /admin/rules/<id>/working-copy refuses a save without one: 428).
    `client`: a helpers.Client or a Flask test client."""
    tag = client.get(f"/admin/rules/{ruleset}/working-copy", headers=headers).headers["ETag"]
    return {**headers, "If-Match": tag}


def demo_project(root: Path) -> Path:
    """A scratch project at `root`: copies of the tests' demo rules/ and
    catalog/ and of the rule schemas (app/rules/schemas, which lint's
    modelines name), for tests that write into the rules folder."""
    shutil.copytree(DEMO_RULES, root / "rules")
    shutil.copytree(DEMO_CATALOG, root / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", root / "app" / "rules" / "schemas")
    return root


def child_pids(pid: int) -> list[int]:
    """The children of every thread of process `pid`, from /proc (a
    restarted dispatcher is the child of the master's supervisor thread, a
    gunicorn worker of its master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def read_http_request(conn, data: bytes = b"") -> tuple[bytes, bytes, bytes] | None:
    """One HTTP/1.1 request with a Content-Length body from socket `conn`,
    after what was already read (`data`): (head, body, what follows it), or
    None when the peer closed first."""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(data) < length:
        data += conn.recv(65536)
    return head, data[:length], data[length:]


def command_line(pid: int) -> list[str]:
    """The argv of process `pid` (/proc/<pid>/cmdline), without the empty
    arguments at its end that a dispatcher forked from a warm master has
    (tests/warmdispatcher.py: the master's argument area is longer). Raises
    OSError for a process that has gone."""
    parts = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def is_event_dispatcher(pid: int, command: list[str] | None = None) -> bool:
    """Is process `pid` an event dispatcher (app/events/process.py)? With
    `command`, its argv must be exactly that (tests/test_warmdispatcher.py:
    a forked dispatcher reads as the Popen'd one); without, it runs
    `app.events dispatch` under any interpreter. False once it has gone."""
    try:
        argv = command_line(pid)
    except OSError:
        return False
    return argv == command if command is not None else "app.events\0dispatch" in "\0".join(argv)


def dispatcher_of(master: int, other_than: int | None = None, command: list[str] | None = None) -> int:
    """The pid of the event dispatcher among the children of gunicorn
    `master` (of any of its threads: a restarted dispatcher is the child of
    the supervisor thread), other than `other_than` (the one it replaced),
    matched as `is_event_dispatcher(pid, command)`; waited for up to PATIENCE
    seconds, the test fails when there is none."""
    def find():
        return next((pid for pid in child_pids(master)
                     if pid != other_than and is_event_dispatcher(pid, command)), None)
    pid = wait_until(find, PATIENCE)
    assert pid, f"no dispatcher process among the children of {master}"
    return pid


#: The stores every end-to-end feature runs on (tests/conftest.py `backend`).
BACKENDS = ["tinydb", "postgresql"]


def store_env(request, env: dict | None = None) -> dict:
    """`env` for a server of a fixture parametrised over BACKENDS: on
    "postgresql", RECO_STORE_URL of a new database of the session's cluster
    (`pg_cluster`); on "tinydb", as given (the server's data_dir is its store)."""
    env = dict(env or {})
    if request.param == "postgresql":
        env["RECO_STORE_URL"] = request.getfixturevalue("pg_cluster").new_database()
    return env
