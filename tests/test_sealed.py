"""Secrets sealed at rest (dashboard/sealed.py): the database holds only ciphertext, keys
rotate without losing a value, and a bad key is refused at start."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from dashboard import create_app
from dashboard.config import ConfigError
from dashboard.models import db
from dashboard.sealed import Sealed, UnreadableSecret, hint, rotate_all, seal, unseal
from tests.conftest import base_config

SECRET = "https://hooks.example.test/services/T000/B000/abcdefghijklmnopqrstuvwx"


def app_with_keys(database_url: str, keys: str):
    return create_app(base_config(database_url, ENCRYPTION_KEYS=keys))


@pytest.fixture
def vault(migrated):
    """A throwaway table with one sealed column, committed so `rotate_all` reads it."""
    metadata = sa.MetaData()
    table = sa.Table("sealed_test_vault", metadata,
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("secret", Sealed(), nullable=True))
    engine = sa.create_engine(migrated)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield metadata, table
    metadata.drop_all(engine)
    engine.dispose()


def stored(table) -> list[str | None]:
    return list(db.session.execute(
        sa.text(f"SELECT secret FROM {table.name} ORDER BY id")).scalars())  # noqa: S608


def test_a_sealed_column_stores_ciphertext_and_reads_plain_text(migrated, vault):
    _metadata, table = vault
    app = app_with_keys(migrated, Fernet.generate_key().decode())
    with app.app_context():
        db.session.execute(table.insert(), [{"id": 1, "secret": SECRET}, {"id": 2, "secret": None}])
        db.session.commit()
        raw = stored(table)
        assert SECRET not in raw[0] and "hooks.example" not in raw[0]
        assert raw[1] is None
        assert db.session.execute(sa.select(table.c.secret).order_by(table.c.id)) \
            .scalars().all() == [SECRET, None]
        db.engine.dispose()


def test_rotation_moves_every_value_to_the_first_key(migrated, vault):
    metadata, table = vault
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with app_with_keys(migrated, old).app_context():
        db.session.execute(table.insert(), [{"id": 1, "secret": SECRET}])
        db.session.commit()
        db.engine.dispose()

    rotated = app_with_keys(migrated, f"{new},{old}")
    with rotated.app_context():
        assert rotate_all(db.session, metadata) == 1
        token = stored(table)[0]
        assert Fernet(new.encode()).decrypt(token.encode()).decode() == SECRET
        db.engine.dispose()

    # The old key can go now: the new one alone reads the value.
    with app_with_keys(migrated, new).app_context():
        assert db.session.execute(sa.select(table.c.secret)).scalar_one() == SECRET
        db.engine.dispose()


def test_a_value_no_configured_key_opens_is_a_clear_error(migrated):
    one, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with app_with_keys(migrated, one).app_context():
        token = seal(SECRET)
    with app_with_keys(migrated, other).app_context(), pytest.raises(UnreadableSecret):
        unseal(token)


def test_without_keys_a_key_derived_from_secret_key_is_used_and_kept_for_reading(migrated):
    with app_with_keys(migrated, "").app_context():
        token = seal(SECRET)
    # Moving to an explicit key: the derived one still opens what was sealed before rotate.
    with app_with_keys(migrated, Fernet.generate_key().decode()).app_context():
        assert unseal(token) == SECRET


def test_a_malformed_key_refuses_to_start(migrated):
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key"):
        app_with_keys(migrated, f"{Fernet.generate_key().decode()},not-a-key")


def test_a_hint_never_shows_a_short_secret_and_only_the_end_of_a_long_one():
    assert hint(None) == hint("") == "not set"
    assert hint("hunter2") == "set"
    assert hint(SECRET) == "set, ending …uvwx"
    assert SECRET[:-4] not in hint(SECRET)


def test_the_cli_prints_a_new_key_and_rotates(migrated):
    app = app_with_keys(migrated, "")
    key = app.test_cli_runner().invoke(args=["secrets", "new-key"]).output.strip()
    Fernet(key.encode())  # a valid key
    result = app_with_keys(migrated, key).test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"Re-encrypted \d+ secrets with the first key\.\n", result.output)
