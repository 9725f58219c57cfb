"""Clocks per Hummingbot server: performance sampling, and since when a server fails.

With one fleet-wide sample clock, the first server whose snapshot was recorded in a sample
period took the period and every other server's bots went unsampled. Each server now has its
own; performance_clock.sampled_at stays the fleet's "history changed" mark caches key on.
With one fleet-wide failure clock (alert_clock), any server's answer ended another's outage,
so "Hummingbot unreachable" never fired while one server of several was down: each server
now records its own (`failing_since`, `failing_kind`); alert_clock keeps the failures of a
snapshot that has no server row.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "performance_server_clock",
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["hummingbot_servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )
    op.add_column("hummingbot_servers", sa.Column("failing_since", sa.DateTime(), nullable=True))
    op.add_column("hummingbot_servers", sa.Column("failing_kind", sa.String(), nullable=True))


def downgrade():
    op.drop_column("hummingbot_servers", "failing_kind")
    op.drop_column("hummingbot_servers", "failing_since")
    op.drop_table("performance_server_clock")
