"""Tables of the performance history (migration 0008).

Hummingbot reports each controller's figures since its run started. We store *changes*
(deltas) between samples, so every sum over time is a plain SUM: a day's PnL, a run's, an
account's, all time; rollups add deltas up and keep every total exactly.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..models import db

# performance_points.resolution: a raw sample, or the sum of the deltas in an hour or a day.
RAW, HOUR, DAY = 0, 1, 2
METRICS = ("realized", "unrealized", "global_pnl", "volume")


class PerformanceSegment(db.Model):
    """One run of a bot: Hummingbot's figures start from zero at its start."""

    __tablename__ = "performance_segments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bot_id: Mapped[str] = mapped_column(String, ForeignKey("bots.id", ondelete="RESTRICT"),
                                        nullable=False)
    instance_name: Mapped[str] = mapped_column(String, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String, nullable=False, server_default=text("'live'"))

    __table_args__ = (
        UniqueConstraint("bot_id", "instance_name", "started_at",
                         name="uq_performance_segments_run"),
        # At most one open run per bot.
        Index("ux_performance_segments_open", "bot_id", unique=True,
              postgresql_where=text("ended_at IS NULL")),
        CheckConstraint("source IN ('live', 'backfill')", name="source"),
    )


class PerformancePoint(db.Model):
    """Deltas of one controller of one bot: a raw sample, or an hour's or a day's sum."""

    __tablename__ = "performance_points"

    # No foreign key: the table takes thousands of rows a minute, and bots are never deleted.
    bot_id: Mapped[str] = mapped_column(String, nullable=False)
    resolution: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    controller: Mapped[str] = mapped_column(String, nullable=False)
    realized: Mapped[float] = mapped_column(Float, nullable=False)
    unrealized: Mapped[float] = mapped_column(Float, nullable=False)
    global_pnl: Mapped[float] = mapped_column(Float, nullable=False)
    volume: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("bot_id", "resolution", "at", "controller",
                             name="pk_performance_points"),
        # Pruning walks old raw samples and old hourly rows by time across every bot.
        Index("ix_performance_points_raw_at", "at", postgresql_where=text("resolution = 0")),
        Index("ix_performance_points_hour_at", "at", postgresql_where=text("resolution = 1")),
        CheckConstraint("resolution IN (0, 1, 2)", name="resolution"),
    )


class PerformanceLatest(db.Model):
    """Per bot and controller: the last figures Hummingbot reported (to compute the next
    delta) and the totals of every delta so far (all-time figures without a scan)."""

    __tablename__ = "performance_latest"

    bot_id: Mapped[str] = mapped_column(String, ForeignKey("bots.id", ondelete="RESTRICT"),
                                        primary_key=True)
    controller: Mapped[str] = mapped_column(String, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sampled_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    realized: Mapped[float] = mapped_column(Float, nullable=False)
    unrealized: Mapped[float] = mapped_column(Float, nullable=False)
    global_pnl: Mapped[float] = mapped_column(Float, nullable=False)
    volume: Mapped[float] = mapped_column(Float, nullable=False)
    total_realized: Mapped[float] = mapped_column(Float, nullable=False)
    total_unrealized: Mapped[float] = mapped_column(Float, nullable=False)
    total_global_pnl: Mapped[float] = mapped_column(Float, nullable=False)
    total_volume: Mapped[float] = mapped_column(Float, nullable=False)


class PerformanceBackfill(db.Model):
    """Hummingbot's own stored history was read for this bot's instance (once)."""

    __tablename__ = "performance_backfills"

    bot_id: Mapped[str] = mapped_column(String, ForeignKey("bots.id", ondelete="RESTRICT"),
                                        primary_key=True)
    instance_name: Mapped[str] = mapped_column(String, primary_key=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    outcome: Mapped[str] = mapped_column(String, nullable=False)


class PerformanceClock(db.Model):
    """One row: when the fleet was last sampled and pruned (shared by every process)."""

    __tablename__ = "performance_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sampled_at: Mapped[datetime | None] = mapped_column(DateTime)
    maintained_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class PerformanceServerClock(db.Model):
    """When each Hummingbot server's bots were last sampled: a sample period is per server,
    so one server's snapshot never takes the period from another's."""

    __tablename__ = "performance_server_clock"

    server_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("hummingbot_servers.id", ondelete="CASCADE"), primary_key=True)
    sampled_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
