"""A performance sample clock per Hummingbot server.

With one fleet-wide clock, the first server whose snapshot was recorded in a sample period
took the period and every other server's bots went unsampled. Each server now has its own;
performance_clock.sampled_at stays the fleet's "history changed" mark that caches key on.

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


def downgrade():
    op.drop_table("performance_server_clock")
