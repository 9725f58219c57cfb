"""Reliability drills: kills, a PostgreSQL restart, Hummingbot faults and concurrency.

Each runs the real server as separate processes on loopback, bounded in count and time, and
prints its figures. `make drill` runs them with DRILL_SCALE=5.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections import defaultdict

import pytest
import requests
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.drills import report, scale
from tests.servers import CSRF, Browser, ServerProcess, running_server

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- kill soak
class SoakClient(threading.Thread):
    """Creates, edits and deploys its own bots; remembers what the server acknowledged."""

    def __init__(self, name: str, url: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.url, self.stop_event = url, stop
        self.created: set[str] = set()
        self.last_edit: dict[str, int] = {}
        self.deployed: set[str] = set()
        self.acknowledged = 0
        self.failures = 0
        self.rng = random.Random(name)

    def run(self) -> None:
        browser, seq = None, 0
        while not self.stop_event.is_set():
            seq += 1
            try:
                if browser is None:
                    browser = Browser(self.url).login("admin", TEST_PASSWORD)
                self.one_operation(browser, seq)
            except (requests.RequestException, AttributeError, AssertionError):
                # The server died mid-request (or mid-login): the outcome is unknown, so it
                # is not counted as acknowledged. Log in again once it is back.
                self.failures += 1
                browser = None
                time.sleep(0.2)

    def one_operation(self, browser: Browser, seq: int) -> None:
        choice = self.rng.random()
        if not self.created or choice < 0.4:
            bot_id = f"{self.name}-{seq}"
            response = browser.submit("/bots/new", make_bot_data(id=bot_id, name=bot_id))
            if response.status_code == 302:
                self.created.add(bot_id)
                self.acknowledged += 1
        elif choice < 0.85:
            bot_id = self.rng.choice(sorted(self.created))
            current = browser.get(f"/api/bots/{bot_id}").json()
            data = make_bot_data(id=bot_id, name=bot_id, config=f'{{"seq": {seq}}}',
                                 version=str(current["version"]))
            response = browser.submit(f"/bots/{bot_id}/edit", data)
            if response.status_code == 302:
                self.last_edit[bot_id] = seq
                self.acknowledged += 1
        else:
            bot_id = self.rng.choice(sorted(self.created))
            response = browser.submit(f"/bots/{bot_id}/deploy",
                                      {"mode": "script", "image": "hummingbot/hummingbot:latest",
                                       "script_config": "simple_pmm_1.yml"})
            if response.status_code == 302:
                self.deployed.add(bot_id)
                self.acknowledged += 1


def test_kill_soak_loses_no_acknowledged_change(committed_app, migrated, server_env, simulator):
    simulator.configure(warmup_seconds=0)
    kills_wanted = 3 * scale()
    server = ServerProcess(migrated, **server_env).start()
    stop = threading.Event()
    clients = [SoakClient(f"soak{i}", server.url, stop) for i in range(3)]
    for client in clients:
        client.start()
    kills = 0
    rng = random.Random(7)
    try:
        while kills < kills_wanted:
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill()
            kills += 1
            server = ServerProcess(migrated, port=server.port, **server_env).start()
        time.sleep(1.0)  # a last stretch of work on the final process
    finally:
        stop.set()
        for client in clients:
            client.join(15)
        server.stop()

    lost, rows_checked = [], 0
    with committed_app.app_context():
        bots = {bot.id: bot for bot in db.session.scalars(sa.select(Bot))}
        events = defaultdict(list)
        for event in db.session.scalars(sa.select(BotEvent).order_by(BotEvent.id)):
            events[event.bot_id].append(event)
        for client in clients:
            for bot_id in client.created:
                if bot_id not in bots:
                    lost.append(f"create {bot_id}")
            for bot_id, seq in client.last_edit.items():
                stored = bots.get(bot_id)
                # A later, unacknowledged edit may have landed too, never an older value.
                if stored is None or stored.config.get("seq", -1) < seq:
                    lost.append(f"edit {bot_id}@{seq}")
            for bot_id in client.deployed:
                if not any(e.action == "deploy_requested" for e in events[bot_id]):
                    lost.append(f"deploy {bot_id}")
        for bot_id, bot in bots.items():
            rows_checked += 1
            history = events[bot_id]
            # No half-written row: the definition and its history were committed together.
            assert history and history[0].action == "created", bot_id
            edits = [e for e in history if e.action == "edited"]
            expected = edits[-1].details["changes"]["config"][1] if edits and \
                "config" in edits[-1].details["changes"] else None
            if expected is not None:
                assert bot.config == expected, bot_id
    acknowledged = sum(c.acknowledged for c in clients)
    report("kill_soak", operations_acknowledged=acknowledged, kills=kills,
           interrupted_requests=sum(c.failures for c in clients), rows_checked=rows_checked,
           lost=len(lost))
    assert acknowledged > 0
    assert lost == []


# --------------------------------------------------------------------- PostgreSQL restart
@pytest.fixture
def restartable_postgres(tmp_path):
    """A PostgreSQL of this test's own, so stopping it disturbs nobody else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver._commands import pg_ctl

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="delete")
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    socket_dir = server.get_uri().split("host=")[1]
    log = server.pgdata / "restart.log"  # inside pgdata: its owner may write there

    class Handle:
        def stop(self):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

        def start(self):
            pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(log), "start"],
                   pgdata=server.pgdata, user=server.system_user, timeout=30)

    handle = Handle()
    handle.url = url
    yield handle
    server.cleanup()


