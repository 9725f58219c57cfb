"""Backfill from Hummingbot's stored history (the simulator's controller-performance-history,
which answers like the real server): once per instance, earlier runs become segments, the run
we first sampled is moved back in time, and totals come out as Hummingbot's own figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.gateway import hummingbot
from dashboard.history.retention import maintain
from dashboard.history.sampling import record_samples
from dashboard.models import db
from dashboard.registry import utcnow


def reported(simulator, live):
    status = simulator.state.bot_status(live)
    return {c: r["performance"] for c, r in status["performance"].items()}


def test_a_newly_seen_bot_gets_its_earlier_runs_once(app, make_bot, simulator):
    simulator.advance(0)
    live = simulator.seed_bot("old-timer", controllers=["c1"], timestamped=True)
    client = simulator.client()
    now = utcnow().replace(microsecond=0)
    # Hummingbot ran it for a while, restarted it, and kept a snapshot every 5 minutes.
    for minutes in range(180, 120, -5):
        simulator.advance(300)
        simulator.state.dump_performance(at=now - timedelta(minutes=minutes))
    first_run = reported(simulator, live)["c1"]
    client.stop_bot(live)
    client.start_bot(live)
    for minutes in range(60, 0, -5):
        simulator.advance(300)
        simulator.state.dump_performance(at=now - timedelta(minutes=minutes))

    bot = make_bot(id="old-timer", name="old-timer", status="running")
    bot.instance_name = live
    db.session.commit()
    simulator.advance(120)
    assert record_samples(hummingbot().feed.snapshot(record=False), now=now).ran
    second_run = reported(simulator, live)["c1"]

    report = maintain(now, force=True)
    again = maintain(now + timedelta(minutes=10), force=True)

    assert report.backfilled == 1 and again.backfilled == 0  # once per instance
    segments = db.session.execute(sa.text(
        "SELECT started_at, ended_at, source FROM performance_segments "
        "WHERE bot_id = 'old-timer' ORDER BY started_at")).all()
    assert [(s.started_at, s.source) for s in segments] == [
        (now - timedelta(minutes=180), "backfill"), (now - timedelta(minutes=60), "live")]
    assert segments[0].ended_at == now - timedelta(minutes=125)
    total = db.session.execute(sa.text(
        "SELECT total_global_pnl, total_volume FROM performance_latest "
        "WHERE bot_id = 'old-timer'")).one()
    # Both runs, as Hummingbot counted them (its last stored figure of the first run).
    assert total.total_global_pnl == pytest.approx(
        first_run["global_pnl_quote"] + second_run["global_pnl_quote"], abs=0.05)
    for resolution in (1, 2):
        summed = db.session.scalar(sa.text(
            "SELECT sum(global_pnl) FROM performance_points WHERE bot_id = 'old-timer' "
            "AND resolution = :r"), {"r": resolution})
        assert summed == pytest.approx(total.total_global_pnl)
    # The second run's earlier part now lies before our first sample.
    earliest_raw = db.session.scalar(sa.text(
        "SELECT min(at) FROM performance_points WHERE bot_id = 'old-timer' AND resolution = 0"))
    assert earliest_raw == now - timedelta(minutes=180)


def test_a_hostile_history_is_skipped_row_by_row_and_never_breaks_the_pass(
        app, make_bot, simulator):
    """Hummingbot's stored history is its text (issue 10 item 1): NaN and Infinity figures
    (JSON that PostgreSQL's jsonb refuses) and a timestamp before year 1 in UTC made the
    maintenance pass raise, every pass, for every bot after it. Such rows are skipped; the
    good ones still count."""
    simulator.advance(0)
    live = simulator.seed_bot("old-timer", controllers=["c1"], timestamped=True)
    now = utcnow().replace(microsecond=0)
    for minutes in range(120, 60, -5):
        simulator.advance(300)
        simulator.state.dump_performance(at=now - timedelta(minutes=minutes))
    good = list(simulator.state._performance_dumps)
    for value in (float("nan"), float("inf"), float("-inf")):
        row = {**good[-1], "timestamp": (now - timedelta(minutes=62)).isoformat() + "+00:00"}
        row["performance"] = {**row["performance"], "global_pnl_quote": value}
        simulator.state._performance_dumps.append(row)
    simulator.state._performance_dumps.append(
        {**good[-1], "timestamp": "0001-01-01T00:00:00+14:00"})

    bot = make_bot(id="old-timer", name="old-timer", status="running")
    bot.instance_name = live
    db.session.commit()
    simulator.advance(120)
    assert record_samples(hummingbot().feed.snapshot(record=False), now=now).ran

    report = maintain(now, force=True)
    assert report.backfilled == 1
    assert maintain(now + timedelta(minutes=10), force=True).backfilled == 0
    stored = db.session.execute(sa.text(
        "SELECT count(*), bool_and(global_pnl = global_pnl AND abs(global_pnl) < 1e300) "
        "FROM performance_points WHERE bot_id = 'old-timer'")).one()
    assert stored[0] > 0 and stored[1]
    assert db.session.scalar(sa.text(
        "SELECT min(started_at) FROM performance_segments WHERE bot_id = 'old-timer'")) \
        == now - timedelta(minutes=120)
