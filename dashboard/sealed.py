"""Secrets kept in PostgreSQL (webhook URLs, bot tokens, SMTP and Hummingbot passwords),
encrypted at rest with keys from the environment, rotatable.

`ENCRYPTION_KEYS` is a comma-separated list of Fernet keys (`flask --app wsgi secrets new-key`
prints one): the first encrypts, every one decrypts. Without it, one key is derived from
SECRET_KEY, so a new install works with nothing more to set; that derived key is always kept as
the last decrypt-only key, so moving to explicit keys is: set ENCRYPTION_KEYS, then run
`flask --app wsgi secrets rotate`, which re-encrypts every sealed value with the first key.

A column declared `Sealed()` stores the ciphertext; the model reads and writes plain text.
Pages show a sealed value only through `hint()`, never in full.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.types import Text, TypeDecorator

EXTENSION = "sealed"


class SealedKeyError(ValueError):
    """ENCRYPTION_KEYS holds something that is not a Fernet key."""


class UnreadableSecret(RuntimeError):
    """A stored value none of the configured keys can open (a key was removed too soon)."""


def derived_key(secret_key: str) -> bytes:
    """A Fernet key from SECRET_KEY (HMAC-SHA256 with a fixed label: a one-step HKDF)."""
    digest = hmac.new(secret_key.encode(), b"bot-management sealed v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def parse_keys(raw: str | None) -> list[bytes]:
    keys = [part.strip().encode() for part in (raw or "").split(",") if part.strip()]
    for index, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError as exc:
            raise SealedKeyError(
                f"ENCRYPTION_KEYS: key {index} is not a Fernet key (32 url-safe base64 bytes; "
                "`flask --app wsgi secrets new-key` prints one)") from exc
    return keys


def init_app(app) -> None:
    keys = parse_keys(app.config.get("ENCRYPTION_KEYS"))
    fallback = derived_key(app.config["SECRET_KEY"])
    ordered = keys + ([fallback] if fallback not in keys else [])
    app.extensions[EXTENSION] = MultiFernet([Fernet(key) for key in ordered])


def _box() -> MultiFernet:
    return current_app.extensions[EXTENSION]


def seal(plain: str) -> str:
    return _box().encrypt(plain.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _box().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise UnreadableSecret("a stored secret cannot be decrypted with ENCRYPTION_KEYS; "
                               "was a key removed before `secrets rotate` ran?") from exc


def reseal(token: str) -> str:
    """The same secret under the current first key (what `secrets rotate` writes)."""
    try:
        return _box().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise UnreadableSecret("a stored secret cannot be decrypted with ENCRYPTION_KEYS") from exc


def hint(plain: str | None, *, keep: int = 4) -> str:
    """What a page may show of a secret: that one is set, and at most its last few characters
    when it is long enough for those not to give it away."""
    if not plain:
        return "not set"
    if len(plain) < 16:
        return "set"
    return "set, ending …" + plain[-keep:]


class Sealed(TypeDecorator):
    """A text column whose value is stored encrypted. NULL stays NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else seal(value)

    def process_result_value(self, value, dialect):
        return None if value is None else unseal(value)


def sealed_columns(metadata) -> list[tuple[str, str, str]]:
    """(table, primary key column, column) for every Sealed column: what `rotate` walks."""
    found = []
    for table in metadata.sorted_tables:
        primary = [column.name for column in table.primary_key.columns]
        for column in table.columns:
            if isinstance(column.type, Sealed) and len(primary) == 1:
                found.append((table.name, primary[0], column.name))
    return found


def rotate_all(session, metadata) -> int:
    """Re-encrypt every sealed value with the first key, in one transaction; returns how many.
    Reads the stored ciphertext directly so a value is never decoded into a model."""
    from sqlalchemy import column, select, table, update

    count = 0
    for table_name, primary, name in sealed_columns(metadata):
        target = table(table_name, column(primary), column(name))
        rows = session.execute(
            select(target.c[primary], target.c[name]).where(target.c[name].is_not(None))
            .with_for_update()).all()
        for key, token in rows:
            session.execute(update(target).where(target.c[primary] == key)
                            .values({name: reseal(token)}))
            count += 1
    session.commit()
    return count
