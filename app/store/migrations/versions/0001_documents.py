"""Documents of every collection as jsonb, with the indexes of the hot paths.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE documents (
            collection text NOT NULL,
            id text NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            doc jsonb NOT NULL,
            PRIMARY KEY (collection, id)
        )""")
    # Insertion order (Store.all, list tie-breaks) and per-collection scans.
    op.execute("CREATE INDEX documents_collection_seq ON documents (collection, seq)")
    # Look-ups by any path (`doc @? '$.relatedParty.id[*] ? (@ == "x")'`):
    # customer by engagedParty.id, product by relatedParty.id, lead by
    # recommendation.id, and equality filters of list queries.
    op.execute("CREATE INDEX documents_doc_path ON documents USING gin (doc jsonb_path_ops)")
    # A stored date-time text as an instant; NULL for anything else (and for
    # instants outside years 1-9999 UTC), so a stored value that is not a
    # date-time never makes a query fail. Text without
    # an offset is UTC (the session time zone is UTC as well).
    op.execute(r"""
        CREATE FUNCTION reco_instant(value jsonb) RETURNS timestamptz
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE
            text_value text;
            moment timestamptz;
        BEGIN
            IF value IS NULL OR jsonb_typeof(value) <> 'string' THEN
                RETURN NULL;
            END IF;
            text_value := value #>> '{}';
            IF text_value !~ '^\s*\d{4}-\d{2}-\d{2}' THEN
                RETURN NULL;
            END IF;
            text_value := regexp_replace(text_value, '\s*[Tt]\s*', 'T');
            IF text_value !~ '(Z|z|[+-]\d{2}(:?\d{2})?)$' THEN
                text_value := text_value || '+00:00';
            END IF;
            moment := text_value::timestamptz;
            -- the range the service's parser can convert to UTC: both
            -- backends agree on which stored values are date-times
            IF moment < '0001-01-01T00:00:00Z' OR moment >= '10000-01-01T00:00:00Z' THEN
                RETURN NULL;
            END IF;
            RETURN moment;
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END
        $$""")


def downgrade() -> None:
    op.execute("DROP FUNCTION reco_instant(jsonb)")
    op.execute("DROP TABLE documents")
