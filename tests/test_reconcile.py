"""Reconcile against the simulator: idempotent, never deletes, does nothing while Hummingbot
cannot be asked, lists orphans, marks Missing once, one process at a time, and its CLI."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select

from dashboard.lifecycle import RECONCILE_LOCK_KEY, reconcile, request_tag
from dashboard.models import Bot, BotEvent, db
from dashboard.registry import utcnow


@pytest.fixture
def sim(simulator):
    simulator.state.add_account("client_sharp")
    simulator.advance(0)  # a clock that only moves when told to
    return simulator


@pytest.fixture
def setup_world(app, make_bot, sim, monkeypatch):
    """One bot in every situation reconcile handles, plus an orphan."""
    monkeypatch.setitem(app.config, "DEPLOY_GRACE_SECONDS", 60)
    return lambda: _world(make_bot, sim)


def _world(make_bot, sim):
    rid = "abc123" + "0" * 26
    found = make_bot(id="found", name="found")
    found.status, found.deploy_request_id, found.deploy_requested_at = "deploying", rid, utcnow()
    sim.seed_bot(f"found-{request_tag(rid)}", timestamped=True)

    lost = make_bot(id="lost", name="lost")
    lost.status, lost.deploy_request_id = "deploying", "def456" + "0" * 26
    lost.deploy_requested_at = utcnow() - timedelta(seconds=61)

    young = make_bot(id="young", name="young")
    young.status, young.deploy_request_id = "deploying", "987654" + "0" * 26
    young.deploy_requested_at = utcnow()

    gone = make_bot(id="gone", name="gone")
    gone.status, gone.instance_name = "running", "gone-20260101-000000"

    alive = make_bot(id="alive", name="alive")
    alive.status = "running"
    alive.instance_name = sim.seed_bot("alive", controllers=["pmm_btc_1"], timestamped=True)

    legacy = make_bot(id="legacy", name="legacy")
    legacy.status = "running"
    sim.seed_bot("legacy", script="simple_pmm.py", legacy=True)

    make_bot(id="idle-def", name="idle-def")
    sim.seed_bot("stranger", controllers=["grid_eth_1"])
    db.session.commit()


def state() -> dict:
    db.session.expire_all()
    return {b.id: (b.status, b.instance_name, b.version, b.last_error)
            for b in db.session.scalars(select(Bot))}


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(BotEvent))


def test_reconcile_settles_each_case(setup_world, sim):
    setup_world()
    report = reconcile(actor="test")
    assert report.ran
    assert report.settled == ["found"]
    assert report.failed == ["lost"]
    assert report.missing == ["gone"]
    assert [o.name for o in report.orphans] == ["stranger"]
    after = state()
    assert after["found"][:2] == ("running", next(n for n in sim.state.snapshot()["bots"]
                                                   if n.startswith("found-abc123-")))
    assert after["lost"][0] == "deploy_failed" and "did not appear" in after["lost"][3]
    assert after["young"][0] == "deploying"  # within the grace period: left alone
    assert after["gone"][0] == "running"  # Missing is a badge, not a status change
    assert db.session.get(Bot, "gone").last_seen_status == "absent"
    assert after["alive"][0] == after["legacy"][0] == "running"
    assert after["idle-def"][0] == "stopped"
    actors = {e.actor for e in db.session.scalars(
        select(BotEvent).where(BotEvent.action.in_(("deploy_settled", "deploy_failed",
                                                    "went_missing"))))}
    assert actors == {"test"}


def test_reconcile_is_idempotent_and_never_deletes(setup_world, sim):
    setup_world()
    remote_before = set(sim.state.snapshot()["bots"])
    rows_before = set(state())
    reconcile()
    once, events_once = state(), event_count()
    second = reconcile()
    assert state() == once  # no row rewritten (versions unchanged)
    assert event_count() == events_once  # no duplicate events
    assert (second.settled, second.failed) == ([], [])
    assert second.missing == ["gone"]  # still reported, not re-recorded
    assert set(state()) == rows_before
    assert set(sim.state.snapshot()["bots"]) == remote_before
    assert sim.request_count("POST", "/bot-orchestration/stop-and-archive-bot/stranger") == 0


def test_missing_is_recorded_once_and_again_after_it_came_back(app, make_bot, sim):
    bot = make_bot()
    bot.status, bot.instance_name = "running", "pmm-btc-20260101-000000"
    db.session.commit()
    for _ in range(3):
        reconcile()
    went = lambda: db.session.scalar(  # noqa: E731
        select(func.count()).where(BotEvent.action == "went_missing"))
    assert went() == 1

    sim.seed_bot("pmm-btc-20260101-000000", controllers=["pmm_btc_1"])
    reconcile()  # it is back: the last-seen status says so
    db.session.expire_all()
    assert db.session.get(Bot, "pmm-btc").last_seen_status == "running"
    sim.state.exit_bot("pmm-btc-20260101-000000")
    reconcile()
    reconcile()
    assert went() == 2


@pytest.mark.parametrize("fault", ["unreachable", "error500", "unauthorized", "wrong_shape"])
def test_reconcile_does_nothing_while_hummingbot_cannot_be_asked(setup_world, sim, fault):
    setup_world()
    before, events_before = state(), event_count()
    sim.set_fault(fault)
    report = reconcile()
    assert not report.ran and "Hummingbot unreachable" in report.reason
    assert report.summary().startswith("Reconcile skipped: Hummingbot unreachable")
    assert state() == before and event_count() == events_before


def test_reconcile_skips_while_another_process_holds_the_lock(setup_world, sim):
    setup_world()
    before = state()
    with db.engine.connect() as other:
        assert other.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": RECONCILE_LOCK_KEY})
        sim.reset_counts()
        report = reconcile()
        other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RECONCILE_LOCK_KEY})
    assert (report.ran, report.reason) == (False, "another process is reconciling")
    assert sim.request_count("GET", "/bot-orchestration/status") == 0  # not even asked
    assert state() == before
    assert reconcile().ran  # free again


def test_the_lock_is_held_until_reconcile_has_written_everything(committed_app, sim):
    """Checked from another connection at the moment reconcile locks the rows it changes."""
    from dashboard.registry import create_bot
    from tests.conftest import make_bot_data

    sim.seed_bot("someone-else", controllers=["pmm_btc_1"])  # a snapshot with live bots
    seen: list[bool] = []
    with committed_app.app_context():
        bot = create_bot(make_bot_data(), "admin")
        bot.status, bot.instance_name = "running", "pmm-btc-20260101-000000"
        db.session.commit()
        checking = threading.local()

        def lock_is_taken(conn, cursor, statement, params, context, executemany):
            # Reconcile's row lock ends its statement (recording the snapshot afterwards has a
            # SKIP LOCKED of its own, on the alerts' clock, mid-statement).
            if not statement.rstrip().endswith("FOR UPDATE SKIP LOCKED") \
                    or getattr(checking, "on", False):
                return
            checking.on = True
            try:
                with db.engine.connect() as other:
                    free = other.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": RECONCILE_LOCK_KEY})
                    if free:
                        other.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                      {"k": RECONCILE_LOCK_KEY})
                    seen.append(not free)
            finally:
                checking.on = False

        event.listen(db.engine, "before_cursor_execute", lock_is_taken)
        try:
            report = reconcile()
        finally:
            event.remove(db.engine, "before_cursor_execute", lock_is_taken)
    assert report.missing == ["pmm-btc"]
    assert seen == [True]


# ----------------------------------------------------------------------------- CLI
def test_cli_reconcile_prints_what_it_did(app, setup_world):
    setup_world()
    result = app.test_cli_runner().invoke(args=["bots", "reconcile"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Reconciled: 1 settled, 1 deploys failed, 1 missing, 1 orphans."
    assert set(lines[1:]) == {"settled  found", "failed   lost", "missing  gone",
                              "orphan   stranger (running)"}
    assert db.session.get(Bot, "found").status == "running"


def test_cli_reconcile_fails_while_unreachable(app, setup_world, sim):
    setup_world()
    sim.set_fault("unreachable")
    result = app.test_cli_runner().invoke(args=["bots", "reconcile"])
    assert result.exit_code == 1
    assert result.output.startswith("Reconcile skipped: Hummingbot unreachable")


# ------------------------------------------------------------- a real crash, a real server
@pytest.mark.slow
def test_a_server_killed_mid_deploy_is_settled_by_the_next_servers_periodic_reconcile(
        committed_app, migrated, server_env, sim):
    """Intent committed, the deploy sent, then SIGKILL before the answer: the row stays
    deploying; the restarted server's own periodic reconcile finds the bot Hummingbot made."""
    import time

    import requests

    from dashboard.registry import create_bot
    from tests.conftest import TEST_PASSWORD, make_bot_data
    from tests.servers import Browser, running_server

    with committed_app.app_context():
        create_bot(make_bot_data(), "admin")
    sim.set_fault("slow", seconds=60, path="/bot-orchestration/deploy-v2-script")

    def wait_for(condition, seconds=20.0):
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "condition not met"
            time.sleep(0.05)

    def row():
        with committed_app.app_context():
            return db.session.get(Bot, "pmm-btc")

    with running_server(migrated, **{**server_env, "RECONCILE_INTERVAL_SECONDS": "0"}) as first:
        browser = Browser(first.url).login("admin", TEST_PASSWORD)
        posted = threading.Thread(target=lambda: _ignore(requests.RequestException, lambda:
                                  browser.submit("/bots/pmm-btc/deploy", {
                                      "mode": "script", "script": "simple_pmm.py",
                                      "script_config": "simple_pmm_1.yml"})))
        posted.start()
        wait_for(lambda: sim.request_count("POST", "/bot-orchestration/deploy-v2-script") == 1)
        first.kill()
        posted.join(10)
    assert row().status == "deploying"
    sim.clear_faults()  # Hummingbot finishes creating the bot nobody is waiting for
    wait_for(lambda: len(sim.state.snapshot()["bots"]) == 1)
    [live_name] = sim.state.snapshot()["bots"]

    with running_server(migrated, **{**server_env, "RECONCILE_INTERVAL_SECONDS": "1"}):
        wait_for(lambda: row().status == "running")
    bot = row()
    assert (bot.instance_name, bot.last_error) == (live_name, None)
    assert sim.request_count("POST", "/bot-orchestration/deploy-v2-script") == 1
    with committed_app.app_context():
        settled = db.session.scalars(select(BotEvent).where(
            BotEvent.action == "deploy_settled")).all()
        assert [e.actor for e in settled] == ["reconcile"]


