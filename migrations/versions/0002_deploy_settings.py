"""Bots remember how they were last deployed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("bots", sa.Column("deploy_settings", postgresql.JSONB(astext_type=sa.Text()),
                                    server_default=sa.text("'{}'::jsonb"), nullable=False))


def downgrade():
    op.drop_column("bots", "deploy_settings")
