"""Fleet triage (issue 11, items 1-3): the merged status is stored in PostgreSQL, and the chips,
filters, counts and sorts of the list agree with the badges the rows show, crashed bots
included, at 10,000 bots with a constant number of statements per request."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard import lifecycle
from dashboard.formatting import amount_text, when_text
from dashboard.gateway import record_last_seen
from dashboard.models import Bot, db
from dashboard.registry import quote_currency, utcnow
from dashboard.status import BADGES, LiveSnapshot, StatusFeed
from tests.test_servers import eu_sim, two  # noqa: F401 - fixtures

EXITED = "/docker/exited-containers"
STATUS = "/bot-orchestration/status"


def rows_of(html: str) -> list[tuple[str, str]]:
    """(bot id, badge) of every row, in order."""
    return re.findall(r'<tr id="bot-[^"]*" data-bot-id="([^"]+)" data-status="([^"]+)"', html)


def chips_of(html: str) -> dict[str, int]:
    """Chip link -> count: {"": all, "needs_attention": n, "<badge>": n, ...}."""
    found = {}
    for status, count in re.findall(
            r'<a href="/bots(?:\?[^"]*?)?(?:status=([a-z_]+))?[^"]*" class="chip[^"]*"[^>]*>'
            r'[^<]*<span class="count">([\d,]+)</span>', html):
        found[status] = int(count.replace(",", ""))
    return found


def stored(*ids: str) -> dict[str, str]:
    return dict(db.session.execute(
        sa.select(Bot.id, Bot.display_status).where(Bot.id.in_(ids))).all())


def deployed(make_bot, simulator, bot_id, **seed):
    seed.setdefault("controllers", ["pmm_1"])
    pair = seed.pop("pair", "ETH-USDT")
    name = simulator.seed_bot(bot_id, account="client_sharp", timestamped=True, **seed)
    bot = make_bot(id=bot_id, name=bot_id, pair=pair)
    bot.instance_name, bot.status = name, "running"
    db.session.commit()
    return bot


@pytest.fixture
def fleet(make_bot, simulator):
    """One bot per situation the issue names."""
    running = deployed(make_bot, simulator, "running-1")
    crashed = deployed(make_bot, simulator, "crashed-1")
    simulator.state.exit_bot(crashed.instance_name)  # its container exited on its own
    erroring = deployed(make_bot, simulator, "erroring-1")
    simulator.state.add_log(erroring.instance_name, "ERROR",
                            "Order rejected: insufficient balance <b>x</b>")
    missing = make_bot(id="missing-1", name="missing-1")
    missing.status, missing.instance_name = "running", "missing-1-abc123-20261130-100000"
    make_bot(id="stopped-1", name="stopped-1")
    failed = make_bot(id="failed-1", name="failed-1")
    failed.status, failed.last_error = "deploy_failed", "docker said no"
    db.session.commit()
    return {"running": running, "crashed": crashed, "erroring": erroring}


# ------------------------------------------------------------------ badges, chips, filters
def test_crashed_is_not_missing_and_chips_filters_and_badges_agree(login, fleet, simulator):
    admin = login.as_admin()
    html = admin.get("/bots").get_data(as_text=True)
    shown = dict(rows_of(html))
    assert shown == {"running-1": "running", "crashed-1": "crashed", "erroring-1": "running",
                     "missing-1": "missing", "stopped-1": "stopped",
                     "failed-1": "deploy_failed"}
    assert "Crashed (container exited)" in html and "Missing (needs attention)" in html
    # What the rows show is what PostgreSQL stores, so filters and counts can use it.
    assert stored(*shown) == shown

    chips = chips_of(html)
    assert chips[""] == 6
    assert chips["needs_attention"] == 4  # crashed, missing, deploy failed, the error mark
    for status in set(shown.values()):
        assert chips[status] == list(shown.values()).count(status), status
        page = admin.get(f"/bots?status={status}").get_data(as_text=True)
        assert {b for b, s in rows_of(page)} == {b for b, s in shown.items() if s == status}
        assert all(s == status for _, s in rows_of(page))
    attention = admin.get("/bots?status=needs_attention").get_data(as_text=True)
    assert {b for b, _ in rows_of(attention)} == {"crashed-1", "missing-1", "failed-1",
                                                  "erroring-1"}
    # At most one container listing beside each status call.
    assert 0 < simulator.request_count("GET", EXITED) <= simulator.request_count("GET", STATUS)


def test_api_filters_by_the_merged_status(login, fleet):
    admin = login.as_admin()

    def ids(query):
        body = admin.get(f"/api/bots?{query}").get_json()
        return {bot["id"]: bot["display_status"] for bot in body["bots"]}

    assert ids("status=missing") == {"missing-1": "missing"}
    assert ids("status=crashed") == {"crashed-1": "crashed"}
    assert set(ids("status=needs_attention")) == {"crashed-1", "missing-1", "failed-1",
                                                  "erroring-1"}
    assert ids("status=running") == {"running-1": "running", "erroring-1": "running"}
    assert len(ids("")) == 6
    erroring = admin.get("/api/bots/erroring-1").get_json()
    assert erroring["needs_attention"] is True
    assert "insufficient balance" in erroring["error_log"]
    assert erroring["quote_currency"] == "USDT"


def test_an_error_line_marks_the_row_and_shows_on_the_detail_page(login, fleet):
    admin = login.as_admin()
    html = admin.get("/bots").get_data(as_text=True)
    row = re.search(r'<tr id="bot-erroring-1".*?</tr>', html, re.S).group(0)
    assert 'class="error-mark" title="ERROR Order rejected: insufficient balance ' \
           '&lt;b&gt;x&lt;/b&gt;"' in row
    assert "<b>x</b>" not in html
    running = re.search(r'<tr id="bot-running-1".*?</tr>', html, re.S).group(0)
    assert "error-mark" not in running
    detail = admin.get("/bots/erroring-1").get_data(as_text=True)
    assert "Latest error:</strong> ERROR Order rejected: insufficient balance" in detail


def test_an_archived_bot_that_still_runs_needs_attention(login, fleet):
    bot = db.session.get(Bot, "running-1")
    bot.archived_at, bot.status = utcnow(), "archived"
    db.session.commit()
    admin = login.as_admin()
    html = admin.get("/bots?status=needs_attention").get_data(as_text=True)
    assert ("running-1", "archived_running") in rows_of(html)
    assert "running-1" not in dict(rows_of(admin.get("/bots").get_data(as_text=True)))


# ----------------------------------------------------------------------------- sorting
def test_names_sort_naturally_both_ways(login, make_bot):
    for name in ("bot-10", "bot-2", "Bot-3", "bot-1", "alpha"):
        make_bot(id=name.lower() + "-id", name=name)
    admin = login.as_admin()
    up = [b for b, _ in rows_of(admin.get("/bots?sort=name").get_data(as_text=True))]
    assert up == ["alpha-id", "bot-1-id", "bot-2-id", "bot-3-id", "bot-10-id"]
    down = [b for b, _ in rows_of(admin.get("/bots?sort=-name").get_data(as_text=True))]
    assert down == up[::-1]


def test_sort_by_pnl_and_volume_with_attention_first(login, fleet, make_bot, simulator):
    for n in range(3):
        deployed(make_bot, simulator, f"extra-{n}")
    admin = login.as_admin()
    admin.get("/bots")  # record the snapshot

    def listed(query):
        return admin.get(f"/api/bots?{query}").get_json()["bots"]

    pnls = [b["pnl_quote"] for b in listed("sort=-pnl")]
    known = [p for p in pnls if p is not None]
    assert len(known) >= 4 and known == sorted(known, reverse=True)
    assert pnls[:len(known)] == known  # the unknown ones last
    volumes = [b["volume_quote"] for b in listed("sort=volume") if b["volume_quote"] is not None]
    assert len(volumes) >= 4 and volumes == sorted(volumes)

    first = listed("sort=-pnl&attention=first")
    flags = [b["needs_attention"] for b in first]
    assert flags == sorted(flags, reverse=True) and flags.count(True) == 4
    calm = [b["pnl_quote"] for b in first if not b["needs_attention"]]
    assert [p for p in calm if p is not None] == sorted([p for p in calm if p is not None],
                                                       reverse=True)
    # The page links keep the order in the URL.
    page = admin.get("/bots?sort=-pnl&attention=first").get_data(as_text=True)
    assert 'aria-sort="descending"' in page
    assert "/bots?sort=pnl&amp;attention=first" in page  # PnL's header flips the direction


# -------------------------------------------------------------------- totals and numbers
def test_totals_cover_the_filtered_set_per_quote_currency(login, fleet, make_bot, simulator):
    simulator.advance(0)  # a still clock: the same PnL in every answer
    deployed(make_bot, simulator, "btc-1", pair="BTC-FDUSD")
    admin = login.as_admin()
    admin.get("/bots")
    body = admin.get("/api/bots?per_page=500").get_json()["bots"]
    usdt = sum(b["pnl_quote"] or 0 for b in body if b["quote_currency"] == "USDT")
    html = admin.get("/bots").get_data(as_text=True)
    foot = re.search(r"<tfoot>.*?</tfoot>", html, re.S).group(0)
    assert "quoted in FDUSD" in foot and "quoted in USDT" in foot
    assert amount_text(usdt, signed=True) in foot
    one = admin.get("/bots?account=client_sharp&status=running").get_data(as_text=True)
    assert "Total for client_sharp" in re.search(r"<tfoot>.*?</tfoot>", one, re.S).group(0)


def test_one_precision_rule_and_the_quote_currency():
    assert amount_text(1234567.891, signed=True) == "+1,234,567.89"
    assert amount_text(-0.004213, signed=True) == "-0.0042"
    assert amount_text(0.0, signed=True) == "0.00"
    assert amount_text(-0.00001, signed=True) == "0.0000"
    assert amount_text(1520.5) == "1,520.50"
    assert quote_currency("ETH-USDT") == "USDT" and quote_currency("weird") == ""


def test_times_show_the_date_only_when_it_is_not_today():
    now = datetime(2026, 11, 30, 15, 0, 0)
    assert when_text(datetime(2026, 11, 30, 9, 5, 7), now) == "09:05:07 UTC"
    assert when_text(datetime(2026, 11, 29, 23, 59, 0), now) == "2026-11-29 23:59 UTC"


def test_list_amounts_are_signed_coloured_and_in_the_quote_currency(login, fleet):
    html = login.as_admin().get("/bots").get_data(as_text=True)
    row = re.search(r'<tr id="bot-running-1".*?</tr>', html, re.S).group(0)
    assert re.search(r'<span class="amount (pos|neg)">[+-][\d,]+\.\d{2,4}</span> '
                     r'<small>USDT</small>', row)
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+ UTC" data-local>', row)


# ------------------------------------------------------------------- Starting…, stuck
def test_after_start_the_row_says_starting_until_the_first_report(login, make_bot, simulator):
    simulator.configure(warmup_seconds=30)
    simulator.advance(0)  # a manual clock for the simulator
    bot = deployed(make_bot, simulator, "slow-start", warm=False)
    admin = login.as_admin()
    before = dict(rows_of(admin.get("/bots").get_data(as_text=True)))
    assert before["slow-start"] == "stopped_container_up"  # up, not heard from yet

    lifecycle.start(bot.id, "admin")
    shown = dict(rows_of(admin.get("/bots").get_data(as_text=True)))
    assert shown["slow-start"] == "starting"
    assert stored("slow-start") == {"slow-start": "starting"}

    simulator.advance(31)  # its first report
    shown = dict(rows_of(admin.get("/bots").get_data(as_text=True)))
    assert shown["slow-start"] == "running"
    db.session.expire_all()
    assert db.session.get(Bot, "slow-start").start_requested_at is None


def test_a_start_never_reported_becomes_stuck(login, make_bot, simulator):
    simulator.configure(warmup_seconds=3600)
    bot = deployed(make_bot, simulator, "never-reports", warm=False)
    bot.start_requested_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    html = login.as_admin().get("/bots?status=needs_attention").get_data(as_text=True)
    assert ("never-reports", "stuck") in rows_of(html)


# ------------------------------------------------------------------- slow Hummingbot
def test_an_overdue_refresh_serves_stale_badges_and_says_slow():
    release, calls = threading.Event(), []

    def fetch():
        calls.append(1)
        if len(calls) == 2:
            release.wait(10)
        return {}

    now = [0.0]
    feed = StatusFeed(fetch, ttl=2.0, clock=lambda: now[0])
    first = feed.snapshot()
    assert not first.stale
    now[0] = 5.0
    refresher = threading.Thread(target=feed.snapshot)
    refresher.start()
    while len(calls) < 2:
        threading.Event().wait(0.005)
    assert feed.snapshot() is first  # just started: not overdue yet
    now[0] = 8.0  # the refresh has taken longer than a period
    late = feed.snapshot()
    assert (late.overdue, late.stale, late.slow, late.reachable) == (True, True, True, True)
    release.set()
    refresher.join(10)
    assert not feed.snapshot().stale


def test_recovery_desk_shows_an_unknown_count_as_unknown(login, fleet, simulator):
    simulator.set_fault("unreachable")
    html = login.as_admin().get("/recovery").get_data(as_text=True)
    assert "unknown how many need attention" in html
    assert "0 need" not in html and "0 needs" not in html


# ------------------------------------------------------------------------- at scale
def add_fleet(count: int, start: int = 0, every: int = 3) -> None:
    """With every=3: a third stopped, a third running but reported nowhere (missing), a
    third failed. Larger `every`: mostly stopped, one in `every` missing, one failed."""
    db.session.execute(sa.text("""
        INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, status,
                          instance_name)
        SELECT 'f' || n, 'f-' || n, 'client_sharp', 'pure_market_making', 'binance',
               (ARRAY['BTC-USDT', 'ETH-USDC'])[1 + n % 2],
               CASE n % :every WHEN 1 THEN 'running' WHEN 2 THEN 'deploy_failed'
                    ELSE 'stopped' END,
               CASE WHEN n % :every = 1 THEN 'f-' || n || '-gone' END
        FROM generate_series(:first, :last) AS n
    """), {"first": start + 1, "last": start + count, "every": every})


TRIAGE_PAGES = ["/bots?status=needs_attention&sort=-pnl&attention=first",
                "/bots?sort=-pnl&attention=first", "/bots?sort=name&page=3",
                "/bots?status=missing&sort=-seen", "/bots?sort=-volume",
                "/api/bots?status=missing", "/api/bots?status=needs_attention&sort=-pnl"]


@pytest.mark.parametrize("who", ["admin", "client"])
def test_at_10000_bots_counts_match_badges_and_statements_stay_constant(
        login, statements, who, monkeypatch):
    client = login.as_admin() if who == "admin" else login.as_client_a()
    monkeypatch.setattr("dashboard.gateway.RECORD_AGAIN_SECONDS", float("inf"))

    def per_page():
        found = {}
        for path in TRIAGE_PAGES:
            statements.clear()
            assert client.get(path).status_code == 200, path
            found[path] = len(statements)
        return found

    client.get("/bots")  # the feed's first snapshot is recorded once, here
    add_fleet(150)
    record_last_seen(LiveSnapshot(fetched_at=utcnow(), bots={}, exited=frozenset()))
    per_page()  # warm: the first page with bots reads the servers once (the fleet)
    few = per_page()
    add_fleet(9_850, start=150)
    db.session.execute(sa.text("ANALYZE bots"))
    statements.clear()
    record_last_seen(LiveSnapshot(fetched_at=utcnow(), bots={}, exited=frozenset()))
    assert len(statements) <= 3  # one UPDATE for the whole fleet (+ savepoint bookkeeping)
    many = per_page()
    assert few == many
    # A handful per page, never one per row: the page, its chips and totals, its sparklines;
    # for admins also the alerts bell's COUNT; and the servers' generation.
    assert max(many.values()) <= 11, many

    html = client.get("/bots").get_data(as_text=True)
    chips = chips_of(html)
    assert chips[""] == 10_000
    assert chips["missing"] == 3_334 and chips["deploy_failed"] == chips["stopped"] == 3_333
    assert chips["needs_attention"] == 6_667
    missing = client.get("/bots?status=missing&sort=-name").get_data(as_text=True)
    assert "3,334 bots" in missing
    assert {s for _, s in rows_of(missing)} == {"missing"}
    names = [b for b, _ in rows_of(missing)]
    numbers = [int(b[1:]) for b in names]
    assert numbers == sorted(numbers, reverse=True)  # natural order: f-9997 before f-997
    body = client.get("/api/bots?status=missing&per_page=500").get_json()
    assert body["total"] == 3_334
    assert {b["display_status"] for b in body["bots"]} == {"missing"}


def test_list_orders_use_indexes_not_a_sort_of_every_bot(app, accounts):
    add_fleet(3000, every=40)  # the usual fleet: few need attention
    record_last_seen(LiveSnapshot(fetched_at=utcnow(), bots={}, exited=frozenset()))
    db.session.execute(sa.text("ANALYZE bots"))
    from dashboard.registry import BotFilters, filtered_bots

    for filters in (BotFilters(), BotFilters(sort="-name"), BotFilters(account="client_sharp"),
                    BotFilters(status="missing"), BotFilters(status="needs_attention")):
        query = filtered_bots(filters, accounts.admin).limit(50).offset(20)
        compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(db.session.scalars(sa.text(f"EXPLAIN {compiled}")))
        assert "Index" in plan and "Sort" not in plan, (filters, plan)


def test_every_badge_has_words():
    for status, label in BADGES.items():
        assert label and status == status.lower()


def test_a_non_finite_amount_from_hummingbot_is_no_amount(app):
    """Regression: "NaN" parsed as a float, and JSON cannot carry it to PostgreSQL, so one
    such report would have failed the whole snapshot's recording."""
    from dashboard.hummingbot import LiveBot

    report = LiveBot.from_payload("b", {"status": "running", "performance": {"c": {
        "status": "running", "performance": {"global_pnl_quote": "NaN",
                                             "volume_traded": "inf"}}}})
    assert (report.total_global_pnl_quote, report.total_volume_quote) == (None, None)
    record_last_seen(LiveSnapshot(fetched_at=utcnow(), bots={"b": report}))


