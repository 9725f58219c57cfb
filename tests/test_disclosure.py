"""What clients see (issue 10, item 4): not the Hummingbot API's address, not the admins'
usernames, not the account a bot belonged to before an admin moved it. Admins see it all."""

from __future__ import annotations

import pytest

from dashboard.hummingbot import HummingbotError
from dashboard.models import db
from dashboard.registry import record_event, update_bot
from dashboard.servers import add_server
from tests.conftest import make_bot_data


@pytest.fixture
def unreachable_error(simulator) -> str:
    """The words our Hummingbot client really uses when the API does not answer."""
    simulator.set_fault("unreachable")
    try:
        simulator.client(read_retries=0).status()
    except HummingbotError as exc:
        return str(exc)
    finally:
        simulator.clear_faults()
    raise AssertionError("the simulator answered")


def _pages(login, path: str) -> tuple[str, str]:
    return (login.as_admin().get(path).get_data(as_text=True),
            login.as_client_a().get(path).get_data(as_text=True))


def test_clients_never_see_the_hummingbot_api_address(app, login, make_bot, simulator,
                                                      unreachable_error):
    address = simulator.url.split("//")[1]  # 127.0.0.1:port
    assert address in unreachable_error
    bot = make_bot()
    bot.last_error = unreachable_error
    record_event(bot, "deploy_outcome_unknown", "admin", from_status="deploying",
                 to_status="deploying", details={"error": unreachable_error})
    db.session.commit()

    admin, client = _pages(login, "/bots/pmm-btc")
    assert admin.count(address) == 2
    assert address not in client and "127.0.0.1" not in client
    assert "Hummingbot API is unreachable" in client
    for path in ("/api/bots", "/api/bots/pmm-btc"):
        as_admin = login.as_admin().get(path).get_data(as_text=True)
        as_client = login.as_client_a().get(path).get_data(as_text=True)
        assert address in as_admin and address not in as_client, path
    [item] = login.as_client_a().get("/api/bots").get_json()["bots"]
    assert item["last_error"].startswith("Hummingbot API is unreachable")


def test_clients_never_see_another_servers_host_name(app, login, make_bot):
    """Hummingbot's own wording can name a server's host without a scheme (a connect or DNS
    error), which the URL pattern does not catch: every server's address is hidden, not only
    the default server's."""
    add_server("eu", "http://eu-hummingbot.internal:8000", "eu-user", "eu-password")
    bot = make_bot()
    bot.last_error = "Cannot connect to host eu-hummingbot.internal:8000 ssl:default [Errno -2]"
    db.session.commit()
    admin, client = _pages(login, "/bots/pmm-btc")
    assert "eu-hummingbot.internal" in admin
    assert "eu-hummingbot.internal" not in client and "[address hidden]" in client
    for path in ("/api/bots", "/api/bots/pmm-btc"):
        as_client = login.as_client_a().get(path).get_data(as_text=True)
        assert "eu-hummingbot.internal" not in as_client and "[address hidden]" in as_client


def test_clients_see_operator_where_admins_see_the_username(app, login, make_bot):
    bot = make_bot()  # created by "admin"
    record_event(bot, "went_missing", "reconcile", from_status="running", to_status="running")
    db.session.commit()
    admin, client = _pages(login, "/bots/pmm-btc")
    assert "by admin" in admin and "by operator" not in admin
    assert "by admin" not in client and "by operator" in client
    assert "by reconcile" in client  # automatic actors are no one's name


def test_clients_never_see_the_account_a_bot_was_moved_from(app, login, make_bot):
    bot = make_bot(account_identifier="client_other")
    bot.last_error = ("Hummingbot rejected POST /bot-orchestration/deploy-v2-script (HTTP 500): "
                      "[Errno 2] No such file or directory: 'bots/credentials/client_other'")
    record_event(bot, "deploy_failed", "admin", from_status="deploying",
                 to_status="deploy_failed", details={"error": bot.last_error})
    update_bot(bot, make_bot_data(account_identifier="client_sharp"), "admin",
               expected_version=bot.version)

    admin, client = _pages(login, "/bots/pmm-btc")
    assert admin.count("client_other") >= 3  # the move, the error, the last error
    assert "client_other" not in client
    assert "another account" in client and "client_sharp" in client
    for path in ("/api/bots", "/api/bots/pmm-btc"):
        assert "client_other" in login.as_admin().get(path).get_data(as_text=True)
        assert "client_other" not in login.as_client_a().get(path).get_data(as_text=True)


def test_open_alerts_quote_the_last_error_redacted_for_clients(app, login, make_bot, simulator,
                                                              unreachable_error):
    """A deploy_failed alert's detail is the bot's last error: on the client's bot and
    account pages it reads like the last error does (no address, no previous account)."""
    from dashboard.alerts.models import Alert
    from dashboard.registry import utcnow

    address = simulator.url.split("//")[1]
    bot = make_bot(account_identifier="client_other")
    update_bot(bot, make_bot_data(account_identifier="client_sharp"), "admin",
               expected_version=bot.version)
    bot.status = "deploy_failed"
    bot.last_error = f"{unreachable_error} (credentials profile client_other)"
    db.session.add(Alert(bot_id=bot.id, account_identifier="client_sharp",
                         condition="deploy_failed", state="firing", since=utcnow(),
                         detail=bot.last_error))
    db.session.commit()
    for path in ("/bots/pmm-btc", "/accounts/client_sharp"):
        admin, client = _pages(login, path)
        assert 'class="alert-detail"' in admin and 'class="alert-detail"' in client, path
        detail = client.split('class="alert-detail"', 1)[1].split("</p>", 1)[0]
        assert "Hummingbot API is unreachable" in detail and "another account" in detail, path
        assert address not in client and "client_other" not in client, path
        assert address in admin.split('class="alert-detail"', 1)[1], path


def test_versions_never_show_a_client_the_account_a_bot_was_moved_from(app, login, make_bot):
    """The versions pages and their JSON (added since the review) list every earlier
    definition, account included: for the new client that account reads "another account",
    in the versions, the diffs and the JSON; admins see it."""
    bot = make_bot(account_identifier="client_other",
                   config='{"note": "credentials of client_other"}')
    update_bot(bot, make_bot_data(account_identifier="client_sharp"), "admin",
               expected_version=bot.version)
    for path in ("/bots/pmm-btc/versions", "/bots/pmm-btc/versions/1",
                 "/api/bots/pmm-btc/versions"):
        admin, client = _pages(login, path)
        assert "client_other" in admin, path
        assert "client_other" not in client and "another account" in client, path
        assert "client_sharp" in client, path
