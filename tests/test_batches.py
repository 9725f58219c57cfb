"""Bulk actions: selection, preview, confirmation, execution with one Hummingbot call per item,
the kill switch, and admins only. Execution tests commit for real (workers are threads with
connections of their own) against the simulator."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import sqlalchemy as sa
from flask import Flask

from dashboard import lifecycle
from dashboard.batches import executor
from dashboard.models import Batch, BatchItem, Bot, BotEvent, db
from dashboard.status import live_word
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, ServerProcess, running_server


def _bot(bot_id: str, account: str = "client_sharp", status: str = "stopped",
         instance: str | None = None, **extra) -> Bot:
    """A definition as a deploy would have left it (the bulk of 200 goes in one INSERT)."""
    data = make_bot_data(id=bot_id, name=bot_id, account_identifier=account)
    data["config"] = {"order_amount": 0.01}
    return Bot(**data, status=status, instance_name=instance,
               deploy_settings={"mode": "script", "image": "hummingbot/hummingbot:latest"},
               **extra)


def _world(simulator, spec: dict[str, tuple[str, str, bool]]) -> None:
    """{bot_id: (account, status, live in Hummingbot)}; live bots are seeded and trading."""
    for bot_id, (account, status, live) in spec.items():
        db.session.add(_bot(bot_id, account, status, bot_id if live else None))
        if live:
            simulator.seed_bot(bot_id, controllers=["pmm_btc_1"], trading=status == "running")
    db.session.commit()


def _items(batch_id: str) -> dict[str, BatchItem]:
    return {item.bot_id: item for item in db.session.scalars(
        sa.select(BatchItem).where(BatchItem.batch_id == batch_id))}


def _batch_events(bot_id: str, batch_id: str) -> list[BotEvent]:
    return [e for e in db.session.scalars(sa.select(BotEvent).where(BotEvent.bot_id == bot_id)
                                          .order_by(BotEvent.id))
            if e.details.get("batch_id") == batch_id]


def _confirm(client, **form) -> str:
    response = client.post("/batches", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


# ------------------------------------------------------------------------------ preview
def test_preview_says_per_bot_what_happens_and_why_and_sends_nothing(login, simulator, app):
    _world(simulator, {
        "runs": ("client_sharp", "running", True),
        "idle": ("client_sharp", "stopped", True),
        "fresh": ("client_sharp", "stopped", False),
        "busy": ("client_sharp", "deploying", True),
    })
    db.session.add(_bot("gone", archived_at=sa.func.now(), status="archived"))
    db.session.commit()
    simulator.reset_counts()
    before = db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent))
    ids = ["runs", "idle", "fresh", "busy", "gone"]
    page = login.as_admin().get("/batches/new", query_string={"action": "stop", "ids": ids})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<strong>1</strong> will be sent" in text
    assert "<strong>4</strong> will be skipped" in text
    for reason in ("already stopped", "not deployed yet", "deploying: wait until it settles",
                   "archived: restore it first"):
        assert f"Skipped: {reason}" in text
    assert 'name="cancel_orders" value="0"' in text  # the order question, asked once
    assert "Confirm: stop 1 bot" in text
    writes = {k: v for k, v in simulator.state.request_counts().items() if k.startswith("POST")}
    assert writes == {} and simulator.bot_calls() == {}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent)) == before


def test_all_matching_selects_across_pages_by_the_filter(login, simulator, app):
    app.config["PAGE_SIZE"] = 2
    try:
        _world(simulator, {f"s{i}": ("client_sharp", "running", True) for i in range(5)}
               | {"o1": ("client_other", "running", True)})
        client = login.as_admin()
        listing = client.get("/bots?account=client_sharp&page=2").get_data(as_text=True)
        assert "All 5 matching this filter" in listing
        assert '<input type="hidden" name="account" value="client_sharp">' in listing
        text = client.get("/batches/new", query_string={
            "action": "stop", "all": "1", "account": "client_sharp"}).get_data(as_text=True)
        assert "Confirm: stop 5 bots" in text
        assert ">s0</a>" in text and ">s4</a>" in text and ">o1</a>" not in text
    finally:
        app.config["PAGE_SIZE"] = 50


def test_the_preview_costs_the_same_statements_for_5_or_25_bots(login, simulator, app):
    """Regression: the status was fetched after the bots were loaded; its commit expired them
    and every row was read again, one statement per bot."""
    counted = []

    def count(*args):
        counted.append(1)

    client = login.as_admin()
    # The first view of a live fleet takes the period's performance sample (once a minute,
    # fleet-wide): taken here, so that the two counted previews differ only in their bots.
    _world(simulator, {"warm": ("client_other", "running", True)})
    client.get("/bots")
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = []
        for first, last in ((0, 5), (5, 25)):
            _world(simulator, {f"p{i}": ("client_sharp", "running", True)
                               for i in range(first, last)})
            counted.clear()
            page = client.get("/batches/new?action=stop&all=1&account=client_sharp")
            assert f"Confirm: stop {last} bots" in page.get_data(as_text=True)
            found.append(len(counted))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # A handful whatever the selection: the login, the servers' generation (fleet.py), the
    # alerts bell's COUNT, the snapshot's one UPDATE, the sampler's lock and clock check, the
    # bots, and the test transaction's savepoints.
    assert found[0] == found[1] and found[1] <= 14, found


def test_unusable_selections_are_clear_400s(login, make_bot):
    make_bot()
    client = login.as_admin()
    cases = {
        "": "choose Deploy",
        "action=stop": "no bots selected",
        "action=launch&ids=pmm-btc": "choose Deploy",
        "action=stop&ids=../etc": "not a list of bot ids",
        "action=start&all=1&account=client_sharp&kill=1": "stops one account",
    }
    for query, message in cases.items():
        response = client.get(f"/batches/new?{query}")
        assert response.status_code == 400, query
        assert message in response.get_data(as_text=True), query
        assert client.post("/batches", data=dict(
            pair.split("=") for pair in query.split("&") if pair)).status_code == 400


def test_confirming_when_nothing_fits_is_422_and_writes_nothing(login, make_bot):
    make_bot()  # stopped, never deployed
    response = login.as_admin().post("/batches", data={"action": "start", "ids": "pmm-btc"})
    assert response.status_code == 422
    assert "none of the selected bots" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_clients_cannot_start_see_or_preview_batches(login, make_bot, app):
    make_bot()
    batch = Batch(id="b" * 32, action="stop", created_by="admin", selection={"ids": []})
    db.session.add(batch)
    db.session.flush()
    for client in (login.as_client_a(), login.as_client_b()):
        for url in ("/batches", f"/batches/{batch.id}",
                    "/batches/new?action=stop&ids=pmm-btc"):
            assert client.get(url).status_code == 404, url
        assert client.post("/batches", data={"action": "stop", "ids": "pmm-btc"}) \
            .status_code == 404
        assert "/batches" not in client.get("/bots").get_data(as_text=True)
    assert "/batches" not in login.as_client_a().get("/accounts/client_sharp").get_data(
        as_text=True)  # no kill switch on a client's own account page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1


# ---------------------------------------------------------------------------- execution
def test_a_batch_of_200_across_two_accounts_sends_one_call_per_executed_item(
        committed_app: Flask, simulator):
    """160 running bots are stopped, 40 already stopped are skipped; each stopped bot got
    exactly one stop call, the skipped none; every item is in its bot's history."""
    spec = {f"bulk-{i:03d}": ("client_sharp" if i % 2 else "client_other",
                              "running" if i % 5 else "stopped", True) for i in range(200)}
    with committed_app.app_context():
        _world(simulator, spec)
    simulator.reset_counts()
    client = _admin_client(committed_app)
    batch_id = _confirm(client, action="stop", all="1", cancel_orders="0")
    before = client.get(f"/batches/{batch_id}")
    assert 'hx-trigger="every 2s"' in before.get_data(as_text=True)  # it polls while pending
    assert client.get(f"/batches/{batch_id}", headers={"HX-Request": "true"}).status_code == 200
    executor.run_pending(committed_app, workers=4)

    with committed_app.app_context():
        items = _items(batch_id)
        assert len(items) == 200
        states = {bot_id: item.state for bot_id, item in items.items()}
        running = [b for b, (_a, status, _l) in spec.items() if status == "running"]
        stopped = [b for b, (_a, status, _l) in spec.items() if status == "stopped"]
        assert {states[b] for b in running} == {"done"}
        assert {states[b] for b in stopped} == {"skipped"}
        assert {items[b].note for b in stopped} == {"already stopped"}
        calls = simulator.bot_calls()
        assert calls == {("stop", b): 1 for b in running}
        assert simulator.request_count("POST", "/bot-orchestration/stop-bot") == 160
        batch = db.session.get(Batch, batch_id)
        assert batch.finished_at is not None and batch.cancel_orders is False
        for bot_id in spec:
            events = _batch_events(bot_id, batch_id)
            expected = "stopped" if bot_id in running else "batch_skipped"
            assert [e.action for e in events] == [expected], bot_id
            if bot_id in running:
                assert events[0].details["cancel_orders"] is False
                assert db.session.get(Bot, bot_id).status == "stopped"
        page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
        assert "160 done" in page and "40 skipped" in page and "Finished" in page
        assert "hx-trigger" not in page  # a finished batch's page does not poll
        # A page opened before the end polls until its first fragment says Finished: 286,
        # htmx's "stop polling", with that last fragment.
        last = client.get(f"/batches/{batch_id}", headers={"HX-Request": "true"})
        assert last.status_code == 286 and "Finished" in last.get_data(as_text=True)
        listing = client.get("/batches").get_data(as_text=True)
        assert batch_id[:8] in listing and "all matching every bot" in listing


