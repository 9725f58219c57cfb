"""`make bench` (third part): evaluating alert conditions for a 10,000-bot fleet, per period.

Seeds 10,000 bots (2,000 of them in a condition: crashed, missing, stuck, error lines), an
hour of one-minute raw PnL samples for every bot (600,000 rows the drawdown reads), rules
for every account and for all, then times the passes a period makes: the first (opens and
fires every alert and queues its messages), a steady one (everything already open: nothing
to write, and no new sample since: the drawdown is not read again), one after a sample period
(the drawdown read), and one that resolves half of the bot alerts. For each: wall time, SQL
statements, outbox rows queued.

    python -m tests.bench_alerts [--bots 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_batches import StatementMeter, drop_database  # noqa: E402
from tests.benchmark import migrate_and_seed_users, seed_bots, start_database  # noqa: E402

SAMPLES_PER_BOT = 60  # an hour of one-minute raw samples


def seed_conditions(url: str, bots: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # One bot in five is in a condition, spread over the four badge conditions.
        conn.execute(sa.text("""
            UPDATE bots SET display_status = (ARRAY['crashed', 'missing', 'stuck', 'running'])
                                             [1 + (substr(id, 5)::int / 5) % 4],
                            error_log = CASE WHEN (substr(id, 5)::int / 5) % 4 = 3
                                             THEN 'ERROR order rejected' END
            WHERE substr(id, 5)::int % 5 = 0"""))
        # An hour of PnL for every bot, falling for one in fifty.
        conn.execute(sa.text("""
            INSERT INTO performance_points (bot_id, resolution, at, controller, realized,
                                            unrealized, global_pnl, volume)
            SELECT b.id, 0, date_trunc('minute', now() AT TIME ZONE 'UTC')
                             - make_interval(mins => m), 'main', 0, 0,
                   CASE WHEN substr(b.id, 5)::int % 50 = 1 THEN -5 ELSE 1 END, 0
            FROM bots b CROSS JOIN generate_series(0, :samples - 1) AS m"""),
            {"samples": SAMPLES_PER_BOT})
        conn.execute(sa.text("ANALYZE bots"))
        conn.execute(sa.text("ANALYZE performance_points"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=10_000)
    args = parser.parse_args()

    from types import SimpleNamespace

    from dashboard import create_app
    from dashboard.alerts import service
    from dashboard.alerts.conditions import evaluate
    from dashboard.models import db

    admin = SimpleNamespace(is_admin=True, account_identifier=None, username="bench")
    with tempfile.TemporaryDirectory() as tmp:
        url = start_database(Path(tmp), f"bm_bench_alerts_{os.getpid()}")
        migrate_and_seed_users(url)
        seed_bots(url, args.bots, accounts=200)
        seed_conditions(url, args.bots)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RECONCILE_INTERVAL_SECONDS": 0,
                          "HUMMINGBOT_API_URL": None, "ALERT_WORKERS": 0,
                          "ALERT_EVALUATE_SECONDS": 0,
                          "ALERTS_ALLOW_LOOPBACK": True})
        rows = []
        with app.app_context():
            meter = StatementMeter(db.engine)
            ops = service.save_destination({"name": "ops", "kind": "slack",
                                            "target": "http://127.0.0.1:9/ops"}, admin)
            service.save_rule({"name": "all", "destination_id": ops.id, "repeat_seconds": 3600,
                               "conditions": ["crashed", "missing", "stuck", "error_lines",
                                              "drawdown"], "drawdown_amount": 100}, admin)
            for n in range(20):  # twenty accounts with their own destination and rule
                account = f"account_{n:03d}"
                own = service.save_destination({"name": account, "kind": "slack",
                                                "account_identifier": account,
                                                "target": "http://127.0.0.1:9/" + account},
                                               admin)
                service.save_rule({"name": account, "destination_id": own.id,
                                   "account_identifier": account, "hold_seconds": 0,
                                   "conditions": ["crashed", "missing"]}, admin)

            def run(label, force=False):
                meter.reset()
                started = time.perf_counter()
                report = evaluate(force=force)
                ms = (time.perf_counter() - started) * 1000
                statements, db_seconds = meter.reset()
                rows.append((label, ms, db_seconds * 1000, statements, report))

            run("first pass (opens, fires, queues)", force=True)
            run("steady pass (no new sample: no drawdown read)")
            db.session.execute(sa.text("UPDATE performance_clock SET sampled_at = now()"))
            db.session.commit()
            run("steady pass after a sample period")
            db.session.execute(sa.text(
                "UPDATE bots SET display_status = 'running', error_log = NULL "
                "WHERE substr(id, 5)::int % 10 = 0"))
            db.session.commit()
            run("resolving pass (half the bot alerts)")
            alerts = db.session.scalar(sa.text("SELECT count(*) FROM alerts"))
            queued = db.session.scalar(sa.text("SELECT count(*) FROM alert_deliveries"))
            db.engine.dispose()
        drop_database(url)

    print(f"\nAlert evaluation, {args.bots} bots, in-process (one pass = one period)")
    print(f"{'pass':46} {'wall ms':>9} {'in PG ms':>9} {'SQL':>5} {'opened':>7} {'fired':>6} "
          f"{'resolved':>8} {'queued':>7}")
    print("-" * 102)
    for label, ms, db_ms, statements, r in rows:
        print(f"{label:46} {ms:9.1f} {db_ms:9.1f} {statements:5d} {r.opened:7d} {r.fired:6d} "
              f"{r.resolved:8d} {r.queued:7d}")
    print(f"\nalerts: {alerts}; outbox rows: {queued}; statements per pass are constant: "
          f"{len({row[3] for row in rows}) == 1}")
    return 0 if len({row[3] for row in rows}) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
