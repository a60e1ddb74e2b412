"""`python -m flask ...` for the tests, each run a process of its own forked
from a warm interpreter instead of a new one.

Why: a `flask` command started with subprocess.run spends about 1.3 s of CPU
importing Flask, marshmallow, durable-rules, psycopg, pydantic and the app's
modules before the command's own 0.3-0.5 s (building the app and running
it): 5-7 s of wall time on the shared 2-core machine, and the suite runs
hundreds of them. `run` has subprocess.run's signature. For
`[sys.executable, "-m", "flask", ...]` it asks this worker's *zygote* (one
interpreter per pytest process that has imported those modules once, and
nothing else: no app built, no store opened, no thread started) to fork a
child. The child is a real process: its own pid and session, the given
`cwd` and `env` (the whole environment, as subprocess.run's env=), stdin,
stdout and stderr on their own files, `python -m flask`'s argv, sys.path[0]
and __main__ (runpy), exit status from SystemExit as the interpreter sets it
(an uncaught exception prints its traceback and exits 1), non-daemon
threads joined and atexit handlers run before it exits. What it cannot
have is what the interpreter reads once at start-up, before any import:
so a run whose `env` differs from the zygote's in one of STARTUP_VARIABLES
(PYTHONPATH for tests/faults/sitecustomize.py, the locale, PROMETHEUS_MULTIPROC_DIR,
which prometheus-client reads on import), or that uses other
subprocess.run options, starts a new interpreter as before.
tests/test_cliprocess.py compares both ways on the same commands.

The zygote speaks JSON lines on its stdin/stdout: a request
{"id", "argv", "cwd", "env", "stdin", "stdout", "stderr"} (the last three
are file paths) is answered with {"id", "pid"} once forked and
{"id", "returncode"} once the child has exited (negative: killed by that
signal, as subprocess reports it).
"""
from __future__ import annotations

import ast
import atexit
import importlib
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
    """The running zygote of this pytest process, and the runs it has open."""

    def __init__(self):
        self.environment = dict(os.environ)
        self.process = subprocess.Popen([sys.executable, str(Path(__file__)), "serve"],
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

    def finish(self, run) -> None:
        with self._lock:
            self._runs.pop(run["id"], None)

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


_zygote: _Zygote | None = None
_zygote_lock = threading.Lock()


def _zygote_for(env: dict) -> _Zygote | None:
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote.process.poll() is not None:
            _zygote = _Zygote()
            atexit.register(_zygote.close)
        return _zygote if _zygote.fits(env) else None


def _is_flask(command) -> bool:
    return (not isinstance(command, (str, bytes)) and len(command) >= 3
            and str(command[0]) == sys.executable and list(command[1:3]) == ["-m", "flask"])


def run(command, *, cwd=None, env=None, input=None, timeout=None, capture_output=False,
        text=False, check=False, **other) -> subprocess.CompletedProcess:
    """subprocess.run(command, ...) with the same result; `python -m flask`
    with captured output runs forked from the zygote (see the module)."""
    env = dict(os.environ if env is None else env)
    zygote = _zygote_for(env) if _is_flask(command) and capture_output and not other else None
    if zygote is None:
        return subprocess.run(command, cwd=cwd, env=env, input=input, timeout=timeout,
                              capture_output=capture_output, text=text, check=check, **other)
    folder = Path(tempfile.mkdtemp(prefix="cliprocess-"))
    try:
        files = {name: str(folder / name) for name in ("stdin", "stdout", "stderr")}
        data = input.encode() if isinstance(input, str) else (input or b"")
        Path(files["stdin"]).write_bytes(data)
        run_ = zygote.start(command[1:], cwd or os.getcwd(), env, files)
        try:
            run_["pid_known"].wait()
            if not run_["exited"].wait(timeout):
                if "pid" in run_:
                    try:
                        os.killpg(run_["pid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                run_["exited"].wait(60)
                stdout, stderr = _read(files, text)
                raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
        finally:
            zygote.finish(run_)
        if run_.get("lost"):
            raise RuntimeError(f"the cliprocess zygote exited during {command}")
        stdout, stderr = _read(files, text)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.CompletedProcess(command, run_["returncode"], stdout, stderr)
    if check:
        done.check_returncode()
    return done


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
def preload() -> None:
    """Import what `flask --app wsgi` imports before it builds the app: Flask's
    CLI, the app package, every module create_app imports (read from its
    source, so the list follows the code) and the command groups."""
    importlib.import_module("flask.cli")

    import app
    import app.cli

    tree = ast.parse((ROOT / "app" / "__init__.py").read_text())
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


def serve() -> None:
    """The zygote's loop: fork a child per request, report each exit."""
    control_in, control_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)        # nothing an import prints reaches the answers
    os.close(null)
    preload()
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
        for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY | os.O_CREAT),
                                (2, "stderr", os.O_WRONLY | os.O_CREAT)):
            opened = os.open(request[name], flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = request["cwd"]      # `python -m`: the working directory first
        sys.argv = ["-m", *request["argv"][2:]]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            import runpy

            runpy.run_module(request["argv"][1], run_name="__main__", alter_sys=True)
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
    finally:
        os._exit(status)


def _exit_status(code) -> int:
    """SystemExit's code as the interpreter turns it into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    sys.path[0] = str(ROOT)
    serve()
