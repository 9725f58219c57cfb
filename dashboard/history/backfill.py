"""Backfill from Hummingbot's own stored history, once per bot instance when first seen.

Hummingbot's server (from mid-2026) stores every live controller's report every 5 minutes
(`GET /bot-orchestration/controller-performance-history`). When the sampler opens the first
run of an instance, the background job (retention.maintain, under the history lock) reads what
the server kept from before that moment and writes it as earlier deltas:

- runs that ended before we first saw the bot become segments of their own (source
  "backfill") and add to the totals;
- when the bot was already in the run we first sampled, the first live sample counted that
  run from zero: the backfilled part is moved back in time (the first sample's deltas shrink by
  the same amount), so totals do not change, only where in time they happened.

It cannot recover: anything from before the server kept snapshots (older servers, or a
server whose database was reset), bots under another instance name, runs shorter than 5
minutes, or anything once the first live sample has left the raw window (48 h by default).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import text

from ..hummingbot import HummingbotError
from ..models import db
from ..registry import utcnow
from .models import METRICS
from .sampling import ADD_TO_POINT

log = logging.getLogger(__name__)

PER_PASS = 5  # instances per maintenance pass
MAX_PAGES = 20  # of 1,000 snapshots: about 70 days of one controller
MAX_FIGURE = 1e18  # past any real PnL or volume: differences and sums of figures stay finite
REPORT_KEYS = {"realized": "realized_pnl_quote", "unrealized": "unrealized_pnl_quote",
               "global_pnl": "global_pnl_quote", "volume": "volume_traded"}

PENDING = text("""
    SELECT s.bot_id, s.instance_name, min(s.started_at) AS first_live
    FROM performance_segments s
    LEFT JOIN performance_backfills f
           ON f.bot_id = s.bot_id AND f.instance_name = s.instance_name
    WHERE s.source = 'live' AND f.bot_id IS NULL
    GROUP BY 1, 2 ORDER BY 3 LIMIT :limit
""")

# Deltas at any time: the raw sample (inside the raw window only) and its hour and day.
ADD_POINTS = text("""
    INSERT INTO performance_points
        (bot_id, resolution, at, controller, realized, unrealized, global_pnl, volume)
    SELECT d.bot_id, r.resolution,
           CASE r.resolution WHEN 0 THEN d.at WHEN 1 THEN date_trunc('hour', d.at)
                             ELSE date_trunc('day', d.at) END AS bucket,
           d.controller, sum(d.realized), sum(d.unrealized), sum(d.global_pnl), sum(d.volume)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS d(
        bot_id text, at timestamp, controller text, realized float8, unrealized float8,
        global_pnl float8, volume float8)
    CROSS JOIN (VALUES (0), (1), (2)) AS r(resolution)
    WHERE r.resolution > 0 OR d.at >= :raw_since
    GROUP BY d.bot_id, r.resolution, bucket, d.controller
""" + ADD_TO_POINT)  # noqa: S608 - constant SQL pieces; values are bound

ADD_TOTALS = text("""
    INSERT INTO performance_latest AS p (bot_id, controller, segment_id, sampled_at, realized,
        unrealized, global_pnl, volume, total_realized, total_unrealized, total_global_pnl,
        total_volume)
    SELECT r.bot_id, r.controller, :segment_id, r.at, r.realized, r.unrealized, r.global_pnl,
           r.volume, r.t_realized, r.t_unrealized, r.t_global_pnl, r.t_volume
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(bot_id text, controller text,
        at timestamp, realized float8, unrealized float8, global_pnl float8, volume float8,
        t_realized float8, t_unrealized float8, t_global_pnl float8, t_volume float8)
    ON CONFLICT (bot_id, controller) DO UPDATE SET
        total_realized = p.total_realized + EXCLUDED.total_realized,
        total_unrealized = p.total_unrealized + EXCLUDED.total_unrealized,
        total_global_pnl = p.total_global_pnl + EXCLUDED.total_global_pnl,
        total_volume = p.total_volume + EXCLUDED.total_volume