def test_the_stored_badge_is_the_badge_the_page_computes_in_every_case(app):
    """The set-based UPDATE (gateway.RECORD_STATUS) and the page (status.merge_rows) apply
    the one rule: every definition status x script or controllers x what Hummingbot says."""
    from dashboard.hummingbot import LiveBot
    from dashboard.status import merge_rows

    def report(word):
        perf = {"c": {"status": "running", "performance": {"global_pnl_quote": 1.5}}}
        return {
            "running": {"status": "running", "performance": perf, "recently_active": True},
            "trading_stopped": {"status": "running", "recently_active": True,
                                "performance": {"c": {"status": "running", "performance": {}}}},
            "stopped_active": {"status": "stopped", "performance": {}, "recently_active": True},
            "stopped": {"status": "stopped", "performance": {}, "recently_active": False},
            "error": {"status": "error", "error": "boom"},
        }[word]

    words = ("running", "trading_stopped", "stopped_active", "stopped", "error", "crashed",
             "absent")
    live, exited, n = {}, set(), 0
    long_ago = utcnow() - timedelta(hours=2)
    for status in ("stopped", "running", "deploy_failed", "deploying", "stopping"):
        for strategy in ("pure_market_making", "v2_with_controllers"):
            for word in words:
                for old in (False, True):
                    n += 1
                    name = f"case-{n}"
                    db.session.execute(sa.text("""
                        INSERT INTO bots (id, name, account_identifier, strategy, connector,
                                          pair, status, instance_name, updated_at,
                                          start_requested_at)
                        VALUES (:n, :n, 'client_sharp', :strategy, 'binance', 'BTC-USDT',
                                :status, :n || '-live', :updated, :started)
                    """), {"n": name, "strategy": strategy, "status": status,
                           "updated": long_ago if old else utcnow(),
                           "started": (long_ago if old else utcnow())
                           if status == "running" and strategy == "v2_with_controllers"
                           else None})
                    if word == "crashed":
                        exited.add(f"{name}-live")
                    elif word != "absent":
                        live[f"{name}-live"] = LiveBot.from_payload(f"{name}-live", report(word))
    snapshot = LiveSnapshot(fetched_at=utcnow(), bots=live, exited=frozenset(exited))
    record_last_seen(snapshot)
    db.session.expire_all()
    bots = db.session.scalars(sa.select(Bot).where(Bot.id.like("case-%"))).all()
    shown = {row.bot.id: row.display_status for row in merge_rows(bots, snapshot)}
    assert {bot.id: bot.display_status for bot in bots} == shown
    assert {"stuck", "starting", "crashed", "missing", "running_script",
            "stopped_container_up", "error"} <= set(shown.values())


