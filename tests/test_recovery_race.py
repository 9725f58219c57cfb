"""Adoption under a real race: two transactions adopting one instance name. The unique
`instance_name` column decides; the loser answers "already adopted" and stores nothing."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.registry import utcnow
from tests.concurrency import run_together
from tests.conftest import Login


def waiting_on_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'")))


def test_concurrent_adoption_of_one_instance_keeps_one_definition(committed_app, accounts,
                                                                  simulator):
    live = simulator.seed_bot("raced", account="client_sharp", controllers=["pmm_btc_1"],
                              timestamped=True)
    client = Login(committed_app.test_client(), accounts).as_admin()
    form = {"id": "raced", "name": "raced", "account_identifier": "client_sharp",
            "strategy": "v2_with_controllers", "connector": "binance", "pair": "BTC-USDT",
            "config": "{}"}

    with committed_app.app_context():
        engine = db.engine
        # Another request got there first: its INSERT is done but not committed yet.
        other = engine.connect()
        first = other.begin()
        other.execute(sa.text(
            "INSERT INTO bots (id, name, account_identifier, strategy, connector, pair, "
            "status, instance_name) VALUES ('raced-first', 'raced-first', 'client_sharp', "
            "'v2_with_controllers', 'binance', 'BTC-USDT', 'running', :live)"), {"live": live})

        responses = []
        second = threading.Thread(target=lambda: responses.append(
            client.post(f"/recovery/orphans/{live}/adopt", data=form)))
        second.start()
        # The second request passed every check and now waits on the unique index.
        deadline = time.monotonic() + 30
        while not waiting_on_a_lock(engine):
            assert second.is_alive(), "the second adoption did not reach the database"
            assert time.monotonic() < deadline, "the second adoption never blocked"
            time.sleep(0.02)
        first.commit()
        other.close()
        second.join(30)

        [response] = responses
        assert response.status_code == 302
        assert response.headers["Location"] == "/bots/raced-first"
        bots = db.session.scalars(sa.select(Bot).where(Bot.instance_name == live)).all()
        assert [b.id for b in bots] == ["raced-first"]
        assert db.session.get(Bot, "raced") is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent)) == 0


@pytest.mark.parametrize("path", ["/bots/{id}/archive", "/bots/{id}/restore",
                                  "/recovery/bots/{id}/restore"])
def test_eight_parallel_archives_or_restores_of_one_bot_never_500(committed_app, accounts,
                                                                   path):
    """Each click locks the row and re-reads it: one changes the bot, the others find it done
    (before: 3-5 x 302 and the rest 500 from a stale versioned UPDATE)."""
    archiving = path.endswith("archive")
    with committed_app.app_context():
        db.session.add(Bot(id="raced", name="raced", account_identifier="client_sharp",
                           strategy="pure_market_making", connector="binance",
                           pair="BTC-USDT", status="archived" if not archiving else "stopped",
                           archived_at=None if archiving else utcnow()))
        db.session.commit()
        clients = [Login(committed_app.test_client(), accounts).as_admin() for _ in range(8)]

        statuses = run_together(8, lambda i: clients[i].post(path.format(id="raced")).status_code)
        assert set(statuses) <= {302, 409} and 302 in statuses, statuses
        bot = db.session.get(Bot, "raced")
        assert bot.is_archived == archiving
        actions = db.session.scalars(sa.select(BotEvent.action).where(
            BotEvent.bot_id == "raced")).all()
        assert actions == ["archived" if archiving else "restored"]