def _prepare_database(url: str) -> None:
    from flask_migrate import upgrade

    from dashboard import create_app
    from dashboard.users import create_user
    from tests.conftest import base_config

    app = create_app(base_config(url))
    with app.app_context():
        upgrade()
        create_user("admin", TEST_PASSWORD, "admin")
        db.engine.dispose()


def test_postgres_restart_during_traffic(restartable_postgres, server_env, simulator):
    _prepare_database(restartable_postgres.url)
    simulator.state.add_account("client_sharp")  # the forms refuse accounts nobody has
    with running_server(restartable_postgres.url, **server_env) as server:
        admin = Browser(server.url).login("admin", TEST_PASSWORD)
        assert admin.submit("/bots/new", make_bot_data()).status_code == 302

        token = CSRF.search(admin.get("/bots/new").text).group(1)

        restartable_postgres.stop()
        outage = [admin.get("/bots"), admin.get("/api/bots"), admin.get("/healthz"),
                  admin.get("/bots", headers={"HX-Request": "true"})]
        failed_write = admin.session.post(
            server.url + "/bots/new", allow_redirects=False, timeout=10,
            data={**make_bot_data(id="during", name="during"), "csrf_token": token})
        restartable_postgres.start()
        after = admin.get("/api/bots")

    statuses = [r.status_code for r in [*outage, failed_write]]
    assert statuses == [503] * 5
    assert all(r.headers.get("X-Request-ID") for r in outage)
    assert outage[0].headers["X-Request-ID"] in outage[0].text  # shown on the error page
    # The next request after the restart works without restarting the app, and the write
    # attempted during the outage left nothing behind.
    assert after.status_code == 200
    assert [b["id"] for b in after.json()["bots"]] == ["pmm-btc"]
    report("postgres_restart", requests_during_outage=len(statuses),
           answered_503=statuses.count(503), first_after_restart=after.status_code,
           partial_rows=0)


# ----------------------------------------------------------------------- Hummingbot faults
FAULTS = ["unreachable", "slow", "error500", "malformed_json", "wrong_shape", "unauthorized"]


BANNERS = ("Hummingbot is unreachable", "Hummingbot is slow / timing out",
           "rejected the dashboard")


