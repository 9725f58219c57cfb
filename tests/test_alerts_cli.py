"""`flask --app wsgi alerts test|list|retry|evaluate`."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.alerts import service
from dashboard.alerts.models import AlertDelivery
from dashboard.models import db


def test_test_list_and_retry(app, accounts, receiver, monkeypatch):
    runner = app.test_cli_runner()
    dest = service.save_destination({"name": "ops", "kind": "slack",
                                     "target": receiver.url + "/hooks/secretpathpart"},
                                    accounts.admin)
    result = runner.invoke(args=["alerts", "test", str(dest.id)])
    assert result.exit_code == 0, result.output
    assert "delivered" in result.output and "secretpathpart" not in result.output
    assert len(receiver.bodies("/hooks/secretpathpart")) == 1

    monkeypatch.setitem(app.config, "ALERT_MAX_ATTEMPTS", 1)
    receiver.behaviour.fail_next = 1
    result = runner.invoke(args=["alerts", "test", str(dest.id)])
    assert result.exit_code == 1 and "dead (HTTP 500)" in result.output

    result = runner.invoke(args=["alerts", "list", "--status", "dead"])
    [line] = result.output.strip().splitlines()
    dead_id = int(line.split("\t")[0])
    assert "test" in line and "HTTP 500" in line and "secretpathpart" not in line

    result = runner.invoke(args=["alerts", "retry", str(dead_id)])
    assert result.exit_code == 0 and "pending again" in result.output
    db.session.expire_all()
    assert db.session.get(AlertDelivery, dead_id).status == "pending"
    result = runner.invoke(args=["alerts", "retry", str(dead_id)])
    assert result.exit_code != 0 and "only a dead delivery" in result.output
    assert runner.invoke(args=["alerts", "retry", "999999"]).exit_code != 0
    assert runner.invoke(args=["alerts", "test", "999999"]).exit_code != 0


def test_evaluate(app, make_bot):
    bot = make_bot()
    db.session.execute(sa.text("UPDATE bots SET display_status = 'crashed' WHERE id = :i"),
                       {"i": bot.id})
    result = app.test_cli_runner().invoke(args=["alerts", "evaluate"])
    assert result.exit_code == 0 and "Opened 1, fired 1" in result.output
