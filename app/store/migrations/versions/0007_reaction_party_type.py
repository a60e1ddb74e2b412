"""The contact policies' reaction read by party, reaction type and time:
`documents_reaction_party_type` ((doc #>> '{relatedParty,0,id}'),
(doc ->> 'reactionType'), (doc ->> 'reactionDate')) over the reaction
collection, replacing 0004's `documents_reaction_party` (party, time),
which only that read used.

Each policy kind reads one reaction type over its own window (`shown` over
a week, `accepted` over up to ten years: app/rules/engine/contact.py
reaction_windows); with (party, time) the ten-year branch walked every
reaction of the party and fetched each row to test its type. With the type
in the index each branch is one range of exactly the rows it returns
(EXPLAIN ANALYZE at 1 million reactions: bench/contact_long_history.py).

Built and dropped CONCURRENTLY, outside the migration's transaction
(alembic's autocommit_block): on a production table of millions of
reactions a plain CREATE INDEX holds a SHARE lock for the whole build and
every reaction POST would wait. A concurrent build that was interrupted
leaves an INVALID index of the same name: it is dropped first, so running
the upgrade again finishes the job.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NEW = """CREATE INDEX CONCURRENTLY documents_reaction_party_type ON documents
    ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionType'), (doc ->> 'reactionDate'))
    WHERE collection = 'recommendationReaction'"""
OLD = """CREATE INDEX CONCURRENTLY documents_reaction_party ON documents
    ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionDate'))
    WHERE collection = 'recommendationReaction'"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS documents_reaction_party_type")
        op.execute(NEW)
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS documents_reaction_party")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS documents_reaction_party")
        op.execute(OLD)
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS documents_reaction_party_type")
