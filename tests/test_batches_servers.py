"""Bulk actions across Hummingbot servers: two simulator processes, `default` (the app's
HUMMINGBOT_API_URL) and `eu` (a row). A server that is down has its items skipped or failed
with the reason, the other server's items all run, one call each; and one server's items never
hold every worker."""

from __future__ import annotations

import uuid
from itertools import pairwise

import pytest
from flask import Flask

from dashboard import servers
from dashboard.batches import executor
from dashboard.models import Batch, BatchItem, Bot, db
from dashboard.registry import utcnow
from tests.conftest import Login
from tests.simulator_fixtures import EU_PASSWORD, SimulatorHandle
from tests.test_batches import _batch_events, _bot, _confirm, _items


@pytest.fixture
def fleet2(committed_app: Flask, simulator, eu_server, accounts):
    """`default` and `eu` in a committed database; sims by server name, and logins."""
    eu_server.state.reset()
    eu_sim = SimulatorHandle(eu_server)
    # A breaker that opens stays open for the whole test: what the executor does then is
    # what is tested, not when the breaker lets a probe through.
    committed_app.config["HUMMINGBOT_BREAKER_RESET_SECONDS"] = 600
    with committed_app.app_context():
        default_id = servers.default_server_id()
        db.session.commit()
        eu_id = servers.add_server("eu", eu_sim.url, "eu-user", EU_PASSWORD).id
    try:
        yield {"ids": {"default": default_id, "eu": eu_id},
               "sims": {"default": simulator, "eu": eu_sim},
               "login": lambda: Login(committed_app.test_client(), accounts)}
    finally:
        eu_server.state.reset()


def _world(app: Flask, fleet2, spec: dict[str, tuple[str, str]]) -> None:
    """{bot_id: (server, account)}: running definitions, live and trading on their server."""
    with app.app_context():
        for bot_id, (server, account) in spec.items():
            bot = _bot(bot_id, account, "running", bot_id)
            bot.server_id = fleet2["ids"][server]
            db.session.add(bot)
            fleet2["sims"][server].seed_bot(bot_id, controllers=["pmm_btc_1"], trading=True)
        db.session.commit()
    for sim in fleet2["sims"].values():
        sim.reset_counts()


def _spec(default: int, eu: int) -> dict[str, tuple[str, str]]:
    accounts = ("client_sharp", "client_other")
    return {f"def-{i}": ("default", accounts[i % 2]) for i in range(default)} | \
        {f"eu-{i}": ("eu", accounts[i % 2]) for i in range(eu)}


def test_a_down_servers_bots_are_skipped_with_the_reason_and_the_others_all_run(
        committed_app: Flask, fleet2):
    spec = _spec(default=6, eu=4)
    _world(committed_app, fleet2, spec)
    on_default = [b for b, (server, _) in spec.items() if server == "default"]
    on_eu = [b for b, (server, _) in spec.items() if server == "eu"]
    fleet2["sims"]["eu"].set_fault("unreachable")

    admin = fleet2["login"]().as_admin()
    preview = admin.get("/batches/new?action=stop&all=1").get_data(as_text=True)
    assert "Confirm: stop 6 bots" in preview
    assert preview.count("Skipped: server eu unreachable") == 4
    assert "4 \N{MULTIPLICATION SIGN} server eu unreachable" in preview
    assert preview.count('<td class="server">eu</td>') == 4  # each bot's server, named
    assert preview.count('<td class="server">default</td>') == 6

    batch_id = _confirm(admin, action="stop", all="1", cancel_orders="1")
    with committed_app.app_context():
        items = _items(batch_id)
        assert {items[b].state for b in on_eu} == {"skipped"}
        assert {items[b].note for b in on_eu} == {"server eu unreachable"}
    executor.run_pending(committed_app, workers=4)

    with committed_app.app_context():
        items = _items(batch_id)
        assert {items[b].state for b in on_default} == {"done"}
        for bot_id in on_eu:
            assert db.session.get(Bot, bot_id).status == "running"
            [event] = _batch_events(bot_id, batch_id)
            assert event.action == "batch_skipped"
            # The history is the client's to read: no server name in it.
            assert event.details["reason"] == "its Hummingbot server was unreachable"
    assert fleet2["sims"]["default"].bot_calls() == {("stop", b): 1 for b in on_default}
    assert fleet2["sims"]["eu"].bot_calls() == {}

    client = fleet2["login"]().as_client_a()  # client_sharp: eu-0 and eu-2 are its bots
    page = client.get("/bots/eu-0").get_data(as_text=True)
    assert "its Hummingbot server was unreachable" in page
    assert "server eu" not in page and fleet2["sims"]["eu"].url not in page
    assert client.get(f"/batches/{batch_id}").status_code == 404


