"""A throw-away PostgreSQL cluster for the tests (started with bin/pg), and a
fresh database per test cloned from a template that has the schema applied.

Tests that need PostgreSQL skip, saying why, only when bin/pg finds no
PostgreSQL binaries; any other failure to start the cluster is an error.
"""
from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN_PG = ROOT / "bin" / "pg"
NO_BINARIES = 3  # bin/pg's exit status when PostgreSQL is not installed
TEMPLATE = "reco_template"


class NoPostgres(Exception):
    pass


class PgCluster:
    def __init__(self, directory: Path):
        self.directory = directory
        self._numbers = itertools.count(1)
        self.url = ""

    def start(self) -> "PgCluster":
        from helpers import free_port   # not bin/pg's bind(0): see helpers.PORT_BASE

        # a cluster started again keeps its port (bin/pg reads it from DIR/port)
        port = [] if (self.directory / "port").exists() else [str(free_port())]
        done = subprocess.run([str(BIN_PG), "start", str(self.directory), *port],
                              capture_output=True, text=True, timeout=300)
        if done.returncode == NO_BINARIES:
            raise NoPostgres(done.stderr.strip())
        if done.returncode != 0:
            raise RuntimeError(f"bin/pg start failed: {done.stderr}{done.stdout}")
        self.url = done.stdout.strip().splitlines()[-1]
        from app.store.schema import upgrade

        self.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        self.execute(f"CREATE DATABASE {TEMPLATE}")
        upgrade(self.database_url(TEMPLATE))
        return self

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """URL of a new, empty database with the current schema."""
        name = f"t{next(self._numbers)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.database_url(name)

    def restart(self) -> None:
        """Immediate stop (as a crash: no checkpoint) and start again."""
        subprocess.run([str(BIN_PG), "restart", str(self.directory)], check=True, timeout=300)

    def stop(self) -> None:
        subprocess.run([str(BIN_PG), "stop", str(self.directory)], timeout=300)

    def destroy(self) -> None:
        subprocess.run([str(BIN_PG), "destroy", str(self.directory)], timeout=300)
