"""Passwords (ASVS 6.2.1-6.2.9, 6.2.11, 6.3.8 in part, 11.4.2 and appendix C).

tests/test_auth.py already covers: argon2id hashes without the password in them, upgrade of
old parameters at login, the basic weak-password refusals, a 290-character passphrase kept
whole, the same answer for an unknown user and a wrong password.
"""

from __future__ import annotations

import base64
import re

import pytest

from dashboard.models import User, db
from dashboard.users import (
    COMMON_PASSWORDS,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    UserError,
    authenticate,
    check_password_rules,
    create_user,
    set_active,
)
from tests.conftest import TEST_PASSWORD

PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")


def test_stored_hashes_meet_appendix_c(app, accounts):
    """argon2id with at least m=19 MiB, t=2, p=1 (OWASP's floor), a 128-bit salt and a
    256-bit tag: read back from the row, not from the library's defaults."""
    stored = db.session.get(User, accounts.admin.id).password_hash
    memory, time_cost, parallelism, salt, tag = PHC.match(stored).groups()
    assert int(memory) >= 19 * 1024 and int(time_cost) >= 2 and int(parallelism) >= 1
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731 - PHC strings drop base64 padding
    assert len(base64.b64decode(pad(salt))) >= 16
    assert len(base64.b64decode(pad(tag))) >= 32


def test_the_common_password_list_is_big_enough():
    """ASVS 6.2.4: at least the top 3000 that meet the length rule."""
    assert len({p for p in COMMON_PASSWORDS if len(p) >= MIN_PASSWORD_LENGTH}) >= 3000


@pytest.mark.parametrize("password", ["iloveyou1", "qwertyuiop", "1qaz2wsx3edc", "Password1",
                                      "SUNSHINE1", "baseball1"])
def test_common_passwords_are_refused_whatever_their_case(password):
    with pytest.raises(UserError, match="too common"):
        check_password_rules(password)


@pytest.mark.parametrize("password", ["Hummingbot2024!", "hummingbot!!", "Bot-Management-1",
                                      "tradingbot_99"])
def test_context_specific_words_are_refused(password):
    with pytest.raises(UserError, match="too easy to guess"):
        check_password_rules(password)


def test_a_password_containing_the_username_is_refused():
    with pytest.raises(UserError, match="username"):
        check_password_rules("my name is Sharpie, hi", "sharpie")


@pytest.mark.parametrize("password", [
    "correcthorsebatterystaple",  # lowercase only: no composition rules
    "zzzzzzzzzzzzzzzz1",
    "pässwörd mit ümläuten und 密码 and spaces",
    "x" * 63 + "y",  # 64 characters
    "Ω" * MAX_PASSWORD_LENGTH,  # the longest, multibyte
])
def test_any_composition_and_long_passphrases_are_accepted_exactly(app, password):
    create_user("composer", password, "admin")
    assert authenticate("composer", password) is not None
    assert authenticate("composer", password.upper()) is None or password == password.upper()
    assert authenticate("composer", password[:-1]) is None  # never truncated
    assert authenticate("composer", password + " ") is None  # never trimmed


def test_too_long_is_refused_at_creation_and_fails_fast_at_login(app):
    with pytest.raises(UserError, match="at most"):
        check_password_rules("x" * (MAX_PASSWORD_LENGTH + 1))
    assert authenticate("admin", "x" * 100_000) is None


def test_inactive_unknown_and_wrong_answer_alike(client, accounts, app):
    set_active(db.session.get(User, accounts.client_b.id), False)

    def answer(username, password):
        response = client.post("/login", data={"username": username, "password": password})
        body = response.get_data(as_text=True).replace(username, "USER")
        return response.status_code, re.sub(r'"[\w.-]{40,}"', '"token"', body)

    inactive = answer("other", TEST_PASSWORD)
    unknown = answer("nobody-here", TEST_PASSWORD)
    wrong = answer("sharp", "not the password")
    assert inactive == unknown == wrong
    assert inactive[0] == 401 and "Invalid username or password." in inactive[1]


def test_password_fields_are_masked_and_paste_friendly(client, login):
    for page in (client.get("/login"), login.as_client_a().get("/account/password")):
        body = page.get_data(as_text=True)
        for field in re.findall(r"<input[^>]*name=\"[a-z_]*password\"[^>]*>", body):
            assert 'type="password"' in field and "autocomplete=" in field
        assert "onpaste" not in body.lower()


# ------------------------------------------------------------------ the change page
def _change(client, current, new, confirm=None):
    return client.post("/account/password", data={
        "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm})


@pytest.mark.parametrize(("current", "new", "confirm", "field"), [
    ("not the password", "a brand new passphrase", None, "Current password is not right."),
    (TEST_PASSWORD, "a brand new passphrase", "something else", "does not match"),
    (TEST_PASSWORD, "iloveyou1", None, "too common"),
    (TEST_PASSWORD, "short", None, "at least 8"),
])
def test_a_refused_change_changes_nothing(login, accounts, current, new, confirm, field):
    client = login.as_client_a()
    response = _change(client, current, new, confirm)
    assert response.status_code == 422
    assert field in response.get_data(as_text=True)
    assert authenticate("sharp", TEST_PASSWORD) is not None
    assert client.get("/bots").status_code == 200


def test_a_change_takes_the_new_password_only(login, accounts):
    assert _change(login.as_client_a(), TEST_PASSWORD, "a brand new passphrase") \
        .status_code == 302
    assert authenticate("sharp", "a brand new passphrase") is not None
    assert authenticate("sharp", TEST_PASSWORD) is None
