"""Bot Management pages: list, detail, create, edit, archive, restore."""

import json

import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from tests.conftest import make_bot_data


def events_of(bot_id):
    query = sa.select(BotEvent).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)
    return list(db.session.scalars(query))


def test_admin_creates_a_bot_through_the_form(login):
    client = login.as_admin()
    response = client.post("/bots/new", data=make_bot_data())
    assert response.status_code == 302
    assert response.headers["Location"] == "/bots/pmm-btc"
    bot = db.session.get(Bot, "pmm-btc")
    assert (bot.name, bot.account_identifier, bot.status) == ("pmm-btc", "client_sharp", "stopped")
    assert bot.config == {"order_amount": 0.01, "bid_spread": 0.002}
    [event] = events_of("pmm-btc")
    assert (event.action, event.actor, event.to_status) == ("created", "admin", "stopped")
    assert event.details["after"]["pair"] == "BTC-USDT"


def test_list_shows_badge_edit_button_and_columns(login, make_bot):
    make_bot()
    page = login.as_admin().get("/bots").get_data(as_text=True)
    for text in ("pmm-btc", "client_sharp", "pure_market_making", "binance", "BTC-USDT",
                 'class="badge badge-stopped">Stopped<', 'href="/bots/pmm-btc/edit"'):
        assert text in page


def test_list_filters_by_account_and_status_and_searches_by_name(login, make_bot):
    make_bot(id="a1", name="alpha-one")
    make_bot(id="b1", name="beta-one", account_identifier="client_other")
    make_bot(id="a2", name="alpha-two")
    db.session.execute(sa.update(Bot).where(Bot.id == "a2").values(status="running"))
    client = login.as_admin()

    def names(query):
        page = client.get("/bots" + query).get_data(as_text=True)
        return {n for n in ("alpha-one", "beta-one", "alpha-two") if f">{n}</a>" in page}

    assert names("") == {"alpha-one", "beta-one", "alpha-two"}
    assert names("?account=client_other") == {"beta-one"}
    # The merged status filters: stored "running", reported nowhere, is Missing.
    assert names("?status=missing") == {"alpha-two"}
    assert names("?status=running") == set()
    assert names("?q=ALPHA") == {"alpha-one", "alpha-two"}
    assert names("?q=alpha&status=stopped") == {"alpha-one"}
    assert names("?q=%25") == set()  # LIKE wildcards are literal
    assert names("?status=bogus&sort=drop+table") == {"alpha-one", "beta-one", "alpha-two"}


def test_list_paginates(app, login, make_bot):
    app.config["PAGE_SIZE"] = 2
    try:
        for i in range(5):
            make_bot(id=f"bot{i}", name=f"bot{i}")
        client = login.as_admin()
        first = client.get("/bots").get_data(as_text=True)
        third = client.get("/bots?page=3").get_data(as_text=True)
    finally:
        app.config["PAGE_SIZE"] = 50
    assert ">bot0</a>" in first and ">bot1</a>" in first and ">bot2</a>" not in first
    assert "page 1 of 3" in first and "page=2" in first
    assert ">bot4</a>" in third and ">bot0</a>" not in third