def _admin_client(app: Flask):
    from dashboard.models import User
    from tests.conftest import Login

    client = app.test_client()
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "admin"))
        db.session.expunge(user)
    Login(client, None).as_user(user)
    return client


def test_the_kill_switch_stops_every_running_bot_of_one_account_and_no_other(
        committed_app: Flask, simulator):
    spec = {f"sharp-{i}": ("client_sharp", "running", True) for i in range(6)} | \
        {f"other-{i}": ("client_other", "running", True) for i in range(4)} | \
        {"sharp-idle": ("client_sharp", "stopped", True)}
    with committed_app.app_context():
        _world(simulator, spec)
    simulator.reset_counts()
    client = _admin_client(committed_app)
    listing = client.get("/bots?account=client_sharp").get_data(as_text=True)
    assert "Kill switch: stop every running bot of client_sharp" in listing
    account_page = client.get("/accounts/client_sharp").get_data(as_text=True)
    assert "/batches/new?action=stop&amp;all=1&amp;account=client_sharp&amp;kill=1" in account_page
    preview = client.get("/batches/new?action=stop&all=1&account=client_sharp&kill=1")
    assert "Confirm: stop 6 bots" in preview.get_data(as_text=True)
    batch_id = _confirm(client, action="stop", all="1", account="client_sharp", kill="1")
    executor.run_pending(committed_app, workers=3)
    with committed_app.app_context():
        for bot_id, (account, _status, _live) in spec.items():
            bot = db.session.get(Bot, bot_id)
            if account == "client_other":
                assert bot.status == "running" and not _batch_events(bot_id, batch_id)
            else:
                assert bot.status == "stopped"
        assert db.session.get(Batch, batch_id).selection == {
            "filter": {"account": "client_sharp"}, "kill_switch": True}
    calls = simulator.bot_calls()
    assert set(calls) == {("stop", f"sharp-{i}") for i in range(6)}
    assert set(calls.values()) == {1}
    live = simulator.client().status()
    assert {name: live_word(bot) for name, bot in live.items()} == {
        **{f"sharp-{i}": "trading_stopped" for i in range(6)}, "sharp-idle": "trading_stopped",
        **{f"other-{i}": "running" for i in range(4)}}