def _ignore(errors, call):
    with contextlib.suppress(errors):
        call()


def test_a_deploy_in_flight_is_found_even_if_the_bot_was_renamed_meanwhile(app, make_bot,
                                                                          sim):
    """The edit form is open while a deploy's outcome is unknown; the request tag, not the
    current name, identifies what that deploy created."""
    bot = make_bot()
    bot.status, bot.deploy_request_id = "deploying", "abc123" + "0" * 26
    bot.deploy_requested_at = utcnow()
    db.session.commit()
    live_name = sim.seed_bot("pmm-btc-abc123", timestamped=True)
    bot.name = "pmm-btc-renamed"
    db.session.commit()
    report = reconcile()
    assert report.settled == ["pmm-btc"]
    assert report.orphans == []
    db.session.expire_all()
    assert db.session.get(Bot, "pmm-btc").instance_name == live_name


def test_a_row_changed_after_the_status_was_read_is_left_for_the_next_pass(app, make_bot,
                                                                          sim):
    """A deploy that finishes between reconcile's status call and its read of the rows is
    not in that status yet: it must not be recorded as gone missing."""
    bot = make_bot()
    bot.status, bot.instance_name = "running", "pmm-btc-abc123-20260101-000000"
    db.session.commit()
    # As if written a moment after the snapshot (now() is fixed inside the test transaction).
    db.session.execute(sa.update(Bot).values(updated_at=utcnow() + timedelta(seconds=5)))
    report = reconcile()
    assert report.missing == []
    assert db.session.scalar(select(func.count()).where(
        BotEvent.action == "went_missing")) == 0


