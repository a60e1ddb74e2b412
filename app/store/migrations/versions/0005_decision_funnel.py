"""The conversion funnel's hourly rollup: the report reads aggregates, not
every recorded item.

`decision_funnel_hourly` holds, per (UTC hour, rule set id, version,
channel, dimension, key), the funnel counts of the items decided in that
hour: `decisions` (answers with an item in the group), `items`, `shown`,
`clicked`, `leads`, `accepted`. Dimensions: 'v' (the version itself, key
NULL; per channel, so it also gives the channel rows), 'r' (rule), 'o'
(offering), 's' (segment). A decision has one hour, version and channel, so
summing `decisions` over hours and channels stays an exact distinct count.

Kept exact in the database, in the transaction of each write, whatever
writes it (the decision log's batch insert, a reaction, a lead created,
PATCHed or deleted, erase by party, the retention purge):
- decision_items gets the item's funnel flags (shown, clicked, led,
  accepted) as columns;
- a statement trigger on INSERT into decision_items reads the flags of the
  new items from reactions and leads already stored (a reaction may name a
  decision not yet flushed) and adds the batch to the rollup: one upsert
  per batch, not per row;
- a statement trigger on DELETE (erase, purge: cascaded from decisions)
  subtracts the deleted items;
- row triggers on documents of collections recommendationReaction and
  salesLead recompute that (decision, item)'s flags and apply the change.
A transaction-scoped advisory lock per decision id orders a reaction and
the batch that inserts its decision, so neither misses the other.
Rather than a background job with a watermark: reactions and lead status
change rows already counted, which a watermark over insert order cannot see
without a change log, and the report must equal the GROUP BY at any moment.

`decision_funnel_rebuild()` recomputes flags and rollup from the rows (the
backfill here, and after bulk loads with triggers disabled).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FEEDBACK = "('recommendationReaction', 'salesLead')"

# The rollup rows of a set of decision_items rows (with flags), times a
# sign: {source} is a query of such rows, {sign} 1 or -1.
_ROLLUP = """
    WITH src AS MATERIALIZED ({source})
    INSERT INTO decision_funnel_hourly AS h (hour, rule_set_id, rule_set_version, channel_id,
        dimension, key, decisions, items, shown, clicked, leads, accepted)
    SELECT date_trunc('hour', x.decided_at, 'UTC'), x.rule_set_id, x.rule_set_version,
           x.channel_id, x.dim, x.key,
           {sign} * count(DISTINCT x.decision_id), {sign} * count(*),
           {sign} * count(*) FILTER (WHERE x.shown), {sign} * count(*) FILTER (WHERE x.clicked),
           {sign} * count(*) FILTER (WHERE x.led), {sign} * count(*) FILTER (WHERE x.accepted)
    FROM (SELECT s.*, 'v'::text AS dim, NULL::text AS key FROM src s
          UNION ALL SELECT s.*, 'o', s.offering_id FROM src s
          UNION ALL SELECT s.*, 's', s.segment FROM src s
          UNION ALL SELECT s.*, 'r', r.rule FROM src s
              CROSS JOIN LATERAL (SELECT DISTINCT u AS rule FROM unnest(s.rule_ids) u) r) x
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, rule_set_id, rule_set_version, channel_id, dimension, key)
    DO UPDATE SET decisions = h.decisions + excluded.decisions, items = h.items + excluded.items,
                  shown = h.shown + excluded.shown, clicked = h.clicked + excluded.clicked,
                  leads = h.leads + excluded.leads, accepted = h.accepted + excluded.accepted"""

# Flags of the items named by relation {keys}(decision_id, item_id), from
# the reactions and leads stored: columns decision_id, item_id, shown,
# clicked, led, accepted.
_FLAGS = """
    SELECT k.decision_id, k.item_id,
           coalesce(bool_or(d.collection = 'recommendationReaction'
                            AND d.doc->>'reactionType' = 'shown'), false) AS shown,
           coalesce(bool_or(d.collection = 'recommendationReaction'
                            AND d.doc->>'reactionType' = 'clicked'), false) AS clicked,
           coalesce(bool_or(d.collection = 'salesLead'), false) AS led,
           coalesce(bool_or((d.collection = 'recommendationReaction'
                             AND d.doc->>'reactionType' = 'accepted')
                            OR (d.collection = 'salesLead' AND d.doc->>'status' = 'accepted')),
                    false) AS accepted
    FROM {keys} k
    JOIN documents d ON d.collection IN """ + FEEDBACK + """
         AND (d.doc #>> '{{recommendation,id}}') = k.decision_id
         AND (d.doc #>> '{{recommendation,itemId}}') = k.item_id
    GROUP BY k.decision_id, k.item_id"""


def upgrade() -> None:
    op.execute("""
        ALTER TABLE decision_items
            ADD COLUMN shown boolean NOT NULL DEFAULT false,
            ADD COLUMN clicked boolean NOT NULL DEFAULT false,
            ADD COLUMN led boolean NOT NULL DEFAULT false,
            ADD COLUMN accepted boolean NOT NULL DEFAULT false""")
    op.execute("""
        CREATE TABLE decision_funnel_hourly (
            hour timestamptz NOT NULL,
            rule_set_id text NOT NULL,
            rule_set_version text NOT NULL,
            channel_id text,
            dimension text NOT NULL,
            key text,
            decisions bigint NOT NULL,
            items bigint NOT NULL,
            shown bigint NOT NULL,
            clicked bigint NOT NULL,
            leads bigint NOT NULL,
            accepted bigint NOT NULL,
            UNIQUE NULLS NOT DISTINCT
                (hour, rule_set_id, rule_set_version, channel_id, dimension, key)
        )""")
    # reactions and leads of one recommended item: the triggers' lookup
    op.execute(f"""
        CREATE INDEX documents_feedback_item ON documents
            ((doc #>> '{{recommendation,id}}'), (doc #>> '{{recommendation,itemId}}'))
        WHERE collection IN {FEEDBACK}""")

    op.execute(f"""
        CREATE FUNCTION decision_items_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(decision_id))
            FROM (SELECT DISTINCT decision_id FROM added ORDER BY 1) AS ids;
            WITH flags AS ({_FLAGS.format(keys="added")})
            UPDATE decision_items i
            SET shown = f.shown, clicked = f.clicked, led = f.led, accepted = f.accepted
            FROM flags f WHERE i.decision_id = f.decision_id AND i.item_id = f.item_id;
            {_ROLLUP.format(sign=1, source="SELECT i.* FROM decision_items i "
                                             "JOIN added a USING (decision_id, item_id)")};
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION decision_items_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_ROLLUP.format(source="SELECT * FROM removed", sign=-1)};
            DELETE FROM decision_funnel_hourly
            WHERE items = 0 AND hour IN (SELECT DISTINCT date_trunc('hour', decided_at, 'UTC')
                                         FROM removed);
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION decision_item_feedback(p_decision text, p_item text)
        RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            i decision_items%ROWTYPE;
            f record;
        BEGIN
            IF p_decision IS NULL OR p_item IS NULL THEN RETURN; END IF;
            PERFORM pg_advisory_xact_lock(hashtext(p_decision));
            SELECT * INTO i FROM decision_items
            WHERE decision_id = p_decision AND item_id = p_item FOR UPDATE;
            IF NOT FOUND THEN RETURN; END IF;   -- not flushed yet: its insert reads the flags
            SELECT * INTO f FROM ({_FLAGS.format(
                keys="(SELECT p_decision AS decision_id, p_item AS item_id)")}) AS x;
            IF NOT FOUND THEN
                SELECT p_decision, p_item, false AS shown, false AS clicked, false AS led,
                       false AS accepted INTO f;
            END IF;
            IF (f.shown, f.clicked, f.led, f.accepted)
               IS NOT DISTINCT FROM (i.shown, i.clicked, i.led, i.accepted) THEN
                RETURN;
            END IF;
            UPDATE decision_items SET shown = f.shown, clicked = f.clicked, led = f.led,
                                      accepted = f.accepted
            WHERE decision_id = p_decision AND item_id = p_item;
            PERFORM 1 FROM decision_funnel_hourly h
            WHERE h.hour = date_trunc('hour', i.decided_at, 'UTC')
              AND h.rule_set_id = i.rule_set_id AND h.rule_set_version = i.rule_set_version
              AND h.channel_id IS NOT DISTINCT FROM i.channel_id
              AND ((h.dimension = 'v' AND h.key IS NULL)
                   OR (h.dimension = 'o' AND h.key IS NOT DISTINCT FROM i.offering_id)
                   OR (h.dimension = 's' AND h.key IS NOT DISTINCT FROM i.segment)
                   OR (h.dimension = 'r' AND h.key = ANY (i.rule_ids)))
            ORDER BY h.dimension, h.key FOR UPDATE;
            UPDATE decision_funnel_hourly h
            SET shown = h.shown + (f.shown::int - i.shown::int),
                clicked = h.clicked + (f.clicked::int - i.clicked::int),
                leads = h.leads + (f.led::int - i.led::int),
                accepted = h.accepted + (f.accepted::int - i.accepted::int)
            WHERE h.hour = date_trunc('hour', i.decided_at, 'UTC')
              AND h.rule_set_id = i.rule_set_id AND h.rule_set_version = i.rule_set_version
              AND h.channel_id IS NOT DISTINCT FROM i.channel_id
              AND ((h.dimension = 'v' AND h.key IS NULL)
                   OR (h.dimension = 'o' AND h.key IS NOT DISTINCT FROM i.offering_id)
                   OR (h.dimension = 's' AND h.key IS NOT DISTINCT FROM i.segment)
                   OR (h.dimension = 'r' AND h.key = ANY (i.rule_ids)));
        END $$""")
    op.execute("""
        CREATE FUNCTION documents_feedback_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM decision_item_feedback(OLD.doc #>> '{recommendation,id}',
                                               OLD.doc #>> '{recommendation,itemId}');
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT'
                    OR (NEW.doc #>> '{recommendation,id}', NEW.doc #>> '{recommendation,itemId}')
                       IS DISTINCT FROM (OLD.doc #>> '{recommendation,id}',
                                         OLD.doc #>> '{recommendation,itemId}')) THEN
                PERFORM decision_item_feedback(NEW.doc #>> '{recommendation,id}',
                                               NEW.doc #>> '{recommendation,itemId}');
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION decision_funnel_rebuild() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            LOCK TABLE decision_items IN SHARE ROW EXCLUSIVE MODE;
            UPDATE decision_items SET shown = false, clicked = false, led = false,
                                      accepted = false
            WHERE shown OR clicked OR led OR accepted;
            WITH keys AS (SELECT DISTINCT doc #>> '{{recommendation,id}}' AS decision_id,
                                          doc #>> '{{recommendation,itemId}}' AS item_id
                          FROM documents WHERE collection IN {FEEDBACK}),
                 flags AS ({_FLAGS.format(keys="keys")})
            UPDATE decision_items i
            SET shown = f.shown, clicked = f.clicked, led = f.led, accepted = f.accepted
            FROM flags f WHERE i.decision_id = f.decision_id AND i.item_id = f.item_id;
            DELETE FROM decision_funnel_hourly;
            {_ROLLUP.format(source="SELECT * FROM decision_items", sign=1)};
        END $$""")
    op.execute("SELECT decision_funnel_rebuild()")
    op.execute("""
        CREATE TRIGGER decision_items_added AFTER INSERT ON decision_items
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION decision_items_added()""")
    op.execute("""
        CREATE TRIGGER decision_items_removed AFTER DELETE ON decision_items
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
        EXECUTE FUNCTION decision_items_removed()""")
    for event, when in (("INSERT", "NEW.collection IN {0}"),
                        ("UPDATE", "OLD.collection IN {0} OR NEW.collection IN {0}"),
                        ("DELETE", "OLD.collection IN {0}")):
        op.execute(f"""
            CREATE TRIGGER documents_feedback_{event.lower()} AFTER {event} ON documents
            FOR EACH ROW WHEN ({when.format(FEEDBACK)})
            EXECUTE FUNCTION documents_feedback_changed()""")


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER documents_feedback_{event} ON documents")
    op.execute("DROP TRIGGER decision_items_added ON decision_items")
    op.execute("DROP TRIGGER decision_items_removed ON decision_items")
    for function in ("decision_funnel_rebuild()", "documents_feedback_changed()",
                     "decision_item_feedback(text, text)", "decision_items_removed()",
                     "decision_items_added()"):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP INDEX documents_feedback_item")
    op.execute("DROP TABLE decision_funnel_hourly")
    op.execute("ALTER TABLE decision_items DROP COLUMN shown, DROP COLUMN clicked, "
               "DROP COLUMN led, DROP COLUMN accepted")
