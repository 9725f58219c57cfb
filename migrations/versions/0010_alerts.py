"""Alerts: destinations, rules, mutes, alert episodes and the delivery outbox.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

KINDS = "'webhook', 'slack', 'discord', 'telegram', 'email'"
ALERT_STATES = "'pending', 'firing', 'resolved'"
EVENTS = "'fired', 'repeat', 'resolved', 'test'"
DELIVERY_STATES = "'pending', 'sending', 'delivered', 'dead'"
EMPTY = sa.text("'{}'::jsonb")


def upgrade():
    op.create_table(
        "alert_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=True),
        sa.Column("hummingbot_failing_since", sa.DateTime(), nullable=True),
        sa.Column("hummingbot_error_kind", sa.String(), nullable=True),
        sa.Column("drawdown_at", sa.DateTime(), nullable=True),
        sa.Column("drawdown_inputs", sa.Text(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_alert_clock_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_clock")),
    )
    op.execute("INSERT INTO alert_clock (id) VALUES (1)")
    op.create_table(
        "alert_destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("account_identifier", sa.String(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), server_default=EMPTY,
                  nullable=False),
        sa.Column("signing_secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_alert_destinations_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_destinations")),
    )
    op.create_index("ix_alert_destinations_account", "alert_destinations",
                    ["account_identifier"])
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_identifier", sa.String(), nullable=True),
        sa.Column("conditions", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("hold_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("repeat_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), server_default=EMPTY,
                  nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("hold_seconds >= 0 AND repeat_seconds >= 0",
                           name=op.f("ck_alert_rules_intervals")),
        sa.ForeignKeyConstraint(["destination_id"], ["alert_destinations.id"],
                                name=op.f("fk_alert_rules_destination_id_alert_destinations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index("ix_alert_rules_destination", "alert_rules", ["destination_id"])
    op.create_table(
        "alert_mutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=True),
        sa.Column("account_identifier", sa.String(), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"],
                                name=op.f("fk_alert_mutes_bot_id_bots"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_mutes")),
    )
    op.create_index("ix_alert_mutes_until", "alert_mutes", ["until"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=True),
        sa.Column("account_identifier", sa.String(), nullable=True),
        sa.Column("condition", sa.String(), nullable=False),
        sa.Column("state", sa.String(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(f"state IN ({ALERT_STATES})", name=op.f("ck_alerts_state")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"],
                                name=op.f("fk_alerts_bot_id_bots"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ux_alerts_open", "alerts", ["bot_id", "condition"], unique=True,
                    postgresql_where=sa.text("state <> 'resolved'"),
                    postgresql_nulls_not_distinct=True)
    op.create_index("ix_alerts_account_open", "alerts", ["account_identifier"],
                    postgresql_where=sa.text("state <> 'resolved'"))
    op.create_index("ix_alerts_resolved_at", "alerts", ["resolved_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("idempotency_key", postgresql.UUID(as_uuid=True),
                  server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default=EMPTY,
                  nullable=False),
        sa.Column("status", sa.String(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(f"event IN ({EVENTS})", name=op.f("ck_alert_deliveries_event")),
        sa.CheckConstraint(f"status IN ({DELIVERY_STATES})",
                           name=op.f("ck_alert_deliveries_status")),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name=op.f("fk_alert_deliveries_alert_id_alerts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["destination_id"], ["alert_destinations.id"],
                                name=op.f("fk_alert_deliveries_destination_id_alert_destinations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_alert_deliveries_idempotency_key")),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["next_attempt_at", "id"],
                    postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_index("ix_alert_deliveries_alert_destination", "alert_deliveries",
                    ["alert_id", "destination_id"])
    op.create_index("ix_alert_deliveries_created_at", "alert_deliveries", ["created_at"])


def downgrade():
    op.drop_table("alert_deliveries")
    op.drop_table("alerts")
    op.drop_table("alert_mutes")
    op.drop_table("alert_rules")
    op.drop_table("alert_destinations")
    op.drop_table("alert_clock")
