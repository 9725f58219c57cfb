"""Configuration versions (bot_versions) and bulk actions (batches, batch_items).

bot_versions keeps each definition as it was before an edit replaced it. A batch is one bulk
action an operator confirmed; its items are work rows claimed with FOR UPDATE SKIP LOCKED.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ACTIONS = "'deploy', 'start', 'stop', 'stop-archive', 'archive', 'restore'"
STATES = "'pending', 'sending', 'done', 'failed', 'skipped', 'interrupted'"


def upgrade():
    op.create_table(
        "bot_versions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_identifier", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("connector", sa.String(), nullable=False),
        sa.Column("pair", sa.String(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("replaced_at", sa.DateTime(), nullable=False),
        sa.Column("replaced_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"],
                                name=op.f("fk_bot_versions_bot_id_bots"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_versions")),
        sa.UniqueConstraint("bot_id", "version", name="uq_bot_versions_bot_version"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("cancel_orders", sa.Boolean(), server_default=sa.text("true"),
                  nullable=False),
        sa.Column("selection", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name=op.f("ck_batches_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index("ix_batches_created_at", "batches", ["created_at"])
    op.create_table(
        "batch_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_batch_items_state")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"],
                                name=op.f("fk_batch_items_batch_id_batches"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"],
                                name=op.f("fk_batch_items_bot_id_bots"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_items")),
        sa.UniqueConstraint("batch_id", "bot_id", name="uq_batch_items_batch_bot"),
    )
    op.create_index("ix_batch_items_batch_position", "batch_items", ["batch_id", "position"])
    op.create_index("ix_batch_items_open", "batch_items", ["state", "id"],
                    postgresql_where=sa.text("state IN ('pending', 'sending')"))


def downgrade():
    op.drop_index("ix_batch_items_open", table_name="batch_items",
                  postgresql_where=sa.text("state IN ('pending', 'sending')"))
    op.drop_index("ix_batch_items_batch_position", table_name="batch_items")
    op.drop_table("batch_items")
    op.drop_index("ix_batches_created_at", table_name="batches")
    op.drop_table("batches")
    op.drop_table("bot_versions")