# ------------------------------------------- the real Hummingbot API's timing (issue 10, item 6)
def test_an_archive_without_an_archived_bot_run_is_not_confirmed_and_a_comeback_is_flagged(
        app, login, make_bot, sim):
    """An MQTT-only bot (no container, no bot-run): Hummingbot answers stop-and-archive with
    success, hides the bot, gives up on the container and lists the bot again."""
    from dashboard.lifecycle import stop_and_archive

    sim.configure(stopping_seconds=15, container_retry_seconds=20)
    name = sim.seed_bot("elsewhere", controllers=["pmm_btc_1"], source="mqtt")
    bot = make_bot(id="elsewhere", name="elsewhere", strategy="v2_with_controllers")
    bot.status, bot.instance_name = "running", name
    db.session.commit()

    stop_and_archive("elsewhere", "admin", cancel_orders=True)
    reconcile()  # gone from /status, and no bot-run: that proves nothing
    assert state()["elsewhere"][0] == "stopping"
    assert "stop_settled" not in [e.action for e in db.session.scalars(select(BotEvent))]

    sim.advance(35)  # Hummingbot gave up on the container; the bot is listed again
    reconcile()
    after = db.session.get(Bot, "elsewhere")
    assert after.status == "stopped"
    assert after.last_error.startswith("The archive was not confirmed")
    event = db.session.scalars(select(BotEvent).where(BotEvent.bot_id == "elsewhere")
                               .order_by(BotEvent.id.desc())).first()
    assert (event.action, event.details["archive_confirmed"]) == ("archive_failed", False)

    admin = login.as_admin()
    desk = admin.get("/recovery").get_data(as_text=True)
    back = desk.split('id="back"')[1].split("</section>")[0]
    assert 'id="back-elsewhere"' in back and name in back
    assert "1 needs attention" in desk
    row = admin.get("/bots").get_data(as_text=True).split('id="bot-elsewhere"')[1]
    assert "Still running after its archive" in row.split("</tr>")[0]


