"""The operator's way back and forth across migration 0007 (the reactions'
(party, type, date) index, built CONCURRENTLY) on a PostgreSQL database
that holds reactions, through `flask store upgrade` / `flask store
downgrade`: an upgrade to an older revision is refused with what to run
(it printed "schema upgraded to 0006" and changed nothing), and the
downgrade puts 0006's index back (an interrupted build's recovery:
tests/test_contact_long_history.py)."""
from __future__ import annotations

import os
import sys

import psycopg

import cliprocess
from helpers import ROOT


def flask(env: dict, *args: str):
    return cliprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "store", *args],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def state(url: str) -> tuple[str, dict[str, bool]]:
    """(alembic_version, {reaction index name: valid})."""
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        indexes = dict(conn.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid = 'documents'::regclass "
            "AND indexrelid::regclass::text LIKE 'documents_reaction_party%'").fetchall())
    return version, indexes


def add_reactions(url: str, count: int = 200) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO documents (collection, id, doc) SELECT 'recommendationReaction', 'r-' || g, "
            "jsonb_build_object('id', 'r-' || g, 'reactionType', (ARRAY['shown', 'rejected'])[1 + g %% 2], "
            "'reactionDate', '2026-12-0' || (1 + g %% 5) || 'T10:00:00+14:00', "
            "'relatedParty', jsonb_build_array(jsonb_build_object('id', 'p-' || g %% 7)), "
            "'productOffering', jsonb_build_object('id', '6542')) FROM generate_series(1, %s) g",
            (count,))


def test_upgrade_never_claims_to_go_back_and_downgrade_does(pg_cluster, tmp_path):
    name = f"downgrade_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.database_url(name)
    env = {"RECO_STORE_URL": url, "RECO_DATA_DIR": str(tmp_path / "data")}
    assert flask(env, "upgrade", "--revision", "0006").returncode == 0
    add_reactions(url)
    done = flask(env, "upgrade")
    assert done.returncode == 0, done.stderr
    assert state(url) == ("0007", {"documents_reaction_party_type": True})

    back = flask(env, "upgrade", "--revision", "0006")
    assert back.returncode == 1, back.stdout + back.stderr
    assert "schema upgraded" not in back.stdout
    assert "flask store downgrade --revision 0006" in back.stderr and "Traceback" not in back.stderr
    assert state(url) == ("0007", {"documents_reaction_party_type": True})

    down = flask(env, "downgrade", "--revision", "0006")
    assert down.returncode == 0, down.stdout + down.stderr
    assert state(url) == ("0006", {"documents_reaction_party": True})
    again = flask(env, "downgrade", "--revision", "0006")          # safe to run again
    assert again.returncode == 0 and state(url)[0] == "0006", again.stderr
    forward = flask(env, "downgrade", "--revision", "0007")
    assert forward.returncode == 1 and "flask store upgrade" in forward.stderr, forward.stderr
    assert "Traceback" not in forward.stderr
