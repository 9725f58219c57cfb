"""Many Hummingbot servers, one dashboard: two simulator processes, `default` (the app's
HUMMINGBOT_API_URL) and `eu` (a row added through the service)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from dashboard import lifecycle, recovery, servers
from dashboard.gateway import link_for
from dashboard.history.sampling import record_samples
from dashboard.models import Bot, HummingbotServer, db
from dashboard.registry import utcnow
from dashboard.transfer import export_bots, plan_import
from tests.simulator_fixtures import EU_PASSWORD, SimulatorHandle

SCRIPT_FORM = {"mode": "script", "image": "hummingbot/hummingbot:latest",
               "script": "simple_pmm.py", "script_config": "simple_pmm_btc.yml"}


@pytest.fixture
def eu_sim(eu_server) -> Iterator[SimulatorHandle]:
    eu_server.state.reset()
    try:
        yield SimulatorHandle(eu_server)
    finally:
        eu_server.state.reset()


@pytest.fixture
def two(app, simulator, eu_sim):
    """`default` and `eu`, each with the test account, a manual clock and no warm-up."""
    from dashboard.fleet import fleet

    for sim in (simulator, eu_sim):
        sim.state.add_account("client_sharp")
        sim.configure(warmup_seconds=0, stopping_seconds=0)
        sim.advance(0)
    default_id = servers.default_server_id()
    eu = servers.add_server("eu", eu_sim.url, "eu-user", EU_PASSWORD)
    yield {"default": default_id, "eu": eu.id, "sims": {"default": simulator, "eu": eu_sim}}
    # A page does not wait for a slow refresh: let it end here, not in the next test.
    for sim in (simulator, eu_sim):
        sim.clear_faults()
    fleet().settle()


def _bot(make_bot, two, server: str, **fields) -> Bot:
    bot = make_bot(**fields)
    bot.server_id = two[server]
    db.session.commit()
    return bot


def _running_on_each_server(make_bot, two) -> None:
    """A running bot named after each server (`default`, `eu`), live there."""
    for server in ("default", "eu"):
        two["sims"][server].seed_bot(f"live-{server}", controllers=["pmm_btc_1"])
        bot = _bot(make_bot, two, server, id=server, name=server)
        bot.instance_name, bot.status = f"live-{server}", "running"
    db.session.commit()


def fresh(bot_id: str) -> Bot:
    db.session.expire_all()
    return db.session.get(Bot, bot_id)


def rows_html(admin) -> str:
    return admin.get("/bots", headers={"HX-Request": "true"}).get_data(as_text=True)


def badge(html: str, bot_id: str) -> str:
    start = html.index(f'id="bot-{bot_id}"')
    return html[html.index('data-status="', start) + 13:].split('"', 1)[0]


# ------------------------------------------------------------------------ the same name
def test_the_same_instance_name_on_two_servers_is_two_bots(two, make_bot, login):
    for sim in two["sims"].values():
        sim.seed_bot("shared", controllers=["pmm_btc_1"])
    a = _bot(make_bot, two, "default", id="a", name="a")
    b = _bot(make_bot, two, "eu", id="b", name="b")
    a.instance_name = b.instance_name = "shared"  # unique per server, not globally
    a.status = b.status = "running"
    db.session.commit()

    admin = login.as_admin()
    html = rows_html(admin)
    assert badge(html, "a") == "running" and badge(html, "b") == "running"
    assert 'class="server">eu<' in html and 'class="server">default<' in html

    # Stopping one is a call to its own server only, and only its badge changes.
    lifecycle.stop("b", "admin", cancel_orders=True)
    assert two["sims"]["eu"].bot_calls() == {("stop", "shared"): 1}
    assert two["sims"]["default"].bot_calls() == {}
    html = rows_html(admin)
    assert badge(html, "a") == "running"
    assert fresh("a").live_state == "running"


def test_the_server_filter_and_column_are_for_admins_only(two, make_bot, login):
    _bot(make_bot, two, "default", id="a", name="a")
    _bot(make_bot, two, "eu", id="b", name="b")
    admin = login.as_admin()
    filtered = admin.get("/bots?server=eu",
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="bot-b"' in filtered and 'id="bot-a"' not in filtered
    page = admin.get("/bots").get_data(as_text=True)
    assert 'name="server"' in page and ">eu</option>" in page

    client = login.as_client_a()
    seen = client.get("/bots?server=eu").get_data(as_text=True)
    assert 'id="bot-a"' in seen and 'id="bot-b"' in seen  # the filter is ignored
    assert ">eu<" not in seen and "Server</th>" not in seen and 'name="server"' not in seen


# --------------------------------------------------------------------- lifecycle per server
def test_deploy_start_stop_archive_and_reconcile_on_each_server(two, make_bot):
    settings = lifecycle.parse_deploy_settings(SCRIPT_FORM)
    for server in ("default", "eu"):
        sim = two["sims"][server]
        other = two["sims"]["eu" if server == "default" else "default"]
        bot = _bot(make_bot, two, server, id=f"d-{server}", name=f"d-{server}")
        bot = lifecycle.deploy(bot.id, settings, "admin")
        assert bot.status == "running"
        assert list(sim.state.snapshot()["bots"]) == [bot.instance_name]
        assert bot.instance_name not in other.state.snapshot()["bots"]
        name = bot.instance_name
        lifecycle.stop(bot.id, "admin", cancel_orders=True)
        lifecycle.start(bot.id, "admin")
        assert sim.bot_calls()[("stop", name)] == 1 and sim.bot_calls()[("start", name)] == 1
        report = lifecycle.reconcile()
        assert report.ran and report.orphans == []
        lifecycle.stop_and_archive(bot.id, "admin", cancel_orders=True)
        assert sim.bot_calls()[("stop-archive", name)] == 1
        assert not any(key[1] == name for key in other.bot_calls())
        sim.advance(5)
        lifecycle.reconcile()
        assert fresh(bot.id).status == "stopped"


def test_deploy_can_move_a_bot_onto_another_server(two, make_bot):
    bot = _bot(make_bot, two, "default", id="mover", name="mover")
    settings = lifecycle.parse_deploy_settings(SCRIPT_FORM)
    bot = lifecycle.deploy(bot.id, settings, "admin", server_id=two["eu"])
    assert fresh("mover").server_id == two["eu"]
    assert list(two["sims"]["eu"].state.snapshot()["bots"]) == [bot.instance_name]
    assert two["sims"]["default"].state.snapshot()["bots"] == {}


def test_reconcile_goes_on_for_the_servers_that_answer(two, make_bot):
    """A dead server is left alone; the other is reconciled (its deploy settled)."""
    two["sims"]["eu"].set_fault("unreachable")
    settings = lifecycle.parse_deploy_settings(SCRIPT_FORM)
    bot = _bot(make_bot, two, "default", id="d", name="d")
    two["sims"]["default"].set_fault("slow", seconds=3, path="/bot-orchestration/deploy-v2-script")
    # Outcome unknown on `default` (a timeout), reconcile finds it while `eu` is down.
    bot = lifecycle.deploy(bot.id, settings, "admin")
    two["sims"]["default"].clear_faults()
    report = lifecycle.reconcile()
    assert report.ran and report.unreachable == ["eu"]


# ------------------------------------------------------------------------ faults per server
def test_a_dead_server_greys_only_its_own_bots(two, make_bot, login):
    _running_on_each_server(make_bot, two)
    admin = login.as_admin()
    html = rows_html(admin)  # both seen live once: their last statuses are recorded
    assert badge(html, "default") == "running" and badge(html, "eu") == "running"

    two["sims"]["eu"].set_fault("unreachable")
    html = rows_html(admin)
    assert badge(html, "default") == "running" and badge(html, "eu") == "running"
    eu_row = html[html.index('id="bot-eu"'):].split("</tr>", 1)[0]
    default_row = html[html.index('id="bot-default"'):].split("</tr>", 1)[0]
    assert "stale" in eu_row and "stale" not in default_row
    assert "Hummingbot server eu is unreachable" in html and 'data-server="eu"' in html
    assert "Hummingbot server default" not in html

    client = login.as_client_a()
    seen = client.get("/bots", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "A Hummingbot server is unreachable" in seen
    assert 'class="server"' not in seen and "server eu" not in seen
    assert two["sims"]["eu"].url not in seen and 'data-server' not in seen


def test_a_slow_server_greys_only_its_bots_and_others_stay_live(app, two, make_bot, login,
                                                                reconfigure):
    _running_on_each_server(make_bot, two)
    admin = login.as_admin()
    rows_html(admin)
    two["sims"]["eu"].set_fault("slow", seconds=5)
    html = rows_html(admin)
    eu_row = html[html.index('id="bot-eu"'):].split("</tr>", 1)[0]
    default_row = html[html.index('id="bot-default"'):].split("</tr>", 1)[0]
    assert "stale" in eu_row and "stale" not in default_row
    assert "Hummingbot server eu is slow" in html


def test_status_is_asked_once_per_server_per_refresh(two, make_bot, login):
    _bot(make_bot, two, "default", id="a", name="a")
    _bot(make_bot, two, "eu", id="b", name="b")
    for sim in two["sims"].values():
        sim.reset_counts()
    admin = login.as_admin()
    rows_html(admin)
    for sim in two["sims"].values():
        assert sim.request_count("GET", "/bot-orchestration/status") == 1


# ------------------------------------------------------------------------------ recovery
def test_an_orphan_is_adopted_onto_the_server_that_runs_it(two, login):
    two["sims"]["eu"].seed_bot("eu-orphan-20260101-000000", controllers=["pmm_btc_1"],
                               account="client_sharp")
    admin = login.as_admin()
    assert "eu-orphan" not in admin.get("/recovery").get_data(as_text=True)
    page = admin.get("/recovery?server=eu").get_data(as_text=True)
    assert "eu-orphan-20260101-000000" in page and "server=eu" in page
    form = recovery.orphan_adopt_form("eu-orphan-20260101-000000", "eu")
    outcome = recovery.adopt("eu-orphan-20260101-000000", form.values, "admin", server="eu")
    assert outcome.created and fresh(outcome.bot.id).server_id == two["eu"]
    # Adopting again (a double click) stores nothing new; on `default` it is not running.
    again = recovery.adopt("eu-orphan-20260101-000000", form.values, "admin", server="eu")
    assert not again.created
    with pytest.raises(recovery.RecoveryError):
        recovery.adopt("eu-orphan-20260101-000000", form.values, "admin")


def test_missing_and_relink_on_the_bots_server(two, make_bot):
    bot = _bot(make_bot, two, "eu", id="lost", name="lost", strategy="v2_with_controllers")
    bot.status, bot.instance_name = "running", "lost-20250101-000000"
    db.session.commit()
    two["sims"]["eu"].seed_bot("lost-20260101-000000", controllers=["pmm_btc_1"],
                               account="client_sharp")
    overview = recovery.overview(prefill=0, server="eu")
    assert [row.bot.id for row in overview.missing] == ["lost"]
    assert [row.live.name for row in overview.orphans] == ["lost-20260101-000000"]
    assert recovery.overview(prefill=0).missing == []  # not on default
    recovery.relink("lost", "lost-20260101-000000", "admin")
    assert fresh("lost").instance_name == "lost-20260101-000000"


# ---------------------------------------------------------------------- import and export
def test_export_names_the_server_and_import_puts_bots_back_on_it(two, make_bot):
    _bot(make_bot, two, "eu", id="b", name="b")
    exported = export_bots()
    [entry] = exported["bots"]
    assert entry["server"] == "eu"
    text = json.dumps(exported)
    assert EU_PASSWORD not in text and "eu-user" not in text and two["sims"]["eu"].url not in text
    entry.update(id="c", name="c")
    plan = plan_import(json.dumps(exported))
    assert plan.entries[0].server == "eu"
    entry.update(server="nowhere")
    with pytest.raises(Exception, match="nowhere"):
        plan_import(json.dumps(exported))
    del entry["server"]
    assert plan_import(json.dumps(exported)).entries[0].server == "default"


# ------------------------------------------------------------------- the servers themselves
def test_credentials_are_sealed_and_never_shown_or_logged(two, login, caplog, app):
    caplog.set_level(logging.DEBUG)
    admin = login.as_admin()
    for path in ("/servers", "/servers/eu/edit", "/bots"):
        page = admin.get(path).get_data(as_text=True)
        assert EU_PASSWORD not in page and "eu-user" not in page, path
    raw = db.session.execute(select(HummingbotServer.__table__.c.password)
                             .where(HummingbotServer.name == "eu")).scalar()
    assert raw == EU_PASSWORD  # the model opens it; the column holds ciphertext:
    stored = db.session.execute(db.text(
        "SELECT password, username FROM hummingbot_servers WHERE name = 'eu'")).one()
    assert EU_PASSWORD not in stored[0] and "eu-user" not in stored[1]
    response = admin.post("/servers/eu/edit", data={"base_url": two["sims"]["eu"].url,
                                                    "password": "", "enabled": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    assert servers.find_server("eu").password == EU_PASSWORD  # empty field: kept
    assert EU_PASSWORD not in caplog.text and "eu-user" not in caplog.text
    assert EU_PASSWORD not in repr(servers.load_settings([two["eu"]]))


def test_the_servers_page_shows_each_servers_health(two, make_bot, login):
    _bot(make_bot, two, "eu", id="b", name="b")
    two["sims"]["default"].set_fault("unreachable")
    page = login.as_admin().get("/servers").get_data(as_text=True)
    eu = page[page.index('id="server-eu"'):].split("</tr>", 1)[0]
    default = page[page.index('id="server-default"'):].split("</tr>", 1)[0]
    assert "Reachable" in eu and "1.0.1" in eu and " ms" in eu and "0 / 1" in eu
    assert "Unreachable" in default
    assert login.as_client_a().get("/servers").status_code == 404


def test_servers_can_be_added_disabled_and_removed_only_without_bots(two, make_bot, login):
    admin = login.as_admin()
    bad = admin.post("/servers", data={"name": "Bad Name", "base_url": "ftp://x"})
    assert bad.status_code == 422
    assert admin.post("/servers", data={"name": "us", "base_url": "http://127.0.0.1:9",
                                        "password": "pw-us-secret"}).status_code == 302
    assert servers.find_server("us").password == "pw-us-secret"
    _bot(make_bot, two, "eu", id="b", name="b")
    with pytest.raises(servers.ServerError, match="bot definition"):
        servers.remove_server("eu")
    servers.remove_server("us")
    assert admin.post("/servers/eu/disable").status_code == 302
    assert not servers.find_server("eu").enabled
    html = rows_html(admin)  # a disabled server is not asked; its bots show their last status
    assert 'id="bot-b"' in html


def test_the_app_settings_become_the_default_server(app):
    servers.sync_default_server(app)
    server = servers.find_server("default")
    assert server.base_url == app.config["HUMMINGBOT_API_URL"]
    assert server.password == app.config["HUMMINGBOT_API_PASSWORD"]


def test_the_cli_adds_lists_disables_and_removes_servers(two, make_bot, app, caplog):
    caplog.set_level(logging.DEBUG)
    runner = app.test_cli_runner()
    added = runner.invoke(args=["servers", "add", "asia", "http://127.0.0.1:9", "--username",
                                "asia-user", "--password", "asia-secret-pw"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(args=["servers", "list"]).output
    assert "asia\tenabled\thttp://127.0.0.1:9" in listed and "eu\tenabled" in listed
    assert "asia-secret-pw" not in listed and "asia-user" not in listed
    assert runner.invoke(args=["servers", "disable", "asia"]).exit_code == 0
    assert not servers.find_server("asia").enabled
    _bot(make_bot, two, "eu", id="b", name="b")
    refused = runner.invoke(args=["servers", "remove", "eu"])
    assert refused.exit_code != 0 and "Disable it instead" in refused.output
    assert runner.invoke(args=["servers", "remove", "asia"]).exit_code == 0
    assert servers.find_server("asia") is None
    assert "asia-secret-pw" not in caplog.text


# ------------------------------------------------------------------------ history per server
def test_each_servers_bots_are_sampled_in_the_same_period(two, make_bot):
    """The sample clock was fleet-wide: the first server whose snapshot was recorded took the
    period, and the other server's bots went unsampled until a period nobody else took."""
    now = utcnow()
    for server in ("default", "eu"):
        live = two["sims"][server].seed_bot(f"perf-{server}", controllers=["c1"],
                                            timestamped=True)
        bot = _bot(make_bot, two, server, id=f"perf-{server}", name=f"perf-{server}",
                   status="running")
        bot.instance_name = live
        db.session.commit()
    for server in ("default", "eu"):
        snapshot = link_for(fresh(f"perf-{server}")).feed.snapshot(record=False)
        assert snapshot.server_id == two[server]
        report = record_samples(snapshot, now=now)
        assert (report.ran, report.samples) == (True, 1), (server, report)
        again = record_samples(snapshot, now=now + timedelta(seconds=30))
        assert (again.ran, again.reason) == (False, "sampled less than a period ago")
    sampled = db.session.execute(sa.text(
        "SELECT bot_id FROM performance_points WHERE resolution = 0 ORDER BY bot_id")).scalars()
    assert list(sampled) == ["perf-default", "perf-eu"]


