"""The schema comes from the migrations and keeps the proposed `bots` table column for column."""

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import InternalError

from dashboard.models import BotEvent, db

# From the proposal (DESIGN.md): name -> (type, nullable, default).
PROPOSED_BOTS_COLUMNS = {
    "id": ("character varying", "NO", None),
    "name": ("character varying", "NO", None),
    "account_identifier": ("character varying", "NO", None),
    "strategy": ("character varying", "NO", None),
    "connector": ("character varying", "NO", None),
    "pair": ("character varying", "NO", None),
    "config": ("jsonb", "NO", "'{}'::jsonb"),
    "status": ("character varying", "YES", "'stopped'::character varying"),
    "created_at": ("timestamp without time zone", "YES", "now()"),
    "updated_at": ("timestamp without time zone", "YES", "now()"),
}


def _columns(table):
    rows = db.session.execute(sa.text(
        "SELECT column_name, data_type, is_nullable, column_default, ordinal_position "
        "FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position"
    ), {"t": table})
    return [tuple(row) for row in rows]


def test_bots_table_keeps_the_proposed_columns_first_and_unchanged(app):
    columns = _columns("bots")
    proposed = [(name, *spec) for name, spec in PROPOSED_BOTS_COLUMNS.items()]
    assert [c[:4] for c in columns[: len(proposed)]] == proposed


def test_bots_table_has_the_product_columns(app):
    names = {c[0] for c in _columns("bots")}
    assert {"instance_name", "version", "archived_at", "last_error", "last_seen_status",
            "last_seen_at", "deploy_request_id", "deploy_requested_at"} <= names


def test_proposed_indexes_exist_with_their_names(app):
    rows = db.session.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'bots'"))
    indexes = dict(rows.all())
    assert indexes["idx_bots_account"].endswith("USING btree (account_identifier)")
    assert indexes["idx_bots_status"].endswith("USING btree (status)")
    # An instance name is unique per Hummingbot server (migration 0011), not globally.
    assert indexes["uq_bots_server_instance_name"].endswith(
        "USING btree (server_id, instance_name)")
    assert "UNIQUE" in indexes["uq_bots_server_instance_name"]


def test_proposed_defaults_apply_to_a_plain_sql_insert(app):
    """Existing SQL written against the proposal keeps working."""
    db.session.execute(sa.text(
        "INSERT INTO bots (id, name, account_identifier, strategy, connector, pair) "
        "VALUES ('legacy', 'legacy', 'client_sharp', 'pmm', 'binance', 'BTC-USDT')"))
    row = db.session.execute(sa.text(
        "SELECT config, status, created_at IS NOT NULL, updated_at IS NOT NULL, version "
        "FROM bots WHERE id = 'legacy'")).one()
    assert tuple(row) == ({}, "stopped", True, True, 1)


def test_history_is_append_only(app, make_bot):
    bot = make_bot()
    event = db.session.scalars(sa.select(BotEvent).where(BotEvent.bot_id == bot.id)).one()
    for statement in ("UPDATE bot_events SET actor = 'forger' WHERE id = :id",
                      "DELETE FROM bot_events WHERE id = :id"):
        with pytest.raises(InternalError, match="append-only"), db.session.begin_nested():
            db.session.execute(sa.text(statement), {"id": event.id})


def test_models_and_migrations_do_not_drift(session_app):
    """Alembic's `check`: autogenerate finds nothing the migrations lack."""
    from flask_migrate import check

    with session_app.app_context():
        check()  # raises (exits) on drift


def test_no_runtime_path_calls_create_all():
    from pathlib import Path

    sources = Path(__file__).resolve().parent.parent.joinpath("dashboard").rglob("*.py")
    assert not [p for p in sources if "create_all" in p.read_text()]


def test_migrations_round_trip(database_url):
    """Every migration's downgrade works: upgrade, downgrade to base, upgrade again."""
    from flask_migrate import downgrade, upgrade

    from tests.scratch_db import scratch_app

    with scratch_app(database_url, "roundtrip"):
        upgrade()
        downgrade(revision="base")
        upgrade()
        tables = sa.inspect(db.engine).get_table_names()
    assert {"bots", "bot_events", "users", "alembic_version"} <= set(tables)
