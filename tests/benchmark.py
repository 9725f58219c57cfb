"""`make bench`: the dashboard at 10,000 bots, measured on this machine.

Seeds a database with 10,000 bots across 200 accounts (and the simulator with 2,000 live
bots), serves the app with the production server configuration (gunicorn.conf.py) on
loopback, and measures with concurrent clients. Prints, per route: median and p95 latency,
requests per second, the ratio to a trivial endpoint of the same app measured in the same
run, and SQL statements per request; then Hummingbot status calls per refresh period under 50
pollers, pages with Hummingbot unreachable (circuit open), the list at 100 vs 10,000 bots,
and memory per worker. Loopback only; every loop is bounded.

    python -m tests.benchmark [--seconds 4] [--clients 8] [--bots 10000] [--routes TEXT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import Browser, ServerProcess  # noqa: E402

PASSWORD = "bench passphrase 1234"
TRIAGE = "/bots?attention=first&sort=-pnl"
TRIAGE_NAME = f"GET {TRIAGE}"
SIM_USER, SIM_PASSWORD = "bench-sim", "bench-sim-password"


# ------------------------------------------------------------------------------ database
def start_database(tmp: Path, name: str = "bm_bench") -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if explicit:
        from dashboard.config import normalize_database_url

        server_url = normalize_database_url(explicit)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
        server_url = server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    url = sa.engine.make_url(server_url)
    # Its own name on a shared server (BENCH_DB_NAME), so two benches never drop each other's.
    name = os.environ.get("BENCH_DB_NAME", name)
    if not name.replace("_", "").isalnum():
        raise SystemExit("BENCH_DB_NAME: letters, digits and _ only")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def migrate_and_seed_users(url: str) -> None:
    from flask_migrate import upgrade

    from dashboard import create_app
    from dashboard.models import db
    from dashboard.users import create_user

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RECONCILE_INTERVAL_SECONDS": 0,
                      "HUMMINGBOT_API_URL": None})
    with app.app_context():
        upgrade()
        create_user("admin", PASSWORD, "admin")
        create_user("client7", PASSWORD, "client", "account_007")
        db.engine.dispose()


def seed_bots(url: str, count: int, accounts: int = 200, live: int = 0) -> None:
    """Replace every bot with `count` bots; the first `live` are running under an instance
    name (with a created event each, as the app would write them), and one in 50 of the
    others should run but does not (Missing)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE bot_events DISABLE TRIGGER bot_events_append_only"))
        conn.execute(sa.text("TRUNCATE alert_deliveries, alerts, alert_mutes, alert_rules, "
                             "alert_destinations, batch_items, batches, bot_versions, bot_events, "
                             "performance_segments, performance_latest, performance_backfills, "
                             "performance_points, bots"))
        conn.execute(sa.text("ALTER TABLE bot_events ENABLE TRIGGER bot_events_append_only"))
        conn.execute(sa.text("""
            INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, config,
                              status, instance_name, created_at, updated_at)
            SELECT 'bot-' || lpad(n::text, 5, '0'), 'bot-' || lpad(n::text, 5, '0'),
                   'account_' || lpad((n % :accounts)::text, 3, '0'),
                   CASE WHEN n % 3 = 0 THEN 'v2_with_controllers' ELSE 'pure_market_making' END,
                   (ARRAY['binance', 'kucoin', 'okx', 'gate_io'])[1 + n % 4],
                   (ARRAY['BTC-USDT', 'ETH-USDT', 'SOL-USDT'])[1 + n % 3],
                   jsonb_build_object('order_amount', 0.01, 'levels', n % 5),
                   CASE WHEN n <= :live OR n % 50 = 0 THEN 'running' ELSE 'stopped' END,
                   CASE WHEN n <= :live THEN 'bot-' || lpad(n::text, 5, '0') || '-live'
                        WHEN n % 50 = 0 THEN 'bot-' || lpad(n::text, 5, '0') || '-gone' END,
                   now() - (n || ' minutes')::interval, now() - (n || ' seconds')::interval
            FROM generate_series(1, :count) AS n
        """), {"count": count, "accounts": accounts, "live": live})
        conn.execute(sa.text("""
            INSERT INTO bot_events (bot_id, actor, action, to_status, details)
            SELECT id, 'bench', 'created', 'stopped', '{}'::jsonb FROM bots
        """))
        conn.execute(sa.text("ANALYZE bots; ANALYZE bot_events"))
    engine.dispose()


