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
    """Apply the migrations up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


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