""")


def backfill_pending(client, raw_since: datetime) -> int:
    """Backfill up to PER_PASS instances; the caller holds the history lock and commits."""
    done = 0
    for bot_id, instance, first_live in db.session.execute(PENDING, {"limit": PER_PASS}).all():
        try:
            snapshots = _fetch(client, instance, first_live)
            outcome, points = _apply(bot_id, instance, first_live, snapshots, raw_since)
        except HummingbotError as exc:
            outcome, points = f"unavailable: {exc}"[:200], 0
        db.session.execute(text(
            "INSERT INTO performance_backfills (bot_id, instance_name, attempted_at, points, "
            "outcome) VALUES (:bot_id, :instance, :now, :points, :outcome)"),
            {"bot_id": bot_id, "instance": instance, "now": utcnow(), "points": points,
             "outcome": outcome})
        done += 1
    return done


def _fetch(client, instance: str, first_live: datetime) -> list[tuple[datetime, str, dict]]:
    """(time, controller, figures) before `first_live`, oldest first."""
    rows, cursor = [], None
    for _ in range(MAX_PAGES):
        page, cursor = client.controller_performance_history(
            instance, end_time=first_live.replace(tzinfo=UTC), cursor=cursor)
        rows.extend(page)
        if cursor is None:
            break
    found = []
    for row in rows:  # Hummingbot's data: a row that is not sound is skipped, not fatal
        try:
            at = datetime.fromisoformat(str(row.get("timestamp")))
            at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
        except (ValueError, OverflowError):  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            continue
        report = row.get("performance")
        if at >= first_live or not isinstance(report, dict) or not report:
            continue
        figures = {m: report.get(key) for m, key in REPORT_KEYS.items()}
        # NaN and Infinity parse as floats, but jsonb (and any sum) refuses them.
        if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               and abs(v) < MAX_FIGURE for v in figures.values()):
            found.append((at, str(row.get("controller_id") or ""), figures))
    return sorted(found, key=lambda r: (r[0], r[1]))


def _apply(bot_id, instance, first_live, snapshots, raw_since) -> tuple[str, int]:
    if not snapshots:
        return "nothing stored before the first sample", 0
    first_points = {c: figures for c, *figures in db.session.execute(text(
        "SELECT controller, realized, unrealized, global_pnl, volume FROM performance_points "
        "WHERE bot_id = :bot_id AND resolution = 0 AND at = :at"),
        {"bot_id": bot_id, "at": first_live})}
    if not first_points:
        return "skipped: the first live sample has left the raw window", 0

    deltas, previous = [], {}
    runs = [[snapshots[0][0], snapshots[0][0]]]  # [start, end] of each run Hummingbot kept
    for at, controller, figures in snapshots:
        before = previous.get(controller)
        if before is not None and figures["volume"] < before["volume"]:
            before = None  # Hummingbot started counting again: a new run
            if at > runs[-1][1]:
                runs.append([at, at])
        runs[-1][1] = at
        base = before or dict.fromkeys(METRICS, 0.0)
        deltas.append({"bot_id": bot_id, "at": at.isoformat(), "controller": controller,
                       **{m: figures[m] - base[m] for m in METRICS}})
        previous[controller] = figures
    # Did the first live sample continue the last run Hummingbot kept? Then that run's part
    # is already inside the first sample's deltas: take it out there.
    continuing = all(controller in first_points and first_points[controller][3] >= last["volume"]
                     for controller, last in previous.items())
    if continuing:
        for controller, last in previous.items():
            deltas.append({"bot_id": bot_id, "at": first_live.isoformat(),
                           "controller": controller, **{m: -last[m] for m in METRICS}})
        db.session.execute(text(
            "UPDATE performance_segments SET started_at = :start WHERE bot_id = :bot_id "
            "AND instance_name = :instance AND started_at = :first_live"),
            {"start": runs[-1][0], "bot_id": bot_id, "instance": instance,
             "first_live": first_live})
        runs = runs[:-1]
    segment_id = None
    for start, end in runs:
        segment_id = db.session.scalar(text(
            "INSERT INTO performance_segments (bot_id, instance_name, started_at, ended_at, "
            "source) VALUES (:bot_id, :instance, :start, :end, 'backfill') "
            "ON CONFLICT DO NOTHING RETURNING id"),
            {"bot_id": bot_id, "instance": instance, "start": start, "end": end}) or segment_id
    db.session.execute(ADD_POINTS, {"rows": json.dumps(deltas), "raw_since": raw_since})
    totals: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0.0))
    for delta in deltas:
        for m in METRICS:
            totals[delta["controller"]][m] += delta[m]
    db.session.execute(ADD_TOTALS, {"segment_id": segment_id or 0, "rows": json.dumps([
        {"bot_id": bot_id, "controller": c, "at": snapshots[-1][0].isoformat(),
         **previous[c], **{f"t_{m}": t[m] for m in METRICS}} for c, t in totals.items()])})
    return f"{len(runs)} earlier runs, {'continued' if continuing else 'new'} run", len(deltas)


def client_or_none():
    if not current_app.config.get("HISTORY_BACKFILL") or not \
            current_app.config.get("HUMMINGBOT_API_URL"):
        return None
    from ..gateway import hummingbot

    return hummingbot().require_client()