POINT_INDEXES = """
    SELECT c.relname, pg_get_indexdef(c.oid), con.conname, pg_get_constraintdef(con.oid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype = 'p'
    WHERE i.indrelid = 'performance_points'::regclass ORDER BY con.conname NULLS LAST
"""


def seed_history(url: str, raw_hours: int, days: int) -> tuple[dict[int, int], dict[str, float]]:
    """Performance history for every bot with an instance name (the live ones and the
    Missing ones), written set-based (INSERT ... SELECT over generate_series): a raw sample a
    minute for `raw_hours`, hourly rows for `days`, daily rows for `days`, one run each.
    Returns rows per resolution and seconds per phase.

    Fast because the table's indexes (primary key included) are dropped first and built
    once at the end from sorted input, in one transaction with a large
    maintenance_work_mem: maintaining a 4-column B-tree row by row cost ~6x the inserts."""
    engine = sa.create_engine(url)
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        phases[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL synchronous_commit = off; "
                             "SET LOCAL maintenance_work_mem = '1GB'"))
        conn.execute(sa.text("""
            INSERT INTO performance_segments (bot_id, instance_name, started_at)
            SELECT id, instance_name, date_trunc('day', now()) - make_interval(days => :days)
            FROM bots WHERE instance_name IS NOT NULL
        """), {"days": days})
        # Dropped here, re-created below from their own definitions (as the migrations made them).
        indexes = conn.execute(sa.text(POINT_INDEXES)).all()
        for index, _, constraint, _ in indexes:
            conn.execute(sa.text(
                f"ALTER TABLE performance_points DROP CONSTRAINT {constraint}" if constraint
                else f"DROP INDEX {index}"))
        # One statement in primary-key order (bot, resolution, time), so the key's sort at
        # the end finds its input already sorted; random values per row.
        conn.execute(sa.text("""
            INSERT INTO performance_points
                (bot_id, resolution, at, controller, realized, unrealized, global_pnl, volume)
            SELECT g.bot_id, g.resolution, g.t, 'pmm_1', g.r, g.u, g.r + g.u, g.v
            FROM (SELECT b.id, k.*
                  FROM bots b CROSS JOIN (VALUES
                      (0, 'minute', CAST(:raw AS interval), interval '1 minute', 1.0),
                      (1, 'hour', CAST(:days AS interval), interval '1 hour', 60.0),
                      (2, 'day', CAST(:days AS interval), interval '1 day', 1440.0))
                      AS k(resolution, unit, span, step, scale)
                  WHERE b.instance_name IS NOT NULL ORDER BY b.id, k.resolution) s
            CROSS JOIN LATERAL (
                SELECT s.id AS bot_id, s.resolution, t,
                       (random() - 0.45) * 0.01 * s.scale AS r,
                       (random() - 0.5) * 0.004 * sqrt(s.scale) AS u,
                       random() * 20 * s.scale AS v
                FROM generate_series(date_trunc(s.unit, now()) - s.span, now(), s.step) AS t) g
        """), {"raw": f"{raw_hours} hours", "days": f"{days} days"})
        phase("insert")
        for _, index_def, constraint, constraint_def in indexes:
            conn.execute(sa.text(
                f"ALTER TABLE performance_points ADD CONSTRAINT {constraint} {constraint_def}"
                if constraint else index_def))
        phase("indexes")
        conn.execute(sa.text("""
            INSERT INTO performance_latest (bot_id, controller, segment_id, sampled_at, realized,
                unrealized, global_pnl, volume, total_realized, total_unrealized,
                total_global_pnl, total_volume)
            SELECT p.bot_id, p.controller, s.id, now(), 0, 0, 0, 0, sum(p.realized),
                   sum(p.unrealized), sum(p.global_pnl), sum(p.volume)
            FROM performance_points p JOIN performance_segments s ON s.bot_id = p.bot_id
            WHERE p.resolution = 2 GROUP BY p.bot_id, p.controller, s.id
        """))
    phase("totals, commit")
    # Settled as a table filled over a year would be: vacuumed (hint bits, visibility map,
    # frozen) and checkpointed, so that an insert-triggered autovacuum of the whole table and
    # the checkpointer writing out gigabytes do not run during the measurements.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (FREEZE, ANALYZE) performance_points, performance_latest, "
                             "performance_segments, bots, bot_events"))
        conn.execute(sa.text("CHECKPOINT"))
        counts = dict(conn.execute(sa.text(
            "SELECT resolution, count(*) FROM performance_points GROUP BY 1")).all())
    phase("vacuum, checkpoint, count")
    engine.dispose()
    return counts, phases