def test_one_server_down_is_an_outage_while_another_answers(two, make_bot):
    """The failure clock was fleet-wide: `default` answering ended `eu`'s outage at every
    refresh, so "Hummingbot unreachable" never fired while one server of two was down."""
    from dashboard.alerts.conditions import evaluate
    from dashboard.alerts.models import Alert

    _bot(make_bot, two, "default", id="on-default", name="on-default")
    _bot(make_bot, two, "eu", id="on-eu", name="on-eu")

    def failing_since():
        db.session.expire_all()
        return db.session.get(HummingbotServer, two["eu"]).failing_since

    def unreachable_alerts():
        return db.session.scalars(select(Alert.state).where(
            Alert.condition == "hummingbot_unreachable")).all()

    two["sims"]["eu"].set_fault("unreachable")
    assert not link_for(fresh("on-eu")).feed.snapshot().reachable
    since = failing_since()
    assert since is not None
    assert link_for(fresh("on-default")).feed.snapshot().reachable
    assert failing_since() == since  # another server's answer is not this one's
    evaluate(now=since + timedelta(days=1), force=True)
    assert unreachable_alerts() == ["firing"]

    two["sims"]["eu"].clear_faults()
    assert link_for(fresh("on-eu")).feed.snapshot().reachable
    assert failing_since() is None
    evaluate(now=since + timedelta(days=1, minutes=1), force=True)
    assert unreachable_alerts() == ["resolved"]


