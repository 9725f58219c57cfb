"""Roles and accounts: admins see everything; a client only its own account's bots."""

import base64
import re

import pytest

from dashboard.models import Bot, db
from tests.conftest import TEST_PASSWORD, make_bot_data


@pytest.fixture
def two_accounts(make_bot):
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp",
             config='{"secret_sauce": "sharp-only"}')
    make_bot(id="other-bot", name="other-bot", account_identifier="client_other",
             config='{"secret_sauce": "other-only"}')


BOT_PAGES = ["/bots/{id}", "/api/bots/{id}"]
ADMIN_GET_PAGES = ["/bots/new", "/bots/{id}/edit"]
ADMIN_POSTS = ["/bots/new", "/bots/{id}/edit", "/bots/{id}/archive", "/bots/{id}/restore"]


def test_anonymous_is_sent_to_login_everywhere(client, two_accounts):
    for path in ["/", "/bots", *BOT_PAGES, *ADMIN_GET_PAGES]:
        response = client.get(path.format(id="sharp-bot"))
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        elif path == "/":
            assert response.status_code == 302
        else:
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login"), path
    for path in ADMIN_POSTS:
        assert client.post(path.format(id="sharp-bot")).status_code == 302


def test_anonymous_htmx_request_gets_hx_redirect_not_302(client):
    response = client.get("/bots", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login")


def test_login_redirect_keeps_where_the_user_was_going(client):
    response = client.get("/bots?status=running")
    assert "next=/bots?status%3Drunning" in response.headers["Location"]


def test_client_lists_only_its_own_bots(login, two_accounts):
    page = login.as_client_a().get("/bots").get_data(as_text=True)
    assert ">sharp-bot</a>" in page and "other-bot" not in page
    assert "/edit" not in page and "New bot" not in page


def test_client_filter_cannot_widen_its_scope(login, two_accounts):
    client = login.as_client_a()
    assert "other-bot" not in client.get("/bots?account=client_other").get_data(as_text=True)
    api = client.get("/api/bots?account=client_other").get_json()
    assert [b["id"] for b in api["bots"]] == ["sharp-bot"]


def test_client_sees_its_bot_configuration_read_only(login, two_accounts):
    page = login.as_client_a().get("/bots/sharp-bot").get_data(as_text=True)
    assert "sharp-only" in page
    assert "Archive" not in page and "/edit" not in page


@pytest.mark.parametrize("path", BOT_PAGES)
def test_another_accounts_bot_is_404_and_leaks_nothing(login, two_accounts, path):
    response = login.as_client_a().get(path.format(id="other-bot"))
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "other-only" not in body and "client_other" not in body


def test_unknown_and_foreign_bots_answer_alike(login, two_accounts):
    client = login.as_client_a()
    foreign = client.get("/bots/other-bot")
    missing = client.get("/bots/no-such-bot")
    assert foreign.status_code == missing.status_code == 404
    def strip(response):  # tokens are signed with the second they were made in
        page = response.get_data(as_text=True).split("Request id")[0]
        return re.sub(r'name="csrf_token" value="[^"]*"', "TOKEN", page)

    assert strip(foreign) == strip(missing)


@pytest.mark.parametrize("path", ADMIN_GET_PAGES)
def test_clients_get_404_on_admin_pages(login, two_accounts, path):
    assert login.as_client_a().get(path.format(id="sharp-bot")).status_code == 404


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_clients_cannot_change_anything(login, two_accounts, path):
    client = login.as_client_a()
    response = client.post(path.format(id="sharp-bot"), data=make_bot_data(
        id="sharp-bot", name="hijacked", version=1))
    assert response.status_code == 404
    bot = db.session.get(Bot, "sharp-bot")
    assert (bot.name, bot.status) == ("sharp-bot", "stopped")


def test_admin_sees_every_account(login, two_accounts):
    page = login.as_admin().get("/bots").get_data(as_text=True)
    assert ">sharp-bot</a>" in page and ">other-bot</a>" in page
    ids = {b["id"] for b in login.as_admin().get("/api/bots").get_json()["bots"]}
    assert ids == {"sharp-bot", "other-bot"}


def test_admin_api_filters_by_account(login, two_accounts):
    api = login.as_admin().get("/api/bots?account=client_other").get_json()
    assert [b["id"] for b in api["bots"]] == ["other-bot"]


def test_client_does_not_see_archived_bots(login, two_accounts):
    login.as_admin().post("/bots/sharp-bot/archive")
    client = login.as_client_a()
    assert "sharp-bot" not in client.get("/bots?status=archived").get_data(as_text=True)
    assert client.get("/bots/sharp-bot").status_code == 404


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_api_accepts_http_basic_with_the_same_rules(client, two_accounts):
    response = client.get("/api/bots", headers=basic("sharp", TEST_PASSWORD))
    assert response.status_code == 200
    assert [b["id"] for b in response.get_json()["bots"]] == ["sharp-bot"]
    assert client.get("/api/bots/other-bot",
                      headers=basic("sharp", TEST_PASSWORD)).status_code == 404


def test_api_refuses_wrong_basic_credentials(client, two_accounts):
    response = client.get("/api/bots", headers=basic("sharp", "wrong password"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "authentication required"


def test_basic_auth_does_not_open_the_pages(client, two_accounts):
    response = client.get("/bots", headers=basic("admin", TEST_PASSWORD))
    assert response.status_code == 302

