"""Where the decision log's batches go, behind one small interface:

    write(records)            one batch, all or nothing (raises on failure)
    get(decision_id)          one record or None
    records(since, until, channel, limit)  records in time order (newest
                              `limit` when given), for replays and exports
    erase_party(party_id)     remove a person's records; how many
    purge(before)             remove records decided before; how many

PostgresSink: table `decisions` (migration 0004), one COPY per batch, and
one for its `decision_items` (whose statement trigger adds the batch to the
funnel's hourly rollup, 0005); a retried batch by INSERT ... ON CONFLICT. JsonLinesSink (the embedded default): one
append-only JSON Lines file per UTC day in <data dir>/decisions, because
TinyDB rewrites its whole file on every write; the batch is one write(2) on
an O_APPEND descriptor under an exclusive flock shared with the rewrites of
erase, so the workers of a host can share a day's file. A batch is all or
nothing: a failed append (a full disk) is truncated away before the error
is raised, and a line left cut by a crash is ended by the next append and
skipped by reads."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator

from ..atomicfile import write_all, write_atomic
from .ids import decision_time
from .record import parse_time
from .sqlwhere import conditions

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class JsonLinesSink:
    backend = "tinydb"

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, day: dt.date) -> Path:
        return self.directory / f"{day.isoformat()}.jsonl"

    def _days(self) -> list[tuple[dt.date, Path]]:
        found = []
        for path in self.directory.glob("*.jsonl"):
            try:
                found.append((dt.date.fromisoformat(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    @contextlib.contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)     # releases the lock

    def write(self, records: list[dict]) -> None:
        """Append the batch, all or nothing: a write the disk cuts short
        (full, over quota) is taken back, in every day's file it reached, so
        the batch's retry neither glues its first record to a cut line (which
        made it unreadable) nor repeats the days already written. Raises the
        OSError after the rollback."""
        by_day: dict[dt.date, list[str]] = {}
        for record in records:
            by_day.setdefault(parse_time(record["decidedAt"]).date(), []).append(_ENCODE(record))
        with self._locked():
            written: list[tuple[int, int]] = []          # (fd, size before) of each day's file
            try:
                for day, lines in by_day.items():
                    data = ("\n".join(lines) + "\n").encode()
                    fd = os.open(self._path(day), os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                 0o666)
                    size = os.fstat(fd).st_size
                    written.append((fd, size))
                    if _cut_short(fd, size):
                        # a write cut by a crash: end it, so it stays one
                        # unreadable line and this batch's first record is whole
                        data = b"\n" + data
                    write_all(fd, data)
            except BaseException:
                # a full disk lets part of a batch in: take it back in every
                # day's file it reached, or the retry would write records twice
                for fd, size in written:
                    with contextlib.suppress(OSError):   # shrinking needs no space
                        os.ftruncate(fd, size)
                        os.fsync(fd)
                raise
            finally:
                for fd, _size in written:
                    os.close(fd)

    def _lines(self, path: Path) -> Iterator[dict]:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    continue      # a write cut by a crash: not a record
                try:
                    record = json.loads(line)
                except ValueError:
                    continue      # a cut line that the next write ended
                if isinstance(record, dict) and isinstance(record.get("id"), str) \
                        and isinstance(record.get("decidedAt"), str):
                    yield record

    def get(self, decision_id: str) -> dict | None:
        when = decision_time(decision_id)
        if when is None:
            return None
        needle = f'"id":"{decision_id}"'.encode()
        # the id's time and decidedAt come from one clock read; the next day
        # too in case the record was dated across midnight by a slow clock
        for day in (when.date(), when.date() + dt.timedelta(days=1)):
            path = self._path(day)
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                continue
            with handle:
                for line in handle:
                    if needle in line and line.endswith(b"\n"):
                        try:
                            record = json.loads(line)
                        except ValueError:
                            continue      # a line cut by a crash, ended by the next write
                        if isinstance(record, dict) and record.get("id") == decision_id:
                            return record
        return None

    def records(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
                channel: str | None = None, limit: int | None = None) -> Iterator[dict]:
        def wanted(record) -> bool:
            when = parse_time(record["decidedAt"])
            return ((since is None or when >= since) and (until is None or when < until)
                    and (channel is None or record.get("channelId") == channel))

        days = [(day, path) for day, path in self._days()
                if (since is None or day >= since.date()) and (until is None or day <= until.date())]
        if limit is None:
            for _day, path in days:
                for record in sorted(self._lines(path), key=lambda r: r["decidedAt"]):
                    if wanted(record):
                        yield record
            return
        newest: list[dict] = []
        for _day, path in reversed(days):
            found = sorted((r for r in self._lines(path) if wanted(r)),
                           key=lambda r: r["decidedAt"])
            newest = found[-(limit - len(newest)):] + newest if limit > len(newest) else newest
            if len(newest) >= limit:
                break
        yield from newest

    def _rewrite(self, keep) -> int:
        removed = 0
        with self._locked():
            for _day, path in self._days():
                kept, dropped = [], 0
                for record in self._lines(path):
                    if keep(record):
                        kept.append(_ENCODE(record))
                    else:
                        dropped += 1
                if dropped:
                    if kept:
                        os.close(write_atomic(str(path), ("\n".join(kept) + "\n").encode()))
                    else:
                        path.unlink()
                    removed += dropped
        return removed

    def erase_party(self, party_id: str) -> int:
        return self._rewrite(lambda record: record.get("partyId") != party_id)

    def status(self, warn_bytes: float) -> dict:
        """Size on disk, and a warning when it nears where the embedded log
        stops being usable: a GET of an answer reads its day's file, the
        funnel and replays read every file (BENCHMARKS.md, "Decision log")."""
        size = sum(path.stat().st_size for _day, path in self._days())
        found = {"backend": self.backend, "bytes": size, "days": len(self._days())}
        if size >= warn_bytes:
            found["warning"] = (
                f"the embedded decision log holds {size / 2**20:.0f} MiB (about "
                f"{size // 870:,} answers); reports and replays read it whole and slow down "
                f"from here: use PostgreSQL (RECO_STORE_URL) or a shorter "
                f"RECO_DECISION_RETENTION_DAYS")
        return found

    def purge(self, before: dt.datetime) -> int:
        removed = 0
        with self._locked():
            for day, path in self._days():
                if day < before.date():
                    removed += sum(1 for _ in self._lines(path))
                    path.unlink()
        # the cut-off's own day: only its older records
        return removed + self._rewrite(lambda record: parse_time(record["decidedAt"]) >= before)


_COLUMNS = ("id, decided_at, mode, party_id, channel_id, segment, rule_set_id, "
            "rule_set_version, experiment_arm, experiment_id, doc")


class PostgresSink:
    """The `decisions` table of the store's database, through the store's
    connection pool (so its timeouts and StoreUnavailable apply)."""

    backend = "postgresql"
    # no day files: the embedded contact history reads JsonLinesSink's
    # `directory`, and finds none here
    directory = None

    def __init__(self, store):
        self.store = store

    def write(self, records: list[dict]) -> None:
        """One COPY into `decisions` and one into `decision_items` (whose
        statement trigger adds the batch to the funnel's rollup). A batch
        written before whose commit the writer did not see (a retry) hits
        the primary key: then the same rows by INSERT ... ON CONFLICT DO
        NOTHING, which skips those already stored."""
        import psycopg   # light start-up: the driver loads on PostgreSQL only

        # jsonb and text cannot hold a NUL: dropped from the strings themselves
        # (editing the JSON text would also hit a backslash followed by "u0000")
        records = [_without_nul(record) for record in records]
        texts = [_ENCODE(record) for record in records]
        rows = [(*(_text(record.get(key)) for key in _KEYS), text)
                for record, text in zip(records, texts)]
        items = _item_rows(records)
        with self.store.connection() as conn:
            try:
                with conn.transaction():          # a savepoint
                    with conn.cursor().copy(f"COPY decisions ({_COLUMNS}) FROM STDIN") as copy:
                        copy.set_types(["text"] * (len(_KEYS) + 1))   # doc: JSON text
                        for row in rows:
                            copy.write_row(row)
                    with conn.cursor().copy(f"COPY decision_items ({_ITEM_COLUMNS}) "
                                            "FROM STDIN") as copy:
                        copy.set_types(["text"] * 8 + ["text[]", "text", "text"])
                        for row in items:
                            copy.write_row(row)
                return
            except psycopg.errors.UniqueViolation:
                pass
            conn.execute(
                f"INSERT INTO decisions ({_COLUMNS}) "
                "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::jsonb[]) ON CONFLICT (id) DO NOTHING", [list(column) for column in zip(*rows)])
            conn.execute(
                f"INSERT INTO decision_items ({_ITEM_COLUMNS}) "
                "SELECT d, i, t, s, v, c, g, o, string_to_array(r, E'\\x1f'), e, a FROM unnest("
                "%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
                "AS x(d, i, t, s, v, c, g, o, r, e, a) ON CONFLICT DO NOTHING",
                [list(column) for column in zip(*(row[:8] + ("\x1f".join(row[8]),) + row[9:]
                                                  for row in items))] or [[]] * 11)

    def get(self, decision_id: str) -> dict | None:
        if "\x00" in decision_id:   # PostgreSQL text cannot hold NUL: no recorded id has one
            return None
        with self.store.connection(write=False) as conn:
            row = conn.execute("SELECT doc FROM decisions WHERE id = %s", (decision_id,)).fetchone()
        return row[0] if row else None

    def records(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
                channel: str | None = None, limit: int | None = None) -> Iterator[dict]:
        where, params = conditions(("decided_at >= %s", since), ("decided_at < %s", until),
                                   ("channel_id = %s", channel))
        sql = f"SELECT doc FROM decisions WHERE {' AND '.join(where) or 'true'}"
        if limit is not None:
            sql = f"SELECT doc FROM ({sql} ORDER BY decided_at DESC, id DESC LIMIT %s) AS newest"
            params.append(limit)
        sql += " ORDER BY doc->>'decidedAt', doc->>'id'"
        with self.store.connection(write=False) as conn:
            rows = conn.execute(sql, params).fetchall()
        for row in rows:
            yield row[0]

    def status(self, warn_bytes: float) -> dict:
        return {"backend": self.backend}

    # Items first, in one statement: the funnel rollup's delete trigger
    # (migration 0005) then runs once, not once per decision as it would
    # for each row's ON DELETE CASCADE.
    def erase_party(self, party_id: str) -> int:
        with self.store.connection() as conn:
            conn.execute("DELETE FROM decision_items WHERE decision_id IN "
                         "(SELECT id FROM decisions WHERE party_id = %s)", (party_id,))
            return conn.execute("DELETE FROM decisions WHERE party_id = %s", (party_id,)).rowcount

    def purge(self, before: dt.datetime) -> int:
        with self.store.connection() as conn:
            conn.execute("DELETE FROM decision_items WHERE decided_at < %s", (before,))
            return conn.execute("DELETE FROM decisions WHERE decided_at < %s", (before,)).rowcount


def _cut_short(fd: int, size: int) -> bool:
    """True when the file (of `size` bytes) ends inside a line: its last
    byte is not a newline."""
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _without_nul(value):
    """`value` with every NUL character removed from its strings and keys
    (requests cannot carry one, app/storable.py; catalog and rule texts
    reach a record too). The same object when there is none."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


_KEYS = ("id", "decidedAt", "mode", "partyId", "channelId", "segment", "ruleSetId",
         "ruleSetVersion", "experimentArm", "experimentId")
_ITEM_COLUMNS = ("decision_id, item_id, decided_at, rule_set_id, rule_set_version, "
                 "channel_id, segment, offering_id, rule_ids, experiment_id, experiment_arm")


def _text(value) -> str | None:
    """A record's value as its column's text, as `doc->>'key'` reads it
    (other JSON as JSON text); NUL, which no text column holds, dropped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _ENCODE(value)
    return text.replace("\x00", "") if "\x00" in text else text


def _item_rows(records: list[dict]) -> list[tuple]:
    """The decision_items rows of a batch: one per recommended item."""
    rows = []
    for record in records:
        for item in record.get("items") or []:
            rows.append((_text(record["id"]), _text(str(item.get("id"))),
                         _text(record["decidedAt"]), _text(record.get("ruleSetId")) or "",
                         _text(record.get("ruleSetVersion")) or "", _text(record.get("channelId")),
                         _text(record.get("segment")), _text(item.get("offeringId")),
                         [_text(rule) for rule in item.get("ruleIds") or []],
                         _text(record.get("experimentId")), _text(record.get("experimentArm"))))
    return rows


def sink_for(store, data_dir: Path):
    """PostgresSink on a PostgreSQL store, else JSON Lines in data_dir/decisions."""
    if store.sql:
        return PostgresSink(store)
    return JsonLinesSink(Path(data_dir) / "decisions")
