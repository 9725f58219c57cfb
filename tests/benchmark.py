"""`make bench`: the dashboard at 10,000 bots, measured on this machine.

Seeds a database with 10,000 bots across 200 accounts (and the simulator with 2,000 live
bots), serves the app with the production server configuration (gunicorn.conf.py) on
loopback, and measures with concurrent clients. Prints, per route: median and p95 latency,
requests per second, the ratio to a trivial endpoint of the same app measured in the same
run, and SQL statements per request; then Hummingbot status calls per refresh period under 50
pollers, pages with Hummingbot unreachable (circuit open), the list at 100 vs 10,000 bots,
and memory per worker. Loopback only; every loop is bounded.

    python -m tests.benchmark [--seconds 4] [--clients 8] [--bots 10000]
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
        conn.execute(sa.text("TRUNCATE batch_items, batches, bot_versions, bot_events, bots"))
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


def measure(sessions, url, seconds, headers=None) -> Measured:
    warm(sessions, url, headers)
    return Measured(alone=hammer(sessions[:1], url, seconds / 2, headers),
                    loaded=hammer(sessions, url, seconds / 2, headers))


def print_table(rows: list[tuple[str, Measured]], baseline: Measured, clients: int) -> None:
    print(f"\n{'':<44}{'-- 1 client --':>18}{f'-- {clients} clients --':>27}")
    print(f"{'route':<44}{'median ms':>10}{'p95 ms':>8}{'median ms':>10}{'req/s':>8}"
          f"{'vs base':>9}{'SQL/req':>9}{'errors':>7}")
    print("-" * 105)
    for name, m in rows:
        ratio = m.loaded.rps / baseline.loaded.rps if baseline.loaded.rps else float("nan")
        print(f"{name:<44}{m.alone.median_ms:>10.2f}{m.alone.p95_ms:>8.2f}"
              f"{m.loaded.median_ms:>10.2f}{m.loaded.rps:>8.0f}{ratio:>8.0%} "
              f"{m.loaded.sql_per_request:>8}{m.alone.errors + m.loaded.errors:>7}")


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

    refresh = 2.0
    env = {
        "HUMMINGBOT_API_URL": simulator.url, "HUMMINGBOT_API_USERNAME": SIM_USER,
        "HUMMINGBOT_API_PASSWORD": SIM_PASSWORD, "STATUS_CACHE_SECONDS": str(refresh),
        "RECONCILE_INTERVAL_SECONDS": "0", "SQL_COUNT_HEADER": "1", "LOG_LEVEL": "WARNING",
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
        ]
        baseline = measure(sessions, base + "/healthz", args.seconds)
        results = [(name, measure(sessions, base + path, args.seconds, headers))
                   for name, path, headers in routes]
        print(f"\n{args.bots} bots, {args.live} live; gunicorn.conf.py on loopback, "
              f"{args.seconds:.0f} s per route (half alone, half with {args.clients} clients); "
              "the load generator shares the machine's 2 cores")
        print_table([("GET /healthz (baseline)", baseline), *results], baseline, args.clients)

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