def storage_figures(url: str, counts: dict[int, int], bots_with_history: int,
                    raw_hours: int) -> str:
    """Bytes per row (table, TOAST and indexes, measured) -> steady-state cost per 1,000 bots:
    raw rows for the window, then 24 hourly and 1 daily row per controller and day."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = conn.scalar(sa.text("SELECT pg_total_relation_size('performance_points')"))
    engine.dispose()
    rows = sum(counts.values())
    per_row = total / rows
    per_day_1000 = 25 * 1000 * per_row  # after rollups: 24 hourly + 1 daily rows per bot
    raw_1000 = raw_hours * 60 * 1000 * per_row  # the raw window, a constant
    return (f"performance_points: {total / 2**30:.2f} GiB for {rows:,} rows "
            f"({per_row:.0f} bytes/row incl. indexes; {bots_with_history} bots with history)\n"
            f"Storage per 1,000 bots (one controller each): {per_day_1000 / 2**20:.1f} MiB per "
            f"day after rollups ({per_day_1000 * 365 / 2**30:.2f} GiB per year; after the "
            f"hourly window only the daily row stays: {1000 * per_row * 365 / 2**20:.1f} MiB "
            f"per year), plus {raw_1000 / 2**20:.0f} MiB for the {raw_hours} h of raw samples")


# The apps this process builds for in-process figures start no background work: their first
# request would otherwise start alert evaluation, alert and batch workers in the load
# generator's process for the rest of the run.
IN_PROCESS = {"RECONCILE_INTERVAL_SECONDS": 0, "HISTORY_MAINTENANCE_SECONDS": 0,
              "ALERT_EVALUATE_SECONDS": 0, "ALERT_WORKERS": 0, "BATCH_WORKERS": 0}


def time_sampling(url: str, simulator_url: str, periods: int = 3) -> list[float]:
    """Record `periods` sample periods of the simulator's live fleet, in process; ms each."""
    from dashboard import create_app
    from dashboard.gateway import hummingbot
    from dashboard.history.sampling import record_samples
    from dashboard.models import db
    from dashboard.registry import utcnow

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, **IN_PROCESS,
                      "HUMMINGBOT_API_URL": simulator_url,
                      "HUMMINGBOT_API_USERNAME": SIM_USER,
                      "HUMMINGBOT_API_PASSWORD": SIM_PASSWORD, "STATUS_CACHE_SECONDS": 0})
    timings = []
    with app.app_context():
        start = utcnow()
        for period in range(periods):
            snapshot = hummingbot().feed.snapshot(record=False)
            started = time.perf_counter()
            report = record_samples(snapshot, now=start + timedelta(minutes=period + 1))
            timings.append((time.perf_counter() - started) * 1000)
            assert report.ran, report.reason
        db.engine.dispose()
    return timings


