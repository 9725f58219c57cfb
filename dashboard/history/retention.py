"""Retention: raw samples for HISTORY_RAW_HOURS, hourly rows for HISTORY_HOURLY_DAYS, daily
rows for ever.

Each sample's deltas are added to its hour's and its day's rows when it is written
(sampling.py), so the rollups already hold every total; pruning only deletes the finer rows
once they are older than their window. The same pass backfills newly seen bots from
Hummingbot's own history (backfill.py). Runs in the background, one process at a time (the
history writer's advisory lock), at most once per HISTORY_MAINTENANCE_SECONDS fleet-wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import text

from ..models import db
from ..registry import utcnow
from .backfill import backfill_pending, client_or_none
from .models import HOUR, RAW
from .sampling import take_history_lock


@dataclass
class MaintenanceReport:
    ran: bool
    reason: str = ""
    raw_deleted: int = 0
    hourly_deleted: int = 0
    backfilled: int = 0  # bot instances whose earlier history was asked of Hummingbot


def cutoffs(now: datetime) -> tuple[datetime, datetime]:
    """(raw rows before this go, hourly rows before this go). Hourly rows leave whole days
    at a time, so a day is never half in hours and half only in its daily row."""
    config = current_app.config
    raw = now - timedelta(hours=config["HISTORY_RAW_HOURS"])
    hourly = (now - timedelta(days=config["HISTORY_HOURLY_DAYS"])).replace(
        hour=0, minute=0, second=0, microsecond=0)
    return raw, hourly


PRUNE = text("DELETE FROM performance_points WHERE resolution = :resolution AND at < :before")


def maintain(now: datetime | None = None, *, force: bool = False) -> MaintenanceReport:
    now = now or utcnow()
    if not take_history_lock():
        db.session.rollback()
        return MaintenanceReport(ran=False, reason="another process is writing history")
    last = db.session.scalar(text("SELECT maintained_at FROM performance_clock WHERE id = 1"))
    period = timedelta(seconds=current_app.config["HISTORY_MAINTENANCE_SECONDS"])
    if not force and last is not None and now - last < period:
        db.session.rollback()
        return MaintenanceReport(ran=False, reason="maintained less than a period ago")
    raw_before, hourly_before = cutoffs(now)
    report = MaintenanceReport(ran=True)
    report.raw_deleted = db.session.execute(
        PRUNE, {"resolution": RAW, "before": raw_before}).rowcount
    report.hourly_deleted = db.session.execute(
        PRUNE, {"resolution": HOUR, "before": hourly_before}).rowcount
    client = client_or_none()
    if client is not None:
        report.backfilled = backfill_pending(client, raw_before)
    db.session.execute(text("UPDATE performance_clock SET maintained_at = :now WHERE id = 1"),
                       {"now": now})
    db.session.commit()
    return report
