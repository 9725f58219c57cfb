"""In Chromium: the incident, walked through the recovery desk. A bot runs for client_sharp
with no definition; the admin adopts it from the prefilled form; sharp then sees it Running."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashboard.models import Bot, db
from dashboard.registry import archive_bot, create_bot, utcnow
from tests.browser import CspWatcher, log_in, log_out, open_as_client, screenshot
from tests.conftest import make_bot_data
from tests.servers import running_server
from tests.test_transfer import OLD_METADATA

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture
def server(committed_app, migrated, server_env):
    # No periodic reconcile: it would settle the stuck row before the page shows it.
    env = {**server_env, "STATUS_POLL_SECONDS": "1", "RECONCILE_INTERVAL_SECONDS": "0"}
    with running_server(migrated, **env) as running:
        yield running


def drifted_definitions(app, simulator) -> None:
    """One of each kind of drift besides the orphan: missing, stuck, archived."""
    with app.app_context():
        lost = create_bot(make_bot_data(id="master-lost", name="master-lost",
                                        account_identifier="master_account"), "admin")
        lost.status, lost.instance_name = "running", "master-lost-4f2a9c-20250101-000000"
        lost.deploy_settings = {"mode": "script", "image": "hummingbot/hummingbot:latest",
                                "script": "simple_pmm.py", "script_config": "simple_pmm_1.yml",
                                "controllers": []}
        stuck = create_bot(make_bot_data(id="sharp-slow", name="sharp-slow"), "admin")
        stuck.status, stuck.deploy_request_id = "deploying", "9c1e5d" + "0" * 26
        stuck.deploy_requested_at = utcnow() - timedelta(hours=1)
        db.session.commit()
        archive_bot(create_bot(make_bot_data(id="sharp-old", name="sharp-old",
                                             pair="ETH-USDT"), "admin"), "admin")
        db.session.remove()
    simulator.seed_bot("arb-legacy", legacy=True, script="amm_arb.py")


def test_admin_adopts_the_orphan_and_the_client_sees_it_running(chromium, server, simulator,
                                                                committed_app, tmp_path):
    orphan = simulator.seed_bot("sharp-grid", account="client_sharp",
                                controllers=["grid_eth_1"], timestamped=True)
    drifted_definitions(committed_app, simulator)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    page.click("nav >> text=Recovery")
    page.wait_for_url("**/recovery")
    form = page.locator(f"#adopt-{orphan}")
    assert form.locator("input[name=account_identifier]").input_value() == "client_sharp"
    assert form.locator("input[name=name]").input_value() == "sharp-grid"
    assert form.locator("input[name=pair]").input_value() == "ETH-USDT"
    assert "grid_strike" in form.locator("textarea[name=config]").input_value()
    assert page.locator("#missing-master-lost").is_visible()
    assert page.locator("#stuck-sharp-slow").is_visible()
    assert page.locator("#archived-sharp-old").is_visible()
    screenshot(page, "recovery-desk")

    # A poll keeps what the admin typed in the adopt form (hx-preserve).
    form.locator("input[name=name]").fill("sharp-grid-eth")
    page.locator("h1").click()  # focus out of the form, so polling is not paused
    assert page.evaluate("""() => new Promise(resolve => {
        setTimeout(() => resolve('no poll within 30 s'), 30000);
        document.getElementById('recovery-sections').addEventListener(
            'htmx:afterSettle', () => resolve('swapped'), {once: true});
    })""") == "swapped"
    assert form.locator("input[name=name]").input_value() == "sharp-grid-eth"
    form.locator("input[name=name]").fill("sharp-grid")

    form.get_by_role("button", name=f"Adopt {orphan}").click()
    page.wait_for_url("**/bots/sharp-grid")
    assert f"Adopted {orphan}" in page.locator(".flash").inner_text()
    assert page.locator("#live .badge").inner_text() == "Running"
    screenshot(page, "recovery-adopted")

    # Import from the page: a malformed file names its bad entry; a good one is previewed.
    page.goto(server.url + "/recovery/import")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"broken": {"name": "broken", "account": "client_sharp"}}))
    page.set_input_files("input[type=file]", str(bad))
    with page.expect_navigation():
        page.click("button:has-text('Preview')")
    assert "Entry 'broken' is not valid" in page.locator(".flash-error").inner_text()
    screenshot(page, "recovery-import-error")
    good = tmp_path / "bot_metadata.json"
    good.write_text(json.dumps(OLD_METADATA))
    page.set_input_files("input[type=file]", str(good))
    with page.expect_navigation():  # read the preview once it has loaded, not mid-navigation
        page.click("button:has-text('Preview')")
    assert page.locator("#entry-sharp-pmm").is_visible()
    screenshot(page, "recovery-import-preview")
    page.click("button:has-text('Confirm import')")
    page.wait_for_url("**/bots")
    assert "2 created" in page.locator(".flash").inner_text()

    page.goto(server.url + "/recovery/recreate")
    screenshot(page, "recovery-recreate")
    log_out(page)
    context.close()

    context, page, csp_client = open_as_client(chromium, server)
    row = page.locator("#bot-sharp-grid")
    assert row.locator(".badge").inner_text() == "Running"
    assert page.locator("nav >> text=Recovery").count() == 0
    screenshot(page, "recovery-client-list")
    row.locator("a").first.click()
    page.wait_for_url("**/bots/sharp-grid")
    assert "grid_strike" in page.locator("pre.config").inner_text()
    screenshot(page, "recovery-client-detail")
    assert page.goto(server.url + "/recovery").status == 404
    context.close()

    assert csp.violations == [] and csp_client.violations == []
    with committed_app.app_context():
        assert db.session.get(Bot, "sharp-grid").instance_name == orphan
