"""The PostgreSQL schema's version: applied by Alembic (``flask store
upgrade``), checked by every worker before it serves.

The migrations are in ``app/store/migrations/versions``; the database
records the one applied in Alembic's ``alembic_version`` table.  A worker
serves only when that revision is the newest one this code knows (the
"head"): an older schema lacks what the code uses, and a newer or unknown
one was made by other code whose documents this code may misread.
"""
from __future__ import annotations

from pathlib import Path

# alembic is imported inside the functions that use it, to keep start-up light:
# only PostgreSQL deployments and `flask store ...` need it.

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Alembic runs on SQLAlchemy; psycopg 3 is its ``postgresql+psycopg`` driver."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgresql", "postgres") else url


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("postgresql://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, expected one: {heads}")
    return heads[0]


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    return {rev.revision for rev in script.walk_revisions()}


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent).

    Raises NotForward when the database is already past ``revision``:
    Alembic's upgrade to an older revision silently does nothing, and the
    operator who asked to go back was told the schema was "upgraded" to it
    while it stayed where it was (``downgrade`` goes back)."""
    from alembic import command

    config = alembic_config(url)
    current = current_revision(url)
    if current is not None and revision != "head" and current != revision \
            and revision in _ancestors(current):
        raise NotForward(f"the database schema is at revision {current}, past {revision}: "
                         f"an upgrade never goes back; run `flask store downgrade --revision {revision}`")
    command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations after ``revision`` (each migration's
    ``downgrade``, newest first): the way back to an older release's
    schema; at ``revision`` already, nothing (safe to run again). Raises
    NotForward when ``revision`` is not among the database's ancestors (a
    newer or unknown one, or no schema)."""
    from alembic import command

    current = current_revision(url)
    if current is not None and revision == current:
        return
    if current is None or revision not in _ancestors(current):
        raise NotForward(f"the database schema is at revision {current}, not past {revision}: "
                         "nothing to downgrade (`flask store upgrade` goes forward)")
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision recorded in the database's ``alembic_version`` (None:
    no schema yet)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _ancestors(revision: str) -> set[str]:
    """The revisions before ``revision`` (empty for one this code does not know)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    if revision not in known_revisions():
        return set()
    return {rev.revision for rev in script.iterate_revisions(revision, "base")} - {revision}


class NotForward(ValueError):
    """An upgrade to a revision the database is past, or a downgrade to one
    it is not past: the message says what to run instead."""


def schema_problem(current: str | None) -> str | None:
    """Why a worker must not serve against a database at revision
    ``current`` (None: no schema), or None when it may."""
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return ("the database has no schema of this service: run `flask store upgrade` "
                "(with RECO_STORE_URL set) before starting workers")
    if current in known_revisions():
        return (f"the database schema is at revision {current}, this code needs {head}: "
                "run `flask store upgrade`")
    return (f"the database schema is at revision {current}, which this code does not know "
            f"(its newest is {head}); it was made by a newer release: run that release, "
            "or restore a database of this one")
