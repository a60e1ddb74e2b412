"""Start-up CPU of the service: what a gunicorn worker, a server and a `flask`
command spend before their first request or their output, measured as the
test suite starts them (forked from an interpreter that has imported what
tests/cliprocess.py's zygotes import, so imports of libraries do not count).

    python -m bench.startup_cpu [--base TREE] [--rounds 7]

- create_app: CPU (time.process_time) of one create_app() on the demo rules
  and catalog, TinyDB, no background workers, in a process with the gunicorn
  zygote's preloads (the app's own modules are imported by create_app, as in
  a worker).
- server: CPU (user + sys) of one TinyDB server's start and stop as the
  tests start it, master, worker and event dispatcher
  (bench/server_start_cpu.py, which also measures PostgreSQL).
- cli: CPU of one `flask --app wsgi store upgrade` (TinyDB) and one
  `flask --app wsgi rules lint`, each forked from the flask zygote's preloads.

With --base (another checkout, e.g. `git worktree add /tmp/base <commit>` or
`git archive <commit> | tar -x -C /tmp/base`), each round runs the base and
this tree one after the other (alternating, so that the shared machine's
load falls on both alike) and the medians are printed side by side with the
load average. Each measurement runs in an interpreter of its own whose
sys.path starts with the tree measured. Compile both trees' bytecode first
(`python -m compileall -q app tests`), or each run compiles them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_PRELOAD = """
import os, sys, shutil, tempfile, time, runpy
root = sys.argv[1]
sys.path[0:0] = [root, root + "/tests"]
os.chdir(root)
import cliprocess
"""

CREATE_APP = _PRELOAD + """
cliprocess.preload_gunicorn()
import app
assert app.__file__.startswith(root), app.__file__
data = tempfile.mkdtemp(prefix="startup-cpu-")
started = time.process_time()
app.create_app(data_dir=data, rules_dir=root + "/tests/demo/rules",
               catalog_dir=root + "/tests/demo/catalog", background_workers=False)
print(time.process_time() - started)
shutil.rmtree(data, ignore_errors=True)
"""

# fork, run `python -m <module> <argv...>` in the child as the zygote does,
# and report the child's CPU with what it reaped (os.wait4)
_FORKED = """
def forked(module, argv, env, log):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT)
        os.dup2(fd, 1); os.dup2(fd, 2)
        os.environ.clear(); os.environ.update(env)
        sys.argv = [module, *argv]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):     # 1: a lint warning's exit
        raise SystemExit(open(log).read()[-3000:])
    print(usage.ru_utime + usage.ru_stime)

data = tempfile.mkdtemp(prefix="startup-cpu-")
shutil.copytree(root + "/tests/demo/rules", data + "/rules")
env = dict(os.environ, RECO_DATA_DIR=data + "/data", RECO_RULES_DIR=data + "/rules",
           RECO_CATALOG_DIR=root + "/tests/demo/catalog")
"""

CLI = _PRELOAD + """
cliprocess.preload_flask()
import app
assert app.__file__.startswith(root), app.__file__
""" + _FORKED + """
forked("flask", ["--app", "wsgi", *sys.argv[2:]], env, data + "/log")
shutil.rmtree(data, ignore_errors=True)
"""

def measure(tree: Path, script: str, args: list[str]) -> float:
    """CPU seconds of one run of `script` against `tree`, in a new interpreter."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script, str(tree), *args], env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def server_start_stop(tree: Path) -> float:
    """One TinyDB server's start and stop as the tests start it (the master
    forked from the zygote, its dispatcher forked from the master):
    bench/server_start_cpu.py, in a new interpreter."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(HERE / "server_start_cpu.py"), str(tree), "tinydb", "1"],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])[0]


MEASURES = {
    "create_app": lambda tree: measure(tree, CREATE_APP, []),
    "server start+stop": server_start_stop,
    "flask store upgrade": lambda tree: measure(tree, CLI, ["store", "upgrade"]),
    "flask rules lint": lambda tree: measure(tree, CLI, ["rules", "lint"]),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup_cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="another checkout to compare with, alternating")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args(argv)
    trees = ([("base", options.base.resolve())] if options.base else []) + [("this", ROOT)]
    for name, run in MEASURES.items():
        runs = {label: [] for label, _ in trees}
        for _ in range(options.rounds):
            for label, tree in trees:
                runs[label].append(run(tree))
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        medians = "  ".join(f"{label} {statistics.median(values):.3f} s" for label, values in runs.items())
        print(f"{name:22} median of {options.rounds}: {medians}   (load {load})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
