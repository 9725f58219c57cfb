"""The kill soak: worker processes SIGKILLed while they deliver a burst of alerts to a receiver
that fails and times out part of the time. Afterwards every alert was delivered at least
once, nothing is left pending, duplicates carry the same idempotency key, and pages answered
throughout. Bounded loops, no timed assertion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import sqlalchemy as sa

from dashboard.alerts import service
from dashboard.alerts.conditions import evaluate
from dashboard.models import db
from tests.servers import ROOT

ALERTS = 520
SIGNING = "a-signing-secret-for-the-tests"


def start_worker(app) -> subprocess.Popen:
    env = {**os.environ,
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": app.config["SECRET_KEY"],  # the key the destination was sealed with
           "APP_ENV": "test", "ALERTS_ALLOW_LOOPBACK": "true", "ALERTS_ALLOW_HTTP": "true",
           "ALERT_LEASE_SECONDS": "1.5", "ALERT_BACKOFF_SECONDS": "0.05",
           "ALERT_MAX_ATTEMPTS": "1000", "ALERT_SEND_TIMEOUT": "0.4",
           "ALERT_POLL_SECONDS": "0.1", "LOG_LEVEL": "ERROR"}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "alerts", "work", "--threads", "3"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def counts() -> dict[str, int]:
    rows = db.session.execute(sa.text(
        "SELECT status, count(*) FROM alert_deliveries GROUP BY status")).all()
    db.session.rollback()
    return dict(rows)


def wait_for(predicate, pages, limit: float = 90.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate(counts()):
            return True
        pages()
        time.sleep(0.2)
    return False


def test_kill_soak_delivers_every_alert_at_least_once(committed_app, accounts, receiver):
    receiver.behaviour.fail_ratio = 0.15  # 500s
    receiver.behaviour.slow_ratio = 0.05  # answered after the sender's timeout: a retry
    receiver.behaviour.slow_seconds = 0.8
    client = committed_app.test_client()
    answered = []

    def pages():
        answered.append(client.get("/healthz").status_code)

    with committed_app.app_context():
        dest = service.save_destination({"name": "soak", "kind": "webhook",
                                         "target": receiver.url + "/soak",
                                         "signing_secret": SIGNING}, accounts.admin)
        service.save_rule({"name": "all", "conditions": ["crashed"],
                           "destination_id": dest.id}, accounts.admin)
        db.session.execute(sa.text("""
            INSERT INTO bots (id, name, account_identifier, strategy, connector, pair,
                              display_status)
            SELECT 's' || n, 's' || n, 'client_sharp', 'pmm', 'binance', 'BTC-USDT', 'crashed'
            FROM generate_series(1, :n) AS n"""), {"n": ALERTS})
        db.session.commit()
        assert evaluate(force=True).queued == ALERTS

        workers = [start_worker(committed_app) for _ in range(3)]
        try:
            assert wait_for(lambda c: c.get("delivered", 0) >= 100, pages)
            kill(workers.pop(0))  # mid-burst: its claims are `sending` until their lease ends
            assert wait_for(lambda c: c.get("delivered", 0) >= 250, pages)
            kill(workers.pop(0))
            workers.append(start_worker(committed_app))
            assert wait_for(lambda c: c.get("delivered", 0) >= 400, pages)
            kill(workers.pop(0))
            workers.append(start_worker(committed_app))
            assert wait_for(lambda c: c.get("pending", 0) + c.get("sending", 0) == 0, pages)
        finally:
            for worker in workers:
                kill(worker)

        assert counts() == {"delivered": ALERTS}
        keys = dict(db.session.execute(sa.text(
            "SELECT CAST(idempotency_key AS text), alert_id FROM alert_deliveries")).all())
        attempts = db.session.scalar(sa.text("SELECT sum(attempts) FROM alert_deliveries"))
        db.session.rollback()

    received = receiver.received
    by_key = Counter(r.headers["Idempotency-Key"] for r in received)
    assert set(by_key) == set(keys)  # every alert arrived, and nothing else did
    for got in received:  # a duplicate is the same message: same key, same alert
        key = got.headers["Idempotency-Key"]
        assert got.body["idempotency_key"] == key and got.body["alert_id"] == keys[key]
    assert set(answered) == {200} and len(answered) > 0
    duplicates = sum(n - 1 for n in by_key.values())
    print(f"\nsoak: {ALERTS} alerts, {len(received)} received, {duplicates} duplicates, "
          f"{attempts} attempts, {len(answered)} page loads during the soak")
