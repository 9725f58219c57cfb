"""Performance history: runs (segments), deltas per sample/hour/day, latest figures.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "performance_segments",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("instance_name", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(), server_default=sa.text("'live'"), nullable=False),
        sa.CheckConstraint("source IN ('live', 'backfill')",
                           name=op.f("ck_performance_segments_source")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], ondelete="RESTRICT",
                                name=op.f("fk_performance_segments_bot_id_bots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_segments")),
        sa.UniqueConstraint("bot_id", "instance_name", "started_at",
                            name="uq_performance_segments_run"),
    )
    op.create_index("ux_performance_segments_open", "performance_segments", ["bot_id"],
                    unique=True, postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "performance_points",
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("controller", sa.String(), nullable=False),
        sa.Column("realized", sa.Float(), nullable=False),
        sa.Column("unrealized", sa.Float(), nullable=False),
        sa.Column("global_pnl", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.CheckConstraint("resolution IN (0, 1, 2)",
                           name=op.f("ck_performance_points_resolution")),
        sa.PrimaryKeyConstraint("bot_id", "resolution", "at", "controller",
                                name="pk_performance_points"),
    )
    op.create_index("ix_performance_points_raw_at", "performance_points", ["at"],
                    postgresql_where=sa.text("resolution = 0"))
    op.create_index("ix_performance_points_hour_at", "performance_points", ["at"],
                    postgresql_where=sa.text("resolution = 1"))
    op.create_table(
        "performance_latest",
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("controller", sa.String(), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        *[sa.Column(name, sa.Float(), nullable=False) for name in (
            "realized", "unrealized", "global_pnl", "volume", "total_realized",
            "total_unrealized", "total_global_pnl", "total_volume")],
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], ondelete="RESTRICT",
                                name=op.f("fk_performance_latest_bot_id_bots")),
        sa.PrimaryKeyConstraint("bot_id", "controller", name=op.f("pk_performance_latest")),
    )
    op.create_table(
        "performance_backfills",
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("instance_name", sa.String(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("points", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], ondelete="RESTRICT",
                                name=op.f("fk_performance_backfills_bot_id_bots")),
        sa.PrimaryKeyConstraint("bot_id", "instance_name", name=op.f("pk_performance_backfills")),
    )
    op.create_table(
        "performance_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(), nullable=True),
        sa.Column("maintained_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_performance_clock_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_clock")),
    )
    op.execute("INSERT INTO performance_clock (id) VALUES (1)")


def downgrade():
    op.drop_table("performance_clock")
    op.drop_table("performance_backfills")
    op.drop_table("performance_latest")
    op.drop_index("ix_performance_points_hour_at", table_name="performance_points")
    op.drop_index("ix_performance_points_raw_at", table_name="performance_points")
    op.drop_table("performance_points")
    op.drop_index("ux_performance_segments_open", table_name="performance_segments")
    op.drop_table("performance_segments")
