"""In Chromium: a batch across two Hummingbot servers while one is down. The preview names
the down server per bot and skips its bots; the batch runs the other server's. Screenshots."""

import pytest

from dashboard.sealed import derived_key
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import base_config
from tests.servers import running_server
from tests.test_batches_servers import (  # noqa: F401 - the fixture is used by name
    _spec,
    _world,
    fleet2,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_batch_previews_and_runs_around_a_down_server(chromium, committed_app, migrated,
                                                          server_env, fleet2):  # noqa: F811
    spec = _spec(default=3, eu=2)
    _world(committed_app, fleet2, spec)
    fleet2["sims"]["eu"].set_fault("unreachable")
    # The server process opens `eu`'s sealed credentials with the key the test app sealed
    # them with.
    key = derived_key(base_config(migrated)["SECRET_KEY"]).decode()
    env = {**server_env, "BATCH_WORKERS": "2", "BATCH_POLL_SECONDS": "0.2",
           "ENCRYPTION_KEYS": key}
    with running_server(migrated, **env) as server:
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        csp = CspWatcher(page)
        log_in(page, server, "admin")
        page.goto(server.url + "/batches/new?action=stop&all=1")
        assert page.locator("text=Skipped: server eu unreachable").count() == 2
        assert page.locator("table.preview td.server").count() == 5
        screenshot(page, "batch-preview-server-down-1440")
        page.click("text=Confirm: stop 3 bots")
        page.wait_for_url("**/batches/*")
        page.wait_for_selector("text=Finished", timeout=60_000)
        assert "3 done" in page.content() and "2 skipped" in page.content()
        screenshot(page, "batch-finished-server-down-1440")
        assert csp.violations == []
        context.close()
    assert fleet2["sims"]["default"].bot_calls() == {
        ("stop", b): 1 for b, (server_name, _) in spec.items() if server_name == "default"}
    assert fleet2["sims"]["eu"].bot_calls() == {}
