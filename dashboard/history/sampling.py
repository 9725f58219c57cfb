"""Performance samples from the status snapshot the dashboard already fetched.

No call to Hummingbot here. One process at a time writes (a PostgreSQL advisory lock, as
reconcile), at most once per HISTORY_SAMPLE_SECONDS per Hummingbot server, in a fixed number of
statements whatever the fleet size (each write is one INSERT ... SELECT FROM
jsonb_to_recordset).

Runs: Hummingbot's figures start again from zero when a bot is (re)started or redeployed. A
bot's open segment ends when it reports that it stopped trading; a new one opens when it
trades again, runs under another instance name, or its volume (which only grows within a
run) went down. The first sample of a run counts from zero, so the cumulative figure, the
sum of every delta, continues across runs instead of dropping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import text

from ..gateway import MATCHED_LIVE
from ..hummingbot import LiveBot
from ..models import db
from ..status import LiveSnapshot
from .models import METRICS

HISTORY_LOCK_KEY = 0x626F7468  # "both": one history writer at a time across the fleet
VOLUME_EPSILON = 1e-9


@dataclass
class SampleReport:
    ran: bool
    reason: str = ""
    samples: int = 0
    opened: list[str] = field(default_factory=list)  # bot ids with a new run
    closed: list[str] = field(default_factory=list)  # bot ids whose run ended


def take_history_lock() -> bool:
    """The history writer's lock, held until the caller's transaction ends."""
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": HISTORY_LOCK_KEY}))


def _figures(live: LiveBot) -> dict[str, dict[str, float | None]]:
    """Per controller with a non-empty report: the four figures, None where absent."""
    return {
        name: {"realized": c.realized_pnl_quote, "unrealized": c.unrealized_pnl_quote,
               "global_pnl": c.global_pnl_quote, "volume": c.volume_traded}
        for name, c in live.controllers.items() if not c.is_empty
    }


STATE = text("""
    WITH live AS (
        SELECT * FROM jsonb_to_recordset(CAST(:live AS jsonb)) AS l(live_name text)
    ), """ + MATCHED_LIVE + """
    SELECT m.id, m.live_name, s.id AS segment_id, s.instance_name, l.controller,
           l.segment_id AS latest_segment, l.realized, l.unrealized, l.global_pnl, l.volume
    FROM matched m
    JOIN bots b ON b.id = m.id AND b.archived_at IS NULL
    LEFT JOIN performance_segments s ON s.bot_id = m.id AND s.ended_at IS NULL
    LEFT JOIN performance_latest l ON l.bot_id = m.id
""")  # noqa: S608 - constant SQL pieces; values are bound

CLOSE_SEGMENTS = text("""
    UPDATE performance_segments SET ended_at = :now
    WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text(CAST(:ids AS jsonb)))
""")

OPEN_SEGMENTS = text("""
    INSERT INTO performance_segments (bot_id, instance_name, started_at, source)
    SELECT r.bot_id, r.instance_name, :now, 'live'
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(bot_id text, instance_name text)
    RETURNING id, bot_id
""")

# A point is a sum of deltas: a second delta for the same bucket adds to it (sampling, backfill).
ADD_TO_POINT = """
    ON CONFLICT (bot_id, resolution, at, controller) DO UPDATE SET
        realized = performance_points.realized + EXCLUDED.realized,
        unrealized = performance_points.unrealized + EXCLUDED.unrealized,
        global_pnl = performance_points.global_pnl + EXCLUDED.global_pnl,
        volume = performance_points.volume + EXCLUDED.volume
"""
_RECORDSET = """jsonb_to_recordset(CAST(:rows AS jsonb)) AS d(
        bot_id text, controller text, realized float8, unrealized float8,
        global_pnl float8, volume float8)"""

# One row per resolution: the raw sample, and its deltas added to its hour and its day.
WRITE_POINTS = text("""
    INSERT INTO performance_points
        (bot_id, resolution, at, controller, realized, unrealized, global_pnl, volume)
    SELECT d.bot_id, r.resolution,
           CASE r.resolution WHEN 0 THEN CAST(:now AS timestamp)
                             WHEN 1 THEN date_trunc('hour', CAST(:now AS timestamp))
                             ELSE date_trunc('day', CAST(:now AS timestamp)) END,
           d.controller, d.realized, d.unrealized, d.global_pnl, d.volume
    FROM """ + _RECORDSET + """
    CROSS JOIN (VALUES (0), (1), (2)) AS r(resolution)
""" + ADD_TO_POINT)  # noqa: S608 - constant SQL pieces; values are bound

# Rows carry the reported figures and the deltas (d_*); totals add the deltas up.
WRITE_LATEST = text("""
    INSERT INTO performance_latest AS p (bot_id, controller, segment_id, sampled_at,
        realized, unrealized, global_pnl, volume,
        total_realized, total_unrealized, total_global_pnl, total_volume)
    SELECT r.bot_id, r.controller, r.segment_id, :now, r.realized, r.unrealized,
           r.global_pnl, r.volume, r.d_realized, r.d_unrealized, r.d_global_pnl, r.d_volume
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        bot_id text, controller text, segment_id bigint, realized float8, unrealized float8,
        global_pnl float8, volume float8, d_realized float8, d_unrealized float8,
        d_global_pnl float8, d_volume float8)
    ON CONFLICT (bot_id, controller) DO UPDATE SET
        segment_id = EXCLUDED.segment_id, sampled_at = EXCLUDED.sampled_at,
        realized = EXCLUDED.realized, unrealized = EXCLUDED.unrealized,
        global_pnl = EXCLUDED.global_pnl, volume = EXCLUDED.volume,
        total_realized = p.total_realized + EXCLUDED.total_realized,
        total_unrealized = p.total_unrealized + EXCLUDED.total_unrealized,
        total_global_pnl = p.total_global_pnl + EXCLUDED.total_global_pnl,
        total_volume = p.total_volume + EXCLUDED.total_volume
