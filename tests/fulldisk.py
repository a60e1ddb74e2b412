"""A full disk under the store, for tests, on either backend.

TinyDB: tests/faults/sitecustomize.py (on the server's PYTHONPATH) makes the
atomic write of the chosen collections' files fail with ENOSPC, exactly as a
full disk fails it.
PostgreSQL: a trigger on the documents table raises what PostgreSQL itself
raises when its disk is full (SQLSTATE 53100 disk_full, "could not extend
file ...: No space left on device", see PostgreSQL's md.c mdextend) for every
insert, update and delete of the chosen collections.

Usage: start the server with `env=full_disk.env`, then
`full_disk.fill(server, "event|outbox")` (a regular expression matching
whole collection names) and `full_disk.free()`.
"""
from __future__ import annotations

from pathlib import Path

from helpers import ROOT

TRIGGER = """
CREATE OR REPLACE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF COALESCE(NEW.collection, OLD.collection) ~ {pattern} THEN
    RAISE EXCEPTION 'could not extend file "base/16384/16385": No space left on device'
      USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
  END IF;
  RETURN COALESCE(NEW, OLD);
END $$;
DROP TRIGGER IF EXISTS test_disk_full ON documents;
CREATE TRIGGER test_disk_full BEFORE INSERT OR UPDATE OR DELETE ON documents
  FOR EACH ROW EXECUTE FUNCTION test_disk_full();
"""


class FullDisk:
    def __init__(self, backend: str, directory: Path):
        self.backend = backend
        self.flag = directory / "disk-full"
        self._url: str | None = None
        self.env = ({"PYTHONPATH": str(ROOT / "tests" / "faults"),
                     "RECO_TEST_ENOSPC_FLAG": str(self.flag)} if backend == "tinydb" else {})

    def fill(self, server, collections: str) -> None:
        """Writes of the collections whose whole name matches fail from now."""
        if self.backend == "tinydb":
            self.flag.write_text(collections)
            return
        import psycopg
        from psycopg import sql

        self._url = server.store_url
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(sql.SQL(TRIGGER).format(pattern=sql.Literal(f"^({collections})$")))

    def free(self) -> None:
        if self.backend == "tinydb":
            self.flag.unlink(missing_ok=True)
        elif self._url:
            import psycopg

            with psycopg.connect(self._url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER IF EXISTS test_disk_full ON documents")
            self._url = None
