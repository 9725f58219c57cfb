"""Dashboard users: creation, password hashing and login checks."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from .audit import security_event
from .models import ROLES, User, db
from .validation import HUMMINGBOT_NAME

# argon2id with argon2-cffi's RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4,
# above OWASP ASVS 5.0 appendix C's minimum (m=19 MiB, t=2, p=1). tests/test_security_passwords.py
# reads the parameters back out of a stored hash.
_hasher = PasswordHasher()
# Verified against when the user does not exist, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-just-for-timing")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # long passphrases are kept whole, never truncated
MAX_USERNAME_LENGTH = 64
# Context-specific words (ASVS 6.1.2, 6.2.11): a password that is one of these once digits and
# symbols are stripped ("Hummingbot2024!") is refused, as is one containing the username.
CONTEXT_WORDS = frozenset({
    "hummingbot", "botmanagement", "botmanager", "tradingbot", "tradingbots", "dashboard",
    "marketmaking", "marketmaker", "binance", "kucoin", "bitcoin", "crypto", "admin",
    "administrator",
})
COMMON_PASSWORDS = frozenset(
    line.strip().lower()
    for line in (Path(__file__).parent / "data" / "common-passwords.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


class UserError(ValueError):
    pass


def check_password_rules(password: str, username: str | None = None) -> None:
    """Length, the common-password list and context words; no composition rules."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        raise UserError("That password is too common; choose another.")
    if re.sub(r"[^a-z]", "", lowered) in CONTEXT_WORDS:
        raise UserError("That password is too easy to guess for this service; choose another.")
    if username and len(username) >= 3 and username.lower() in lowered:
        raise UserError("The password must not contain the username.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def find_user(username: str) -> User | None:
    query = select(User).where(func.lower(User.username) == username.strip().lower())
    return db.session.scalars(query).first()


def create_user(
    username: str, password: str, role: str, account_identifier: str | None = None
) -> User:
    username = username.strip()
    if not username or len(username) > 64 or not HUMMINGBOT_NAME.match(username):
        raise UserError("Username must be 1-64 letters, digits, '-' or '_'.")
    if role not in ROLES:
        raise UserError(f"Role must be one of: {', '.join(ROLES)}.")
    account_identifier = (account_identifier or "").strip() or None
    if role == "client" and not account_identifier:
        raise UserError("A client needs --account, the Hummingbot account it may see.")
    if account_identifier and not HUMMINGBOT_NAME.match(account_identifier):
        raise UserError("Account may contain only letters, digits, '-' and '_'.")
    check_password_rules(password, username)
    if find_user(username) is not None:
        raise UserError(f"User {username} already exists.")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        account_identifier=account_identifier if role == "client" else None,
    )
    db.session.add(user)
    db.session.commit()
    security_event("user_created", username=user.username, role=user.role,
                   user_account=user.account_identifier)
    return user


def authenticate(username: str, password: str) -> User | None:
    """The user if the password matches and the account is active; None otherwise.

    Unknown users cost one hash verification too, so timing does not tell them apart.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        return None  # no account has one; refusing early keeps hashing cost bounded
    plausible = 0 < len(username) <= MAX_USERNAME_LENGTH and "\x00" not in username
    user = find_user(username) if plausible else None
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # upgrade old parameters at login
        db.session.commit()
    return user


def create_first_admin() -> str | None:
    """On a database with no users, create `admin` with a random password and return it."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    create_user("admin", password, "admin")
    return password


def set_active(user: User, active: bool) -> None:
    user.active = active
    user.session_generation += 1  # existing sessions stop working either way
    db.session.commit()
    security_event("user_activated" if active else "user_deactivated", username=user.username)


def set_password(user: User, password: str) -> None:
    check_password_rules(password, user.username)
    user.password_hash = hash_password(password)
    user.session_generation += 1
    db.session.commit()
    security_event("password_set", username=user.username)


def revoke_sessions(user: User) -> None:
    user.session_generation += 1
    db.session.commit()
    security_event("sessions_revoked", username=user.username)


def revoke_all_sessions() -> int:
    """Log every user out everywhere (ASVS 7.4.5); returns how many logins were affected."""
    result = db.session.execute(update(User).values(
        session_generation=User.session_generation + 1))
    db.session.commit()
    security_event("sessions_revoked", username="*all*", count=result.rowcount)
    return result.rowcount