HISTORY_PAGES = ("/bots/bot-00042", "/bots/bot-00042?range=24h", "/bots/bot-00042?range=all",
                 "/accounts/account_042")


def history_pages_rendered_anew(url: str, seconds: float) -> dict[str, float]:
    """Median ms of each history page with no shared render (STATUS_CACHE_SECONDS=0, so the
    history cache is off too), in process on a test client, and of /healthz the same way:
    the cost of the first view of a chart in a minute, or after a sample period."""
    from sqlalchemy import select

    from dashboard import create_app
    from dashboard.auth import stamp_session
    from dashboard.models import User, db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "HUMMINGBOT_API_URL": None,
                      "STATUS_CACHE_SECONDS": 0, "LOG_LEVEL": "WARNING", **IN_PROCESS})
    client = app.test_client()
    with app.app_context():
        user_id = db.session.scalar(select(User).where(User.username == "admin")).get_id()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = user_id, True
        stamp_session(session)
    medians = {}
    for path in ("/healthz", *HISTORY_PAGES):
        assert client.get(path).status_code == 200, path
        times, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - started)
        medians[path] = statistics.median(times) * 1000
    with app.app_context():
        db.engine.dispose()
    return medians


def seed_simulator(state, live: int) -> None:
    """`live` bots, a third with controllers; one in 100 crashed (container exited), one in
    150 with an error line in its log."""
    for n in range(1, live + 1):
        name = state.seed_bot(f"bot-{n:05d}-live", account=f"account_{n % 200:03d}",
                              controllers=["pmm_1"] if n % 3 == 0 else None,
                              script=None if n % 3 == 0 else "simple_pmm.py", with_run=False)
        if n % 100 == 0:
            state.exit_bot(name)
        elif n % 150 == 0:
            state.add_log(name, "ERROR", "Order rejected: insufficient balance")


# ------------------------------------------------------------------------------- the load
@dataclass
class Result:
    latencies: list[float]
    seconds: float
    sql: list[int]
    errors: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.median_ms
        return statistics.quantiles(self.latencies, n=20)[-1] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def sql_per_request(self) -> str:
        return f"{statistics.median(self.sql):.0f}" if self.sql else "-"


def hammer(sessions: list[requests.Session], url: str, seconds: float,
           headers: dict[str, str] | None = None) -> Result:
    """Each session requests `url` back to back for `seconds`."""
    latencies: list[float] = []
    sql: list[int] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(session: requests.Session) -> None:
        mine, my_sql = [], []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = session.get(url, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                with lock:
                    errors[0] += 1
                continue
            mine.append(elapsed)
            if "X-SQL-Statements" in response.headers:
                my_sql.append(int(response.headers["X-SQL-Statements"]))
        with lock:
            latencies.extend(mine)
            sql.extend(my_sql)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(latencies, time.perf_counter() - started, sql, errors[0])


def logged_in_sessions(base_url: str, count: int, username: str = "admin") -> list:
    sessions = []
    for _ in range(count):
        browser = Browser(base_url).login(username, PASSWORD)
        sessions.append(browser.session)
    return sessions


def warm(sessions, url, headers=None):
    for session in sessions:
        session.get(url, headers=headers, timeout=30)


@dataclass
class Measured:
    alone: Result  # one client: latency without queueing behind other requests
    loaded: Result  # N concurrent clients: throughput, and latency under load
    status_calls: int = 0  # Hummingbot status calls the server made meanwhile (refreshes)


def measure(sessions, url, seconds, headers=None, simulator=None) -> Measured:
    warm(sessions, url, headers)
    before = status_calls(simulator)
    alone = hammer(sessions[:1], url, seconds / 2, headers)
    loaded = hammer(sessions, url, seconds / 2, headers)
    return Measured(alone, loaded, status_calls(simulator) - before)


PAIRED_ROUNDS = 5
PAIRED_SECONDS = 0.4


def paired_ratios(session, base: str, routes: list) -> dict[str, list[float]]:
    """Each route's median over /healthz's, in rounds that measure /healthz just before the
    route: one route's figure measured alone can land on a moment the machine is busy (an
    autovacuum, a co-tenant) that the baseline measured minutes earlier never saw."""
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in routes}
    for _ in range(PAIRED_ROUNDS):
        for name, path, headers in routes:
            healthz = hammer([session], base + "/healthz", PAIRED_SECONDS)
            route = hammer([session], base + path, PAIRED_SECONDS, headers)
            ratios[name].append(route.median_ms / healthz.median_ms)
    return ratios