def test_a_page_never_waits_for_a_slow_servers_answer(app, two, make_bot, login, monkeypatch):
    """The page answers while the slow server still holds its status request: it shows that
    server's last snapshot, greyed, and the other server's bots live. (It waited for the
    whole fetch, retries included, before: seconds per page with one slow server.)"""
    from dashboard.fleet import fleet

    monkeypatch.setitem(app.config, "HUMMINGBOT_READ_TIMEOUT", 5.0)  # the eu link's, held
    monkeypatch.setitem(app.config, "STATUS_WAIT_SECONDS", 0.2)
    _running_on_each_server(make_bot, two)
    admin = login.as_admin()
    rows_html(admin)  # a first snapshot of each server
    eu = two["sims"]["eu"]
    eu.set_fault("slow", seconds=600, path="/bot-orchestration/status")
    eu.reset_counts()
    try:
        html = rows_html(admin)
        eu_link = fleet().link(two["eu"])
        assert eu_link.feed.fetching  # the slow server's answer is still awaited
        assert eu.request_count("GET", "/bot-orchestration/status") == 1
        eu_row = html[html.index('id="bot-eu"'):].split("</tr>", 1)[0]
        default_row = html[html.index('id="bot-default"'):].split("</tr>", 1)[0]
        assert "stale" in eu_row and "stale" not in default_row
        assert badge(html, "eu") == "running"  # its last status, greyed
        assert "Hummingbot server eu is slow" in html
        # Another page meanwhile starts no second call to the slow server.
        rows_html(admin)
        assert eu.request_count("GET", "/bot-orchestration/status") == 1
    finally:
        eu.clear_faults()  # wakes the held request
        fleet().settle()