def test_pages_answer_from_the_database_under_every_hummingbot_fault(
        committed_app, migrated, server_env, simulator):
    timeouts = {"HUMMINGBOT_READ_TIMEOUT": "0.5", "HUMMINGBOT_CONNECT_TIMEOUT": "0.5"}
    pages = ["/bots", "/bots/pmm-btc", "/api/bots", "/api/bots/pmm-btc", "/readyz"]
    figures = {}
    # First every fault with the breaker out of the way, so each page really waits on it.
    no_breaker = {**server_env, **timeouts, "HUMMINGBOT_BREAKER_THRESHOLD": "1000"}
    with running_server(migrated, **no_breaker) as server:
        admin = Browser(server.url).login("admin", TEST_PASSWORD)
        assert admin.submit("/bots/new", make_bot_data()).status_code == 302
        for fault in FAULTS:
            simulator.set_fault(fault, **({"seconds": 2} if fault == "slow" else {}))
            slowest = 0.0
            for path in pages:
                # Pages also as an htmx poll; the JSON API refuses htmx (SECURITY.md).
                htmx = [] if path.startswith("/api/") else [{"HX-Request": "true"}]
                for headers in ({}, *htmx):
                    started = time.perf_counter()
                    response = admin.get(path, headers=headers)
                    slowest = max(slowest, time.perf_counter() - started)
                    assert response.status_code == 200, (fault, path, response.status_code)
                    if path.startswith("/bots"):
                        # A timeout reads as slow, not gone (issue 11).
                        assert ("Hummingbot is unreachable" in response.text
                                or "Hummingbot is slow / timing out" in response.text
                                or "rejected the dashboard" in response.text), (fault, path)
                        assert ("slow / timing out" in response.text) == (fault == "slow")
                    if path.startswith("/api/bots"):
                        assert "pmm-btc" in response.text
            figures[f"{fault}_slowest_ms"] = round(slowest * 1000)
            simulator.clear_faults()
            # A refresh begun under this fault may still be under way (a page waits for it
            # only STATUS_WAIT_SECONDS): the next fault starts once pages show answers again.
            deadline = time.monotonic() + 30
            while any(banner in admin.get("/bots").text for banner in BANNERS):
                assert time.monotonic() < deadline, f"pages never recovered from {fault}"
                time.sleep(0.1)

    # Then with the breaker: once it is open, pages stop waiting and Hummingbot gets nothing.
    with_breaker = {**server_env, **timeouts, "HUMMINGBOT_BREAKER_THRESHOLD": "3",
                    "HUMMINGBOT_BREAKER_RESET_SECONDS": "60"}
    with running_server(migrated, **with_breaker) as server:
        admin = Browser(server.url).login("admin", TEST_PASSWORD)
        simulator.set_fault("slow", seconds=2)
        for _ in range(3):
            admin.get("/bots")
        # Pages do not wait for the timing-out calls to end: the breaker opens when they do.
        deadline = time.monotonic() + 30
        while ">open<" not in admin.get("/servers").text.replace(" ", ""):
            assert time.monotonic() < deadline, "the breaker never opened"
            time.sleep(0.1)
        simulator.reset_counts()
        started = time.perf_counter()
        for _ in range(10):
            # Open because of timeouts: the banner still says slow.
            assert "Hummingbot is slow / timing out" in admin.get("/bots").text
        open_ms = (time.perf_counter() - started) * 100
        calls_while_open = simulator.request_count("GET", "/bot-orchestration/status")
    report("hummingbot_faults", **figures, pages_with_circuit_open=10,
           status_calls_while_open=calls_while_open, mean_ms_circuit_open=round(open_ms, 1))
    assert calls_while_open == 0


# ---------------------------------------------------------------------------- concurrency
def test_two_processes_agree_on_every_list(committed_app, migrated, server_env):
    with (running_server(migrated, **server_env) as one,
          running_server(migrated, **server_env) as two):
        on_one = Browser(one.url).login("admin", TEST_PASSWORD)
        on_two = Browser(two.url).login("admin", TEST_PASSWORD)
        created = 0
        for i in range(4 * scale()):
            browser = on_one if i % 2 else on_two
            bot_id = f"agree-{i}"
            account = "client_sharp" if i % 3 else "client_other"
            assert browser.submit("/bots/new", make_bot_data(
                id=bot_id, name=bot_id, account_identifier=account)).status_code == 302
            created += 1
        on_two.submit("/bots/agree-0/archive", {})
        views = ["/api/bots", "/api/bots?account=client_sharp", "/api/bots?archived=1",
                 "/api/bots?q=agree-1"]
        for view in views:
            def listing(browser):
                return [(b["id"], b["status"], b["version"])
                        for b in browser.get(view).json()["bots"]]  # noqa: B023

            assert listing(on_one) == listing(on_two), view
        client_one = Browser(one.url).login("sharp", TEST_PASSWORD).get("/api/bots").json()
        client_two = Browser(two.url).login("sharp", TEST_PASSWORD).get("/api/bots").json()
        assert client_one == client_two
    report("two_processes", bots_created=created, views_compared=len(views) + 1,
           disagreements=0)