def test_a_disabled_servers_bots_are_skipped_and_the_confirmation_agrees(
        committed_app: Flask, fleet2):
    spec = _spec(default=2, eu=2)
    _world(committed_app, fleet2, spec)
    with committed_app.app_context():
        servers.update_server(servers.find_server("eu"), enabled=False)
    admin = fleet2["login"]().as_admin()
    preview = admin.get("/batches/new?action=stop&all=1").get_data(as_text=True)
    assert "Confirm: stop 2 bots" in preview
    assert preview.count("Skipped: server eu disabled") == 2
    batch_id = _confirm(admin, action="stop", all="1", cancel_orders="1")
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(batch_id)
        assert {b: item.state for b, item in items.items()} == {
            "def-0": "done", "def-1": "done", "eu-0": "skipped", "eu-1": "skipped"}
        [event] = _batch_events("eu-0", batch_id)
        assert event.details["reason"] == "its Hummingbot server was disabled"
    assert fleet2["sims"]["eu"].state.request_counts() == {}  # a disabled server: not asked


def test_a_server_disabled_after_the_confirmation_has_its_items_skipped(
        committed_app: Flask, fleet2):
    """An admin who disables a server (to take it out of service) after confirming a batch:
    its items are skipped when their turn comes, as the preview would now say, and nothing is
    sent to it; the other server's items all run."""
    spec = _spec(default=2, eu=3)
    _world(committed_app, fleet2, spec)
    admin = fleet2["login"]().as_admin()
    batch_id = _confirm(admin, action="stop", all="1", cancel_orders="1")
    with committed_app.app_context():
        servers.update_server(servers.find_server("eu"), enabled=False)
    executor.run_pending(committed_app, workers=2)
    with committed_app.app_context():
        items = _items(batch_id)
        assert {b: item.state for b, item in items.items()} == {
            "def-0": "done", "def-1": "done",
            "eu-0": "skipped", "eu-1": "skipped", "eu-2": "skipped"}
        assert items["eu-0"].note == ("server eu disabled since the batch was confirmed; "
                                      "nothing was sent")
        [event] = _batch_events("eu-0", batch_id)
        assert event.details["reason"] == "its Hummingbot server was disabled"
        assert {db.session.get(Bot, b).status for b in ("eu-0", "eu-1", "eu-2")} == {"running"}
    assert fleet2["sims"]["eu"].bot_calls() == {}


def test_a_server_going_down_after_the_preview_fails_or_skips_only_its_items(
        committed_app: Flask, fleet2):
    """The batch is confirmed while both servers answer; then `eu` goes down. Its first calls
    fail (connection refused, nothing sent); once its breaker opens the rest are skipped
    without a call. Every note names the server; `default`'s items all run, once each."""
    spec = _spec(default=5, eu=6)
    _world(committed_app, fleet2, spec)
    on_default = [b for b, (server, _) in spec.items() if server == "default"]
    on_eu = [b for b, (server, _) in spec.items() if server == "eu"]
    admin = fleet2["login"]().as_admin()
    batch_id = _confirm(admin, action="stop", all="1", cancel_orders="0")
    fleet2["sims"]["eu"].set_fault("unreachable")
    executor.run_pending(committed_app, workers=2)

    with committed_app.app_context():
        items = _items(batch_id)
        assert {items[b].state for b in on_default} == {"done"}
        failed = [b for b in on_eu if items[b].state == "failed"]
        skipped = [b for b in on_eu if items[b].state == "skipped"]
        assert len(failed) + len(skipped) == len(on_eu)
        threshold = committed_app.config["HUMMINGBOT_BREAKER_THRESHOLD"]
        # Calls already under way when the breaker opened may fail too: one per other worker.
        assert len(failed) <= threshold + 1 and skipped, (failed, skipped)
        for bot_id in failed:
            assert items[bot_id].note.startswith("server eu: ")
            # Refused, or the breaker another worker's failure opened meanwhile.
            assert any(why in items[bot_id].note for why in ("unreachable", "not answering"))
        for bot_id in skipped:
            assert items[bot_id].note == ("server eu unreachable (its circuit breaker is "
                                          "open); nothing was sent")
            [event] = _batch_events(bot_id, batch_id)
            assert event.details["reason"] == "its Hummingbot server was unreachable"
        assert {db.session.get(Bot, b).status for b in on_eu} == {"running"}
    assert fleet2["sims"]["default"].bot_calls() == {("stop", b): 1 for b in on_default}
    assert fleet2["sims"]["eu"].bot_calls() == {}


