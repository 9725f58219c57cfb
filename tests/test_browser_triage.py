"""In Chromium: the status chips and sort headers of the list, one click each, and the
screenshots of the triage view (desktop and phone width) and of a detail page."""

from __future__ import annotations

import pytest

from dashboard.models import Bot, db
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import make_bot_data
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(committed_app, migrated, server_env):
    env = {**server_env, "STATUS_POLL_SECONDS": "60", "RECONCILE_INTERVAL_SECONDS": "0"}
    with running_server(migrated, **env) as running:
        yield running


@pytest.fixture
def fleet(committed_app, simulator):
    from dashboard.registry import create_bot

    simulator.advance(0)  # a still clock: the same PnL on every page
    live = {}
    for bot_id, pair in (("pmm-eth-2", "ETH-USDT"), ("pmm-eth-10", "ETH-USDT"),
                         ("grid-btc-1", "BTC-USDT"), ("crashed-sol", "SOL-USDT"),
                         ("erroring-eth", "ETH-USDT")):
        live[bot_id] = (simulator.seed_bot(bot_id, account="client_sharp", timestamped=True,
                                           controllers=["pmm_1"]), pair)
    simulator.state.exit_bot(live["crashed-sol"][0])
    simulator.state.add_log(live["erroring-eth"][0], "ERROR",
                            "Order rejected: insufficient balance")
    with committed_app.app_context():
        for bot_id, (instance, pair) in live.items():
            create_bot(make_bot_data(id=bot_id, name=bot_id, pair=pair,
                                     strategy="v2_with_controllers"), "admin")
            bot = db.session.get(Bot, bot_id)
            bot.instance_name, bot.status = instance, "running"
        create_bot(make_bot_data(id="gone-btc", name="gone-btc"), "admin")
        gone = db.session.get(Bot, "gone-btc")
        gone.status, gone.instance_name = "running", "gone-btc-abc123-20261130-080000"
        create_bot(make_bot_data(id="idle-ada", name="idle-ada", pair="ADA-USDT",
                                 account_identifier="client_other"), "admin")
        db.session.commit()


def ids(page) -> list[str]:
    return page.eval_on_selector_all("tbody tr[data-bot-id]",
                                     "rows => rows.map(r => r.dataset.botId)")


def test_chips_and_sort_headers_one_click_each(chromium, server, fleet):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    assert ids(page) == ["crashed-sol", "erroring-eth", "gone-btc", "grid-btc-1", "idle-ada",
                         "pmm-eth-2", "pmm-eth-10"]  # natural order: 2 before 10
    assert page.locator("#bot-crashed-sol .badge").inner_text() == "Crashed (container exited)"
    assert page.locator("#bot-gone-btc .badge").inner_text() == "Missing (needs attention)"
    title = page.locator("#bot-erroring-eth .error-mark").get_attribute("title")
    assert "insufficient balance" in title
    # The local time is added to the UTC title by static/app.js.
    assert "(your time)" in page.locator("#bot-pmm-eth-2 time[data-local]").get_attribute("title")
    screenshot(page, "triage-list-1440")

    page.click("a.chip-attention")
    page.wait_for_url("**status=needs_attention**")
    assert sorted(ids(page)) == ["crashed-sol", "erroring-eth", "gone-btc"]
    assert page.locator("a.chip-attention").get_attribute("aria-current") == "true"

    page.click("a.chip >> nth=0")  # All
    page.wait_for_url("**/bots")
    page.click("th >> text=PnL")
    page.wait_for_url("**sort=-pnl**")
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("PnL")
    page.click("text=Show bots needing attention first")
    page.wait_for_url("**attention=first**")
    assert set(ids(page)[:3]) == {"crashed-sol", "erroring-eth", "gone-btc"}
    assert "sort=-pnl" in page.url  # the order survives in the URL
    screenshot(page, "triage-attention-first-by-pnl-1440")

    phone = chromium.new_context(viewport={"width": 390, "height": 844})
    small = phone.new_page()
    log_in(small, server, "admin")
    screenshot(small, "triage-list-390")
    small.goto(server.url + "/bots/erroring-eth")
    assert "Latest error:" in small.content()
    page.goto(server.url + "/bots/erroring-eth")
    screenshot(page, "triage-detail-1440")
    assert csp.violations == []
    phone.close()
    context.close()


# Widths from a phone to a wide desktop: the list is cards wherever its table would not fit
# Pico's column (under 1280 px) and a table that stays inside that column from there on.
LIST_WIDTHS = (390, 800, 1024, 1280, 1440)
LIST_GEOMETRY = """() => {
    const main = document.querySelector('main'), table = document.querySelector('table.bots');
    const label = cell => getComputedStyle(cell, '::before').content;
    const row = document.querySelector('#bot-crashed-sol');
    return {scroll: document.documentElement.scrollWidth,
            viewport: document.documentElement.clientWidth,
            main: main.getBoundingClientRect().right, table: table.getBoundingClientRect().right,
            cards: getComputedStyle(table.querySelector('thead')).position === 'absolute',
            labels: [...row.querySelectorAll('td[data-label]')].map(label),
            total: [...document.querySelectorAll('tfoot td.num')].map(label)};
}"""


def test_the_list_fits_every_width_and_its_cards_name_their_values(chromium, server, fleet,
                                                                  committed_app):
    from dashboard import servers

    with committed_app.app_context():  # a second server (down): the Server column shows
        eu = servers.add_server("eu", "http://127.0.0.1:9")
        db.session.get(Bot, "idle-ada").server_id = eu.id
        db.session.commit()
        db.session.remove()
    for role, widths in (("admin", LIST_WIDTHS), ("sharp", (390, 1024, 1440))):
        for width in widths:
            context = chromium.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            log_in(page, server, role)
            page.goto(server.url + "/bots")
            if role == "admin":
                assert page.locator("th", has_text="Server").count() == 1
            seen = page.evaluate(LIST_GEOMETRY)
            where = f"{role} at {width} px: {seen}"
            assert seen["scroll"] == seen["viewport"], where
            assert seen["table"] <= seen["main"] + 0.5, where  # the actions stay in the column
            assert seen["cards"] == (width < 1280), where
            if seen["cards"]:  # a card says which figure is the PnL, the volume...
                expected = ['"Account: "', *(['"Server: "'] if role == "admin" else []),
                            '"Market: "', '"PnL: "', '"24 h: "', '"Volume: "', '"Last seen: "']
                assert seen["labels"] == expected, where
                assert seen["total"] == ['"PnL: "', '"Volume: "'], where
            else:
                assert set(seen["labels"]) == {"none"}, where
            screenshot(page, f"triage-list-{role}-{width}")
            context.close()