def test_two_admins_editing_one_bot_get_one_success_and_one_conflict(
        committed_app, migrated, server_env):
    with running_server(migrated, **server_env) as server:
        first = Browser(server.url).login("admin", TEST_PASSWORD)
        second = Browser(server.url).login("admin", TEST_PASSWORD)
        assert first.submit("/bots/new", make_bot_data()).status_code == 302
        forms = [make_bot_data(pair=pair, version="1") for pair in ("ETH-USDT", "SOL-USDT")]
        results = [None, None]

        def save(index, browser):
            results[index] = browser.submit("/bots/pmm-btc/edit", forms[index]).status_code

        threads = [threading.Thread(target=save, args=(i, b))
                   for i, b in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        final = first.get("/api/bots/pmm-btc").json()
    assert sorted(results) == [302, 409]
    winner = forms[results.index(302)]["pair"]
    assert final["pair"] == winner and final["version"] == 2


def test_periodic_reconcile_settles_once_with_two_processes(
        committed_app, migrated, server_env, simulator):
    """Two processes reconcile every 0.2 s; the advisory lock and the state machine make a
    stuck deploy settle exactly once."""
    with committed_app.app_context():
        from dashboard.registry import create_bot

        bot = create_bot(make_bot_data(id="stuck", name="stuck"), "admin")
        request_id = "abcdef0123456789"
        db.session.execute(sa.update(Bot).where(Bot.id == "stuck").values(
            status="deploying", deploy_request_id=request_id,
            deploy_requested_at=sa.func.now()))
        db.session.commit()
        live_name = simulator.seed_bot(f"{bot.name}-abcdef", account="client_sharp",
                                       controllers=["pmm_btc_1"], timestamped=True)
    env = {**server_env, "RECONCILE_INTERVAL_SECONDS": "0.2"}
    with (running_server(migrated, **env) as one, running_server(migrated, **env) as two):
        for server in (one, two):  # the first request starts each process's reconcile loop
            requests.get(server.url + "/healthz", timeout=5)
        deadline = time.monotonic() + 20
        settled = None
        while time.monotonic() < deadline:
            with committed_app.app_context():
                settled = db.session.get(Bot, "stuck")
                if settled.status != "deploying":
                    break
            time.sleep(0.2)
        time.sleep(1.0)  # let both loops run several more passes
    with committed_app.app_context():
        stored = db.session.get(Bot, "stuck")
        actions = [e.action for e in db.session.scalars(
            sa.select(BotEvent).where(BotEvent.bot_id == "stuck"))]
    assert (stored.status, stored.instance_name) == ("running", live_name)
    assert actions.count("deploy_settled") == 1
    report("periodic_reconcile", processes=2, interval_s=0.2,
           settle_events=actions.count("deploy_settled"))


def test_migrations_round_trip_with_bots(committed_app):
    """Down one revision and up again on a database holding bots: nothing is lost."""
    from flask_migrate import downgrade, upgrade

    with committed_app.app_context():
        from dashboard.registry import create_bot

        for i in range(3):
            create_bot(make_bot_data(id=f"keep-{i}", name=f"keep-{i}"), "admin")
        before = sorted(db.session.scalars(sa.select(Bot.id)))
        db.session.remove()
        downgrade(revision="-1")
        upgrade()
        after = sorted(db.session.scalars(sa.select(Bot.id)))
        configs = {b.id: b.config for b in db.session.scalars(sa.select(Bot))}
    assert before == after == ["keep-0", "keep-1", "keep-2"]
    assert all(c == {"order_amount": 0.01, "bid_spread": 0.002} for c in configs.values())