def test_the_kill_switch_stops_a_bot_hummingbot_runs_whatever_its_definition_says(
        committed_app: Flask, simulator):
    """Started in Hummingbot behind the dashboard's back: the definition says stopped, the
    badge says Running. An emergency stop must not skip it as "already stopped"."""
    with committed_app.app_context():
        _world(simulator, {"behind": ("client_sharp", "stopped", True),
                           "back": ("client_sharp", "stopped", True),
                           "quiet": ("client_sharp", "stopped", True)})
    for name in ("behind", "back"):  # trading again; "quiet" stays stopped
        simulator.client().start_bot(name)
    client = _admin_client(committed_app)
    preview = client.get("/batches/new?action=stop&all=1&account=client_sharp&kill=1")
    text = preview.get_data(as_text=True)
    assert "Confirm: stop 2 bots" in text and "1 \N{MULTIPLICATION SIGN} already stopped" in text
    batch_id = _confirm(client, action="stop", all="1", account="client_sharp", kill="1")
    simulator.client().stop_bot("back")  # stopped in Hummingbot before its item runs
    simulator.reset_counts()
    executor.run_pending(committed_app, workers=1)
    with committed_app.app_context():
        items = _items(batch_id)
        assert {b: item.state for b, item in items.items()} == {
            "behind": "done", "back": "skipped", "quiet": "skipped"}
        assert items["back"].note == "already stopped"
    assert simulator.bot_calls() == {("stop", "behind"): 1}
    assert live_word(simulator.client().status()["behind"]) == "trading_stopped"


