"""History blocks are rendered once per minute and history state and shared (history_cache),
never older than the table; charts stay small whatever the range holds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts.models import Alert
from dashboard.formatting import amount_text
from dashboard.gateway import hummingbot
from dashboard.history import services
from dashboard.history.charts import amount, chart_table, line_chart
from dashboard.history.sampling import record_samples
from dashboard.models import BotEvent, db
from dashboard.registry import utcnow
from dashboard.rows_cache import RowsCache
from tests.history_data import seed_history

HISTORY_TABLES = ("performance_points", "performance_segments", "performance_latest")


@pytest.fixture
def history(app, make_bot, simulator, monkeypatch):
    monkeypatch.setitem(app.extensions, "history_cache", RowsCache(60))
    return seed_history(simulator, make_bot)


def history_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if any(table in s for table in HISTORY_TABLES)]


def all_runs_figure(body: str) -> str:
    return re.search(r"<dt>PnL, all runs</dt><dd[^>]*>([^<]+)</dd>", body).group(1)


@pytest.mark.parametrize("url", ["/bots/sharp-a", "/bots/sharp-a?range=24h",
                                 "/bots/sharp-a?range=all", "/accounts/client_sharp"])
def test_a_second_view_reuses_the_rendered_history(history, login, statements, url):
    client = login.as_client_a()
    # A bot's page reads its keys before the status snapshot, whose first fetch here records a
    # sample period: that view's blocks are keyed by the state before it. Fetched first.
    client.get("/bots/sharp-a")
    statements.clear()
    first = client.get(url).get_data(as_text=True)
    assert history_reads(statements)
    statements.clear()
    second = client.get(url).get_data(as_text=True)
    # Only performance_clock (with the bots' generation), for the keys: the account page's
    # best and worst bots are shared too, under both.
    assert history_reads(statements) == []
    assert any("performance_clock" in s and "bot_changes" in s for s in statements)
    charts = re.compile(r'<svg class="chart".*?</details>', re.S)
    assert charts.findall(second) == charts.findall(first) != []


# A bot's events and open alerts (the ORM's reads; the page's state statement only counts them)
STORED_READS = ("FROM bot_events", "SELECT alerts.id")
PAGES = ["/bots/sharp-a", "/bots/sharp-a?range=all", "/accounts/client_sharp"]


def stored_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if any(marker in s for marker in STORED_READS)]


@pytest.mark.parametrize("who", ["admin", "client_a"])
@pytest.mark.parametrize("url", PAGES)
def test_a_second_view_reuses_the_events_and_alerts(history, login, statements, url, who):
    client = getattr(login, f"as_{who}")()
    client.get("/bots/sharp-a")  # the first status fetch records a sample period (above)
    db.session.add(Alert(bot_id="sharp-a", account_identifier="client_sharp",
                         condition="crashed", state="firing", since=utcnow(),
                         detail="exited with code 137"))
    db.session.commit()
    statements.clear()
    first = client.get(url).get_data(as_text=True)
    assert stored_reads(statements)
    statements.clear()
    second = client.get(url).get_data(as_text=True)
    assert stored_reads(statements) == []
    # The servers' rows come with the page's other figures, not in a statement of their own.
    assert all("bot_changes" in s for s in statements if "hummingbot_servers" in s)
    for part in ("Open alerts", "exited with code 137", "<time datetime="):
        assert part in second and second.count(part) == first.count(part)


@pytest.mark.parametrize("url", PAGES)
def test_an_event_that_leaves_its_bot_alone_is_on_the_next_view(history, login, url):
    """A batch's `batch_skipped` writes an event and no bot: the generation moves all the same
    (migration 0014), so the shared list of events is not the one from before it."""
    client = login.as_client_a()
    client.get("/bots/sharp-a")  # the first status fetch records a sample period (above)
    assert "batch skipped" not in client.get(url).get_data(as_text=True)
    generation = db.session.scalar(sa.text("SELECT generation FROM bot_changes"))
    db.session.add(BotEvent(bot_id="sharp-a", actor="system", action="batch_skipped",
                            from_status="running", to_status="running", occurred_at=utcnow(),
                            details={"reason": "server eu unreachable"}))
    db.session.commit()
    assert "batch skipped" in client.get(url).get_data(as_text=True)
    assert db.session.scalar(sa.text("SELECT generation FROM bot_changes")) == generation + 1


@pytest.mark.parametrize("url", PAGES)
def test_an_alert_opening_and_firing_is_on_the_next_view(history, login, url):
    """Alerts change without a bot or an event changing: their fingerprint keys the block."""
    client = login.as_client_a()
    client.get("/bots/sharp-a")
    assert "Open alerts" not in client.get(url).get_data(as_text=True)
    alert = Alert(bot_id="sharp-a", account_identifier="client_sharp", condition="crashed",
                  state="pending", since=utcnow(), detail="exited with code 137")
    db.session.add(alert)
    db.session.commit()
    body = client.get(url).get_data(as_text=True)
    assert "Holding" in body and "badge-firing" not in body
    alert.state, alert.fired_at = "firing", utcnow()
    db.session.commit()
    body = client.get(url).get_data(as_text=True)
    assert "badge-firing" in body and "Holding" not in body
    alert.state, alert.resolved_at = "resolved", utcnow()
    db.session.commit()
    assert "Open alerts" not in client.get(url).get_data(as_text=True)


def test_a_bot_page_and_the_list_agree_on_the_servers(history, login, statements):
    """The bot page hands fleet the servers' rows it read with its figures; the list reads
    them itself: both must look the same, or each page would rebuild the links (reading and
    decrypting every server's settings) after the other."""
    client = login.as_admin()
    client.get("/bots")
    client.get("/bots/sharp-a")
    statements.clear()
    for url in ("/bots", "/bots/sharp-a", "/bots", "/bots/sharp-a"):
        assert client.get(url).status_code == 200
    assert not [s for s in statements if "base_url" in s]
    # Both read the rows with their other figures, not in a statement of their own.
    assert all("bot_changes" in s for s in statements if "hummingbot_servers" in s)


def ranked(body: str) -> str:
    return body[body.index("Best bots, 30 d"):body.index("Recent events")]


def test_best_and_worst_bots_follow_a_rename_and_an_archive_at_once(history, login):
    """Shared, but keyed by the bots' generation: a change to a bot is on the next view."""
    client = login.as_client_a()
    before = ranked(client.get("/accounts/client_sharp").get_data(as_text=True))
    assert "sharp-a" in before and 'href="/bots/sharp-a"' in before
    db.session.execute(sa.text("UPDATE bots SET name = id || '-renamed' "
                               "WHERE account_identifier = 'client_sharp'"))
    db.session.commit()
    after = ranked(client.get("/accounts/client_sharp").get_data(as_text=True))
    assert "sharp-a-renamed" in after and 'href="/bots/sharp-a"' in after
    db.session.execute(sa.text("UPDATE bots SET archived_at = now() WHERE id = 'sharp-a'"))
    db.session.commit()
    # Archived: still ranked (its results were the account's), no longer linked for a client.
    after = ranked(client.get("/accounts/client_sharp").get_data(as_text=True))
    assert "sharp-a-renamed" in after and 'href="/bots/sharp-a"' not in after
    admin = login.as_admin()  # the same test client, now an admin's session
    assert 'href="/bots/sharp-a"' in ranked(admin.get("/accounts/client_sharp")
                                            .get_data(as_text=True))


def test_a_new_sample_is_on_the_page_at_once(history, login, simulator):
    client = login.as_admin()
    before = all_runs_figure(client.get("/bots/sharp-a").get_data(as_text=True))
    simulator.advance(600)
    assert record_samples(hummingbot().feed.snapshot(record=False),
                          now=history + timedelta(minutes=2)).ran
    total = db.session.scalar(sa.text(
        "SELECT sum(total_global_pnl) FROM performance_latest WHERE bot_id = 'sharp-a'"))
    after = all_runs_figure(client.get("/bots/sharp-a").get_data(as_text=True))
    assert after == amount(total, "USDT") != before


def test_recent_events_are_the_accounts_latest(history, make_bot):
    for n in range(12):  # more events on one bot than the page lists
        make_bot(id=f"extra-{n}", name=f"extra-{n}")
    db.session.flush()
    expected = db.session.execute(sa.text("""
        SELECT e.id FROM bot_events e JOIN bots b ON b.id = e.bot_id
        WHERE b.account_identifier = 'client_sharp'
        ORDER BY e.occurred_at DESC, e.id DESC LIMIT 10""")).scalars().all()
    got = services.recent_events("client_sharp", archived_visible=True)
    assert len(got) == len(expected) == 10
    assert [(e.occurred_at, e.id) for e in got] == db.session.execute(sa.text(
        "SELECT occurred_at, bot_id FROM bot_events WHERE id = ANY(:ids) "
        "ORDER BY occurred_at DESC, id DESC"), {"ids": expected}).all()


def test_a_chart_has_few_elements_and_its_table_a_row_per_point():
    now = datetime(2026, 1, 8)
    points = [(now - timedelta(hours=168 - i), i * 0.5 - 20.0, 10.0 + i) for i in range(168)]
    series = services.Series(points=points, runs=[now - timedelta(days=3)], start=-20.0,
                             total_pnl=points[-1][1], total_volume=0.0)
    svg = str(line_chart(series, "USDT", since=now - timedelta(days=7), now=now, label="x"))
    assert svg.count("<rect") == svg.count("<title>") - 2 == 168  # + the chart's, the run's
    assert svg.count('<path class="bars"') == 1 and svg.count("<polyline") == 1
    assert '<g class="point">' not in svg
    first = points[0]
    assert (f"<title>2026-01-01 00:00 UTC: PnL {amount_text(first[1], signed=True)} USDT, "
            f"volume {amount_text(first[2])} USDT</title>") in svg
    rows = str(chart_table(series, "USDT", with_time=True))
    assert rows.count("<tr>") == 168
    assert rows.startswith(f'<tr><td>2026-01-07 23:00</td><td class="num up">'
                           f"{amount(points[-1][1], 'USDT')}</td>")
    assert "No samples" in chart_table(services.Series(), "USDT", with_time=False)


def test_a_days_chart_reads_hourly_rows():
    assert services.RANGES["24h"].resolution == services.HOUR
    assert services.RANGES["24h"].bucket == timedelta(hours=1)
