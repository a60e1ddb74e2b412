"""`python -m flask ...` and `python -m gunicorn ...` for the tests, each
run a process of its own forked from a warm interpreter instead of a new one.

Why: a `flask` command started with subprocess.run spends about 1.3 s of CPU
importing Flask, marshmallow, durable-rules, psycopg, pydantic and the app's
modules before the command's own 0.3-0.5 s (building the app and running
it): 5-7 s of wall time on the shared 2-core machine, and the suite runs
hundreds of them; a server's gunicorn master spends 0.7 s of its 2.7 s
start-up importing, most of it libraries. `run` has subprocess.run's signature and `popen` starts
a server's master (helpers.ServiceProcess). For `[sys.executable, "-m",
"flask" | "gunicorn", ...]` they ask this pytest process's *zygote* for that
module (an interpreter that has imported those modules once, and nothing
else: no app built, no store opened, no thread started; PRELOADS) to fork a
child. The child is a real process: its own pid and session, the given
`cwd` and `env` (the whole environment, as subprocess's env=), stdin,
stdout and stderr on their own files, `python -m`'s argv, sys.path[0] and
__main__ (runpy), exit status from SystemExit as the interpreter sets it
(an uncaught exception prints its traceback and exits 1), non-daemon
threads joined and atexit handlers run before it exits. What it cannot
have is what the interpreter reads once at start-up, before any import:
so a run whose `env` differs from the zygote's in one of STARTUP_VARIABLES
(PYTHONPATH for tests/faults/sitecustomize.py, the locale,
PROMETHEUS_MULTIPROC_DIR, which prometheus-client reads on import), or that
uses other subprocess options, starts a new interpreter as before. The
gunicorn zygote imports neither gunicorn (its config reads variables into
defaults on import) nor prometheus-client (gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR in the master, and each worker imports the app and
prometheus-client, in multiprocess mode, after the fork, as in production). tests/test_cliprocess.py compares both ways on the same
commands; one command per `flask` group still runs in a new interpreter
there, so the real entry point is proved too.

The zygote speaks JSON lines on its stdin/stdout: a request
{"id", "argv", "cwd", "env", "stdin", "stdout", "stderr"[, "append"]} (file
paths; "stderr": "stdout" is subprocess.STDOUT) is answered with
{"id", "pid"} once forked and {"id", "returncode"} once the child has exited
(negative: killed by that signal, as subprocess reports it).
"""
from __future__ import annotations

import ast
import atexit
import gc
import importlib
import importlib.util
import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Variables the interpreter or an imported module reads once, at start-up
#: or import: a run that sets them differently needs an interpreter of its own.
STARTUP_VARIABLES = ("PYTHON", "LC_", "LANG", "LANGUAGE", "TZ", "PROMETHEUS_MULTIPROC_DIR",
                     "prometheus_multiproc_dir")


def _startup_environment(env) -> dict:
    return {name: value for name, value in env.items() if name.startswith(STARTUP_VARIABLES)}


# ------------------------------------------------------------ the test's side
class _Zygote:
    """A running zygote of this pytest process (one per PRELOADS entry), and
    the runs it has open."""

    def __init__(self, module: str):
        self.environment = dict(os.environ)
        self.process = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", module],
                                        cwd=ROOT, env=self.environment,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._ids = itertools.count(1)
        self._write = threading.Lock()
        self._lock = threading.Lock()
        self._runs: dict[int, dict] = {}
        threading.Thread(target=self._read, name="cliprocess-zygote", daemon=True).start()

    def fits(self, env: dict) -> bool:
        return (self.process.poll() is None
                and _startup_environment(env) == _startup_environment(self.environment))

    def _read(self):
        for line in self.process.stdout:
            answer = json.loads(line)
            with self._lock:
                run = self._runs.get(answer["id"])
            if run is not None:
                if "returncode" in answer:
                    with self._lock:
                        self._runs.pop(answer["id"], None)
                run.update(answer)
                run["pid_known" if "pid" in answer and "returncode" not in answer
                    else "exited"].set()
        with self._lock:                      # the zygote is gone: nobody waits forever
            for run in self._runs.values():
                run.setdefault("lost", True)
                run["pid_known"].set()
                run["exited"].set()

    def start(self, argv, cwd, env, files) -> dict:
        run = {"id": next(self._ids), "pid_known": threading.Event(), "exited": threading.Event()}
        with self._lock:
            self._runs[run["id"]] = run
        request = {"id": run["id"], "argv": list(argv), "cwd": str(cwd), "env": env, **files}
        with self._write:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        return run

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


_zygotes: dict[str, _Zygote] = {}
_zygotes_lock = threading.Lock()


