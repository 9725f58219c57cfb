"""Indexes for the list pages: live definitions by name, by account and by status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("archived_at IS NULL")


def upgrade():
    op.create_index("ix_bots_live_name", "bots", ["name", "id"], postgresql_where=LIVE)
    op.create_index("ix_bots_live_account_name", "bots", ["account_identifier", "name", "id"],
                    postgresql_where=LIVE)
    op.create_index("ix_bots_live_status_name", "bots", ["status", "name", "id"],
                    postgresql_where=LIVE)


def downgrade():
    op.drop_index("ix_bots_live_status_name", table_name="bots")
    op.drop_index("ix_bots_live_account_name", table_name="bots")
    op.drop_index("ix_bots_live_name", table_name="bots")
