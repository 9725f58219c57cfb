"""Retention: rollups hold the same totals as the raw samples they replace, pruning keeps
every total, and one process writes history at a time, across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.gateway import hummingbot
from dashboard.history.retention import maintain
from dashboard.history.sampling import record_samples
from dashboard.models import db
from dashboard.registry import utcnow
from tests.servers import ROOT

SUMS = "sum(realized), sum(unrealized), sum(global_pnl), sum(volume)"


def sums_by(resolution: int, unit: str) -> dict:
    rows = db.session.execute(sa.text(
        f"SELECT date_trunc('{unit}', at) AS bucket, {SUMS} FROM performance_points "  # noqa: S608
        "WHERE resolution = :r GROUP BY 1"), {"r": resolution}).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        assert value == pytest.approx(right[key]), key


def totals(resolution: int):
    return db.session.execute(sa.text(
        f"SELECT {SUMS} FROM performance_points WHERE resolution = :r"),  # noqa: S608
        {"r": resolution}).one()


def latest_totals():
    return db.session.execute(sa.text(
        "SELECT sum(total_realized), sum(total_unrealized), sum(total_global_pnl), "
        "sum(total_volume) FROM performance_latest")).one()


def test_rollups_and_pruning_keep_every_total(app, make_bot, simulator):
    simulator.advance(0)
    live = simulator.seed_bot("kept", controllers=["c1", "c2"], timestamped=True)
    bot = make_bot(id="kept", name="kept", status="running")
    bot.instance_name = live
    db.session.commit()
    feed = hummingbot().feed
    client = simulator.client()
    now = utcnow().replace(microsecond=0)
    ages = [timedelta(days=402, hours=3), timedelta(days=402), timedelta(days=401),
            timedelta(days=3), timedelta(hours=50), timedelta(hours=49, minutes=30),
            timedelta(hours=47), timedelta(hours=1), timedelta(minutes=1), timedelta(0)]
    for index, age in enumerate(ages):
        simulator.advance(300)
        if index == 4:  # a restart in the middle: a second run
            client.stop_bot(live)
            record_samples(feed.snapshot(record=False), now=now - age - timedelta(seconds=90))
            client.start_bot(live)
            simulator.advance(30)
        assert record_samples(feed.snapshot(record=False), now=now - age).ran

    raw_total = totals(0)
    # Every hour's row is the sum of its raw samples; every day's, of its hours.
    assert_same(sums_by(1, "hour"), sums_by(0, "hour"))
    assert_same(sums_by(2, "day"), sums_by(1, "day"))
    assert tuple(totals(2)) == pytest.approx(tuple(raw_total))

    report = maintain(now, force=True)

    assert report.ran and report.raw_deleted == 2 * 6 and report.hourly_deleted == 2 * 3
    assert db.session.scalar(sa.text(
        "SELECT min(at) FROM performance_points WHERE resolution = 0")) == now - ages[6]
    # The daily rows still hold every total, and they equal the running totals.
    assert tuple(totals(2)) == pytest.approx(tuple(raw_total))
    assert tuple(latest_totals()) == pytest.approx(tuple(raw_total))
    # Hours still kept agree with the days they belong to.
    kept_days = sums_by(1, "day")
    days = sums_by(2, "day")
    assert kept_days
    assert_same(kept_days, {day: days[day] for day in kept_days})


WRITER = """
import json, sys, time
from datetime import datetime
from dashboard import create_app
from dashboard.gateway import hummingbot
from dashboard.history.sampling import record_samples
app = create_app(json.loads(sys.argv[1]))
with app.app_context():
    snapshot = hummingbot().feed.snapshot(record=False)
    while time.time() < float(sys.argv[2]):  # both processes start writing together
        time.sleep(0.001)
    report = record_samples(snapshot, now=datetime.fromisoformat(sys.argv[3]))
    print(json.dumps({"ran": report.ran, "samples": report.samples, "reason": report.reason}))
"""


def test_exactly_one_writer_across_two_processes(committed_app, simulator):
    live = simulator.seed_bot("raced-history", controllers=["c1"], timestamped=True)
    with committed_app.app_context():
        db.session.execute(sa.text(
            "INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, "
            "status, instance_name) VALUES ('raced-history', 'raced-history', 'client_sharp', "
            "'v2_with_controllers', 'binance', 'BTC-USDT', 'running', :live)"), {"live": live})
        db.session.execute(sa.text("UPDATE performance_clock SET sampled_at = NULL"))
        db.session.commit()
    config = {key: committed_app.config[key] for key in (
        "SQLALCHEMY_DATABASE_URI", "HUMMINGBOT_API_URL", "HUMMINGBOT_API_USERNAME",
        "HUMMINGBOT_API_PASSWORD", "SECRET_KEY")}
    config.update(TESTING=True, APP_ENV="test", RECONCILE_INTERVAL_SECONDS=0,
                  HISTORY_MAINTENANCE_SECONDS=0, STATUS_CACHE_SECONDS=0)
    import time

    start_at = str(time.time() + 4)
    now = utcnow().isoformat()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(config), start_at, now],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reports = [json.loads(w.communicate(timeout=60)[0].strip().splitlines()[-1])
               for w in writers]

    assert sorted(r["ran"] for r in reports) == [False, True]
    assert {r["reason"] for r in reports if not r["ran"]} <= {
        "another process is writing history", "sampled less than a period ago"}
    with committed_app.app_context():
        assert db.session.scalar(sa.text(
            "SELECT count(*) FROM performance_points WHERE resolution = 0")) == 1
        assert db.session.scalar(sa.text("SELECT count(*) FROM performance_segments")) == 1
