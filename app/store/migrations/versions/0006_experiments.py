"""Experiments (app/experiments): the experiment and arm of every decision
and of its items, so the report per arm is a GROUP BY over an index range
(the experiment's own rows), never a scan of the log.

- `decisions.experiment_id` (experiment_arm exists since 0004), index
  (experiment_id, experiment_arm, decided_at) over the rows inside an
  experiment only: decisions per arm, holdouts (no items) included;
- `decision_items.experiment_id`, `.experiment_arm`, same partial index:
  items, shown, clicked, leads and accepted per arm from the flags that the
  0005 triggers keep exact.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE decisions ADD COLUMN experiment_id text")
    op.execute("""
        CREATE INDEX decisions_experiment ON decisions (experiment_id, experiment_arm, decided_at)
        WHERE experiment_id IS NOT NULL""")
    op.execute("ALTER TABLE decision_items ADD COLUMN experiment_id text, "
               "ADD COLUMN experiment_arm text")
    op.execute("""
        CREATE INDEX decision_items_experiment ON decision_items
            (experiment_id, experiment_arm, decided_at) WHERE experiment_id IS NOT NULL""")


def downgrade() -> None:
    op.execute("DROP INDEX decision_items_experiment")
    op.execute("ALTER TABLE decision_items DROP COLUMN experiment_id, DROP COLUMN experiment_arm")
    op.execute("DROP INDEX decisions_experiment")
    op.execute("ALTER TABLE decisions DROP COLUMN experiment_id")
