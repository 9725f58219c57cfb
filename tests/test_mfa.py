"""TOTP second factor (ASVS 6.3.2): the code step of a login, replay and expiry, throttling,
enrolment and removal, the admin policy (REQUIRE_ADMIN_MFA) and the recovery command.

Codes are computed here with pyotp from the stored secret, against the real PostgreSQL; nothing
of ours is mocked.
"""

from __future__ import annotations

import base64
import logging
import re
import time

import pyotp
import pytest

from dashboard.auth import MFA_FAILED, MFA_PENDING
from dashboard.mfa import provisioning_uri
from dashboard.models import Bot, User, db
from dashboard.users import create_user, find_user
from tests.conftest import TEST_PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_FIELD = re.compile(r'name="secret" value="([A-Z2-7]{32})"')


def enrolled(username="mfa-user", role="client", account="client_sharp") -> tuple[User, str]:
    """A user with TOTP already on, and its secret."""
    user = create_user(username, TEST_PASSWORD, role, account if role == "client" else None)
    secret = pyotp.random_base32()
    user.totp_secret = secret
    user.totp_enabled_at = db.func.now()
    db.session.commit()
    return user, secret


def wrong_code(secret: str) -> str:
    """A well-formed code that is not valid now (nor one step either side)."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in valid)


def password_step(client, username="mfa-user", **extra):
    return client.post("/login", data={"username": username, "password": TEST_PASSWORD,
                                       **extra})


def is_logged_in(client) -> bool:
    return client.get("/bots").status_code == 200


def test_login_with_totp_needs_the_code(app, client, accounts):
    user, secret = enrolled()
    first = password_step(client, next="/bots?status=running")
    assert first.status_code == 302 and first.headers["Location"] == "/login/verify"
    with client.session_transaction() as session:
        assert "_user_id" not in session and session[MFA_PENDING]["user"] == user.id
    assert not is_logged_in(client)  # a right password alone is not a login
    page = client.get("/login/verify")
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.get_data(True)
    done = client.post("/login/verify", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302 and done.headers["Location"] == "/bots?status=running"
    assert is_logged_in(client)
    with client.session_transaction() as session:
        assert MFA_PENDING not in session  # a fresh session, as for any login


def test_a_wrong_code_is_refused_with_one_message(app, client, accounts, caplog):
    caplog.set_level(logging.INFO)
    _user, secret = enrolled()
    password_step(client)
    answers = [client.post("/login/verify", data={"code": code})
               for code in (wrong_code(secret), "abc", "", "1234567")]
    for answer in answers:
        assert answer.status_code == 401 and MFA_FAILED in answer.get_data(as_text=True)
    assert not is_logged_in(client)
    failures = [r for r in caplog.records if getattr(r, "event", None) == "mfa_failed"]
    assert len(failures) == 4 and failures[0].username == "mfa-user"
    assert failures[0].levelno == logging.WARNING
    # Still pending: the right code now works.
    assert client.post("/login/verify", data={"code": pyotp.TOTP(secret).now()}).status_code \
        == 302
    assert any(getattr(r, "event", None) == "mfa_succeeded" for r in caplog.records)


def test_a_replayed_code_is_refused(app, client, accounts):
    _user, secret = enrolled()
    totp = pyotp.TOTP(secret)
    code = totp.now()
    password_step(client)
    assert client.post("/login/verify", data={"code": code}).status_code == 302
    client.post("/logout")
    password_step(client)
    replay = client.post("/login/verify", data={"code": code})
    assert replay.status_code == 401 and MFA_FAILED in replay.get_data(as_text=True)
    # An older step is refused too once a newer one was used.
    newer = totp.at(time.time() + 30)
    assert client.post("/login/verify", data={"code": newer}).status_code == 302
    client.post("/logout")
    password_step(client)
    assert client.post("/login/verify", data={"code": totp.now()}).status_code == 401
    assert not is_logged_in(client)


def test_the_pending_step_expires(app, client, accounts):
    from dashboard.users import revoke_sessions

    user, secret = enrolled()
    password_step(client)
    with client.session_transaction() as session:
        marker = session[MFA_PENDING]
        session[MFA_PENDING] = {**marker, "at": marker["at"] - 301}
    late = client.post("/login/verify", data={"code": pyotp.TOTP(secret).now()})
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert not is_logged_in(client)
    assert client.get("/login/verify").headers["Location"] == "/login"
    # Logging out everywhere also ends a half-done login.
    password_step(client)
    revoke_sessions(db.session.get(User, user.id))
    assert client.post("/login/verify", data={"code": pyotp.TOTP(secret).now()}) \
        .headers["Location"] == "/login"
    assert not is_logged_in(client)
    # A forged marker is nothing.
    with client.session_transaction() as session:
        session[MFA_PENDING] = {"user": "1", "generation": None, "at": "soon"}
    assert client.get("/login/verify").headers["Location"] == "/login"


def test_throttling_applies_to_the_code_step(app, client, accounts, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_USERNAME", 3)
    _user, secret = enrolled()
    password_step(client)  # a right password is no failure, but clears nothing before the code
    for _ in range(3):  # failures 1 to 3
        assert client.post("/login/verify", data={"code": wrong_code(secret)}).status_code \
            == 401
    refused = client.post("/login/verify", data={"code": pyotp.TOTP(secret).now()})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert not is_logged_in(client)
    # Knowing the password does not reset the count for more guesses.
    assert password_step(client).status_code == 429


def _enrolment_page(client) -> tuple[str, str]:
    page = client.get("/account/mfa").get_data(as_text=True)
    return SECRET_FIELD.search(page).group(1), page


def test_enrolment_needs_a_valid_code(app, client, login, accounts):
    user = create_user("enrolling", TEST_PASSWORD, "client", "client_sharp")
    browser = login.as_user(user)
    other_device = app.test_client()
    with other_device.session_transaction() as session:
        session.update({"_user_id": user.get_id(), "_fresh": True})
        from dashboard.auth import stamp_session

        stamp_session(session)
    secret, page = _enrolment_page(browser)
    assert 'src="data:image/svg+xml' in page  # the QR, as an image the CSP allows
    assert "issuer=Bot%20Management" in provisioning_uri(secret, "enrolling")
    totp = pyotp.TOTP(secret)

    bad = browser.post("/account/mfa", data={"action": "enable", "secret": secret,
                                              "code": wrong_code(secret)})
    assert bad.status_code == 422 and not find_user("enrolling").mfa_enabled
    assert secret in bad.get_data(as_text=True)  # the same secret, so the scan still counts
    forged = browser.post("/account/mfa", data={"action": "enable", "secret": "short",
                                                 "code": totp.now()})
    assert forged.status_code == 422 and not find_user("enrolling").mfa_enabled

    ok = browser.post("/account/mfa", data={"action": "enable", "secret": secret,
                                             "code": totp.now()})
    assert ok.status_code == 302
    stored = find_user("enrolling")
    assert stored.mfa_enabled and stored.totp_secret == secret
    assert is_logged_in(browser) and not is_logged_in(other_device)  # others logged out
    after = browser.get("/account/mfa").get_data(as_text=True)
    assert secret not in after and "is <strong>on</strong>" in after
    assert secret not in browser.get("/bots").get_data(as_text=True)

    browser.post("/logout")
    password_step(browser, "enrolling")
    assert not is_logged_in(browser)
    assert browser.post("/login/verify", data={"code": totp.at(time.time() + 30)}) \
        .status_code == 302
    assert is_logged_in(browser)


def test_disabling_needs_the_password_and_a_current_code(app, client, login, accounts):
    user, secret = enrolled()
    browser = login.as_user(user)
    totp = pyotp.TOTP(secret)
    wrong_password = browser.post("/account/mfa", data={
        "action": "disable", "password": "not the password", "code": totp.now()})
    assert wrong_password.status_code == 422 and find_user("mfa-user").mfa_enabled
    bad_code = browser.post("/account/mfa", data={
        "action": "disable", "password": TEST_PASSWORD, "code": wrong_code(secret)})
    assert bad_code.status_code == 422 and find_user("mfa-user").mfa_enabled
    generation = find_user("mfa-user").session_generation
    ok = browser.post("/account/mfa", data={
        "action": "disable", "password": TEST_PASSWORD, "code": totp.now()})
    assert ok.status_code == 302
    stored = find_user("mfa-user")
    assert not stored.mfa_enabled and stored.totp_secret is None
    assert stored.session_generation > generation and is_logged_in(browser)
    browser.post("/logout")
    # Password alone again (a client: it lands on its account's page).
    assert password_step(browser).headers["Location"] == "/accounts/client_sharp"


@pytest.fixture
def admin_mfa_required(app, monkeypatch):
    monkeypatch.setitem(app.config, "REQUIRE_ADMIN_MFA", True)
    return app


def test_an_admin_without_mfa_is_confined_to_enrolment(admin_mfa_required, login, accounts,
                                                       make_bot, caplog):
    caplog.set_level(logging.INFO)
    make_bot(id="sharp-bot", name="sharp-bot")
    admin = login.as_admin()
    for path in ("/bots", "/bots/sharp-bot", "/recovery", "/account/password", "/bots/new"):
        page = admin.get(path)
        assert page.status_code == 302 and page.headers["Location"] == "/account/mfa", path
        htmx = admin.get(path, headers={"HX-Request": "true"})
        assert htmx.status_code == 200 and htmx.headers["HX-Redirect"] == "/account/mfa", path
    api = admin.get("/api/bots")
    assert api.status_code == 403
    assert api.get_json() == {"error": "two-factor enrolment required"}
    assert admin.post("/bots/sharp-bot/archive").headers["Location"] == "/account/mfa"
    assert db.session.get(Bot, "sharp-bot").status != "archived"
    enrol = admin.get("/account/mfa")
    assert enrol.status_code == 200 and "must set up" in enrol.get_data(as_text=True)
    denied = [r for r in caplog.records if getattr(r, "event", None) == "access_denied"]
    assert denied and denied[-1].reason == "mfa enrolment required"
    # Clients are not concerned; logout still works.
    assert is_logged_in(login.as_client_a())
    assert login.as_admin().post("/logout").headers["Location"] == "/login"

    # Enrolled: everything again.
    admin = login.as_user(db.session.get(User, accounts.admin.id))
    secret, _page = _enrolment_page(admin)
    assert admin.post("/account/mfa", data={"action": "enable", "secret": secret,
                                            "code": pyotp.TOTP(secret).now()}).status_code \
        == 302
    assert admin.get("/recovery").status_code == 200
    assert admin.get("/api/bots").status_code == 200


def _basic(username: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{TEST_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_http_basic_is_refused_where_a_second_factor_is_expected(app, accounts, monkeypatch,
                                                                  caplog):
    caplog.set_level(logging.INFO)
    anonymous = app.test_client()
    assert anonymous.get("/api/bots", headers=_basic("admin")).status_code == 200  # policy off
    monkeypatch.setitem(app.config, "REQUIRE_ADMIN_MFA", True)
    refused = anonymous.get("/api/bots", headers=_basic("admin"))
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    assert anonymous.get("/api/bots", headers=_basic("sharp")).status_code == 200
    refusal = [r for r in caplog.records if getattr(r, "event", None) == "login_refused"]
    assert refusal and refusal[-1].reason == "second factor required"
    # Anyone with TOTP on, whatever the policy: the password alone does not open the API.
    enrolled("scripted")
    assert anonymous.get("/api/bots", headers=_basic("scripted")).status_code == 401


def test_reset_mfa_from_the_command_line(app, client, login, accounts, caplog):
    caplog.set_level(logging.INFO)
    user, secret = enrolled()
    browser = login.as_user(user)
    assert is_logged_in(browser)
    result = app.test_cli_runner().invoke(args=["users", "reset-mfa", "mfa-user"])
    assert result.exit_code == 0, result.output
    assert "removed" in result.output and secret not in result.output
    stored = find_user("mfa-user")
    assert not stored.mfa_enabled and stored.totp_secret is None
    assert not is_logged_in(browser)  # its sessions ended
    # Enrols again from here (a client: it lands on its account's page).
    assert password_step(client).headers["Location"] == "/accounts/client_sharp"
    reset = [r for r in caplog.records if getattr(r, "event", None) == "mfa_reset"]
    assert reset and reset[-1].username == "mfa-user" and reset[-1].actor == "cli"
    missing = app.test_cli_runner().invoke(args=["users", "reset-mfa", "nobody"])
    assert missing.exit_code != 0 and "No user nobody" in missing.output


def test_the_secret_never_reaches_the_log_or_a_later_page(app, client, login, accounts,
                                                          caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    user = create_user("secretive", TEST_PASSWORD, "admin")
    browser = login.as_user(user)
    secret, page = _enrolment_page(browser)
    token = TOKEN.search(page).group(1)
    totp = pyotp.TOTP(secret)
    browser.post("/account/mfa", data={"csrf_token": token, "action": "enable",
                                        "secret": secret, "code": wrong_code(secret)})
    browser.post("/account/mfa", data={"csrf_token": token, "action": "enable",
                                        "secret": secret, "code": totp.now()})
    assert find_user("secretive").mfa_enabled
    pages = [browser.get(path).get_data(as_text=True)
             for path in ("/account/mfa", "/bots", "/account/password")]
    client = app.test_client()  # another browser logs in with the code
    login_page = client.get("/login").get_data(as_text=True)
    token = TOKEN.search(login_page).group(1)
    client.post("/login", data={"csrf_token": token, "username": "secretive",
                                "password": TEST_PASSWORD})
    verify = client.get("/login/verify").get_data(as_text=True)
    token = TOKEN.search(verify).group(1)
    client.post("/login/verify", data={"csrf_token": token, "code": wrong_code(secret)})
    client.post("/login/verify", data={"csrf_token": token,
                                       "code": totp.at(time.time() + 30)})
    assert is_logged_in(client)
    pages.append(verify)
    everything = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert secret not in everything
    assert not any(secret in p for p in pages)
    events = {getattr(r, "event", None) for r in caplog.records}
    assert {"mfa_enrolment_failed", "mfa_enabled", "mfa_failed", "mfa_succeeded",
            "login_succeeded"} <= events
