"""The list's rendered rows are shared by viewers of one scope and query, and never outlive a
change to the table (the bot_changes generation) or the status snapshot they show."""

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from dashboard.models import Bot, db
from dashboard.rows_cache import RowsCache, bots_generation

HX = {"HX-Request": "true"}


@pytest.fixture
def cached(app, monkeypatch, reconfigure):
    reconfigure(STATUS_CACHE_SECONDS=60)  # one status snapshot for the whole test
    monkeypatch.setitem(app.extensions, "rows_cache", RowsCache(60))
    counted = []

    def count(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield counted
    event.remove(db.engine, "before_cursor_execute", count)


def test_a_second_viewer_gets_the_same_rows_without_the_queries(login, make_bot, cached):
    make_bot()
    admin = login.as_admin()
    first = admin.get("/bots", headers=HX).get_data(as_text=True)
    queries_first = len(cached)
    cached.clear()
    second = admin.get("/bots", headers=HX).get_data(as_text=True)
    assert second == first and ">pmm-btc</a>" in second
    assert len(cached) < queries_first  # no count, no page query: only user and generation


def test_any_change_to_the_table_is_seen_at_once(login, make_bot, cached):
    make_bot()
    admin = login.as_admin()
    admin.get("/bots", headers=HX)
    before = bots_generation()
    # A change written by anyone, even plain SQL from another tool, bumps the generation.
    db.session.execute(sa.update(Bot).values(pair="ETH-USDT"))
    assert bots_generation() > before
    assert "ETH-USDT" in admin.get("/bots", headers=HX).get_data(as_text=True)
    make_bot(id="second", name="second", account_identifier="brand_new_account")
    page = admin.get("/bots").get_data(as_text=True)
    assert ">second</a>" in page
    assert '<option value="brand_new_account"' in page  # the filter form follows too


def test_scopes_and_queries_do_not_share_entries(login, make_bot, cached):
    make_bot(id="sharp-bot", name="sharp-bot")
    make_bot(id="other-bot", name="other-bot", account_identifier="client_other")
    assert ">other-bot</a>" in login.as_admin().get("/bots", headers=HX).get_data(as_text=True)
    client = login.as_client_a().get("/bots", headers=HX).get_data(as_text=True)
    assert ">sharp-bot</a>" in client and "other-bot" not in client
    admin = login.as_admin().get("/bots?account=client_other", headers=HX).get_data(as_text=True)
    assert ">other-bot</a>" in admin and "sharp-bot" not in admin


def test_the_full_page_embeds_the_cached_rows_and_keeps_its_own_csrf_token(login, make_bot,
                                                                           cached):
    make_bot()
    admin = login.as_admin()
    fragment = admin.get("/bots", headers=HX).get_data(as_text=True)
    page = admin.get("/bots").get_data(as_text=True)
    assert fragment.strip() in page  # embedded as HTML, not escaped
    assert "csrf_token" not in fragment  # nothing per-session is cached


def test_a_new_status_snapshot_renders_anew(login, make_bot, simulator, reconfigure, app,
                                            monkeypatch):
    reconfigure(STATUS_CACHE_SECONDS=0)
    monkeypatch.setitem(app.extensions, "rows_cache", RowsCache(60))
    bot = make_bot()
    bot.instance_name = simulator.seed_bot("pmm-btc", controllers=["pmm_btc_1"],
                                           timestamped=True)
    db.session.commit()
    admin = login.as_admin()
    assert "badge-running" in admin.get("/bots", headers=HX).get_data(as_text=True)
    simulator.set_fault("unreachable")
    assert "Hummingbot is unreachable" in admin.get("/bots", headers=HX).get_data(as_text=True)
