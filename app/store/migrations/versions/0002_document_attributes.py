"""The top-level attribute names stored per collection and document shape,
recorded with every write, so that a list learns a stored TMF subclass's
extension attributes (a ResidentialCustomer's loyaltyTier, for filters, sort
and `fields=`) from a few index rows instead of reading the collection
(no list operation on PostgreSQL loads a whole collection: millions of customers).

A shape is the document's `@type` (jsonb; 'null' when absent) and whether it
carries a non-empty `@schemaLocation`: what decides whether a document is a
subclass (TMF630 part 2, polymorphism and extension). Rows are only added
(INSERT ... ON CONFLICT DO NOTHING, which takes no lock on an existing row),
never counted down: a reader checks that a shape's @type is still stored
(PostgresStore.attribute_names).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE document_attributes (
            collection text NOT NULL,
            type jsonb NOT NULL,
            located boolean NOT NULL,
            name text NOT NULL,
            PRIMARY KEY (collection, type, located, name)
        )""")
    # Python's truth of a @schemaLocation value (app.resources.service,
    # is_extension: `if resource.get("@schemaLocation")`).
    op.execute("""
        CREATE FUNCTION reco_located(value jsonb) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE jsonb_typeof(value)
                WHEN 'string' THEN value <> '""'::jsonb
                WHEN 'array' THEN value <> '[]'::jsonb
                WHEN 'object' THEN value <> '{}'::jsonb
                WHEN 'boolean' THEN value = 'true'::jsonb
                WHEN 'number' THEN value <> '0'::jsonb
                ELSE false END
        $$""")
    # What is already stored (one pass over the table, at the upgrade).
    op.execute("""
        INSERT INTO document_attributes (collection, type, located, name)
        SELECT DISTINCT collection, coalesce(doc->'@type', 'null'::jsonb),
               reco_located(doc->'@schemaLocation'), name
        FROM documents, jsonb_object_keys(doc) AS name
        WHERE jsonb_typeof(doc) = 'object'
        ON CONFLICT DO NOTHING""")


def downgrade() -> None:
    op.execute("DROP FUNCTION reco_located(jsonb)")
    op.execute("DROP TABLE document_attributes")
