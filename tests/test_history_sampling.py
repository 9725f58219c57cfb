"""Performance samples from the status snapshot: no extra Hummingbot call, one writer at a
time, runs across restarts with a cumulative figure that continues."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.gateway import hummingbot
from dashboard.history.sampling import record_samples
from dashboard.models import db
from dashboard.registry import utcnow


def points(bot_id: str, resolution: int = 0):
    return db.session.execute(sa.text(
        "SELECT at, controller, realized, unrealized, global_pnl, volume "
        "FROM performance_points WHERE bot_id = :id AND resolution = :r ORDER BY at"),
        {"id": bot_id, "r": resolution}).all()


def total_global(bot_id: str) -> float:
    return db.session.scalar(sa.text(
        "SELECT sum(total_global_pnl) FROM performance_latest WHERE bot_id = :id"),
        {"id": bot_id})


def reported_global(simulator, live_name: str) -> float:
    status = simulator.state.bot_status(live_name)
    return sum(c["performance"]["global_pnl_quote"] for c in status["performance"].values())


def test_a_page_view_records_samples_with_no_extra_hummingbot_call(app, login, make_bot,
                                                                   simulator):
    simulator.advance(0)  # a manual clock: the figures hold still while we compare
    live = simulator.seed_bot("sampled", controllers=["pmm_a", "pmm_b"], timestamped=True)
    bot = make_bot(id="sampled", name="sampled", status="running")
    bot.instance_name = live
    db.session.commit()
    simulator.reset_counts()

    assert login.as_admin().get("/bots").status_code == 200

    # The refresh's own calls (its status and, for crashed bots, its container listing):
    # recording the samples added none.
    assert simulator.state.request_counts() == {"GET /bot-orchestration/status": 1,
                                                "GET /docker/exited-containers": 1}
    rows = points("sampled")
    assert {r.controller for r in rows} == {"pmm_a", "pmm_b"}
    assert sum(r.global_pnl for r in rows) == pytest.approx(
        reported_global(simulator, live))
    # The same deltas in the hour and the day.
    assert len(points("sampled", 1)) == 2 and len(points("sampled", 2)) == 2


def test_at_most_one_sample_period_per_minute(app, make_bot, simulator):
    live = simulator.seed_bot("once", controllers=["c1"], timestamped=True)
    bot = make_bot(id="once", name="once", status="running")
    bot.instance_name = live
    db.session.commit()
    feed = hummingbot().feed
    now = utcnow()
    assert record_samples(feed.snapshot(record=False), now=now).samples == 1
    again = record_samples(feed.snapshot(record=False), now=now + timedelta(seconds=30))
    assert (again.ran, again.reason) == (False, "sampled less than a period ago")
    assert record_samples(feed.snapshot(record=False), now=now + timedelta(seconds=60)).samples == 1
    assert len(points("once")) == 2


def test_a_restart_opens_a_new_run_and_the_cumulative_figure_continues(app, make_bot,
                                                                      simulator):
    simulator.advance(0)
    live = simulator.seed_bot("runs", controllers=["c1"], timestamped=True)
    bot = make_bot(id="runs", name="runs", status="running")
    bot.instance_name = live
    db.session.commit()
    client = simulator.client()
    feed = hummingbot().feed
    now = utcnow()

    simulator.advance(600)
    record_samples(feed.snapshot(record=False), now=now)
    first_run = reported_global(simulator, live)
    client.stop_bot(live)
    report = record_samples(feed.snapshot(record=False), now=now + timedelta(minutes=1))
    assert report.closed == ["runs"]
    client.start_bot(live)
    simulator.advance(120)
    report = record_samples(feed.snapshot(record=False), now=now + timedelta(minutes=2))
    assert report.opened == ["runs"]
    second_run = reported_global(simulator, live)

    segments = db.session.execute(sa.text(
        "SELECT instance_name, started_at, ended_at FROM performance_segments "
        "WHERE bot_id = 'runs' ORDER BY started_at")).all()
    assert [(s.instance_name, s.started_at, s.ended_at) for s in segments] == [
        (live, now, now + timedelta(minutes=1)), (live, now + timedelta(minutes=2), None)]
    # Hummingbot reports the second run from zero; the cumulative figure adds both runs.
    assert total_global("runs") == pytest.approx(first_run + second_run)
    assert sum(r.global_pnl for r in points("runs")) == pytest.approx(
        first_run + second_run)


def test_one_period_is_the_same_few_statements_for_1_or_20_bots(app, make_bot, simulator):
    from sqlalchemy import event

    feed = hummingbot().feed
    counted = []

    def count(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    def period(bots: int, offset: int, now) -> int:
        for n in range(offset, offset + bots):
            live = simulator.seed_bot(f"many-{n}", controllers=["c1", "c2"], timestamped=True)
            bot = make_bot(id=f"many-{n}", name=f"many-{n}", status="running")
            bot.instance_name = live
        db.session.commit()
        snapshot = feed.snapshot(record=False)
        counted.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert record_samples(snapshot, now=now).ran
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(counted)

    now = utcnow()
    few = period(1, 0, now)
    many = period(19, 1, now + timedelta(minutes=1))  # 20 bots, 19 of them new runs
    assert few == many <= 10  # lock, clock, state, close, open, points, latest, clock
