"""Delivering the outbox to real receivers on loopback: the four HTTP shapes, SMTP, retries
with backoff, dead with the reason, leases, redirects refused, secrets never in logs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts import delivery, service
from dashboard.alerts.conditions import evaluate
from dashboard.alerts.models import AlertDelivery
from dashboard.models import db
from dashboard.registry import utcnow

SIGNING = "a-signing-secret-for-the-tests"
BOT_TOKEN = "123456789:AAHsecretTelegramTokenForTheTests_xyz"


def drain(app) -> None:
    """Send everything due, in this thread (the test's one connection)."""
    for _ in range(100):
        if not delivery.work_once(app):
            return


def make(accounts, **data):
    return service.save_destination({"name": data.pop("name", "d"), **data}, accounts.admin)


def crashed_bot(make_bot, dest, accounts, bot_id="pmm-btc"):
    bot = make_bot(id=bot_id, name=bot_id)
    service.save_rule({"name": "r", "conditions": ["crashed"], "destination_id": dest.id},
                      accounts.admin)
    db.session.execute(sa.text("UPDATE bots SET display_status = 'crashed' WHERE id = :i"),
                       {"i": bot.id})
    db.session.commit()
    evaluate(force=True)
    return bot


def the_delivery():
    db.session.expire_all()
    return db.session.scalars(sa.select(AlertDelivery)).one()


def test_webhook_is_signed_and_carries_the_idempotency_key(app, accounts, make_bot, receiver):
    dest = make(accounts, kind="webhook", target=receiver.url + "/hook", signing_secret=SIGNING)
    crashed_bot(make_bot, dest, accounts)
    drain(app)
    [got] = receiver.received
    row = the_delivery()
    assert row.status == "delivered" and row.attempts == 1
    key = str(row.idempotency_key)
    assert got.headers["Idempotency-Key"] == key and got.body["idempotency_key"] == key
    assert got.body["event"] == "fired" and got.body["condition"] == "crashed"
    timestamp = got.headers["X-BotManagement-Timestamp"]
    expected = hmac.new(SIGNING.encode(), timestamp.encode() + b"." + got.raw,
                        hashlib.sha256).hexdigest()
    assert got.headers["X-BotManagement-Signature"] == "sha256=" + expected


@pytest.mark.parametrize("kind,field", [("slack", "text"), ("discord", "content")])
def test_slack_and_discord_shapes(app, accounts, make_bot, receiver, kind, field):
    dest = make(accounts, kind=kind, target=receiver.url + "/" + kind)
    crashed_bot(make_bot, dest, accounts)
    drain(app)
    [body] = receiver.bodies("/" + kind)
    assert body[field].startswith("[ALERT] pmm-btc (client_sharp): crashed")
    if kind == "discord":
        assert body["allowed_mentions"] == {"parse": []}


def test_telegram_send_message(app, accounts, make_bot, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "ALERTS_TELEGRAM_API_URL", receiver.url)
    dest = make(accounts, kind="telegram", target=BOT_TOKEN, chat_id="-100200300")
    crashed_bot(make_bot, dest, accounts)
    drain(app)
    [got] = receiver.received
    assert got.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert got.body["chat_id"] == "-100200300" and "crashed" in got.body["text"]


def test_email_over_smtp(app, accounts, make_bot, smtp_server):
    dest = make(accounts, kind="email", host="127.0.0.1", port=str(smtp_server.port),
                **{"from": "alerts@example.com", "to": "ops@example.com"}, starttls="false")
    crashed_bot(make_bot, dest, accounts)
    drain(app)
    [message] = smtp_server.messages
    row = the_delivery()
    assert row.status == "delivered"
    assert message["To"] == "ops@example.com" and "crashed" in message["Subject"]
    assert message["Message-ID"] == f"<{row.idempotency_key}@bot-management.alerts>"


def test_test_send_for_each_destination(app, accounts, receiver):
    dest = make(accounts, kind="slack", target=receiver.url + "/t")
    queued = service.test_send(dest.id, accounts.admin)
    assert queued.event == "test" and queued.alert_id is None
    drain(app)
    assert receiver.bodies("/t") == [{"text": "Bot Management: test message. This "
                                              "destination works."}]


def test_retries_with_backoff_then_delivered(app, accounts, make_bot, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "ALERT_BACKOFF_SECONDS", 10)
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    crashed_bot(make_bot, dest, accounts)
    receiver.behaviour.fail_next = 2
    before = utcnow()
    drain(app)
    row = the_delivery()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    first_wait = row.next_attempt_at - before
    assert timedelta(seconds=10) <= first_wait <= timedelta(seconds=13)
    drain(app)  # not due yet: nothing is sent
    assert the_delivery().attempts == 1
    db.session.execute(sa.text("UPDATE alert_deliveries SET next_attempt_at = :t"),
                       {"t": utcnow()})
    drain(app)
    row = the_delivery()
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at - utcnow() >= timedelta(seconds=19)  # doubled
    db.session.execute(sa.text("UPDATE alert_deliveries SET next_attempt_at = :t"),
                       {"t": utcnow()})
    drain(app)
    row = the_delivery()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert len(receiver.received) == 1


def test_dead_after_max_attempts_with_the_reason_then_retried(app, accounts, make_bot,
                                                               receiver, monkeypatch):
    monkeypatch.setitem(app.config, "ALERT_BACKOFF_SECONDS", 0)
    monkeypatch.setitem(app.config, "ALERT_MAX_ATTEMPTS", 3)
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    crashed_bot(make_bot, dest, accounts)
    receiver.behaviour.fail_ratio = 1.0
    drain(app)
    row = the_delivery()
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "HTTP 500")
    receiver.behaviour.fail_ratio = 0.0
    service.retry_delivery(row.id, accounts.admin)
    drain(app)
    row = the_delivery()
    assert (row.status, row.attempts) == ("delivered", 1)


