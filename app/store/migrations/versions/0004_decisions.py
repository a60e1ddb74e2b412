"""The decision log (app/decisions): one row per recommendation answer.

Columns are what reports, purges and per-party reads filter or group on;
the record itself is `doc` (app/decisions/record.py). Indexes:
- `decision_items`: one row per item (the funnel's GROUP BY reads it, not
  the JSON), deleted with its decision (ON DELETE CASCADE);
- primary key `id` (UUIDv7, time-ordered: inserts land at the index's
  right edge, so their cost does not grow with the table);
- `decided_at`: time ranges (reports, replays) and the retention purge;
- `(party_id, decided_at)`: one person's recent history in one index scan
  (contact policies) and `flask decisions erase --party`;
- reactions (documents of collection recommendationReaction) by party and
  time, the same read for what a person did with their recommendations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE decisions (
            id text PRIMARY KEY,
            decided_at timestamptz NOT NULL,
            mode text NOT NULL,
            party_id text,
            channel_id text,
            segment text,
            rule_set_id text,
            rule_set_version text,
            experiment_arm text,
            doc jsonb NOT NULL
        )""")
    op.execute("CREATE INDEX decisions_decided_at ON decisions (decided_at)")
    # One row per recommended item, written with its decision: what the
    # conversion funnel groups, without unpacking JSON at report time.
    op.execute("""
        CREATE TABLE decision_items (
            decision_id text NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
            item_id text NOT NULL,
            decided_at timestamptz NOT NULL,
            rule_set_id text NOT NULL,
            rule_set_version text NOT NULL,
            channel_id text,
            segment text,
            offering_id text,
            rule_ids text[] NOT NULL,
            PRIMARY KEY (decision_id, item_id)
        )""")
    op.execute("CREATE INDEX decision_items_decided_at ON decision_items (decided_at)")
    op.execute("CREATE INDEX decisions_party ON decisions (party_id, decided_at)")
    op.execute("""
        CREATE INDEX documents_reaction_party ON documents
            ((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionDate'))
        WHERE collection = 'recommendationReaction'""")


def downgrade() -> None:
    op.execute("DROP INDEX documents_reaction_party")
    op.execute("DROP TABLE decision_items")
    op.execute("DROP TABLE decisions")
