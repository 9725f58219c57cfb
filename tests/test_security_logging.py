"""Security events (ASVS 16.2.1, 16.2.2, 16.2.5, 16.3.1-16.3.4, 16.4.1): logins, failures,
throttling, logouts, refusals and every admin action are logged with time (UTC), actor,
account and request id; passwords, cookies, tokens and Authorization headers never are."""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime

import pytest

from dashboard.audit import SECURITY_LOG
from tests.conftest import TEST_PASSWORD, make_bot_data

SECRET_PASSWORD = "Sup3r secret passphrase that must never be logged"


@pytest.fixture
def events(caplog):
    caplog.set_level(logging.INFO)

    def collect(name=None):
        found = [r for r in caplog.records if r.name == SECURITY_LOG]
        return [r for r in found if name is None or r.event == name]

    return collect


def _only(records, name):
    matching = [r for r in records if r.event == name]
    assert matching, f"no {name} event"
    return matching[-1]


def test_login_success_and_failure_are_logged_with_who_when_and_request_id(client, accounts,
                                                                          events):
    ok = client.post("/login", data={"username": "sharp", "password": TEST_PASSWORD})
    bad = client.post("/login", data={"username": "sharp", "password": "wrong password"})
    success, failure = _only(events(), "login_succeeded"), _only(events(), "login_failed")
    assert (success.actor, success.account, success.method) == ("sharp", "client_sharp", "form")
    assert success.request_id == ok.headers["X-Request-ID"]
    assert failure.request_id == bad.headers["X-Request-ID"]
    assert (failure.actor, failure.username) == ("anonymous", "sharp")
    assert failure.levelno == logging.WARNING
    for record in (success, failure):
        stamp = datetime.fromisoformat(record.at)
        assert stamp.utcoffset().total_seconds() == 0  # UTC, with its offset written out
        assert record.client_ip == "127.0.0.1" and record.path == "/login"


def test_refusals_are_logged(login, make_bot, events, client, app, monkeypatch):
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp")
    login.as_client_b().get("/bots/sharp-bot")
    foreign = _only(events(), "access_denied")
    assert (foreign.actor, foreign.account, foreign.bot_id) == ("other", "client_other",
                                                                "sharp-bot")
    assert foreign.exists_elsewhere is True and foreign.levelno == logging.WARNING
    login.as_client_a().get("/bots/new")
    assert _only(events(), "access_denied").reason == "admin only"
    app.test_client().get("/api/bots")
    assert _only(events(), "access_denied").reason == "login required"
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    login.as_admin().post("/bots/sharp-bot/archive")
    assert _only(events(), "csrf_refused").actor == "admin"


def test_every_admin_action_is_logged(login, events):
    admin = login.as_admin()
    admin.post("/bots/new", data=make_bot_data(id="logged", name="logged"))
    admin.post("/bots/logged/archive")
    admin.post("/bots/logged/restore")
    actions = [(r.endpoint, r.target, r.status) for r in events("admin_action")]
    assert actions == [("bots.new", {}, 302), ("bots.archive", {"bot_id": "logged"}, 302),
                       ("bots.restore", {"bot_id": "logged"}, 302)]
    assert {r.actor for r in events("admin_action")} == {"admin"}


def test_throttling_logout_and_expiry_are_logged(app, client, accounts, events, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_USERNAME", 1)
    client.post("/login", data={"username": "admin", "password": "wrong"})
    client.post("/login", data={"username": "admin", "password": "wrong"})
    throttled = _only(events(), "login_throttled")
    assert throttled.limited_by == "username" and throttled.retry_after > 0
    client.post("/login", data={"username": "sharp", "password": TEST_PASSWORD})
    client.post("/logout")
    assert _only(events(), "logout").actor == "sharp"
    client.get("/bots")  # the revoked cookie... is gone after logout; forge an old one:
    with client.session_transaction() as session:
        session["_user_id"] = accounts.client_a.get_id()
        session["_auth_at"] = session["_seen_at"] = 1
    client.get("/bots")
    assert _only(events(), "session_ended").reason == "absolute"


def test_no_secret_ever_reaches_the_log(app, client, accounts, events, caplog, monkeypatch):
    """A whole session's worth of traffic, then a search of every record for every secret."""
    from dashboard.users import create_user

    create_user("victim", SECRET_PASSWORD, "admin")
    client.post("/login", data={"username": "victim", "password": "wrong " + SECRET_PASSWORD})
    client.post("/login", data={"username": SECRET_PASSWORD, "password": SECRET_PASSWORD})
    client.post("/login", data={"username": "victim", "password": SECRET_PASSWORD})
    cookie = client.get_cookie("session").value
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    page = client.get("/account/password").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/account/password", data={"csrf_token": token,
                                            "current_password": SECRET_PASSWORD,
                                            "new_password": SECRET_PASSWORD + " two",
                                            "confirm_password": SECRET_PASSWORD + " two"})
    client.post("/bots/new", data={"csrf_token": "forged"})
    basic = base64.b64encode(f"victim:{SECRET_PASSWORD}".encode()).decode()
    app.test_client().get("/api/bots", headers={"Authorization": f"Basic {basic}"})
    assert events("login_failed") and events("password_changed")

    everything = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    pieces = [part for part in cookie.split(".") if len(part) >= 16]  # payload and signature
    for secret in (SECRET_PASSWORD, "Sup3r", cookie, *pieces, token, basic):
        assert secret not in everything, f"leaked: {secret[:12]}..."
    typed_as_username = [r for r in events("login_failed") if r.username != "victim"]
    assert typed_as_username[0].username == "<not a username>"


def test_log_lines_cannot_be_forged(client, accounts, events):
    client.post("/login", data={"username": "x\nsecurity event=\"login_succeeded\"",
                                "password": "y" * 10})
    for record in events():
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


def test_user_management_from_the_command_line_is_logged(app, events, make_bot):
    make_bot()  # the client's account must exist (or the login is refused as a typo)
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "newbie", "--role", "client", "--account",
                        "client_sharp", "--password", "a fine long passphrase"])
    runner.invoke(args=["users", "deactivate", "newbie"])
    created, deactivated = _only(events(), "user_created"), _only(events(), "user_deactivated")
    assert (created.actor, created.username, created.role) == ("cli", "newbie", "client")
    assert deactivated.username == "newbie"
    assert "a fine long passphrase" not in " ".join(r.getMessage() for r in events())
