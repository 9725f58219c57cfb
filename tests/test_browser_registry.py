"""In Chromium: an admin creates a bot and sees it; a client sees only its own bots."""

import pytest

from tests.browser import CspWatcher, log_in, log_out, open_as_client, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture
def server(committed_app, migrated, server_env):
    with running_server(migrated, **server_env) as running:
        yield running



def test_admin_creates_a_bot_and_a_client_sees_only_its_own(chromium, server):
    other = Browser(server.url).login("admin", TEST_PASSWORD)
    assert other.submit("/bots/new", make_bot_data(
        id="other-bot", name="other-bot", account_identifier="client_other",
        config='{"secret": "other-only"}')).status_code == 302

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    page.click("text=New bot")
    for field, value in make_bot_data(id="sharp-pmm", name="sharp-pmm").items():
        if field == "config":
            page.fill("textarea[name=config]", '{"order_amount": 0.01, "bid_spread": 0.002}')
        else:
            page.fill(f"input[name={field}]", value)
    page.click("text=Create bot")
    page.wait_for_url("**/bots/sharp-pmm")
    assert "Bot sharp-pmm created." in page.content()
    screenshot(page, "admin-detail")

    page.goto(server.url + "/bots")
    row = page.locator("#bot-sharp-pmm")
    assert row.locator(".badge").inner_text() == "Stopped"
    assert row.locator("text=Edit").is_visible()
    assert page.locator("#bot-other-bot").is_visible()
    screenshot(page, "admin-list")

    # A bad edit keeps the input and says what is wrong.
    page.goto(server.url + "/bots/sharp-pmm/edit")
    page.fill("textarea[name=config]", '{"order_amount": }')
    page.click("text=Save")
    # The 422 answer is a new page: read it once it has loaded, not mid-navigation.
    page.wait_for_selector("text=Configuration is not valid JSON")
    assert "Configuration is not valid JSON" in page.content()
    assert page.input_value("textarea[name=config]") == '{"order_amount": }'
    screenshot(page, "admin-edit-error")
    log_out(page)
    context.close()

    context, page, csp_client = open_as_client(chromium, server)
    assert page.locator("#bot-sharp-pmm").is_visible()
    assert page.locator("#bot-other-bot").count() == 0
    assert page.locator("text=Edit").count() == 0
    screenshot(page, "client-list")
    page.click("#bot-sharp-pmm a")
    page.wait_for_url("**/bots/sharp-pmm")
    assert '"order_amount": 0.01' in page.locator("pre.config").inner_text()
    screenshot(page, "client-detail")
    assert page.goto(server.url + "/bots/other-bot").status == 404
    context.close()

    assert csp.violations == [] and csp_client.violations == []