# ------------------------------------------------------------------ per Hummingbot server
def test_chips_counts_and_totals_follow_the_server_filter(two, make_bot, login):  # noqa: F811
    """?server= narrows the chips, their counts and the totals, as the account filter does,
    and every chip keeps the server chosen."""
    for bot_id, server, status in (("home-1", "default", "stopped"),
                                   ("eu-lost", "eu", "running"), ("eu-idle", "eu", "stopped")):
        bot = make_bot(id=bot_id, name=bot_id)
        bot.server_id, bot.status = two[server], status
        if status == "running":  # deployed once, and neither server runs it now
            bot.instance_name = f"{bot_id}-abc123-20261130-100000"
    db.session.commit()
    admin = login.as_admin()
    everything = admin.get("/bots").get_data(as_text=True)
    assert chips_of(everything) == {"": 3, "needs_attention": 1, "stopped": 2, "missing": 1}

    html = admin.get("/bots?server=eu").get_data(as_text=True)
    assert {bot_id for bot_id, _ in rows_of(html)} == {"eu-lost", "eu-idle"}
    chips = re.findall(r'<a href="([^"]*)" class="chip[^>]*>[^<]*<span class="count">(\d+)<',
                       html)
    assert all("server=eu" in href for href, _ in chips), chips  # a click keeps the server
    counts = {(re.findall(r"status=([a-z_]+)", href) or [""])[0]: int(n) for href, n in chips}
    assert counts == {"": 2, "needs_attention": 1, "stopped": 1, "missing": 1}
    sorts = re.findall(r'<a href="([^"]*)" class="sort"', html)
    assert sorts and all("server=eu" in href for href in sorts)
    assert "Total, 2 bots" in html
    missing = admin.get("/bots?server=eu&status=missing").get_data(as_text=True)
    assert rows_of(missing) == [("eu-lost", "missing")]