def test_a_bots_own_page_never_waits_for_its_slow_server(app, two, make_bot, login,
                                                         monkeypatch):
    """A bot's page and its JSON answer while its server still holds the status request, with
    the bot's last status greyed. (They waited for the whole fetch, retries included: a slow
    server held its bots' pages for up to the client's timeouts.)"""
    from dashboard.fleet import fleet

    monkeypatch.setitem(app.config, "HUMMINGBOT_READ_TIMEOUT", 5.0)
    monkeypatch.setitem(app.config, "STATUS_WAIT_SECONDS", 0.2)
    two["sims"]["eu"].seed_bot("live-eu", controllers=["pmm_btc_1"])
    bot = _bot(make_bot, two, "eu", id="eu", name="eu")
    bot.instance_name, bot.status = "live-eu", "running"
    db.session.commit()
    admin = login.as_admin()
    live = {"HX-Request": "true"}  # the bot page's live part
    assert "badge-running" in admin.get("/bots/eu", headers=live).get_data(as_text=True)
    eu = two["sims"]["eu"]
    eu.set_fault("slow", seconds=600, path="/bot-orchestration/status")
    eu.reset_counts()
    try:
        page = admin.get("/bots/eu", headers=live).get_data(as_text=True)
        assert fleet().link(two["eu"]).feed.fetching  # its answer is still awaited
        assert "badge-running stale" in page and "is slow / timing out" in page
        assert admin.get("/bots/eu").status_code == 200  # the whole page too
        assert admin.get("/api/bots/eu").get_json()["status"] == "running"
        assert eu.request_count("GET", "/bot-orchestration/status") == 1  # one, not one each
    finally:
        eu.clear_faults()
        fleet().settle()