def test_a_redirect_is_not_followed(app, accounts, make_bot, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "ALERT_MAX_ATTEMPTS", 1)
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    crashed_bot(make_bot, dest, accounts)
    receiver.behaviour.status = 302  # Location: the metadata address
    drain(app)
    row = the_delivery()
    assert row.status == "dead" and "redirects are not followed" in row.last_error


def test_a_killed_workers_claim_comes_back_after_its_lease(app, accounts, make_bot, receiver,
                                                         monkeypatch):
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    crashed_bot(make_bot, dest, accounts)
    with app.app_context():
        first = delivery.claim()  # and then the worker dies: nothing more
    assert first["attempts"] == 1
    with app.app_context():
        assert delivery.claim() is None  # leased
    db.session.execute(sa.text("UPDATE alert_deliveries SET locked_until = :t"),
                       {"t": utcnow() - timedelta(seconds=1)})
    with app.app_context():
        second = delivery.claim()
        assert (second["id"], second["attempts"], second["key"]) == \
            (first["id"], 2, first["key"])
        assert delivery.deliver(second) == "delivered"
        # The dead worker's late answer changes nothing.
        db.session.execute(delivery.FAILED, {"id": first["id"], "attempts": 1,
                                             "status": "dead", "next": utcnow(),
                                             "error": "late"})
    row = the_delivery()
    assert (row.status, row.attempts) == ("delivered", 2)


def test_policy_is_checked_again_at_send_time(app, accounts, make_bot, receiver, monkeypatch):
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    crashed_bot(make_bot, dest, accounts)
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_LOOPBACK", False)
    drain(app)
    row = the_delivery()
    assert row.status == "dead" and row.last_error.startswith("refused by the outbound policy")
    assert receiver.received == []


