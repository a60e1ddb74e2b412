"""The GIN index of the look-ups by path without a pending list
(``fastupdate = off``), so a look-up's time does not grow with the writes
since the table was last vacuumed.

With ``fastupdate`` on (PostgreSQL's default), new index entries go to an
unsorted pending list that every search must scan in full until a vacuum,
an analyze or a 4 MB ``gin_pending_list_limit`` moves them into the index
(PostgreSQL documentation, "GIN Fast Update Technique": "a large list of
pending entries will slow searches significantly ... If consistent response
time is more important than update speed, use of pending entries can be
disabled"). Autovacuum comes after 1000 + 20 % of the table's rows are
inserted: soon on a small table, never within hours on 3.5 million
documents, where every instant recommendation's products look-up then
scanned megabytes of pending entries (bench/data_plane.py, BENCHMARKS.md,
"Data plane"). Writes pay instead: each document's entries go into the
index at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER INDEX documents_doc_path SET (fastupdate = off)")
    # what is pending now goes into the index (it would stay until a vacuum)
    op.execute("SELECT gin_clean_pending_list('documents_doc_path'::regclass)")


def downgrade() -> None:
    op.execute("ALTER INDEX documents_doc_path RESET (fastupdate)")
