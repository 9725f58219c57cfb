"""Status snapshots shared by every dashboard process: one status call per server per period.

The process that takes a server's advisory lock calls Hummingbot and writes what it answered
here; the others read this row instead of calling (shared_status.py). A cache, so UNLOGGED:
no WAL for a few hundred kilobytes per server per period, and a crash only empties it. `json`,
not `jsonb`: kept and read back as the text it is, never queried inside.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "status_snapshots",
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("bots", postgresql.JSON(astext_type=sa.Text()), nullable=False,
                  server_default=sa.text("'{}'::json")),
        sa.Column("exited", postgresql.JSON(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["server_id"], ["hummingbot_servers.id"],
                                name=op.f("fk_status_snapshots_server_id_hummingbot_servers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_status_snapshots")),
        prefixes=["UNLOGGED"],
    )


def downgrade():
    op.drop_table("status_snapshots")