def test_start_again_reaches_a_bot_hummingbot_stopped_whatever_its_definition_says(
        committed_app: Flask, simulator):
    """Stopped in Hummingbot (by hand there, or by its own drawdown limit): the definition
    says running, the badge Stopped (container up). "Start them again" must reach it; a bot
    trading is skipped as already running, and so is one whose Start is still awaited."""
    with committed_app.app_context():
        _world(simulator, {"halted": ("client_sharp", "running", True),
                           "fine": ("client_sharp", "running", True),
                           "waking": ("client_sharp", "running", True)})
    for name in ("halted", "waking"):
        simulator.client().stop_bot(name)
    with committed_app.app_context():  # a Start sent from here, not reported yet
        db.session.get(Bot, "waking").start_requested_at = sa.func.now()
        db.session.commit()
    simulator.reset_counts()
    client = _admin_client(committed_app)
    ids = ["halted", "fine", "waking"]
    preview = client.get("/batches/new", query_string={"action": "start", "ids": ids})
    text = preview.get_data(as_text=True)
    assert "Confirm: start 1 bot<" in text
    assert "2 \N{MULTIPLICATION SIGN} already running" in text
    batch_id = _confirm(client, action="start", ids=ids)
    executor.run_pending(committed_app, workers=1)
    with committed_app.app_context():
        assert {b: item.state for b, item in _items(batch_id).items()} == {
            "halted": "done", "fine": "skipped", "waking": "skipped"}
    assert simulator.bot_calls() == {("start", "halted"): 1}


def test_an_item_whose_bot_changed_since_the_preview_is_skipped_not_sent(
        committed_app: Flask, simulator):
    with committed_app.app_context():
        _world(simulator, {"a": ("client_sharp", "running", True),
                           "b": ("client_sharp", "running", True)})
    client = _admin_client(committed_app)
    batch_id = _confirm(client, action="stop", ids=["a", "b"])
    with committed_app.app_context():  # someone stops b by hand before the workers get to it
        lifecycle.stop("b", "admin", cancel_orders=True)
    simulator.reset_counts()
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(batch_id)
        assert (items["a"].state, items["b"].state) == ("done", "skipped")
        assert items["b"].note == "already stopped"
    assert simulator.bot_calls() == {("stop", "a"): 1}


def test_a_refused_call_fails_its_item_and_the_batch_carries_on(committed_app, simulator):
    with committed_app.app_context():
        _world(simulator, {"ok": ("client_sharp", "stopped", True),
                           "ghost": ("client_sharp", "stopped", False)})
        # ghost has an instance name Hummingbot does not know.
        db.session.execute(sa.update(Bot).where(Bot.id == "ghost")
                           .values(instance_name="ghost-gone"))
        db.session.commit()
    client = _admin_client(committed_app)
    batch_id = _confirm(client, action="start", ids=["ghost", "ok"])
    executor.run_pending(committed_app, workers=1)
    with committed_app.app_context():
        items = _items(batch_id)
        assert items["ok"].state == "done"
        assert items["ghost"].state == "failed" and "did not accept" in items["ghost"].note
        assert [e.action for e in _batch_events("ghost", batch_id)] == ["start_failed"]
        page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
        assert "1 failed" in page and "hx-disable" in page


