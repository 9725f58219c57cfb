"""`make bench` (second part): a 1,000-bot batch, preview to last item, measured in-process.

Seeds 1,000 running bots in two accounts (and the simulator with the same 1,000 live bots),
then measures through the app: the preview page, the confirmation (batch and items written),
the execution by 4 worker threads (one stop per bot), and the progress page. For each, wall
time and SQL statements; for the execution also the time spent inside PostgreSQL, i.e. the
bookkeeping without Hummingbot's own latency.

    python -m tests.bench_batches [--bots 1000] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.benchmark import (  # noqa: E402
    PASSWORD,
    SIM_PASSWORD,
    SIM_USER,
    migrate_and_seed_users,
    seed_bots,
    seed_simulator,
    start_database,
)


class StatementMeter:
    """Counts statements and the time PostgreSQL spent on them, across every thread."""

    def __init__(self, engine):
        self.lock = threading.Lock()
        self.count, self.seconds = 0, 0.0
        self.started = threading.local()
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args) -> None:
        self.started.at = time.perf_counter()

    def _after(self, *args) -> None:
        spent = time.perf_counter() - self.started.at
        with self.lock:
            self.count += 1
            self.seconds += spent

    def reset(self) -> tuple[int, float]:
        with self.lock:
            taken = (self.count, self.seconds)
            self.count, self.seconds = 0, 0.0
            return taken


def timed(meter: StatementMeter, action, runs: int = 1) -> tuple[float, int, object]:
    """Median wall ms over `runs`, statements of one run, and the last result."""
    times, result = [], None
    for _ in range(runs):
        meter.reset()
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    statements, _db = meter.reset()
    return statistics.median(times), statements, result


def drop_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from dashboard import create_app
    from dashboard.batches import executor
    from dashboard.models import BatchItem, db
    from dashboard.simulator import start_simulator

    with tempfile.TemporaryDirectory() as tmp:
        url = start_database(Path(tmp), f"bm_bench_batches_{os.getpid()}")
        migrate_and_seed_users(url)
        seed_bots(url, args.bots, accounts=2, live=args.bots)
        simulator = start_simulator("127.0.0.1", 0, username=SIM_USER, password=SIM_PASSWORD)
        seed_simulator(simulator.state, args.bots)
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": url, "HUMMINGBOT_API_URL": simulator.url,
            "HUMMINGBOT_API_USERNAME": SIM_USER, "HUMMINGBOT_API_PASSWORD": SIM_PASSWORD,
            "RECONCILE_INTERVAL_SECONDS": 0, "BATCH_WORKERS": 0, "WTF_CSRF_ENABLED": False,
            "ALERT_WORKERS": 0, "ALERT_EVALUATE_SECONDS": 0,
            "STATUS_CACHE_SECONDS": 2.0,
        })
        client = app.test_client()
        response = client.post("/login", data={"username": "admin", "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        with app.app_context():
            meter = StatementMeter(db.engine)
        query = "/batches/new?action=stop&all=1"
        client.get(query)  # warm: templates compiled, status cached

        preview_ms, preview_sql, page = timed(meter, lambda: client.get(query), runs=5)
        assert f"Confirm: stop {args.bots} bots" in page.get_data(as_text=True)
        confirm_ms, confirm_sql, response = timed(meter, lambda: client.post(
            "/batches", data={"action": "stop", "all": "1", "cancel_orders": "1"}))
        assert response.status_code == 303, response.status_code
        batch_url = response.headers["Location"]
        simulator.state.reset_counts()

        meter.reset()
        started = time.perf_counter()
        executor.run_pending(app, workers=args.workers)
        run_ms = (time.perf_counter() - started) * 1000
        run_sql, run_db_seconds = meter.reset()
        calls = sum(simulator.state.bot_calls().values())
        with app.app_context():
            states = dict(db.session.execute(
                sa.select(BatchItem.state, sa.func.count()).group_by(BatchItem.state)).all())
        # Sent, whatever Hummingbot answered: one in 100 seeded bots has crashed (its container
        # exited), so Hummingbot refuses its stop and the item fails.
        executed = states.get("done", 0) + states.get("failed", 0)
        progress_ms, progress_sql, _ = timed(meter, lambda: client.get(batch_url), runs=5)
        fragment_ms, fragment_sql, _ = timed(
            meter, lambda: client.get(batch_url, headers={"HX-Request": "true"}), runs=5)
        simulator.stop()
        with app.app_context():
            db.engine.dispose()
        drop_database(url)

    n = args.bots
    print(f"\nBatch of {n} bots (stop, {args.workers} workers), in-process, loopback simulator")
    print(f"{'step':44} {'ms':>10} {'SQL':>7} {'SQL/bot':>8}")
    print("-" * 72)
    for label, ms, sql in (
            (f"preview GET {query}", preview_ms, preview_sql),
            ("confirm POST /batches (batch + items written)", confirm_ms, confirm_sql),
            ("execution, wall (includes Hummingbot calls)", run_ms, run_sql),
            ("execution, inside PostgreSQL (bookkeeping)", run_db_seconds * 1000, run_sql),
            ("progress page GET /batches/<id>", progress_ms, progress_sql),
            ("progress poll (HX-Request fragment)", fragment_ms, fragment_sql)):
        print(f"{label:44} {ms:10.1f} {sql:7d} {sql / n:8.2f}")
    print(f"\nitems: {states}; Hummingbot lifecycle calls: {calls} "
          f"(exactly one per executed item: {calls == executed})")
    return 0 if calls == executed == n else 1


if __name__ == "__main__":
    sys.exit(main())
