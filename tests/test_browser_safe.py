"""In Chromium: two admins edit one bot and the second gets the three-way merge; the recovery
desk offers Re-link for a missing bot and its orphan. Screenshots at 1440 and 390 px."""

from __future__ import annotations

import pytest

from dashboard.models import Bot, db
from dashboard.registry import create_bot
from tests.browser import log_in, screenshot
from tests.conftest import make_bot_data
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def server(committed_app, migrated, server_env):
    env = {**server_env, "STATUS_POLL_SECONDS": "60", "RECONCILE_INTERVAL_SECONDS": "0"}
    with running_server(migrated, **env) as running:
        yield running


def test_the_second_editor_gets_a_three_way_merge(chromium, server, committed_app):
    with committed_app.app_context():
        create_bot(make_bot_data(config='{"order_amount": 0.01, "bid_spread": 0.002}'),
                   "admin")
        db.session.remove()
    first = chromium.new_context(viewport=WIDTHS["desktop"]).new_page()
    second = chromium.new_context(viewport=WIDTHS["desktop"]).new_page()
    for page in (first, second):
        log_in(page, server, "admin")
        page.goto(server.url + "/bots/pmm-btc/edit")

    first.fill("input[name=pair]", "ETH-USDT")
    first.fill("textarea[name=config]", '{"order_amount": 0.5, "bid_spread": 0.002}')
    first.click("main form button[type=submit]")
    first.wait_for_url("**/bots/pmm-btc")

    second.fill("input[name=connector]", "kucoin")
    second.fill("textarea[name=config]", '{"order_amount": 0.01, "bid_spread": 0.004}')
    second.click("main form button[type=submit]")
    second.wait_for_selector("#conflict")
    # Untouched here: their pair. Changed here only: my connector. Both: the configuration.
    assert second.input_value("input[name=pair]") == "ETH-USDT"
    assert second.input_value("input[name=connector]") == "kucoin"
    assert second.locator("#conflict-config del").count() > 0
    assert second.locator("#conflict-config ins").count() > 0
    assert second.locator("#conflict-pair").count() == 0
    screenshot(second, "edit-conflict-desktop")
    second.set_viewport_size(WIDTHS["phone"])
    screenshot(second, "edit-conflict-phone")
    # The comparison fits the phone's width (the page's own nav is not this test's subject).
    assert second.evaluate("(() => { const box = document.getElementById('conflict');"
                           " return box.scrollWidth <= box.clientWidth; })()")

    second.click("main form button[type=submit]")
    second.wait_for_url("**/bots/pmm-btc")
    with committed_app.app_context():
        bot = db.session.get(Bot, "pmm-btc")
        assert (bot.pair, bot.connector, bot.config) == (
            "ETH-USDT", "kucoin", {"order_amount": 0.01, "bid_spread": 0.004})
        db.session.remove()


def test_the_recovery_desk_offers_re_link_on_both_sections(chromium, server, committed_app,
                                                           simulator):
    simulator.state.add_account("client_sharp")
    with committed_app.app_context():
        bot = create_bot(make_bot_data(id="sharp-pmm", name="sharp-pmm",
                                       strategy="v2_with_controllers"), "admin")
        bot.status, bot.instance_name = "running", "sharp-pmm-0a1b2c-20250101-000000"
        bot.deploy_request_id = "4f2a9c" + "0" * 26
        db.session.commit()
        db.session.remove()
    orphan = simulator.seed_bot("sharp-pmm-4f2a9c", account="client_sharp",
                                controllers=["pmm_btc_1"], timestamped=True)
    page = chromium.new_context(viewport=WIDTHS["desktop"]).new_page()
    log_in(page, server, "admin")
    page.goto(server.url + "/recovery")
    assert page.locator("#relink-missing-sharp-pmm button").is_visible()
    assert page.locator(f"#relink-orphan-{orphan} button").is_visible()
    screenshot(page, "recovery-relink-desktop")
    page.set_viewport_size(WIDTHS["phone"])
    screenshot(page, "recovery-relink-phone")
    # On a phone each row is a card: its buttons sit on the screen, not past a scroll box's edge.
    for selector in ("#relink-missing-sharp-pmm button", f"#relink-orphan-{orphan} button",
                     "#missing-sharp-pmm a[href$='/redeploy']",
                     "#missing-sharp-pmm button:has-text('Mark stopped')"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
    assert page.evaluate("() => getComputedStyle(document.querySelector("
                         "'#missing-sharp-pmm td[data-label]'), '::before').content") \
        == '"Account: "'
    page.set_viewport_size(WIDTHS["desktop"])

    page.click("#relink-missing-sharp-pmm button")
    page.wait_for_url("**/recovery")
    assert "is re-linked to" in page.locator(".flash-success").inner_text()
    with committed_app.app_context():
        assert db.session.get(Bot, "sharp-pmm").instance_name == orphan
        db.session.remove()
