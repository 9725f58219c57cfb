"""`make bench`, many servers: 20 Hummingbot servers x 500 bots behind one dashboard.

Starts 20 simulators (threads of one child process, so their work does not share the load
generator's interpreter), 500 live bots on each, and the dashboard under the production server
configuration (gunicorn.conf.py) on loopback, with the first simulator as `default`
(HUMMINGBOT_API_URL) and the others as `hummingbot_servers` rows with credentials of their own.
Then, with one client:

- status calls per server per refresh period, counted at each simulator while 20 pollers ask
  for the list fragment;
- the list's latency (p50 and p95) with every server up, one down (connection refused), one
  slow (its status call held far past the client's timeout), and both, each against `/healthz`
  measured just before it in the same run.

    python -m tests.bench_servers [--servers 20] [--bots 500] [--seconds 4] [--processes 1]

Everything twice: with STATUS_SHARED off (each process asks every server) and on (one call per
server per period for the deployment). `--processes 2` runs two dashboards (each
gunicorn.conf.py) on the same database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.benchmark import (  # noqa: E402
    hammer,
    logged_in_sessions,
    migrate_and_seed_users,
    start_database,
    warm,
)
from tests.servers import ServerProcess  # noqa: E402

SECRET = "shared-secret-key-for-the-process-tests-0123456789"  # tests.servers.ServerProcess's
STATUS = "/bot-orchestration/status"
SLOW_SECONDS = 120  # far past the client's timeouts: the held call outlives every measurement
REFRESH = 2.0


# --------------------------------------------------------------------- the simulators
def serve_simulators(count: int, bots: int) -> None:
    """Child process: `count` simulators, `bots` live bots each; prints their addresses as
    one JSON line, then serves until stdin closes."""
    from dashboard.simulator import start_simulator

    running = []
    for index in range(count):
        sim = start_simulator("127.0.0.1", 0, username=f"sim{index}", password=f"pw-{index}")
        sim.state.configure(warmup_seconds=0)
        for n in range(bots):
            sim.state.seed_bot(f"s{index:02d}-bot-{n:03d}", account=f"account_{n % 40:03d}",
                               controllers=["pmm_1"] if n % 3 == 0 else None,
                               script=None if n % 3 == 0 else "simple_pmm.py", with_run=False)
        running.append(sim)
    print(json.dumps([{"url": s.url, "control": s.control_url} for s in running]), flush=True)
    sys.stdin.read()
    for sim in running:
        sim.stop()


class Simulators:
    def __init__(self, count: int, bots: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench_servers", "--serve-simulators", str(count),
             "--bots", str(bots)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self.servers = json.loads(self.process.stdout.readline())

    def control(self, index: int, method: str, route: str, **body) -> dict:
        response = requests.request(method, self.servers[index]["control"] + route,
                                    json=body or None, timeout=10)
        response.raise_for_status()
        return response.json()

    def status_calls(self) -> list[int]:
        return [self.control(i, "GET", f"/counts?method=GET&path={STATUS}")["count"]
                for i in range(len(self.servers))]

    def reset_counts(self) -> None:
        for i in range(len(self.servers)):
            self.control(i, "DELETE", "/counts")

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


# --------------------------------------------------------------------------- database
def add_servers_and_bots(url: str, sims: Simulators, bots: int) -> None:
    """`default` is the first simulator (the app's HUMMINGBOT_API_URL); the others are rows
    with sealed credentials. `bots` definitions per server, each matching a live bot."""
    from dashboard import create_app
    from dashboard.models import db
    from dashboard.servers import add_server, default_server_id, sync_default_server

    first = sims.servers[0]["url"]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET,
                      "RECONCILE_INTERVAL_SECONDS": 0, "HUMMINGBOT_API_URL": first,
                      "HUMMINGBOT_API_USERNAME": "sim0", "HUMMINGBOT_API_PASSWORD": "pw-0"})
    with app.app_context():
        sync_default_server(app)
        ids = [default_server_id()]
        for index, server in enumerate(sims.servers[1:], start=1):
            ids.append(add_server(f"srv-{index:02d}", server["url"], f"sim{index}",
                                  f"pw-{index}").id)
        db.engine.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, config,
                              status, instance_name, server_id, created_at, updated_at)
            SELECT name, name, 'account_' || lpad((n % 40)::text, 3, '0'),
                   CASE WHEN n % 3 = 0 THEN 'v2_with_controllers' ELSE 'pure_market_making' END,
                   'binance', 'BTC-USDT', '{}'::jsonb, 'running', name, (:ids)[s + 1],
                   now(), now()
            FROM generate_series(0, :servers - 1) AS s, generate_series(0, :bots - 1) AS n,
                 LATERAL (SELECT 's' || lpad(s::text, 2, '0') || '-bot-'
                                 || lpad(n::text, 3, '0') AS name) AS named
        """), {"ids": ids, "servers": len(ids), "bots": bots})
        conn.execute(sa.text("ANALYZE bots"))
    engine.dispose()


