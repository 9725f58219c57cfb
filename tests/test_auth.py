"""Login, logout, sessions and passwords."""

import re

import pytest

from dashboard.models import User, db
from dashboard.users import UserError, authenticate, check_password_rules, create_user
from tests.conftest import TEST_PASSWORD


def log_in(client, username, password, **extra):
    return client.post("/login", data={"username": username, "password": password, **extra})


def test_login_then_the_bot_list(client, accounts):
    response = log_in(client, "admin", TEST_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/bots"
    assert client.get("/bots").status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(client, accounts):
    wrong = log_in(client, "admin", "not the password")
    unknown = log_in(client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid username or password." in wrong.get_data(as_text=True)
    def scrub(response, username):  # the echoed username and per-request CSRF tokens differ
        body = response.get_data(as_text=True).replace(username, "X")
        return re.sub(r'"[\w.-]{40,}"', '"token"', body)

    assert scrub(wrong, "admin") == scrub(unknown, "nobody-here")


def test_login_form_keeps_the_username_after_failure(client, accounts):
    page = log_in(client, "admin", "nope").get_data(as_text=True)
    assert 'value="admin"' in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil",
                                    # browsers drop tabs and newlines: "//evil.example"
                                    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil"])
def test_login_never_redirects_off_site(client, accounts, target):
    response = log_in(client, "admin", TEST_PASSWORD, next=target)
    assert response.headers["Location"] == "/bots"


def test_login_follows_a_local_next(client, accounts):
    response = log_in(client, "admin", TEST_PASSWORD, next="/bots?status=running")
    assert response.headers["Location"] == "/bots?status=running"


def test_logout_is_a_post_and_revokes_a_copied_cookie(client, accounts):
    log_in(client, "sharp", TEST_PASSWORD)
    stolen = client.get_cookie("session").value
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    other = client.application.test_client()
    other.set_cookie("session", stolen)
    assert other.get("/bots").status_code == 302  # the replayed cookie is anonymous


def test_deactivated_user_loses_its_session(client, accounts):
    from dashboard.users import set_active

    log_in(client, "sharp", TEST_PASSWORD)
    assert client.get("/bots").status_code == 200
    set_active(db.session.get(User, accounts.client_a.id), False)
    assert client.get("/bots").status_code == 302
    assert log_in(client, "sharp", TEST_PASSWORD).status_code == 401


def test_login_starts_a_fresh_session(client, accounts):
    with client.session_transaction() as session:
        session["planted"] = "by-attacker"
    log_in(client, "admin", TEST_PASSWORD)
    with client.session_transaction() as session:
        assert "planted" not in session


def test_passwords_are_argon2id_hashed(app, accounts):
    user = db.session.get(User, accounts.admin.id)
    assert user.password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in user.password_hash


def test_old_hash_parameters_are_upgraded_at_login(app):
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    user = create_user("legacy", "an old stored passphrase", "admin")
    user.password_hash = weak.hash("an old stored passphrase")
    db.session.commit()
    assert authenticate("legacy", "an old stored passphrase") is not None
    assert "m=65536" in db.session.get(User, user.id).password_hash


@pytest.mark.parametrize("password", ["short", "password123", "Qwerty123"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(UserError):
        check_password_rules(password)


def test_long_passphrases_are_kept_whole(app):
    passphrase = "correct horse battery staple " * 10
    create_user("longpass", passphrase, "admin")
    assert authenticate("longpass", passphrase) is not None
    assert authenticate("longpass", passphrase[:72]) is None  # no bcrypt-style truncation


def test_session_cookie_flags(client, accounts):
    response = log_in(client, "admin", TEST_PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