""")


def record_samples(snapshot: LiveSnapshot, *, now: datetime | None = None) -> SampleReport:
    """Record one sample period from `snapshot`, if one is due and no other process is at it."""
    if not snapshot.reachable or not snapshot.bots:
        return SampleReport(ran=False, reason="nothing live to sample")
    now = now or snapshot.fetched_at
    if not take_history_lock():
        db.session.rollback()
        return SampleReport(ran=False, reason="another process is writing history")
    last = _last_sampled(snapshot.server_id)
    period = timedelta(seconds=current_app.config["HISTORY_SAMPLE_SECONDS"])
    if last is not None and now - last < period:
        db.session.rollback()
        return SampleReport(ran=False, reason="sampled less than a period ago")

    live = [{"live_name": name} for name in snapshot.bots]
    bots: dict[str, dict] = {}
    for row in db.session.execute(STATE, {"live": json.dumps(live),
                                          "server_id": snapshot.server_id}).mappings():
        bot = bots.setdefault(row["id"], {"live_name": row["live_name"], "latest": {},
                                          "segment_id": row["segment_id"],
                                          "instance_name": row["instance_name"]})
        if row["controller"] is not None and row["latest_segment"] == row["segment_id"]:
            bot["latest"][row["controller"]] = {m: row[m] for m in METRICS}

    report = SampleReport(ran=True)
    to_close: list[int] = []
    to_open: list[dict] = []
    samples: dict[str, dict[str, dict[str, float | None]]] = {}
    for bot_id, bot in bots.items():
        figures = _figures(snapshot.bots[bot["live_name"]])
        if not figures:  # not trading (stopped, or a V2 bot after stop-bot): the run ended
            if bot["segment_id"] is not None:
                to_close.append(bot["segment_id"])
                report.closed.append(bot_id)
            continue
        if _starts_new_run(bot, figures):
            if bot["segment_id"] is not None:
                to_close.append(bot["segment_id"])
                report.closed.append(bot_id)
            bot["segment_id"], bot["latest"] = None, {}
            to_open.append({"bot_id": bot_id, "instance_name": bot["live_name"]})
            report.opened.append(bot_id)
        samples[bot_id] = figures

    if to_close:
        db.session.execute(CLOSE_SEGMENTS, {"now": now, "ids": json.dumps(to_close)})
    if to_open:
        for segment_id, bot_id in db.session.execute(
                OPEN_SEGMENTS, {"now": now, "rows": json.dumps(to_open)}):
            bots[bot_id]["segment_id"] = segment_id

    points, latest = [], []
    for bot_id, figures in samples.items():
        bot = bots[bot_id]
        for controller, values in figures.items():
            before = bot["latest"].get(controller) or dict.fromkeys(METRICS, 0.0)
            now_values = {m: before[m] if values[m] is None else values[m] for m in METRICS}
            deltas = {m: now_values[m] - before[m] for m in METRICS}
            points.append({"bot_id": bot_id, "controller": controller, **deltas})
            latest.append({"bot_id": bot_id, "controller": controller,
                           "segment_id": bot["segment_id"], **now_values,
                           **{f"d_{m}": deltas[m] for m in METRICS}})
    if points:
        db.session.execute(WRITE_POINTS, {"now": now, "rows": json.dumps(points)})
        db.session.execute(WRITE_LATEST, {"now": now, "rows": json.dumps(latest)})
    _mark_sampled(snapshot.server_id, now)
    db.session.commit()
    report.samples = len(points)
    return report


def _last_sampled(server_id: int | None) -> datetime | None:
    """When this server's bots were last sampled (the fleet's clock for a snapshot that has
    no server row: a fleet of one, before `default` exists)."""
    if server_id is None:
        return db.session.scalar(text("SELECT sampled_at FROM performance_clock WHERE id = 1"))
    return db.session.scalar(text(
        "SELECT sampled_at FROM performance_server_clock WHERE server_id = :server_id"),
        {"server_id": server_id})


def _mark_sampled(server_id: int | None, now: datetime) -> None:
    """The server's period is taken; the fleet's mark moves too (what caches of history
    figures and the drawdown alert key on), in the same transaction as the rows."""
    db.session.execute(text("UPDATE performance_clock SET sampled_at = :now WHERE id = 1"),
                       {"now": now})
    if server_id is not None:
        db.session.execute(text("""
            INSERT INTO performance_server_clock (server_id, sampled_at)
            VALUES (:server_id, :now)
            ON CONFLICT (server_id) DO UPDATE SET sampled_at = EXCLUDED.sampled_at
        """), {"server_id": server_id, "now": now})


def _starts_new_run(bot: dict, figures: dict[str, dict[str, float | None]]) -> bool:
    if bot["segment_id"] is None or bot["instance_name"] != bot["live_name"]:
        return True
    for controller, values in figures.items():
        before = bot["latest"].get(controller)
        if before is not None and values["volume"] is not None \
                and values["volume"] < before["volume"] - VOLUME_EPSILON:
            return True  # volume only grows within a run: Hummingbot started counting again
    return False