def test_an_archive_is_confirmed_by_an_archived_bot_run_once_the_bot_is_no_longer_heard(
        app, make_bot, sim):
    """A Docker bot: its bot-run says ARCHIVED after 15 s; its last MQTT messages keep it in
    /status 30 s more. Settled, confirmed, once it is gone."""
    from dashboard.lifecycle import stop_and_archive

    sim.configure(stopping_seconds=15, mqtt_linger_seconds=30)
    name = sim.seed_bot("pmm", controllers=["pmm_btc_1"], timestamped=True)
    bot = make_bot(id="pmm", name="pmm", strategy="v2_with_controllers")
    bot.status, bot.instance_name = "running", name
    db.session.commit()
    stop_and_archive("pmm", "admin", cancel_orders=True)
    sim.advance(15)
    reconcile()  # archived, but still heard of: not over yet
    assert state()["pmm"][0] == "stopping"
    sim.advance(30)
    reconcile()
    after = db.session.get(Bot, "pmm")
    assert (after.status, after.last_error) == ("stopped", None)
    event = db.session.scalars(select(BotEvent).where(BotEvent.bot_id == "pmm")
                               .order_by(BotEvent.id.desc())).first()
    assert (event.action, event.details["archive_confirmed"]) == ("stop_settled", True)