def test_htmx_request_gets_only_the_rows_fragment(login, make_bot):
    make_bot()
    client = login.as_admin()
    fragment = client.get("/bots", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<table" in fragment and "<html" not in fragment
    boosted = client.get("/bots", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)
    restore = client.get("/bots", headers={"HX-Request": "true",
                                           "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_detail_shows_configuration_and_history(login, make_bot):
    make_bot()
    page = login.as_admin().get("/bots/pmm-btc").get_data(as_text=True)
    assert "&#34;order_amount&#34;: 0.01" in page or '"order_amount": 0.01' in page
    assert "created</strong> by admin" in page


def test_validation_errors_rerender_the_form_with_input_kept(login):
    client = login.as_admin()
    bad = make_bot_data(id="bad id!", name="", pair="btcusdt", config='{"a": 1,}')
    response = client.post("/bots/new", data=bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Id may contain only letters" in page
    assert "Name is required." in page
    assert "Pair may contain only BASE-QUOTE" in page
    assert "Configuration is not valid JSON" in page
    assert 'value="bad id!"' in page and "{&#34;a&#34;: 1,}" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Bot)) == 0


def test_config_must_be_a_json_object_under_the_size_limit(app, login):
    client = login.as_admin()
    page = client.post("/bots/new", data=make_bot_data(config="[1, 2]")).get_data(as_text=True)
    assert "must be a JSON object" in page
    big = json.dumps({"blob": "x" * (app.config["MAX_CONFIG_BYTES"] + 1)})
    page = client.post("/bots/new", data=make_bot_data(config=big)).get_data(as_text=True)
    assert "must be at most 64 KiB" in page


def test_duplicate_id_and_name_are_refused(login, make_bot):
    make_bot()
    client = login.as_admin()
    page = client.post("/bots/new", data=make_bot_data(name="other")).get_data(as_text=True)
    assert "Id is already used by another bot." in page
    page = client.post("/bots/new", data=make_bot_data(id="other")).get_data(as_text=True)
    assert "Name is already used by another bot." in page


def test_edit_saves_changes_and_records_before_and_after(login, make_bot):
    bot = make_bot()
    client = login.as_admin()
    assert 'href="/bots/pmm-btc/edit"' in client.get("/bots/pmm-btc").get_data(as_text=True)
    form = make_bot_data(pair="ETH-USDT", config='{"order_amount": 1}', version=bot.version)
    response = client.post("/bots/pmm-btc/edit", data=form)
    assert response.status_code == 302
    db.session.refresh(bot)
    assert (bot.pair, bot.config, bot.version) == ("ETH-USDT", {"order_amount": 1}, 2)
    edited = events_of("pmm-btc")[-1]
    assert edited.action == "edited"
    assert edited.details["changes"]["pair"] == ["BTC-USDT", "ETH-USDT"]
    assert edited.details["changes"]["config"][1] == {"order_amount": 1}


def test_stale_edit_gets_a_conflict_and_loses_nothing(login, make_bot):
    bot = make_bot()
    client = login.as_admin()
    first = make_bot_data(pair="ETH-USDT", version=1)
    second = make_bot_data(pair="SOL-USDT", version=1)  # loaded before the first save
    assert client.post("/bots/pmm-btc/edit", data=first).status_code == 302
    response = client.post("/bots/pmm-btc/edit", data=second)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else saved this bot" in page
    assert 'value="SOL-USDT"' in page  # the user's input is kept
    db.session.refresh(bot)
    assert bot.pair == "ETH-USDT"


def test_editing_a_running_bot_says_it_applies_at_next_deploy(login, make_bot):
    make_bot()
    db.session.execute(sa.update(Bot).values(status="running"))
    page = login.as_admin().get("/bots/pmm-btc/edit").get_data(as_text=True)
    assert "apply at its next deploy" in page


def test_archive_hides_and_restore_brings_back(login, make_bot):
    make_bot()
    client = login.as_admin()
    assert client.post("/bots/pmm-btc/archive").status_code == 302
    bot = db.session.get(Bot, "pmm-btc")
    assert bot.status == "archived" and bot.archived_at is not None
    assert ">pmm-btc</a>" not in client.get("/bots").get_data(as_text=True)
    assert ">pmm-btc</a>" in client.get("/bots?status=archived").get_data(as_text=True)
    assert client.post("/bots/pmm-btc/restore").status_code == 302
    db.session.refresh(bot)
    assert (bot.status, bot.archived_at) == ("stopped", None)
    assert [e.action for e in events_of("pmm-btc")] == ["created", "archived", "restored"]
    assert db.session.get(Bot, "pmm-btc") is not None  # never hard-deleted


def test_restore_refused_when_the_name_was_reused(login, make_bot):
    make_bot()
    client = login.as_admin()
    client.post("/bots/pmm-btc/archive")
    make_bot(id="pmm-btc-2", name="pmm-btc")
    response = client.post("/bots/pmm-btc/restore", follow_redirects=True)
    assert "Another active bot is named pmm-btc" in response.get_data(as_text=True)
    assert db.session.get(Bot, "pmm-btc").status == "archived"


def test_archive_refused_while_a_deploy_is_in_flight(login, make_bot):
    make_bot()
    db.session.execute(sa.update(Bot).values(status="deploying"))
    response = login.as_admin().post("/bots/pmm-btc/archive", follow_redirects=True)
    assert "wait until it settles" in response.get_data(as_text=True)
    assert db.session.get(Bot, "pmm-btc").archived_at is None


def test_xss_payloads_render_escaped(login, make_bot):
    make_bot(config=json.dumps({"note": "<script>alert(1)</script>"}))
    page = login.as_admin().get("/bots/pmm-btc").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "\\u003cscript\\u003e" in page  # tojson escapes HTML-significant characters


def test_a_deploy_settling_while_the_edit_form_is_open_is_not_a_conflict(
        login, make_bot, simulator):
    """Regression: reconcile's status change bumped `version`, so the open form conflicted."""
    from dashboard import lifecycle

    bot = make_bot()
    db.session.execute(sa.update(Bot).values(
        status="deploying", deploy_request_id="abcdef0123456789",
        deploy_requested_at=sa.func.now()))
    simulator.seed_bot("pmm-btc-abcdef", account="client_sharp", controllers=["pmm_btc_1"],
                       timestamped=True)
    client = login.as_admin()
    form_version = db.session.get(Bot, "pmm-btc").version

    assert lifecycle.reconcile().settled == ["pmm-btc"]
    response = client.post("/bots/pmm-btc/edit",
                           data=make_bot_data(pair="ETH-USDT", version=form_version))
    assert response.status_code == 302
    db.session.refresh(bot)
    assert (bot.status, bot.pair, bot.version) == ("running", "ETH-USDT", form_version + 1)


def test_an_empty_list_tells_an_admin_where_running_bots_are(login):
    """The first screen after `make run`: the demo bots run without definitions."""
    hint = 'adopt them on the <a href="/recovery">Recovery desk</a>'
    assert hint in login.as_admin().get("/bots").get_data(as_text=True)
    assert hint not in login.as_admin().get("/bots?q=nothing").get_data(as_text=True)
    assert "Recovery desk" not in login.as_client_a().get("/bots").get_data(as_text=True)