def _zygote_for(command, env: dict) -> _Zygote | None:
    """The zygote that can run `command` ([sys.executable, "-m", <a module
    of PRELOADS>, ...]) in `env`, started on first use; None when none can."""
    if (isinstance(command, (str, bytes)) or len(command) < 3 or str(command[0]) != sys.executable
            or command[1] != "-m" or command[2] not in PRELOADS):
        return None
    with _zygotes_lock:
        zygote = _zygotes.get(command[2])
        if zygote is None or zygote.process.poll() is not None:
            zygote = _zygotes[command[2]] = _Zygote(command[2])
            atexit.register(zygote.close)
        return zygote if zygote.fits(env) else None


def run(command, *, cwd=None, env=None, input=None, timeout=None, capture_output=False,
        text=False, check=False, **other) -> subprocess.CompletedProcess:
    """subprocess.run(command, ...) with the same result; `python -m flask`
    with captured output runs forked from the zygote (see the module)."""
    env = dict(os.environ if env is None else env)
    zygote = _zygote_for(command, env) if capture_output and not other else None
    if zygote is None:
        return subprocess.run(command, cwd=cwd, env=env, input=input, timeout=timeout,
                              capture_output=capture_output, text=text, check=check, **other)
    folder = Path(tempfile.mkdtemp(prefix="cliprocess-"))
    try:
        files = {name: str(folder / name) for name in ("stdin", "stdout", "stderr")}
        data = input.encode() if isinstance(input, str) else (input or b"")
        Path(files["stdin"]).write_bytes(data)
        process = Forked(zygote, command, cwd, env, files)
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.killpg()
            process.wait(60)
            stdout, stderr = _read(files, text)
            raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr) from None
        stdout, stderr = _read(files, text)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.CompletedProcess(command, returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done


def popen(command, *, cwd, env, log_path) -> "Forked | subprocess.Popen":
    """`subprocess.Popen(command, cwd=cwd, env=env, stdout=<log_path
    appended>, stderr=subprocess.STDOUT, stdin=DEVNULL, start_new_session=True)`,
    forked from a zygote when one fits (see the module): a server's master."""
    env = dict(env)
    zygote = _zygote_for(command, env)
    if zygote is None:
        with open(log_path, "ab") as log:
            return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
    return Forked(zygote, command, cwd, env, {"stdin": os.devnull, "stdout": str(log_path),
                                              "stderr": "stdout", "append": True})


class PopenSignals:
    """subprocess.Popen's send_signal, terminate and kill, for a class with
    `pid` and `poll()`: a child that has exited is not signalled."""

    def send_signal(self, sig) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Forked(PopenSignals):
    """The part of subprocess.Popen the tests use, for a zygote's child: it
    is the zygote's child, not ours, so its exit status comes from the
    zygote. The child leads its own session (os.setsid), as with
    start_new_session=True: os.killpg(pid) reaches its children too."""

    def __init__(self, zygote: _Zygote, command, cwd, env, files):
        self.args = command
        self.returncode: int | None = None
        self._run = zygote.start(command[1:], cwd or os.getcwd(), env, files)
        self._run["pid_known"].wait()
        if self._run.get("lost"):
            raise RuntimeError(f"the cliprocess zygote exited before it started {command}")
        self.pid = self._run["pid"]

    def poll(self) -> int | None:
        if self.returncode is None and self._run["exited"].is_set():
            if self._run.get("lost"):
                raise RuntimeError(f"the cliprocess zygote exited while {self.args} ran")
            self.returncode = self._run["returncode"]
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._run["exited"].wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.poll()

    def killpg(self) -> None:
        if self.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _read(files, text):
    """The captured output as subprocess.run gives it: bytes, or text in the
    locale's encoding with universal newlines."""
    outputs = []
    for name in ("stdout", "stderr"):
        if text:
            with open(files[name], encoding=None, errors="strict", newline=None) as stream:
                outputs.append(stream.read())
        else:
            outputs.append(Path(files[name]).read_bytes())
    return outputs


# ------------------------------------------------------------ the zygote's side
def preload_flask() -> None:
    """Import what `flask --app wsgi` imports before it builds the app: Flask's
    CLI, the app package, every module create_app imports (read from its
    source, so the list follows the code) and the command groups."""
    importlib.import_module("flask.cli")

    import app
    import app.cli

    tree = ast.parse((ROOT / "app" / "factory.py").read_text())
    factory = next(node for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name == "create_app")
    for node in ast.walk(factory):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            base = f"app.{node.module}" if node.module else "app"
            importlib.import_module(base)
            for alias in node.names:
                try:
                    importlib.import_module(f"{base}.{alias.name}")
                except ImportError:
                    pass                 # a name in the module, not a submodule
    for spec in app.cli.COMMAND_GROUPS:
        importlib.import_module(spec.split(":")[0])
    _preload_alembic()


def preload_gunicorn() -> None:
    """Import the libraries a gunicorn master and its workers need (app.config,
    which gunicorn.conf.py imports, Flask, marshmallow, durable-rules,
    psycopg, pydantic, ...), but neither gunicorn nor prometheus-client:
    gunicorn.config reads FORWARDED_ALLOW_IPS, WEB_CONCURRENCY and PORT into
    its defaults on import (a test that sets FORWARDED_ALLOW_IPS for its
    server would get the zygote's), and prometheus-client picks its
    multiprocess mode on import from PROMETHEUS_MULTIPROC_DIR, which
    gunicorn.conf.py sets in the master. The workers, forked by the master,
    import the app themselves, as in production."""
    for name in ("app.config", "flask", "flask.cli", "flask_smorest", "marshmallow", "durable.lang",
                 "psycopg", "psycopg_pool", "pydantic_settings", "structlog", "yaml", "tinydb",
                 "orjson", "msgspec", "requests", "werkzeug", "click", "webargs", "apispec"):
        importlib.import_module(name)
    _preload_alembic()
    spec = importlib.util.spec_from_file_location("warmdispatcher",
                                                  Path(__file__).with_name("warmdispatcher.py"))
    sys.modules["warmdispatcher"] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for unwanted in ("gunicorn.config", "prometheus_client"):
        assert unwanted not in sys.modules, f"{unwanted} must be imported by the master itself"


def _preload_alembic() -> None:
    """alembic and SQLAlchemy, which app/store/schema.py imports when a
    PostgreSQL store is opened (the schema's revision checked by every worker
    and dispatcher) and `flask store` commands run: 0.4-0.5 s of CPU on each
    otherwise (load 18). Neither reads the environment or starts a thread on
    import."""
    for name in ("alembic.command", "alembic.config", "alembic.script", "alembic.runtime.migration",
                 "sqlalchemy"):
        importlib.import_module(name)


#: What each zygote imports, by the module a command runs (`-m <module>`).
PRELOADS = {"flask": preload_flask, "gunicorn": preload_gunicorn}


def serve(module: str) -> None:
    """The zygote's loop: fork a child per request, report each exit."""
    control_in, control_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)        # nothing an import prints reaches the answers
    os.close(null)
    PRELOADS[module]()
    # what was imported is the children's too: out of the collector's sight,
    # so that a child's collections do not walk it or write to its pages (a
    # copy of each page written). With alembic and SQLAlchemy preloaded, a
    # TinyDB server's start and stop went 0.63 -> 0.80 s of CPU without this
    # and stayed within the noise with it (bench/server_start_cpu.py, 6 each)
    gc.collect()
    gc.freeze()
    assert threading.active_count() == 1, "a preloaded module started a thread: fork is unsafe"
    sys.stdout.flush()
    sys.stderr.flush()
    answers = os.fdopen(control_out, "w", buffering=1)
    requests = os.fdopen(control_in, "rb", buffering=0)
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ, None)
    pending = b""
    children: dict[int, tuple[int, int]] = {}    # pidfd -> (request id, pid)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                chunk = os.read(control_in, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        os.close(control_in)
                        os.close(control_out)
                        for pidfd in children:
                            os.close(pidfd)
                        _child(request)      # never returns
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = (request["id"], pid)
                    selector.register(pidfd, selectors.EVENT_READ, pidfd)
                    answers.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
            else:
                request_id, pid = children.pop(key.data)
                selector.unregister(key.data)
                os.close(key.data)
                _, status = os.waitpid(pid, 0)
                answers.write(json.dumps({"id": request_id,
                                          "returncode": os.waitstatus_to_exitcode(status)}) + "\n")


