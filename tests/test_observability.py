"""Operations: JSON log lines with request ids, /readyz, and the migrations' downgrades."""

import json
import logging

import sqlalchemy as sa

from dashboard.models import Bot, db
from dashboard.observability import ACCESS_LOG, EVENT_LOG, JsonFormatter
from tests.conftest import make_bot_data


def test_every_request_logs_one_line_with_its_request_id(login, caplog):
    client = login.as_admin()
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG):
        response = client.get("/bots", headers={"X-Request-ID": "trace-12345678"})
    [record] = [r for r in caplog.records if r.name == ACCESS_LOG]
    assert response.headers["X-Request-ID"] == "trace-12345678"
    line = json.loads(JsonFormatter().format(record))
    assert (line["method"], line["path"], line["status"], line["user"]) == \
        ("GET", "/bots", 200, "admin")
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info" and line["ts"].endswith("+00:00")


def test_a_request_id_that_is_not_safe_is_replaced(client):
    for unsafe in ("short", "<script>alert(1)</script>", "x" * 65, "a b c d e f g h"):
        response = client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert response.headers["X-Request-ID"] != unsafe
        assert len(response.headers["X-Request-ID"]) == 32


def test_lifecycle_actions_log_a_line_each(login, caplog):
    with caplog.at_level(logging.INFO, logger=EVENT_LOG):
        login.as_admin().post("/bots/new", data=make_bot_data())
        login.as_admin().post("/bots/pmm-btc/archive")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == EVENT_LOG]
    assert [(line["bot_id"], line["action"], line["actor"]) for line in lines] == [
        ("pmm-btc", "created", "admin"), ("pmm-btc", "archived", "admin")]
    assert all(line["request_id"] for line in lines)


def test_readyz_is_ready_at_head_even_with_hummingbot_down(client, simulator):
    assert client.get("/readyz").get_json() == {
        "database": "ok", "migrations": "at head", "hummingbot": "ok", "ready": True}
    simulator.set_fault("unreachable")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["hummingbot"] == "unreachable"


def test_readyz_is_not_ready_behind_the_migrations(client):
    db.session.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["migrations"].startswith("at 0001, head is")


def test_every_downgrade_after_the_first_keeps_the_bots(committed_app):
    """Down to the initial schema and up again on a database holding bots: none is lost.
    (Below 0001 there is no schema at all: that round trip is in test_schema.py.)"""
    from flask_migrate import downgrade, upgrade

    with committed_app.app_context():
        from dashboard.registry import create_bot

        for i in range(3):
            create_bot(make_bot_data(id=f"keep-{i}", name=f"keep-{i}",
                                     config=f'{{"n": {i}}}'), "admin")
        before = {b.id: (b.name, b.config) for b in db.session.scalars(sa.select(Bot))}
        db.session.remove()
        downgrade(revision="0001")
        upgrade()
        after = {b.id: (b.name, b.config) for b in db.session.scalars(sa.select(Bot))}
    assert after == before and len(after) == 3