def status_calls(simulator) -> int:
    if simulator is None:
        return 0
    return simulator.state.request_count("GET", "/bot-orchestration/status")


def print_table(rows: list[tuple[str, Measured]], baseline: Measured, clients: int) -> None:
    print(f"\n{'':<44}{'-- 1 client --':>18}{f'-- {clients} clients --':>27}")
    print(f"{'route':<44}{'median ms':>10}{'p95 ms':>8}{'median ms':>10}{'req/s':>8}"
          f"{'vs base':>9}{'SQL/req':>9}{'errors':>7}{'HB calls':>9}")
    print("-" * 114)
    for name, m in rows:
        ratio = m.loaded.rps / baseline.loaded.rps if baseline.loaded.rps else float("nan")
        print(f"{name:<44}{m.alone.median_ms:>10.2f}{m.alone.p95_ms:>8.2f}"
              f"{m.loaded.median_ms:>10.2f}{m.loaded.rps:>8.0f}{ratio:>8.0%} "
              f"{m.loaded.sql_per_request:>8}{m.alone.errors + m.loaded.errors:>7}"
              f"{m.status_calls:>9}")


def render_each_time(session: requests.Session, url: str, seconds: float) -> Result:
    """One client asking for `url` with a new dummy parameter each time: the shared rows
    cache never answers, so every request renders (the cost after each status refresh)."""
    latencies, sql, errors = [], [], 0
    deadline = time.perf_counter() + seconds
    started, n = time.perf_counter(), 0
    while time.perf_counter() < deadline:
        n += 1
        began = time.perf_counter()
        response = session.get(f"{url}&fresh={n}", timeout=30)
        if response.status_code != 200:
            errors += 1
            continue
        latencies.append(time.perf_counter() - began)
        if "X-SQL-Statements" in response.headers:
            sql.append(int(response.headers["X-SQL-Statements"]))
    return Result(latencies, time.perf_counter() - started, sql, errors)


def worker_memory_mb(server: ServerProcess) -> list[float]:
    import psutil

    master = psutil.Process(server.process.pid)
    return [round(child.memory_info().rss / 2**20, 1) for child in master.children()]


