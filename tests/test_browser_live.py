"""In Chromium: the open list page follows Hummingbot without a reload, and keeps every bot
with its last status, greyed, under a banner when Hummingbot goes away."""

from __future__ import annotations

import pytest

from dashboard.models import Bot, db
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import make_bot_data
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture
def server(committed_app, migrated, server_env):
    env = {**server_env, "STATUS_POLL_SECONDS": "1", "RECONCILE_INTERVAL_SECONDS": "0",
           "HUMMINGBOT_BREAKER_RESET_SECONDS": "2"}
    with running_server(migrated, **env) as running:
        yield running



def wait_until(page, condition, seconds: float = 10.0) -> None:
    """Poll a page condition (wait_for_function would need eval, which the CSP forbids)."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("condition not met")


def badge(page, bot_id):
    return page.locator(f"#bot-{bot_id} .badge")


def test_list_follows_hummingbot_live_and_survives_it_going_away(chromium, server,
                                                                  committed_app, simulator):
    from dashboard.registry import create_bot

    paused = simulator.seed_bot("grid-eth-20261127-090000", controllers=["grid_eth_1"],
                                account="client_sharp", trading=False)
    with committed_app.app_context():
        create_bot(make_bot_data(id="sim-bot", name="sim-bot"), "admin")
        create_bot(make_bot_data(id="grid-eth", name="grid-eth",
                                 strategy="v2_with_controllers"), "admin")
        create_bot(make_bot_data(id="other-bot", name="other-bot",
                                 account_identifier="client_other"), "admin")
        db.session.get(Bot, "grid-eth").instance_name = paused
        db.session.commit()

    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    assert badge(page, "sim-bot").inner_text() == "Stopped"
    assert badge(page, "grid-eth").inner_text() == "Stopped (container up)"
    screenshot(page, "live-list-before")

    # Hummingbot starts them; the open page follows without a reload.
    page.evaluate("window.__not_reloaded = true")
    simulator.seed_bot("sim-bot", controllers=["pmm_btc_1"], account="client_sharp")
    simulator.state.start_bot(paused)
    page.wait_for_selector("#bot-sim-bot .badge-running", timeout=10_000)
    page.wait_for_selector("#bot-grid-eth .badge-running", timeout=10_000)
    assert badge(page, "sim-bot").inner_text() == "Running"
    assert page.evaluate("window.__not_reloaded") is True
    assert page.locator("#bot-sim-bot td.num").first.inner_text().endswith("USDT")
    screenshot(page, "live-list-running")

    # An open row menu pauses polling, so a swap never closes it under the pointer.
    page.evaluate("""() => {
        window.__polls = {prevented: 0, sent: 0};
        document.body.addEventListener("htmx:beforeRequest", (e) => setTimeout(() => {
            if (e.defaultPrevented) window.__polls.prevented++; else window.__polls.sent++;
        }, 0));
    }""")
    sent_while_open: list[str] = []
    page.click("#bot-grid-eth summary")
    menu_open = True
    page.on("request", lambda r: sent_while_open.append(r.url)
            if menu_open and "/bots" in r.url and r.headers.get("hx-request") else None)
    wait_until(page, lambda: page.evaluate("window.__polls.prevented") >= 2, seconds=30)
    assert page.locator("#bot-grid-eth details[open]").count() == 1
    assert page.locator("#bot-grid-eth >> text=Stop and archive…").is_visible()
    # The menu is right-aligned (dir=rtl) but its words read left to right: "Deploy…".
    directions = page.locator("#bot-grid-eth details ul a").evaluate_all(
        "links => links.map(a => getComputedStyle(a).direction)")
    assert directions == ["ltr"] * 4
    screenshot(page, "live-list-menu-open")
    menu_open = False
    assert sent_while_open == []
    page.click("#bot-grid-eth summary")  # closed again: polling resumes...
    assert page.locator("#bot-grid-eth details[open]").count() == 0
    page.evaluate("""() => { window.__swaps = 0;
        document.body.addEventListener("htmx:afterSwap", () => window.__swaps++); }""")
    wait_until(page, lambda: page.evaluate("window.__polls.sent") >= 1)
    wait_until(page, lambda: page.evaluate("window.__swaps") >= 1)
    # ...and a keyboard user's focus survives the swap.
    assert page.evaluate("document.activeElement.id") == "menu-grid-eth"

    # Hummingbot goes away: every bot stays listed, with its last status, greyed.
    simulator.set_fault("unreachable")
    page.wait_for_selector("text=Hummingbot is unreachable.", timeout=15_000)
    for bot_id in ("sim-bot", "grid-eth", "other-bot"):
        assert page.locator(f"#bot-{bot_id}").is_visible()
        assert "stale" in badge(page, bot_id).get_attribute("class")
    assert badge(page, "sim-bot").inner_text().endswith("Running")
    assert "seen" in page.locator("#bot-sim-bot td:has(.badge) small").inner_text()
    # Greyed by colour and a dashed border, not faded (opacity failed axe's contrast check).
    style = badge(page, "sim-bot").evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).borderTopStyle]")
    assert style == ["rgb(89, 89, 89)", "dashed"]  # --bm-grey, not Running's green
    assert page.locator("#bot-sim-bot >> text=Edit").is_visible()
    assert page.evaluate("window.__not_reloaded") is True
    screenshot(page, "live-list-unreachable")

    # And it comes back by itself.
    simulator.clear_faults()
    page.wait_for_selector("#bot-sim-bot .badge-running:not(.stale)", timeout=30_000)
    assert page.locator("text=Hummingbot is unreachable.").count() == 0

    page.goto(server.url + "/bots/sim-bot")
    assert page.locator("#live table.performance").is_visible()
    screenshot(page, "live-detail")

    # The lifecycle pages: a deploy form and a confirmation, keyboard-reachable.
    page.goto(server.url + "/bots/grid-eth/deploy")
    assert page.locator("input[name=mode][value=controllers]").is_checked()
    screenshot(page, "deploy-form")
    page.goto(server.url + "/bots/grid-eth/stop")
    assert page.locator("input[name=cancel_orders][value='1']").is_checked()
    screenshot(page, "confirm-stop")
    context.close()
    assert csp.violations == []