# ----------------------------------------------------------------------------- figures
def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def measure(session, base: str, path: str, seconds: float, headers=None) -> tuple[float, float,
                                                                                   int, int]:
    warm([session], base + path, headers)
    result = hammer([session], base + path, seconds, headers)
    return (pct(result.latencies, 50), pct(result.latencies, 95), len(result.latencies),
            result.errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--bots", type=int, default=500, help="live bots per server")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--processes", type=int, default=1, help="dashboards on one database")
    parser.add_argument("--serve-simulators", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_simulators:
        serve_simulators(args.serve_simulators, args.bots)
        return 0

    import tempfile

    started = time.perf_counter()
    print(f"{args.servers} simulators x {args.bots} live bots, {args.processes} dashboard "
          f"process(es) (gunicorn.conf.py each); load average {os.getloadavg()[0]:.1f}",
          flush=True)
    sims = Simulators(args.servers, args.bots)
    url = start_database(Path(tempfile.mkdtemp(prefix="bench-servers")), "bm_bench_servers")
    migrate_and_seed_users(url)
    add_servers_and_bots(url, sims, args.bots)
    env = {"HUMMINGBOT_API_URL": sims.servers[0]["url"], "HUMMINGBOT_API_USERNAME": "sim0",
           "HUMMINGBOT_API_PASSWORD": "pw-0", "STATUS_CACHE_SECONDS": str(REFRESH),
           "RECONCILE_INTERVAL_SECONDS": "0", "HISTORY_MAINTENANCE_SECONDS": "0",
           "LOG_LEVEL": "WARNING", "HUMMINGBOT_READ_TIMEOUT": "5",
           "HUMMINGBOT_CONNECT_TIMEOUT": "2"}
    print(f"set up in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        for shared in (False, True):  # each process asks; one call per deployment
            mode = {**env, "STATUS_SHARED": "true" if shared else "false"}
            dashboards = [ServerProcess(url, gunicorn_config=str(ROOT / "gunicorn.conf.py"),
                                        **mode).start() for _ in range(args.processes)]
            try:
                run(args, sims, dashboards, started, shared)
            finally:
                for dashboard in dashboards:
                    dashboard.stop()
    finally:
        sims.stop()
    return 0


def run(args, sims: Simulators, dashboards: list[ServerProcess], started: float,
        shared: bool) -> None:
    base = dashboards[0].url
    [session] = logged_in_sessions(base, 1)
    warm([session], base + "/bots")

    # Status calls per server per period: 20 pollers, spread over the dashboard processes.
    periods, each = 3, 20 // len(dashboards)
    pollers = {d.url: logged_in_sessions(d.url, each) for d in dashboards}
    for d in dashboards:
        warm(pollers[d.url][:1], d.url + "/bots")
    sims.reset_counts()
    polls = []
    threads = [threading.Thread(target=lambda u=u, m=m: polls.append(
        hammer(m, u + "/bots", periods * REFRESH, {"HX-Request": "true"})))
        for u, m in pollers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = sims.status_calls()
    per_period = [c / periods for c in calls]
    requests_made = sum(len(p.latencies) for p in polls)

    # The list alone, with one server down and one slow; /healthz just before each.
    down, slow = 1 % args.servers, 2 % args.servers
    scenarios = [("all servers up", []),
                 (f"one down (srv-{down:02d} refuses connections)", [(down, "unreachable", {})]),
                 (f"one slow (srv-{slow:02d} holds its status call {SLOW_SECONDS} s)",
                  [(slow, "slow", {"seconds": SLOW_SECONDS, "path": STATUS})]),
                 ("one down and one slow", [(down, "unreachable", {}),
                                            (slow, "slow", {"seconds": SLOW_SECONDS,
                                                            "path": STATUS})])]
    rows = []
    for name, faults in scenarios:
        for index, fault, options in faults:
            sims.control(index, "PUT", f"/faults/{fault}", **options)
        health = measure(session, base, "/healthz", args.seconds)
        page = measure(session, base, "/bots", args.seconds)
        fragment = measure(session, base, "/bots", args.seconds, {"HX-Request": "true"})
        html = session.get(base + "/bots", timeout=30).text
        stale_banners = html.count("data-server=")
        rows.append((name, health, page, fragment, stale_banners))
        for index, _, _ in faults:
            sims.control(index, "DELETE", "/faults")

    load = os.getloadavg()
    print(f"\nSTATUS_SHARED={'true' if shared else 'false'}: "
          f"{args.servers} servers x {args.bots} live bots = {args.servers * args.bots:,} bots; "
          f"{len(dashboards)} dashboard process(es), gunicorn.conf.py (2 workers x 8 threads "
          f"each); status refresh {REFRESH:.0f} s; STATUS_WAIT_SECONDS 1; 1 client, "
          f"{args.seconds:.0f} s per measurement; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    print(f"\nStatus calls per server per {REFRESH:.0f} s period, {each * len(dashboards)} pollers "
          f"for {periods * REFRESH:.0f} s ({requests_made} fragment requests): "
          f"min {min(per_period):.2f}, median {statistics.median(per_period):.2f}, "
          f"max {max(per_period):.2f} (workers: {2 * len(dashboards)}; counted at each "
          "simulator)")
    print(f"\n{'scenario':<44}{'healthz p50':>12}{'p95':>8}{'list p50':>10}{'p95':>8}"
          f"{'x p50':>7}{'x p95':>7}{'poll p50':>10}{'x p50':>7}{'banners':>8}{'errors':>7}")
    print("-" * 128)
    for name, health, page, fragment, banners in rows:
        print(f"{name:<44}{health[0]:>12.2f}{health[1]:>8.2f}{page[0]:>10.2f}{page[1]:>8.2f}"
              f"{page[0] / health[0]:>6.2f}x{page[1] / health[1]:>6.2f}x{fragment[0]:>10.2f}"
              f"{fragment[0] / health[0]:>6.2f}x{banners:>8}{health[3] + page[3] + fragment[3]:>7}")
    print("\nms; x: the list (full page) or the poll (HX-Request fragment) over /healthz measured "
          "just before it; banners: servers named stale on the admin's list page")
    print(f"{time.perf_counter() - started:.0f} s since the start", flush=True)


if __name__ == "__main__":
    sys.exit(main())