# --------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per route")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=2_000)
    parser.add_argument("--raw-hours", type=int, default=48, help="raw history per live bot")
    parser.add_argument("--history-days", type=int, default=365,
                        help="hourly and daily history per live bot")
    parser.add_argument("--routes", action="append", metavar="TEXT",
                        help="only the routes whose name contains TEXT (repeatable), then stop "
                             "after the table (no triage, pollers, outage or 100-bot parts)")
    args = parser.parse_args()

    import tempfile

    from dashboard.simulator import start_simulator

    tmp = Path(tempfile.mkdtemp(prefix="bench"))
    print(f"Seeding {args.bots} bots across 200 accounts, {args.live} live in the simulator...")
    url = start_database(tmp)
    migrate_and_seed_users(url)
    seed_bots(url, args.bots, live=args.live)
    simulator = start_simulator("127.0.0.1", 0, username=SIM_USER, password=SIM_PASSWORD)
    seed_simulator(simulator.state, args.live)
    simulator.state.configure(warmup_seconds=0)
    started = time.perf_counter()
    counts, phases = seed_history(url, args.raw_hours, args.history_days)
    seconds = time.perf_counter() - started
    print(f"History for the {args.live} live bots and the Missing ones: {counts.get(0, 0):,} "
          f"raw, {counts.get(1, 0):,} hourly, {counts.get(2, 0):,} daily rows, generated in "
          f"{seconds:.0f} s = {sum(counts.values()) / seconds:,.0f} rows/s ("
          + ", ".join(f"{name} {t:.0f} s" for name, t in phases.items()) + ")")
    storage = storage_figures(url, counts, args.live, args.raw_hours)
    sampling = time_sampling(url, simulator.url)
    anew = history_pages_rendered_anew(url, args.seconds / 2)

    refresh = 2.0
    env = {
        "HUMMINGBOT_API_URL": simulator.url, "HUMMINGBOT_API_USERNAME": SIM_USER,
        "HUMMINGBOT_API_PASSWORD": SIM_PASSWORD, "STATUS_CACHE_SECONDS": str(refresh),
        "RECONCILE_INTERVAL_SECONDS": "0", "SQL_COUNT_HEADER": "1", "LOG_LEVEL": "WARNING",
        "HISTORY_MAINTENANCE_SECONDS": "0",
        "HUMMINGBOT_READ_TIMEOUT": "2", "HUMMINGBOT_CONNECT_TIMEOUT": "1",
    }
    server = ServerProcess(url, gunicorn_config=str(ROOT / "gunicorn.conf.py"), **env).start()
    try:
        base = server.url
        sessions = logged_in_sessions(base, args.clients)
        middle = args.bots // 50 // 2
        routes = [
            ("GET /bots (admin, page 1)", "/bots", None),
            (f"GET /bots?page={middle}", f"/bots?page={middle}", None),
            ("GET /bots?account=account_007&status=stopped",
             "/bots?account=account_007&status=stopped", None),
            ("GET /bots fragment (HX-Request poll)", "/bots", {"HX-Request": "true"}),
            ("GET /bots/bot-00042 (detail)", "/bots/bot-00042", None),
            ("GET /api/bots", "/api/bots", None),
            (TRIAGE_NAME, TRIAGE, None),
            ("GET /bots?status=needs_attention&sort=-pnl", "/bots?status=needs_attention&sort=-pnl",
             None),
            ("GET /api/bots?status=missing", "/api/bots?status=missing", None),
            ("GET /bots/bot-00042?range=24h (chart)", "/bots/bot-00042?range=24h", None),
            ("GET /bots/bot-00042?range=all (chart)", "/bots/bot-00042?range=all", None),
            ("GET /accounts/account_042", "/accounts/account_042", None),
            ("GET /api/accounts/account_042/history", "/api/accounts/account_042/history",
             None),
        ]
        if args.routes:
            routes = [r for r in routes if any(text in r[0] for text in args.routes)]
        baseline = measure(sessions, base + "/healthz", args.seconds, simulator=simulator)
        results = [(name, measure(sessions, base + path, args.seconds, headers, simulator))
                   for name, path, headers in routes]
        # The baseline again, after the routes: how much the machine's state moved meanwhile.
        again = measure(sessions, base + "/healthz", args.seconds, simulator=simulator)
        print(f"\n{args.bots} bots, {args.live} live; gunicorn.conf.py on loopback, "
              f"{args.seconds:.0f} s per route (half alone, half with {args.clients} clients); "
              "the load generator shares the machine's 2 cores; HB calls: Hummingbot status "
              "calls the server made during the route (status refreshes)")
        print_table([("GET /healthz (baseline)", baseline), *results,
                     ("GET /healthz (again, after the routes)", again)],
                    baseline, args.clients)
        paired = paired_ratios(sessions[0], base, routes)
        print(f"\n{'route':<44}{'median ms alone':>16}{'x baseline':>12}"
              f"{'x paired (min-max)':>24}  (target <= 2.5x)")
        for name, m in results:
            ratios = paired[name]
            print(f"{name:<44}{m.alone.median_ms:>16.2f}"
                  f"{m.alone.median_ms / baseline.alone.median_ms:>11.2f}x"
                  f"{statistics.median(ratios):>11.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)")
        print(f"x paired: the median over {PAIRED_ROUNDS} rounds of the route's median over "
              f"/healthz's measured just before it ({PAIRED_SECONDS} s each, 1 client), so a "
              "moment of load on the machine weighs on both sides of a ratio")
        print(f"\nRecording one sample period of {args.live} live bots (in process, "
              f"fixed statements): {', '.join(f'{t:.0f}' for t in sampling)} ms")
        print(storage)
        print("History pages rendered anew on every request (no shared render; in process, "
              "1 client, median): " + ", ".join(
                  f"{path} {ms:.2f} ms = {ms / anew['/healthz']:.2f}x"
                  for path, ms in anew.items() if path != "/healthz")
              + f" (/healthz {anew['/healthz']:.2f} ms the same way)")
        if args.routes:
            return 0

        # The triage view: needs attention first, by PnL, against the trivial endpoint.
        triage = dict(results)[TRIAGE_NAME]
        fresh = render_each_time(sessions[0], base + TRIAGE, args.seconds / 2)
        base_ms = baseline.alone.median_ms
        print(f"\nTriage list ({TRIAGE}) at {args.bots} bots, 1 client: median "
              f"{triage.alone.median_ms:.2f} ms = {triage.alone.median_ms / base_ms:.2f}x "
              f"/healthz ({base_ms:.2f} ms; target within 2.5x); rendered anew every time "
              f"(no shared rows): median {fresh.median_ms:.2f} ms = "
              f"{fresh.median_ms / base_ms:.2f}x, {fresh.sql_per_request} SQL/request")

        # Hummingbot status calls per refresh period under 50 pollers.
        pollers = logged_in_sessions(base, 50)
        simulator.state.reset_counts()
        polled_for = 3 * refresh
        poll = hammer(pollers, base + "/bots", polled_for, {"HX-Request": "true"})
        calls = simulator.state.request_count("GET", "/bot-orchestration/status")
        periods = polled_for / refresh
        workers = len(worker_memory_mb(server))
        print(f"\n50 pollers for {polled_for:.0f} s ({len(poll.latencies)} fragment requests): "
              f"{calls} Hummingbot status calls = {calls / periods:.2f} per {refresh:.0f} s "
              f"refresh period for {workers} worker processes "
              f"({calls / periods / workers:.2f} per period per process; target <= 1)")

        # With Hummingbot unreachable: once the circuit is open pages answer from the DB.
        normal = results[0][1].alone
        simulator.state.set_fault("unreachable")
        warm(sessions, base + "/bots")
        warm(sessions, base + "/bots")
        down = hammer(sessions[:1], base + "/bots", args.seconds / 2)
        simulator.state.clear_faults()
        print(f"Hummingbot unreachable, circuit open: /bots median {down.median_ms:.2f} ms vs "
              f"{normal.median_ms:.2f} ms normally ({down.median_ms / normal.median_ms:.2f}x; "
              f"target < 2x)")

        memory = worker_memory_mb(server)
        print(f"Memory per worker at {args.bots} bots (RSS, MB): {memory} (target < 200)")

        # How the list's cost grows from 100 to 10,000 bots.
        large = normal
        server.stop()
        seed_bots(url, 100, live=min(args.live, 100))
        server = ServerProcess(url, port=server.port,
                               gunicorn_config=str(ROOT / "gunicorn.conf.py"), **env).start()
        sessions = logged_in_sessions(base, 1)
        warm(sessions, base + "/bots")
        small = hammer(sessions, base + "/bots", args.seconds / 2)
        print(f"List page (1 client) at 100 bots: median {small.median_ms:.2f} ms; at {args.bots}: "
              f"{large.median_ms:.2f} ms ({large.median_ms / small.median_ms:.2f}x; target < 2x)")
    finally:
        server.stop()
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