def _child(request) -> None:
    """Become `python -m flask <argv>` in the request's cwd and environment."""
    status = 1
    try:
        os.setsid()                       # killed with its own children on a timeout
        append = os.O_APPEND if request.get("append") else os.O_TRUNC
        for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY | os.O_CREAT | append),
                                (2, "stderr", os.O_WRONLY | os.O_CREAT | append)):
            if request[name] == "stdout":
                os.dup2(1, fd)          # stderr=subprocess.STDOUT
                continue
            opened = os.open(request[name], flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        started_with = _startup_environment(os.environ)      # the zygote's
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = request["cwd"]      # `python -m`: the working directory first
        sys.argv = ["-m", *request["argv"][2:]]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if request["argv"][1] == "gunicorn":      # its event dispatcher forked from it
            sys.modules["warmdispatcher"].install(STARTUP_VARIABLES, started_with)
        status = run_as_main(request["argv"][1])
    finally:
        os._exit(status)


def run_as_main(module: str) -> int:
    """Run `module` as `python -m` runs it, then what the interpreter does at
    exit (non-daemon threads joined, atexit handlers, streams flushed); its
    exit status. For a forked child, which then leaves with os._exit
    (tests/warmdispatcher.py's dispatcher too)."""
    try:
        import runpy

        runpy.run_module(module, run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    threading._shutdown()             # as at interpreter exit: non-daemon threads joined
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return status


def _exit_status(code) -> int:
    """SystemExit's code as the interpreter turns it into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    sys.modules["cliprocess"] = sys.modules["__main__"]     # tests/warmdispatcher.py imports it
    sys.path[0] = str(ROOT)
    serve(sys.argv[2])
