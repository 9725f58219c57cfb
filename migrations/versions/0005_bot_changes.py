"""A counter of committed changes to `bots`, so every process can tell a cached list is current.

A statement-level trigger bumps it in the same transaction as the change: a reader sees the new
number exactly when it can see the new rows, in every worker and on every machine.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TRIGGER = """
CREATE FUNCTION bots_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bot_changes SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER bots_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bots
    FOR EACH STATEMENT EXECUTE FUNCTION bots_changed();
"""


def upgrade():
    op.create_table(
        "bot_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_bot_changes_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_changes")),
    )
    op.execute("INSERT INTO bot_changes (id, generation) VALUES (1, 0)")
    op.execute(TRIGGER)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS bots_changed ON bots")
    op.execute("DROP FUNCTION IF EXISTS bots_changed()")
    op.drop_table("bot_changes")
