"""The fleet across servers in Chromium: the list with one server down and /servers, at 1440
and 390 px, light and dark (screenshots in test-artifacts/screenshots, looked at), axe-core
and no sideways scroll on both; the account page and a client's list span the servers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dashboard.simulator import RunningSimulator, start_simulator
from tests.browser import log_in, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, running_server
from tests.test_browser_a11y import DESKTOP, PHONE, Findings, _check_page, axe_source

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def eu() -> Iterator[RunningSimulator]:
    sim = start_simulator("127.0.0.1", 0, username="eu-user", password="eu-password-1234")
    sim.state.configure(warmup_seconds=0)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def server(committed_app, migrated, server_env, simulator):
    with running_server(migrated, **{**server_env, "STATUS_POLL_SECONDS": "3600"}) as running:
        yield running


@pytest.fixture
def three_servers(server, simulator, eu):
    """`default` and `eu` up, `asia` down (nothing listens there); a running bot of
    client_sharp on each of the first two, one on asia greyed with its last status."""
    admin = Browser(server.url).login("admin", TEST_PASSWORD)
    asia = start_simulator("127.0.0.1", 0)
    asia_url = asia.url
    for name, url, user, password in (("eu", eu.url, "eu-user", "eu-password-1234"),
                                      ("asia", asia_url, "admin", "admin")):
        assert admin.submit("/servers", {"name": name, "base_url": url, "username": user,
                                         "password": password}).status_code == 302
    for bot_id, where, sim in (("sharp-one", "default", simulator),
                               ("sharp-two", "eu", eu.state), ("sharp-three", "asia", asia.state)):
        assert admin.submit("/bots/new", {**make_bot_data(id=bot_id, name=bot_id),
                                          "server": where}).status_code == 302
        sim.seed_bot(bot_id, account="client_sharp", controllers=["pmm_btc_1"])
    assert admin.get("/bots").text.count('data-status="running"') == 3  # each seen live once
    asia.stop()  # down from now on: connection refused
    return admin


def test_the_list_across_servers_with_one_down_and_the_servers_page(chromium, server,
                                                                    three_servers):
    source = axe_source()
    findings = Findings()
    for name, viewport, scheme in (("1440-light", DESKTOP, "light"),
                                   ("1440-dark", DESKTOP, "dark"),
                                   ("390-light", PHONE, "light"), ("390-dark", PHONE, "dark")):
        context = chromium.new_context(viewport=viewport, color_scheme=scheme,
                                       reduced_motion="reduce")
        page = context.new_page()
        log_in(page, server, "admin")
        rows = page.locator("#bots-rows, main").first
        assert "Hummingbot server asia is unreachable" in rows.inner_text()
        for bot_id, stale in (("sharp-one", False), ("sharp-two", False),
                              ("sharp-three", True)):
            row = page.locator(f"#bot-{bot_id}").evaluate("row => row.outerHTML")
            assert ("stale" in row) is stale, (name, bot_id)
        screenshot(page, f"servers-list-one-down-{name}")
        page.goto(server.url + "/servers")
        assert "Unreachable" in page.locator("#server-asia").inner_text()
        assert "Reachable" in page.locator("#server-eu").inner_text()
        screenshot(page, f"servers-page-{name}")
        context.close()
    context = chromium.new_context(viewport=PHONE, bypass_csp=True, reduced_motion="reduce")
    page = context.new_page()
    log_in(page, server, "admin")
    _check_page(page, "list one server down 390", findings, source)
    page.goto(server.url + "/servers")
    _check_page(page, "servers 390", findings, source)
    context.close()
    assert findings.problems == []


def test_the_account_page_and_a_clients_list_span_every_server(server, three_servers, eu):
    account = three_servers.get("/accounts/client_sharp").text
    counts = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(\d+)</dd>", account))
    assert counts["Bots"] == "3"  # one on each server, asia's by its last status

    client = Browser(server.url).login("sharp", TEST_PASSWORD)
    page = client.get("/bots").text
    for bot_id in ("sharp-one", "sharp-two", "sharp-three"):
        assert f'id="bot-{bot_id}"' in page
    assert "A Hummingbot server is unreachable" in page
    for secret in (eu.url, "eu-password", "asia", ">eu<", "data-server"):
        assert secret not in page, secret
    mine = client.get("/accounts/client_sharp").text
    assert dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(\d+)</dd>", mine))["Bots"] == "3"
    assert eu.url not in mine and "asia" not in mine
