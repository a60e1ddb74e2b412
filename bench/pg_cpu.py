"""CPU seconds a throw-away PostgreSQL cluster (tests/pgcluster.py, bin/pg)
has used: its postmaster and every live child (the backends serving the
bench's pooled connections, the WAL writer, autovacuum), user + system,
from /proc. Read before and after a block of requests, the difference is
the database's share of the block's work, which the client process's CPU
time leaves out although it runs on the same cores (the machine has two):
(client CPU + database CPU) per request is the cost an idle machine would
turn into requests/s, steadier than requests/s when other processes share
the cores. Children that exited count through the postmaster's cutime."""
from __future__ import annotations

import os
from pathlib import Path

from .server import children


def _ticks(pid: int, with_children: bool = False) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0                                 # a child that just exited
    # fields[11:15]: utime, stime, cutime, cstime (proc(5), from field 3 on)
    return int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_children else 0)


def postmaster_pid(cluster_dir: Path) -> int:
    """The cluster's postmaster (bin/pg keeps the data directory in
    DIR/data, or, as root, in the directory DIR/cluster names)."""
    pointer = cluster_dir / "cluster"
    home = Path(pointer.read_text().strip()) if pointer.exists() else cluster_dir
    return int((home / "data" / "postmaster.pid").read_text().split()[0])


def cluster_cpu_seconds(postmaster: int) -> float:
    ticks = _ticks(postmaster, with_children=True) + sum(_ticks(pid) for pid in children(postmaster))
    return ticks / os.sysconf("SC_CLK_TCK")
