"""In Chromium: select across pages, preview, confirm once, watch the batch's progress; and a
bot's configuration versions. Screenshots at 1440 and 390 px."""

import pytest

from dashboard.models import db
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, running_server
from tests.test_batches import _world

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MAIN_OVERFLOWS = "(m => m.scrollWidth > m.clientWidth)(document.querySelector('main'))"


@pytest.fixture
def server(committed_app, migrated, server_env, simulator):
    with committed_app.app_context():
        _world(simulator, {f"sharp-{i:02d}": ("client_sharp", "running" if i % 4 else "stopped",
                                              True) for i in range(12)}
               | {f"other-{i}": ("client_other", "running", True) for i in range(3)})
        db.session.remove()
    # Each stop takes a moment, so the progress is visible while it happens.
    simulator.set_fault("slow", seconds=0.3, path="/bot-orchestration/stop-bot")
    env = {**server_env, "PAGE_SIZE": "5", "BATCH_WORKERS": "2", "BATCH_POLL_SECONDS": "0.2"}
    with running_server(migrated, **env) as running:
        yield running


def test_select_across_pages_preview_confirm_and_watch_progress(chromium, server, simulator):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    page.goto(server.url + "/bots?account=client_sharp")
    page.click("text=Next →")
    page.wait_for_url("**page=2**")
    assert page.locator("text=All 12 matching this filter").is_visible()
    page.check("input[name=all]")
    screenshot(page, "batch-list-selection-1440")
    page.click("button[name=action][value=stop]")
    page.wait_for_url("**/batches/new?**")
    text = page.content()
    assert "Confirm: stop 9 bots" in text and "3 \u00d7 already stopped" in text
    assert page.locator("table.preview tbody tr").count() == 12  # every page, not only page 2
    screenshot(page, "batch-preview-1440")
    page.check("input[name=cancel_orders][value='0']")
    page.click("text=Confirm: stop 9 bots")
    page.wait_for_url("**/batches/*")
    assert "In progress" in page.content() or "Finished" in page.content()
    screenshot(page, "batch-progress-1440")
    # htmx polling brings the end without a reload.
    page.wait_for_selector("text=Finished", timeout=60_000)
    assert "9 done" in page.content() and "3 skipped" in page.content()
    # And then the page stops asking: two poll periods pass without a request.
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url)
            if "/batches/" in request.url else None)
    page.wait_for_timeout(4_500)
    assert polls == []
    screenshot(page, "batch-finished-1440")
    calls = simulator.bot_calls()
    assert len(calls) == 9 and set(calls.values()) == {1}

    # Ticked rows: the plain form sends their ids.
    page.goto(server.url + "/bots?account=client_sharp")
    page.check("#bot-sharp-00 input[name=ids]")
    page.check("#bot-sharp-04 input[name=ids]")
    page.click("button[name=action][value=deploy]")
    page.wait_for_url("**/batches/new?**")
    assert page.locator("table.preview tbody tr").count() == 2
    page.goto(server.url + "/batches")
    assert page.locator("table.bots tbody tr").count() == 1
    screenshot(page, "batch-index-1440")
    context.close()

    narrow = chromium.new_context(viewport={"width": 390, "height": 844})
    page = narrow.new_page()
    log_in(page, server, "admin")
    widths = {}
    page.goto(server.url + "/bots?account=client_sharp")
    screenshot(page, "batch-list-selection-390")  # the list's table is another change's work
    for path, name in (("/batches/new?action=stop&all=1&account=client_sharp&kill=1",
                        "batch-kill-switch-preview-390"),
                       ("/batches", "batch-index-390")):
        page.goto(server.url + path)
        screenshot(page, name)
        widths[path] = page.evaluate(MAIN_OVERFLOWS)
    narrow.close()
    # Our content fits (the table scrolls in its own box); the page header's nav is wider
    # than 390 px on every page, which is the responsive work of another change.
    assert widths == {path: False for path in widths}
    assert csp.violations == []


def test_versions_view_compare_and_restore(chromium, server):
    admin = Browser(server.url).login("admin", TEST_PASSWORD)
    data = make_bot_data(id="sharp-00", name="sharp-00",
                         config='{"order_amount": 0.02, "levels": [{"spread": 0.003}]}',
                         version="1")
    assert admin.submit("/bots/sharp-00/edit", data).status_code == 302
    for width in (1440, 390):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        csp = CspWatcher(page)
        log_in(page, server, "admin")
        page.goto(server.url + "/bots/sharp-00")
        assert "config.levels" in page.content()
        screenshot(page, f"version-history-{width}")
        page.goto(server.url + "/bots/sharp-00/versions/1")
        screenshot(page, f"version-compare-{width}")
        assert not page.evaluate(MAIN_OVERFLOWS)
        if width == 1440:
            page.click("text=Restore version 1")
            page.wait_for_url("**/bots/sharp-00")
            assert "Version 1 of sharp-00 restored as version 3." in page.content()
            page.goto(server.url + "/bots/sharp-00/versions")
            screenshot(page, "versions-list-1440")
        assert csp.violations == []
        context.close()
