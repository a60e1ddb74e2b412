"""CPU seconds of one test server's start and stop: the gunicorn master, its
worker and its event dispatcher, user + system, as the tests start them
(tests/helpers.py ServiceProcess, the master forked from tests/cliprocess.py's
zygote).

How: the zygote reaps each master, and each master its worker and
dispatcher, so the zygote's own and its reaped children's times (/proc
stat utime, stime, cutime, cstime; proc(5)) grow by exactly one server's
CPU from before its start to after its stop. Each server is stopped once its
dispatcher has bound its wake socket (its start is over) and 0.5 s more.
The first server of a run starts the zygote and is not counted.

Usage (ROOT: a checkout to measure, e.g. one of an older commit made with
`git archive`; run it from this one's .venv, alternating checkouts):

    python bench/server_start_cpu.py ROOT tinydb|postgresql N

prints a JSON list of N seconds."""
from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICK


def measure(root: Path, backend: str, n: int) -> list[float]:
    os.chdir(root)
    sys.path.insert(0, str(root / "tests"))
    import cliprocess
    import helpers

    folder = Path(tempfile.mkdtemp(prefix="server-start-cpu-"))
    cluster = None
    if backend == "postgresql":
        from pgcluster import PgCluster
        cluster = PgCluster(folder / "pg")
        cluster.start()
    samples = []
    try:
        for i in range(n + 1):
            env = {"RECO_STORE_URL": cluster.new_database()} if cluster else {}
            zygote = cliprocess._zygotes.get("gunicorn")
            before = cpu_seconds(zygote.process.pid) if zygote else None
            server = helpers.ServiceProcess(folder / f"data{i}", env=env).start()
            wake = f"{tempfile.gettempdir()}/reco-events-{server.process.pid}-*/wake"
            deadline = time.time() + helpers.PATIENCE
            while time.time() < deadline and not glob.glob(wake):
                time.sleep(0.05)
            time.sleep(0.5)
            server.stop()
            if before is not None:
                samples.append(round(cpu_seconds(cliprocess._zygotes["gunicorn"].process.pid)
                                     - before, 2))
    finally:
        if cluster:
            cluster.destroy()
    return samples


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3]))))