def test_a_worker_passes_over_the_items_of_a_server_at_its_cap(committed_app: Flask, fleet2):
    """The oldest pending items are eu's; with eu's one slot taken, the next claim is
    default's item, not eu's next (without the cap every worker would wait on eu)."""
    _world(committed_app, fleet2, _spec(default=1, eu=2))
    with committed_app.app_context():  # eu's items first (the order claims follow)
        batch = Batch(id=uuid.uuid4().hex, action="stop", created_by="admin",
                      selection={"ids": ["eu-0", "eu-1", "def-0"]}, created_at=utcnow())
        db.session.add(batch)
        db.session.flush()
        for position, bot_id in enumerate(("eu-0", "eu-1", "def-0")):
            db.session.add(BatchItem(batch_id=batch.id, bot_id=bot_id, position=position,
                                     state="pending"))
            db.session.flush()
        db.session.commit()
    slots = executor.Slots(1)
    with committed_app.app_context():
        first_conn, second_conn = executor.lock_connection(), executor.lock_connection()
    try:
        with committed_app.app_context():
            first, first_server = executor.claim(first_conn, slots)
            second, second_server = executor.claim(second_conn, slots)
            assert (first.bot_id, first_server) == ("eu-0", fleet2["ids"]["eu"])
            assert (second.bot_id, second_server) == ("def-0", fleet2["ids"]["default"])
            assert executor.claim(second_conn, slots) is None  # eu-1 waits for eu's slot
            slots.give(first_server)
            third, _ = executor.claim(second_conn, slots)
            assert third.bot_id == "eu-1"
    finally:
        first_conn.close()
        second_conn.close()


def test_a_slow_server_never_has_more_items_in_flight_than_its_cap(committed_app: Flask,
                                                                  fleet2):
    """With eu slow and one slot per server, eu's items run one after another while the
    other worker runs default's; every item still gets exactly one call."""
    spec = _spec(default=4, eu=4)
    _world(committed_app, fleet2, spec)
    fleet2["sims"]["eu"].set_fault("slow", seconds=0.3, path="/bot-orchestration/stop-bot")
    admin = fleet2["login"]().as_admin()
    batch_id = _confirm(admin, action="stop", all="1", cancel_orders="1")
    executor.run_pending(committed_app, workers=2, slots=executor.Slots(1))
    with committed_app.app_context():
        items = _items(batch_id)
        assert {item.state for item in items.values()} == {"done"}
        spans = sorted((items[b].started_at, items[b].finished_at)
                       for b, (server, _) in spec.items() if server == "eu")
        for (_, finished), (started, _) in pairwise(spans):
            assert started >= finished, spans  # never two of eu's items at once
    for server in ("default", "eu"):
        assert fleet2["sims"][server].bot_calls() == {
            ("stop", b): 1 for b, (where, _) in spec.items() if where == server}


def test_by_default_one_server_may_hold_all_workers_but_one():
    from dashboard.config import load_settings

    assert load_settings({}).batch_workers_per_server == 3  # of BATCH_WORKERS=4
    assert load_settings({"BATCH_WORKERS": "2"}).batch_workers_per_server == 1
    assert load_settings({"BATCH_WORKERS": "1"}).batch_workers_per_server == 1
    assert load_settings({"BATCH_WORKERS": "8", "BATCH_WORKERS_PER_SERVER": "2"}) \
        .batch_workers_per_server == 2