def test_secrets_never_in_logs_errors_or_descriptions(app, accounts, make_bot, receiver,
                                                      monkeypatch, caplog):
    monkeypatch.setitem(app.config, "ALERTS_TELEGRAM_API_URL", receiver.url)
    monkeypatch.setitem(app.config, "ALERT_BACKOFF_SECONDS", 0)
    monkeypatch.setitem(app.config, "ALERT_MAX_ATTEMPTS", 2)
    hook_url = receiver.url + "/T000/B000/XXXXsecretpathXXXX"
    telegram = make(accounts, kind="telegram", target=BOT_TOKEN, chat_id="42", name="tg")
    hook = make(accounts, kind="webhook", target=hook_url, signing_secret=SIGNING, name="wh")
    receiver.behaviour.fail_ratio = 1.0
    caplog.set_level(logging.DEBUG)
    for dest in (telegram, hook):
        service.test_send(dest.id, accounts.admin)
    drain(app)
    # And a destination that does not answer at all (connection refused).
    from tests.servers import free_port

    closed = f"http://127.0.0.1:{free_port()}/hooks/XXXXsecretpathXXXX"
    make(accounts, kind="slack", target=closed, name="gone")
    service.test_send(db.session.scalar(sa.text(
        "SELECT id FROM alert_destinations WHERE name = 'gone'")), accounts.admin)
    drain(app)
    rows = db.session.scalars(sa.select(AlertDelivery)).all()
    assert {r.status for r in rows} == {"dead"}
    assert {r.last_error for r in rows} == {"HTTP 500", "could not connect"}
    stored = db.session.execute(sa.text(
        "SELECT target, signing_secret FROM alert_destinations")).all()
    described = [service.describe_destination(d) for d in
                 db.session.scalars(service.visible_destinations(accounts.admin))]
    for secret in (BOT_TOKEN, "XXXXsecretpathXXXX", SIGNING):
        assert secret not in caplog.text
        assert secret not in repr(described)
        assert all(secret not in (value or "") for row in stored for value in row)  # sealed
    assert "set, ending" in repr(described)


def test_a_slow_destination_does_not_hold_up_another(committed_app, accounts, receiver):
    """Two workers: one is stuck in a slow receiver, the other delivers meanwhile."""
    from tests.alert_receivers import Receiver

    release = threading.Event()
    slow = Receiver()
    slow.behaviour.hold = release
    slow.start()
    try:
        with committed_app.app_context():
            committed_app.config["ALERT_SEND_TIMEOUT"] = 20
            stuck = make(accounts, kind="slack", target=slow.url + "/slow", name="slow")
            fast = make(accounts, kind="slack", target=receiver.url + "/fast", name="fast")
            service.test_send(stuck.id, accounts.admin)
            time.sleep(0.01)  # queued first: taken first
            service.test_send(fast.id, accounts.admin)
        runner = threading.Thread(target=delivery.run_pending, args=(committed_app, 2))
        runner.start()
        for _ in range(200):
            if receiver.received:
                break
            time.sleep(0.05)
        assert receiver.bodies("/fast"), "the fast destination waited for the slow one"
        release.set()
        runner.join(30)
        assert slow.bodies("/slow")  # and the slow one got there too
    finally:
        release.set()
        slow.stop()


def statuses(dest_id) -> list[str]:
    db.session.rollback()  # a fresh snapshot: the workers commit on their own connections
    return list(db.session.scalars(sa.select(AlertDelivery.status).where(
        AlertDelivery.destination_id == dest_id).order_by(AlertDelivery.id)))


