"""TOTP second factor (RFC 6238) for dashboard logins (ASVS 6.3.2).

`totp_secret` is the base32 shared secret (set only once enrolment is confirmed),
`totp_enabled_at` when it was confirmed, and `totp_last_step` the last accepted 30-second time
step, so a code cannot be used twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("totp_secret", sa.String(), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade():
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")
