"""In Chromium: what the real Hummingbot API's timing looks like on the pages. A bot that came
back after an archive Hummingbot accepted, a missing bot with the time it was last heard, a
bot page after a Hummingbot restart, and the deploy form asking for a script config."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from dashboard.models import db
from dashboard.registry import create_bot, utcnow
from dashboard.status import ARCHIVE_UNCONFIRMED
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import make_bot_data
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDTHS = (1440, 390)


@pytest.fixture
def server(committed_app, migrated, server_env):
    with running_server(migrated, **server_env) as running:
        yield running


def world(app, simulator) -> str:
    simulator.state.add_account("client_sharp")
    back = simulator.seed_bot("sharp-elsewhere", account="client_sharp",
                              controllers=["pmm_btc_1"], source="mqtt", trading=False)
    live = simulator.seed_bot("sharp-pmm", account="client_sharp", controllers=["pmm_btc_1"],
                              timestamped=True)
    with app.app_context():
        came_back = create_bot(make_bot_data(id="sharp-elsewhere", name="sharp-elsewhere",
                                             strategy="v2_with_controllers"), "admin")
        came_back.status, came_back.instance_name = "stopped", back
        came_back.last_error = (f"{ARCHIVE_UNCONFIRMED}: Hummingbot accepted it, then listed "
                                f"the bot again as {back}, and no bot-run says ARCHIVED.")
        lost = create_bot(make_bot_data(id="sharp-lost", name="sharp-lost"), "admin")
        lost.status, lost.instance_name = "running", "sharp-lost-4f2a9c-20250101-000000"
        lost.last_seen_status, lost.last_seen_at = "absent", utcnow() - timedelta(seconds=40)
        running = create_bot(make_bot_data(id="sharp-pmm", name="sharp-pmm",
                                           strategy="v2_with_controllers"), "admin")
        running.status, running.instance_name = "running", live
        create_bot(make_bot_data(id="sharp-new", name="sharp-new"), "admin")
        db.session.commit()
        db.session.remove()
    return live


def test_the_real_apis_timing_on_the_pages(chromium, server, simulator, committed_app):
    world(committed_app, simulator)
    simulator.state.restart()  # the API lost its log lines
    for width in WIDTHS:
        context = chromium.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        csp = CspWatcher(page)
        log_in(page, server, "admin")

        flagged = page.locator("#bot-sharp-elsewhere .back-after-archive")
        assert flagged.inner_text() == "Still running after its archive"
        assert re.search(r"last heard \d+ (s|min) ago",
                         page.locator("#bot-sharp-lost").inner_text())
        screenshot(page, f"realapi-list-{width}")

        page.goto(server.url + "/recovery")
        back = page.locator("#back-sharp-elsewhere")
        assert back.is_visible() and ARCHIVE_UNCONFIRMED in back.inner_text()
        assert page.locator("#missing-sharp-lost").is_visible()
        screenshot(page, f"realapi-recovery-{width}")

        page.goto(server.url + "/bots/sharp-pmm")
        assert "No log lines since Hummingbot last restarted" in page.locator("#live").inner_text()
        screenshot(page, f"realapi-detail-after-restart-{width}")

        page.goto(server.url + "/bots/sharp-new/deploy")
        page.check("input[name=mode][value=script]")
        page.fill("input[name=script]", "simple_pmm.py")
        page.click("button:has-text('Deploy')")
        error = page.locator("#script_config-error")
        assert "is required for a script deploy" in error.inner_text()
        assert page.locator("input[name=script]").input_value() == "simple_pmm.py"
        screenshot(page, f"realapi-deploy-needs-config-{width}")
        context.close()
        assert csp.violations == []
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0