def test_two_held_sends_do_not_take_both_workers(committed_app, accounts, receiver):
    """ALERT_WORKERS=2 and a destination that hangs: its first message holds one worker, its
    second waits for that slot, and every message of another destination, queued after them,
    is delivered meanwhile by the other worker."""
    from tests.alert_receivers import Receiver

    release = threading.Event()
    slow = Receiver()
    slow.behaviour.hold = release
    slow.start()
    runner = threading.Thread(target=delivery.run_pending, args=(committed_app, 2))
    try:
        with committed_app.app_context():
            committed_app.config["ALERT_SEND_TIMEOUT"] = 20
            stuck = make(accounts, kind="slack", target=slow.url + "/slow", name="slow")
            fast = make(accounts, kind="slack", target=receiver.url + "/fast", name="fast")
            for dest in (stuck, stuck, fast, fast, fast):  # the held ones first in line
                service.test_send(dest.id, accounts.admin)
            runner.start()
            for _ in range(200):
                if statuses(fast.id) == ["delivered"] * 3:
                    break
                time.sleep(0.05)
            assert statuses(fast.id) == ["delivered"] * 3, "both workers waited on the slow one"
            assert len(receiver.bodies("/fast")) == 3
            assert statuses(stuck.id) == ["sending", "pending"]  # one held, one waiting
            assert slow.received == []
            release.set()
            runner.join(60)
            assert not runner.is_alive()
            assert statuses(stuck.id) == ["delivered", "delivered"]
            assert len(slow.bodies("/slow")) == 2
    finally:
        release.set()
        if runner.is_alive():
            runner.join(60)
        slow.stop()


def test_destination_slots_cap_each_destination():
    slots = delivery.Slots.for_workers(3)
    assert slots.take(1) and slots.take(1) and not slots.take(1)
    assert slots.take(2) and slots.full() == [1]
    slots.give(1)
    assert slots.full() == [] and slots.take(1)
    assert delivery.Slots.for_workers(1).cap == 1  # one worker still sends


def test_hummingbots_text_cannot_ping_a_slack_channel(app, accounts, make_bot, receiver):
    dest = make(accounts, kind="slack", target=receiver.url + "/s")
    bot = make_bot()
    service.save_rule({"name": "r", "conditions": ["error_lines"], "destination_id": dest.id},
                      accounts.admin)
    db.session.execute(sa.text(
        "UPDATE bots SET display_status = 'running', error_log = :e WHERE id = :i"),
        {"i": bot.id, "e": "<!channel> see <http://evil.example|the fix> & more"})
    evaluate(force=True)
    drain(app)
    [body] = receiver.bodies("/s")
    assert "&lt;!channel&gt; see &lt;http://evil.example|the fix&gt; &amp; more" in body["text"]
    assert "<!channel>" not in body["text"]


def test_a_clients_destination_gets_the_detail_as_its_pages_show_it(
        app, accounts, make_bot, receiver, simulator):
    """A deploy_failed alert quotes the bot's last error: the admin's destination gets it as
    stored, a client's the redacted text (no Hummingbot API address, no previous account)."""
    from dashboard.registry import update_bot
    from tests.conftest import make_bot_data

    address = simulator.url.split("//")[1]
    ops = make(accounts, name="ops", kind="slack", target=receiver.url + "/ops")
    own = service.save_destination({"name": "mine", "kind": "slack",
                                    "target": receiver.url + "/client"}, accounts.client_a)
    bot = make_bot(account_identifier="client_other")
    update_bot(bot, make_bot_data(account_identifier="client_sharp"), "admin",
               expected_version=bot.version)
    for dest, user in ((ops, accounts.admin), (own, accounts.client_a)):
        service.save_rule({"name": f"r{dest.id}", "conditions": ["deploy_failed"],
                           "destination_id": dest.id}, user)
    db.session.execute(sa.text(
        "UPDATE bots SET display_status = 'deploy_failed', last_error = :e WHERE id = :i"),
        {"i": bot.id, "e": f"Hummingbot API at {simulator.url} answered POST deploy with "
                           "HTTP 500: bots/credentials/client_other is missing"})
    db.session.commit()
    evaluate(force=True)
    drain(app)
    [to_ops] = receiver.bodies("/ops")
    [to_client] = receiver.bodies("/client")
    assert address in to_ops["text"] and "client_other" in to_ops["text"]
    assert address not in to_client["text"] and "client_other" not in to_client["text"]
    assert "another account" in to_client["text"]
