"""Sessions (ASVS 3.3.1-3.3.4, 7.2.1, 7.2.4, 7.3.1, 7.3.2, 7.4.1-7.4.4, 14.3.1, 14.3.3).

tests/test_auth.py already covers: HttpOnly + SameSite=Lax in development, a fresh session on
login, logout revoking a copied cookie, deactivation ending sessions. Cross-process sessions
and CSRF tokens: tests/test_persistence.py::test_sessions_and_csrf_tokens_work_across_processes.
"""

from __future__ import annotations

import re
import time

import pytest
from flask.sessions import SecureCookieSessionInterface

from dashboard import create_app
from dashboard.auth import AUTH_AT, SEEN_AT
from dashboard.models import User, db
from tests.conftest import TEST_PASSWORD, base_config

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _age_session(client, **seconds_ago):
    now = int(time.time())
    with client.session_transaction() as session:
        for key, ago in seconds_ago.items():
            session[key] = now - ago
    return client


def _cookie_payload(app, client) -> dict:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    return serializer.loads(cookie.value)


# ------------------------------------------------------------------ production cookie
def _production_app(monkeypatch, migrated):
    for key, value in {
        "APP_ENV": "production", "DATABASE_URL": migrated,
        "SECRET_KEY": "Zq3-production-like-key-for-the-cookie-test-81f0c2",
        "HUMMINGBOT_API_URL": "http://127.0.0.1:9", "HUMMINGBOT_API_USERNAME": "operator",
        "HUMMINGBOT_API_PASSWORD": "not-the-default", "RECONCILE_INTERVAL_SECONDS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    # No background work in the test process: reconcile, history upkeep, batch and alert
    # workers would share its database session with the tests that follow.
    return create_app({"TESTING": True, "RECONCILE_INTERVAL_SECONDS": 0,
                       "HISTORY_MAINTENANCE_SECONDS": 0, "BATCH_WORKERS": 0,
                       "ALERT_WORKERS": 0, "ALERT_EVALUATE_SECONDS": 0,
                       "LOG_FORMAT": "text"})


def test_production_session_cookie_is_host_prefixed_secure_httponly_lax(
        monkeypatch, migrated, committed_app):
    app = _production_app(monkeypatch, migrated)
    client = app.test_client()
    https = "https://dashboard.example"
    page = client.get("/login", base_url=https)
    assert page.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    before = client.get_cookie("__Host-session", domain="dashboard.example").value
    response = client.post("/login", data={
        "username": "admin", "password": TEST_PASSWORD,
        "csrf_token": TOKEN.search(page.get_data(as_text=True)).group(1)},
        headers={"Referer": f"{https}/login"}, base_url=https)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain=" not in cookie and "Expires=" not in cookie  # a browser-session cookie
    after = client.get_cookie("__Host-session", domain="dashboard.example").value
    assert after != before  # a new session on login
    assert "remember_token" not in "".join(response.headers.getlist("Set-Cookie"))


# ------------------------------------------------------------------ timeouts
def test_an_idle_session_expires(app, login):
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    client = _age_session(login.as_client_a(), **{SEEN_AT: idle + 5})
    response = client.get("/bots")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Your session has expired" in client.get("/login").get_data(as_text=True)
    assert client.get("/bots").status_code == 302  # and it stays ended


def test_an_idle_htmx_poll_is_sent_to_login_with_hx_redirect(app, login):
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    client = _age_session(login.as_client_a(), **{SEEN_AT: idle + 5})
    response = client.get("/bots", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"].startswith("/login")


def test_the_absolute_lifetime_ends_even_an_active_session(app, login):
    lifetime = app.config["SESSION_MAX_HOURS"] * 3600
    client = _age_session(login.as_admin(), **{AUTH_AT: lifetime + 5, SEEN_AT: 1})
    assert client.get("/bots").status_code == 302


def test_activity_keeps_a_session_alive_but_polling_does_not(app, login):
    client = _age_session(login.as_client_a(), **{SEEN_AT: 600})
    client.get("/bots", headers={"HX-Request": "true"})  # a background poll
    assert int(time.time()) - _cookie_payload(app, client)[SEEN_AT] >= 600
    client.get("/bots")  # a person clicking
    assert int(time.time()) - _cookie_payload(app, client)[SEEN_AT] < 60


def test_a_session_without_timestamps_is_not_accepted(client, accounts):
    """What an old cookie, or Flask-Login's remember-me path, would produce."""
    with client.session_transaction() as session:
        session["_user_id"] = accounts.admin.get_id()
    assert client.get("/bots").status_code == 302


def test_a_remember_me_cookie_is_never_honoured(app, client, accounts):
    from flask_login.utils import encode_cookie

    with app.test_request_context():
        forged = encode_cookie(accounts.admin.get_id())  # even one signed with our key
    client.set_cookie("remember_token", forged)
    assert client.get("/bots").status_code == 302
    assert client.get("/api/bots").status_code == 401


def test_timeouts_come_from_settings():
    from dashboard.config import ConfigError, load_settings

    settings = load_settings({"SESSION_IDLE_MINUTES": "15", "SESSION_MAX_HOURS": "8"})
    assert (settings.session_idle_minutes, settings.session_max_hours) == (15, 8)
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES"):
        load_settings({"SESSION_IDLE_MINUTES": "0"})


# ------------------------------------------------------------------ termination
def test_password_change_ends_every_other_session_and_keeps_this_one(app, accounts):
    mine, other = app.test_client(), app.test_client()
    for browser in (mine, other):
        assert browser.post("/login", data={"username": "sharp",
                                            "password": TEST_PASSWORD}).status_code == 302
    response = mine.post("/account/password", data={
        "current_password": TEST_PASSWORD, "new_password": "a brand new passphrase",
        "confirm_password": "a brand new passphrase"})
    assert response.status_code == 302
    assert mine.get("/bots").status_code == 200
    assert other.get("/bots").status_code == 302


def test_logout_clears_browser_state_and_the_back_button_gets_nothing(client, accounts):
    client.post("/login", data={"username": "sharp", "password": TEST_PASSWORD})
    page = client.get("/bots")
    assert page.headers["Cache-Control"] == "no-store"  # nothing for the back button
    response = client.post("/logout")
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert client.get("/bots").status_code == 302


@pytest.mark.parametrize("path", ["/bots", "/bots/sharp-bot", "/account/password"])
def test_logout_is_on_every_logged_in_page(login, make_bot, path):
    make_bot(id="sharp-bot", name="sharp-bot")
    body = login.as_client_a().get(path).get_data(as_text=True)
    assert 'action="/logout"' in body


def test_the_session_cookie_holds_ids_and_times_only(app, client, accounts):
    client.post("/login", data={"username": "admin", "password": TEST_PASSWORD})
    client.get("/bots")
    payload = _cookie_payload(app, client)
    assert set(payload) <= {"_user_id", "_fresh", "_id", AUTH_AT, SEEN_AT, "csrf_token",
                            "_flashes"}
    assert TEST_PASSWORD not in str(payload)


# ------------------------------------------------------------------ shared secret
def test_a_cookie_signed_with_another_key_is_anonymous(app, migrated, accounts, client):
    client.post("/login", data={"username": "admin", "password": TEST_PASSWORD})
    cookie = client.get_cookie("session").value
    same_key = create_app(base_config(migrated))
    other_key = create_app(base_config(migrated, SECRET_KEY="another-key-entirely-0123456789ab"))
    for other_app, expected in ((same_key, 200), (other_key, 302)):
        browser = other_app.test_client()
        browser.set_cookie("session", cookie)
        assert browser.get("/account/password").status_code == expected
        with other_app.app_context():
            db.engine.dispose()


def test_deactivation_ends_api_sessions_too(app, client, accounts):
    from dashboard.users import set_active

    client.post("/login", data={"username": "sharp", "password": TEST_PASSWORD})
    assert client.get("/api/bots").status_code == 200
    set_active(db.session.get(User, accounts.client_a.id), False)
    assert client.get("/api/bots").status_code == 401


def test_an_operator_can_end_one_users_sessions_or_everyones(app, accounts):
    """ASVS 7.4.5, from the command line: `flask users end-sessions NAME|--all`."""
    sharp, admin = app.test_client(), app.test_client()
    sharp.post("/login", data={"username": "sharp", "password": TEST_PASSWORD})
    admin.post("/login", data={"username": "admin", "password": TEST_PASSWORD})
    runner = app.test_cli_runner()
    assert "Ended every session of sharp." in runner.invoke(
        args=["users", "end-sessions", "sharp"]).output
    assert sharp.get("/bots").status_code == 302 and admin.get("/bots").status_code == 200
    assert runner.invoke(args=["users", "end-sessions"]).exit_code != 0
    assert re.search(r"Ended the sessions of \d+ logins\.", runner.invoke(
        args=["users", "end-sessions", "--all"]).output)
    assert admin.get("/bots").status_code == 302