def test_archive_and_restore_batches_touch_only_the_definitions(committed_app, simulator):
    with committed_app.app_context():
        _world(simulator, {"x": ("client_sharp", "stopped", False),
                           "y": ("client_sharp", "running", True)})
    simulator.reset_counts()
    client = _admin_client(committed_app)
    batch_id = _confirm(client, action="archive", ids=["x", "y"])
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(batch_id)
        assert (items["x"].state, items["y"].state) == ("done", "skipped")
        assert items["y"].note == "still running: stop it first"
        assert db.session.get(Bot, "x").is_archived
    restore_id = _confirm(client, action="restore", ids=["x", "y"])
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        assert not db.session.get(Bot, "x").is_archived
        assert _items(restore_id)["y"].note == "not archived"
    assert simulator.bot_calls() == {}


def test_an_archive_batch_leaves_a_bot_hummingbot_still_runs(committed_app, simulator):
    """As archiving one bot from its page: a stopped definition whose container is still up
    in Hummingbot is not archived (it would be left behind, an orphan), in the preview and
    when the item runs; it is skipped with the reason."""
    with committed_app.app_context():
        _world(simulator, {"up": ("client_sharp", "stopped", True),
                           "gone": ("client_sharp", "stopped", False),
                           "late": ("client_sharp", "stopped", False)})
    client = _admin_client(committed_app)
    preview = client.get("/batches/new", query_string={"action": "archive",
                                                       "ids": ["up", "gone", "late"]})
    text = preview.get_data(as_text=True)
    assert "Confirm: archive 2 bots" in text
    assert "Skipped: still in Hummingbot: stop and archive it there first" in text
    batch_id = _confirm(client, action="archive", ids=["up", "gone", "late"])
    simulator.seed_bot("late", controllers=["pmm_btc_1"], trading=False)  # since the preview
    executor.run_pending(committed_app, workers=1)
    with committed_app.app_context():
        items = _items(batch_id)
        assert {b: items[b].state for b in items} == {
            "up": "skipped", "gone": "done", "late": "skipped"}
        assert items["late"].note == "still in Hummingbot: stop and archive it there first"
        assert [db.session.get(Bot, b).is_archived for b in ("up", "gone", "late")] == [
            False, True, False]
    assert simulator.bot_calls() == {}


def test_deploy_and_stop_archive_batches_send_one_call_per_bot(committed_app, simulator):
    """The two remote actions the other tests do not run: a deploy batch (each bot's saved
    settings, one deploy each; a bot never deployed is skipped), then a stop-and-archive batch
    of the same bots (one stop-and-archive each)."""
    simulator.state.add_account("client_sharp")
    simulator.configure(warmup_seconds=0, stopping_seconds=0)
    ids = [f"dep-{i}" for i in range(4)]
    with committed_app.app_context():
        for bot_id in ids:
            bot = _bot(bot_id)
            bot.deploy_settings = {"mode": "script", "image": "hummingbot/hummingbot:latest",
                                   "script": "simple_pmm.py",
                                   "script_config": "simple_pmm_btc.yml"}
            db.session.add(bot)
        never = _bot("dep-never")
        never.deploy_settings = None
        db.session.add(never)
        db.session.commit()
    simulator.reset_counts()
    client = _admin_client(committed_app)
    preview = client.get("/batches/new", query_string={"action": "deploy",
                                                       "ids": [*ids, "dep-never"]})
    assert "Confirm: deploy 4 bots" in preview.get_data(as_text=True)
    deploy_id = _confirm(client, action="deploy", ids=[*ids, "dep-never"])
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(deploy_id)
        assert {items[b].state for b in ids} == {"done"}
        assert items["dep-never"].state == "skipped"
        assert items["dep-never"].note.startswith("never deployed")
        bots = {b: db.session.get(Bot, b) for b in ids}
        assert {bot.status for bot in bots.values()} == {"running"}
        for bot_id, bot in bots.items():
            assert items[bot_id].note == f"running as {bot.instance_name}"
            assert [e.action for e in _batch_events(bot_id, deploy_id)] == [
                "deploy_requested", "deployed"]
        names = {b: bot.instance_name for b, bot in bots.items()}
    deploys = {name: n for (action, name), n in simulator.bot_calls().items()
               if action == "deploy"}
    assert len(deploys) == 4 and set(deploys.values()) == {1}
    assert all(any(sent.startswith(f"{b}-") for sent in deploys) for b in ids)

    simulator.reset_counts()
    archive_id = _confirm(client, action="stop-archive", ids=ids, cancel_orders="1")
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(archive_id)
        assert {items[b].state for b in ids} == {"done"}
        assert {items[b].note for b in ids} == {"archive started"}
        assert {db.session.get(Bot, b).status for b in ids} == {"stopping"}
    assert simulator.bot_calls() == {("stop-archive", names[b]): 1 for b in ids}


