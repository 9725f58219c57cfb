"""Migration 0011 on a database that already has bots: they land on `default`; downgrade works
while only `default` is used and refuses clearly otherwise."""

import pytest
import sqlalchemy as sa

from dashboard.models import db
from tests import scratch_db

INSERT_BOT = sa.text(
    "INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, instance_name) "
    "VALUES (:id, :id, 'client_sharp', 'pmm', 'binance', 'BTC-USDT', :instance)")


@pytest.fixture
def scratch_app(database_url):
    with scratch_db.scratch_app(database_url, "servers") as app:
        yield app


def _scalar(sql, **params):
    with db.engine.begin() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_existing_bots_move_onto_default_and_downgrade_round_trips(scratch_app, capfd):
    from flask_migrate import downgrade, upgrade

    upgrade(revision="0009")
    with db.engine.begin() as conn:
        conn.execute(INSERT_BOT, {"id": "a", "instance": "a-1"})
        conn.execute(INSERT_BOT, {"id": "b", "instance": None})
    upgrade(revision="0011")
    assert _scalar("SELECT count(*) FROM hummingbot_servers") == 1
    assert _scalar("SELECT base_url FROM hummingbot_servers WHERE name = 'default'") is None
    assert _scalar("SELECT count(DISTINCT server_id) FROM bots") == 1
    assert _scalar("SELECT s.name FROM bots b JOIN hummingbot_servers s "
                   "ON s.id = b.server_id WHERE b.id = 'a'") == "default"
    # The same instance name on another server is another bot now.
    with db.engine.begin() as conn:
        other = conn.execute(sa.text(
            "INSERT INTO hummingbot_servers (name, base_url) VALUES ('eu', 'http://eu') "
            "RETURNING id")).scalar()
        conn.execute(sa.text(
            "INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, "
            "instance_name, server_id) VALUES ('c', 'c', 'x', 'pmm', 'binance', 'BTC-USDT', "
            "'a-1', :server)"), {"server": other})
    with pytest.raises(SystemExit):  # flask_migrate logs the migration's refusal, exits
        downgrade(revision="0009")
    assert "1 bot(s) are on servers other than 'default'" in capfd.readouterr().err
    assert _scalar("SELECT version_num FROM alembic_version") == "0011"
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM bot_events WHERE bot_id = 'c'"))
        conn.execute(sa.text("DELETE FROM bots WHERE id = 'c'"))
    downgrade(revision="0009")
    assert _scalar("SELECT count(*) FROM bots") == 2
    assert "hummingbot_servers" not in sa.inspect(db.engine).get_table_names()
    upgrade()
    assert _scalar("SELECT count(*) FROM bots WHERE server_id IS NULL") == 0


def test_a_fresh_database_has_no_server_until_a_bot_needs_one(scratch_app):
    from flask_migrate import upgrade

    upgrade()
    assert _scalar("SELECT count(*) FROM hummingbot_servers") == 0
    with db.engine.begin() as conn:
        conn.execute(INSERT_BOT, {"id": "a", "instance": None})
    assert _scalar("SELECT name FROM hummingbot_servers") == "default"
