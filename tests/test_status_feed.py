"""The shared status feed: one GET /bot-orchestration/status per refresh period per process,
whatever the number of viewers and bots. Counted on the simulator; time is a manual clock."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import update

from dashboard.gateway import Hummingbot, record_last_seen
from dashboard.hummingbot import CircuitBreaker
from dashboard.models import Bot, db
from dashboard.status import StatusFeed
from tests.concurrency import run_together
from tests.conftest import Login
from tests.simulator_fixtures import ManualClock

STATUS = "/bot-orchestration/status"


def status_calls(simulator) -> int:
    return simulator.request_count("GET", STATUS)


@pytest.fixture
def feed_parts(simulator):
    clock = ManualClock(1000.0)
    client = simulator.client(read_retries=0)
    yield clock, client
    client.close()


# ------------------------------------------------------------------ the feed on its own
def test_twenty_viewers_at_once_cause_one_status_call(simulator, feed_parts):
    clock, client = feed_parts
    simulator.seed_bot("pmm-btc-1", controllers=["pmm_btc_1"])
    feed = StatusFeed(client.status, ttl=2.0, clock=clock)

    snapshots = run_together(20, lambda i: feed.snapshot())

    assert status_calls(simulator) == 1
    assert all(s is snapshots[0] for s in snapshots)  # one answer shared by all
    assert set(snapshots[0].bots) == {"pmm-btc-1"}


def test_a_new_period_causes_exactly_one_more_call(simulator, feed_parts):
    clock, client = feed_parts
    feed = StatusFeed(client.status, ttl=2.0, clock=clock)
    for _ in range(5):
        feed.snapshot()
    clock.advance(1.9)
    run_together(10, lambda i: feed.snapshot())
    assert status_calls(simulator) == 1
    clock.advance(0.2)  # past the period
    run_together(10, lambda i: feed.snapshot())
    assert status_calls(simulator) == 2
    clock.advance(2.5)
    feed.snapshot()
    assert status_calls(simulator) == 3


def test_failures_are_cached_for_the_period_too(simulator, feed_parts):
    clock, client = feed_parts
    feed = StatusFeed(client.status, ttl=2.0, clock=clock)
    simulator.set_fault("error500")
    snapshots = run_together(10, lambda i: feed.snapshot())
    assert status_calls(simulator) == 1
    assert all(not s.reachable and s.error_kind == "protocol" for s in snapshots)

    simulator.clear_faults()
    assert not feed.snapshot().reachable  # still the cached failure
    assert status_calls(simulator) == 1
    clock.advance(2.0)
    assert feed.snapshot().reachable
    assert status_calls(simulator) == 2


def test_invalidate_and_max_age_zero_fetch_again(simulator, feed_parts):
    clock, client = feed_parts
    feed = StatusFeed(client.status, ttl=60.0, clock=clock)
    feed.snapshot()
    feed.invalidate()
    feed.snapshot()
    feed.snapshot(max_age=0)
    feed.snapshot()
    assert status_calls(simulator) == 3


def test_with_the_breaker_open_the_feed_sends_nothing(simulator):
    clock = ManualClock(1000.0)
    breaker = CircuitBreaker(failure_threshold=1, reset_after=30.0, clock=clock)
    client = simulator.client(read_retries=0, breaker=breaker)
    feed = StatusFeed(client.status, ttl=0.0, clock=clock)
    simulator.set_fault("error500", plain=True)
    simulator.set_fault("slow", seconds=5)
    client.read_timeout = 0.2
    assert feed.snapshot().error_kind == "timeout"  # a timeout opens the breaker
    simulator.clear_faults()
    simulator.reset_counts()

    for _ in range(10):
        snapshot = feed.snapshot()
        # Open because of a timeout: still "timeout" (the banner says slow, not gone).
        assert (snapshot.reachable, snapshot.error_kind) == (False, "timeout")
    assert status_calls(simulator) == 0
    clock.advance(30.0)  # half-open: one probe, which succeeds
    assert feed.snapshot().reachable
    assert status_calls(simulator) == 1
    client.close()


# ------------------------------------------------------------------- through the pages
def test_many_pages_across_many_bots_in_one_period_make_one_call(app, login, make_bot,
                                                                  simulator, reconfigure):
    gateway = reconfigure(STATUS_CACHE_SECONDS=60)
    for i in range(6):
        name = simulator.seed_bot(f"bot-{i}", controllers=["pmm_btc_1"], timestamped=True)
        make_bot(id=f"bot-{i}", name=f"bot-{i}").instance_name = name
    db.session.commit()
    admin = login.as_admin()
    for _ in range(3):
        assert admin.get("/bots").status_code == 200
        assert admin.get("/bots", headers={"HX-Request": "true"}).status_code == 200
        for i in range(6):
            assert admin.get(f"/bots/bot-{i}").status_code == 200
            assert admin.get(f"/bots/bot-{i}", headers={"HX-Request": "true"}).status_code == 200
        assert admin.get("/api/bots").status_code == 200
        assert admin.get("/api/bots/bot-0").status_code == 200
    client = login.as_client_a()
    assert client.get("/bots").status_code == 200
    assert status_calls(simulator) == 1
    assert gateway.feed.snapshot() is gateway.feed.snapshot()


def test_many_viewers_in_threads_against_a_real_session_pool(committed_app, accounts,
                                                              simulator):
    """Twenty logged-in viewers, each polling several pages, in parallel: one call."""
    from dashboard.registry import create_bot
    from tests.conftest import make_bot_data

    committed_app.config["STATUS_CACHE_SECONDS"] = 60
    committed_app.extensions["hummingbot"] = Hummingbot(committed_app)
    with committed_app.app_context():
        for i in range(4):
            name = simulator.seed_bot(f"bot-{i}", controllers=["pmm_btc_1"], timestamped=True)
            create_bot(make_bot_data(id=f"bot-{i}", name=f"bot-{i}",
                                     account_identifier="client_sharp"), "admin")
            db.session.get(Bot, f"bot-{i}").instance_name = name
            db.session.commit()

    def viewer(i):
        login = Login(committed_app.test_client(), accounts)
        browser = login.as_admin() if i % 2 else login.as_client_a()
        codes = [browser.get("/bots", headers={"HX-Request": "true"}).status_code]
        codes += [browser.get(f"/bots/bot-{j}", headers={"HX-Request": "true"}).status_code
                  for j in range(4)]
        codes.append(browser.get("/api/bots").status_code)
        return codes

    results = run_together(20, viewer)
    assert all(code == 200 for codes in results for code in codes)
    assert status_calls(simulator) == 1


def test_pages_do_not_call_hummingbot_while_the_breaker_is_open(app, login, make_bot,
                                                                 simulator, reconfigure):
    gateway = reconfigure(HUMMINGBOT_BREAKER_THRESHOLD=1, HUMMINGBOT_BREAKER_RESET_SECONDS=600)
    make_bot()
    admin = login.as_admin()
    simulator.set_fault("unreachable")
    assert "Hummingbot is unreachable" in admin.get("/bots").get_data(as_text=True)
    assert gateway.breaker.state == "open"

    simulator.clear_faults()  # it is back, but the breaker does not know yet
    simulator.reset_counts()
    for _ in range(5):
        page = admin.get("/bots", headers={"HX-Request": "true"})
        assert page.status_code == 200
        assert "Hummingbot is unreachable" in page.get_data(as_text=True)
        assert admin.get("/bots/pmm-btc").status_code == 200
        assert admin.get("/api/bots").get_json()["hummingbot"] == {
            "reachable": False, "error": "unreachable"}
    assert status_calls(simulator) == 0


def test_a_fresh_snapshot_records_last_seen_without_touching_the_definition(
        app, make_bot, simulator):
    name = simulator.seed_bot("pmm-btc", controllers=["pmm_btc_1"], timestamped=True)
    legacy = simulator.seed_bot("old-bot", script="simple_pmm.py", legacy=True)
    bot = make_bot()
    bot.instance_name = name
    old = make_bot(id="old-bot", name="old-bot")
    db.session.commit()
    long_ago = datetime(2020, 1, 1)
    # now() is constant inside the test's one transaction: start from a known old time.
    db.session.execute(update(Bot).values(updated_at=long_ago))
    db.session.expire_all()
    before = {b.id: (b.version, b.updated_at) for b in (bot, old)}

    snapshot = app.extensions["hummingbot"].feed.snapshot()
    assert set(snapshot.bots) == {name, legacy}
    db.session.expire_all()
    assert (bot.last_seen_status, old.last_seen_status) == ("running", "stopped_active")
    assert bot.last_seen_at is not None and old.last_seen_at is not None
    # Seeing a status is not an edit: no version bump (no false edit conflicts), and the
    # "last update" of the definition stays when it was last changed.
    assert {b.id: (b.version, b.updated_at) for b in (bot, old)} == before
    assert bot.updated_at == long_ago

    record_last_seen(snapshot)  # unchanged and recent: not rewritten
    db.session.expire_all()
    assert {b.id: (b.version, b.updated_at) for b in (bot, old)} == before


@pytest.mark.parametrize("path", ["/bots", "/api/bots"])
def test_a_fresh_status_does_not_reload_the_rows_one_by_one(app, login, make_bot, simulator,
                                                           path):
    """Recording last-seen statuses commits; rows loaded before it would be expired and
    re-read one query each. Statements per request must not grow with the live bots."""
    from sqlalchemy import event

    counted: list = []

    def count(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    admin = login.as_admin()

    def statements_with_live_bots(first: int, last: int) -> int:
        for i in range(first, last):
            name = simulator.seed_bot(f"live-{i}", controllers=["pmm_btc_1"], timestamped=True)
            make_bot(id=f"live-{i}", name=f"live-{i}").instance_name = name
        # Both requests record a sample period (at most one a minute otherwise), so the
        # counts compare like with like.
        db.session.execute(sa.text("UPDATE performance_clock SET sampled_at = NULL"))
        db.session.commit()
        counted.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            # A poll of the page; the JSON API refuses htmx requests, so it is asked plainly.
            headers = {} if path.startswith("/api/") else {"HX-Request": "true"}
            assert admin.get(path, headers=headers).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(counted)

    # Warm up: a process's first request does start-up work, and the first bot creates the
    # `default` server row, which the fleet then reads once.
    statements_with_live_bots(0, 1)
    few = statements_with_live_bots(1, 3)
    many = statements_with_live_bots(3, 25)
    assert many == few, counted


def test_a_slow_refresh_serves_the_previous_snapshot_to_everyone_else():
    """Regression: every request thread waited for one slow status fetch (up to ~16 s)."""
    import time as real_time

    from dashboard.status import StatusFeed

    release, calls = threading.Event(), []

    def fetch():
        calls.append(1)
        if len(calls) == 2:
            release.wait(10)  # the second fetch hangs like a slow Hummingbot
        return {}

    now = [0.0]
    feed = StatusFeed(fetch, ttl=2.0, clock=lambda: now[0])
    first = feed.snapshot()
    now[0] = 5.0  # the snapshot is stale
    refresher = threading.Thread(target=feed.snapshot)
    refresher.start()
    while len(calls) < 2:
        real_time.sleep(0.005)
    assert feed.snapshot() is first  # answered at once, while the refresh is in flight
    release.set()
    refresher.join(10)
    assert feed.snapshot() is not first
    assert len(calls) == 2


def test_with_default_settings_status_returns_by_the_first_poll_after_an_outage(app, simulator):
    """After a Hummingbot restart the open breaker must not hide it for longer than one poll
    period: while open it lets a call probe often enough (half-open)."""
    config = app.config
    clock = ManualClock(1000.0)
    breaker = CircuitBreaker(failure_threshold=config["HUMMINGBOT_BREAKER_THRESHOLD"],
                             reset_after=config["HUMMINGBOT_BREAKER_RESET_SECONDS"], clock=clock)
    client = simulator.client(read_retries=0, breaker=breaker)
    feed = StatusFeed(client.status, ttl=config["STATUS_CACHE_SECONDS"], clock=clock)
    poll = config["STATUS_POLL_SECONDS"]
    simulator.seed_bot("pmm-btc-1", controllers=["pmm_btc_1"])
    simulator.set_fault("unreachable")
    for _ in range(config["HUMMINGBOT_BREAKER_THRESHOLD"] + 3):  # a page polling meanwhile
        clock.advance(poll)
        assert feed.snapshot().error_kind == "unreachable"
    assert breaker.state != "closed"

    simulator.clear_faults()  # back, right after the last poll's probe failed
    clock.advance(poll)
    snapshot = feed.snapshot()
    assert snapshot.reachable and set(snapshot.bots) == {"pmm-btc-1"}
    client.close()
