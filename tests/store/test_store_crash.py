"""SIGKILL a writer at random moments; every acknowledged write must survive."""

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

from app.store import open_store

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_store_workers.py")


def _run_and_kill(data_dir, prefix, rng, env):
    proc = subprocess.Popen(
        [sys.executable, WORKER, data_dir, prefix],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        first = proc.stdout.readline()  # at least one acknowledged write
        assert first, "crash child died before acknowledging anything"
        time.sleep(rng.uniform(0.0, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    lines = (first + rest).split(b"\n")
    complete = lines[:-1]  # the last element is '' or a line cut by the kill
    ids = [ln[2:].decode() for ln in complete if ln.startswith(b"i ")]
    counters = [int(ln[2:]) for ln in complete if ln.startswith(b"c ")]
    return ids, counters


def test_sigkill_never_loses_acknowledged_writes(data_dir, subprocess_env):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    with open_store(data_dir) as s:
        # a bigger table makes each write take longer: more kills land mid-write
        for i in range(200):
            s.insert("crash", {"id": f"pre-{i}", "payload": "y" * 300})
        s.insert("crashcounter", {"id": "c", "n": 0})

    acked: set[str] = {f"pre-{i}" for i in range(200)}
    counter_floor = 0
    for rnd in range(5):
        ids, counters = _run_and_kill(data_dir, f"r{rnd}", rng, subprocess_env)
        assert ids, f"seed={seed}"

        for path in glob.glob(os.path.join(data_dir, "*.json")):
            with open(path) as f:
                json.load(f)  # no committed file is ever corrupt

        with open_store(data_dir) as s:
            assert not glob.glob(os.path.join(data_dir, ".*.tmp")), "orphans cleaned on open"
            stored = {d["id"] for d in s.all("crash")}
            missing = (acked | set(ids)) - stored
            assert not missing, f"seed={seed} round={rnd}: lost acknowledged ids {sorted(missing)[:5]}"
            # at most the single in-flight insert may have landed unacknowledged
            extra = stored - acked - set(ids)
            assert len(extra) <= 1, f"seed={seed}: {extra}"
            acked |= stored

            n = s.get("crashcounter", "c")["n"]
            last_ack = max(counters, default=counter_floor)
            assert last_ack <= n <= last_ack + 1, f"seed={seed}: counter {n}, last ack {last_ack}"
            counter_floor = n
            assert s.health()["ok"] is True