# --------------------------------------------------------------------------- kill drill
@pytest.mark.slow
def test_a_server_killed_mid_batch_resumes_and_sends_nothing_twice(
        committed_app: Flask, migrated, server_env, simulator):
    """SIGKILL the server while it works through a batch; a new process finishes the pending
    items and settles the ones that were in flight through reconcile, without re-sending."""
    spec = {f"drill-{i:02d}": ("client_sharp", "running", True) for i in range(30)}
    with committed_app.app_context():
        _world(simulator, spec)
    simulator.reset_counts()
    # Each stop takes a while (under the client's 1 s read timeout): the kill finds work open.
    simulator.set_fault("slow", seconds=0.4, path="/bot-orchestration/stop-bot")
    env = {**server_env, "BATCH_WORKERS": "2", "BATCH_POLL_SECONDS": "0.2"}
    # Named, so the test can tell when the killed server's connections are gone.
    server = ServerProcess(migrated, **env, PGAPPNAME=KILLED_APP).start()
    try:
        browser = Browser(server.url).login("admin", TEST_PASSWORD)
        response = browser.submit("/batches/new?action=stop&all=1&account=client_sharp",
                                  {"action": "stop", "all": "1", "account": "client_sharp",
                                   "cancel_orders": "1"}, action="/batches")
        assert response.status_code == 303, response.text
        batch_id = response.headers["Location"].rsplit("/", 1)[1]
        _wait_for(committed_app, batch_id, lambda states: states["done"] >= 2
                  and states["sending"] >= 1 and states["pending"] >= 1)
        server.kill()
    finally:
        server.stop()
    # A COMMIT the killed worker sent just before dying may still be applied by its backend:
    # read the states once PostgreSQL has let every one of its connections go.
    _wait_backends_gone(committed_app, KILLED_APP)
    with committed_app.app_context():
        at_kill = {bot_id: item.state for bot_id, item in _items(batch_id).items()}
    in_flight = {b for b, state in at_kill.items() if state == "sending"}
    waiting = {b for b, state in at_kill.items() if state == "pending"}
    assert in_flight and waiting, Counter(at_kill.values())  # the kill landed mid-batch

    simulator.clear_faults()
    with running_server(migrated, **env):
        _wait_for(committed_app, batch_id, lambda states: states["finished"])

    with committed_app.app_context():
        items = _items(batch_id)
        assert db.session.get(Batch, batch_id).finished_at is not None
        calls = simulator.bot_calls()
        for bot_id, item in items.items():
            sent = calls.get(("stop", bot_id), 0)
            assert sent <= 1, f"{bot_id} was sent {sent} times"
            if bot_id in in_flight:
                assert item.state == "interrupted", bot_id
                assert "nothing was sent again" in item.note
                assert "batch_interrupted" in [e.action for e in _batch_events(bot_id, batch_id)]
            else:
                assert item.state == "done" and sent == 1, bot_id
        assert all(items[b].state == "done" for b in waiting)


KILLED_APP = "batch-drill-killed"


def _wait_backends_gone(app: Flask, application_name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with app.app_context():
            left = db.session.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name})
            db.session.remove()
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"{left} connections of the killed server are still open")


def _wait_for(app: Flask, batch_id: str, condition, seconds: float = 90) -> None:
    """Poll until `condition(states)` holds: a Counter of item states plus "finished" (a
    generous deadline for a slow machine, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with app.app_context():
            states = Counter(item.state for item in _items(batch_id).values())
            states["finished"] = db.session.get(Batch, batch_id).finished_at is not None
            db.session.remove()
        if condition(states):
            return
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never reached the state wanted: {states}")
