"""Initial schema: bots (the proposed columns first, then ours), bot_events, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BOT_STATUSES = "'stopped', 'deploying', 'running', 'deploy_failed', 'stopping', 'archived'"

# History is append only: the database itself refuses to rewrite or erase it.
APPEND_ONLY = """
CREATE FUNCTION bot_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bot_events is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER bot_events_append_only
    BEFORE UPDATE OR DELETE ON bot_events
    FOR EACH ROW EXECUTE FUNCTION bot_events_append_only();
"""


def upgrade():
    op.create_table(
        "bots",
        # The schema proposed when the bug was found, column for column.
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_identifier", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("connector", sa.String(), nullable=False),
        sa.Column("pair", sa.String(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("status", sa.String(), server_default=sa.text("'stopped'"), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=True),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=True),
        # What the product adds.
        sa.Column("instance_name", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_seen_status", sa.String(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("deploy_request_id", sa.String(), nullable=True),
        sa.Column("deploy_requested_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(f"status IN ({BOT_STATUSES})", name=op.f("ck_bots_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bots")),
        sa.UniqueConstraint("instance_name", name=op.f("uq_bots_instance_name")),
    )
    op.create_index("idx_bots_account", "bots", ["account_identifier"])
    op.create_index("idx_bots_status", "bots", ["status"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("account_identifier", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("session_generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role = 'admin' OR account_identifier IS NOT NULL",
                           name=op.f("ck_users_client_has_account")),
        sa.CheckConstraint("role IN ('admin', 'client')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )

    op.create_table(
        "bot_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("from_status", sa.String(), nullable=True),
        sa.Column("to_status", sa.String(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_bot_events_bot_id_bots"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_events")),
    )
    op.create_index("ix_bot_events_bot_id_occurred_at", "bot_events", ["bot_id", "occurred_at"])
    op.execute(APPEND_ONLY)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS bot_events_append_only ON bot_events")
    op.execute("DROP FUNCTION IF EXISTS bot_events_append_only()")
    op.drop_index("ix_bot_events_bot_id_occurred_at", table_name="bot_events")
    op.drop_table("bot_events")
    op.drop_table("users")
    op.drop_index("idx_bots_status", table_name="bots")
    op.drop_index("idx_bots_account", table_name="bots")
    op.drop_table("bots")
