"""The incident that started this product: a restart must never lose a bot definition."""

import pytest

from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, ServerProcess, running_server

pytestmark = pytest.mark.slow


def test_bot_survives_sigkill_and_restart(committed_app, migrated, server_env):
    server = ServerProcess(migrated, **server_env).start()
    try:
        admin = Browser(server.url).login("admin", TEST_PASSWORD)
        created = admin.submit("/bots/new", make_bot_data(
            id="sharp-survivor", name="sharp-survivor",
            config='{"order_amount": 0.5, "levels": [1, 2, 3]}'))
        assert created.status_code == 302, created.text
        server.kill()

        server = ServerProcess(migrated, port=server.port, **server_env).start()
        admin = Browser(server.url).login("admin", TEST_PASSWORD)
        listing = admin.get("/bots").text
        assert ">sharp-survivor</a>" in listing
        assert 'class="badge badge-stopped">Stopped<' in listing
        assert 'href="/bots/sharp-survivor/edit"' in listing
        detail = admin.get("/api/bots/sharp-survivor").json()
        assert detail["config"] == {"order_amount": 0.5, "levels": [1, 2, 3]}

        client = Browser(server.url).login("sharp", TEST_PASSWORD)
        assert client.get("/api/bots/sharp-survivor").json()["account_identifier"] \
            == "client_sharp"
    finally:
        server.stop()


def test_two_processes_on_one_database_see_each_others_writes(committed_app, migrated, server_env):
    with (running_server(migrated, **server_env) as one,
          running_server(migrated, **server_env) as two):
        on_one = Browser(one.url).login("admin", TEST_PASSWORD)
        on_two = Browser(two.url).login("admin", TEST_PASSWORD)
        assert on_one.submit("/bots/new", make_bot_data(id="shared", name="shared")) \
            .status_code == 302
        assert ">shared</a>" in on_two.get("/bots").text

        edit = make_bot_data(id="shared", name="shared", pair="ETH-USDT", version="1")
        assert on_two.submit("/bots/shared/edit", edit).status_code == 302
        assert on_one.get("/api/bots/shared").json()["pair"] == "ETH-USDT"

        # A form loaded (version 1) before that save is refused on the other process too.
        stale = on_one.submit("/bots/shared/edit", {**edit, "pair": "SOL-USDT"})
        assert stale.status_code == 409
        assert on_two.get("/api/bots/shared").json()["pair"] == "ETH-USDT"


def test_sessions_and_csrf_tokens_work_across_processes(committed_app, migrated, server_env):
    """Same SECRET_KEY: a login on one process is valid on the other, forms included."""
    with (running_server(migrated, **server_env) as one,
          running_server(migrated, **server_env) as two):
        browser = Browser(one.url).login("admin", TEST_PASSWORD)
        browser.base_url = two.url
        assert browser.get("/bots").url.endswith("/bots")
        assert browser.submit("/bots/new", make_bot_data(id="cross", name="cross")) \
            .status_code == 302


def test_csrf_is_enforced_by_the_real_server(committed_app, migrated, server_env):
    with running_server(migrated, **server_env) as server:
        browser = Browser(server.url).login("admin", TEST_PASSWORD)
        response = browser.session.post(server.url + "/bots/new", data=make_bot_data(),
                                        allow_redirects=False, timeout=10)
        assert response.status_code == 400
        assert "missing security token" in response.text
        assert browser.get("/api/bots/pmm-btc").status_code == 404
