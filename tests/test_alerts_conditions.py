"""Alert conditions: each fires once and resolves once; hold, repeat, mutes and routing; the
outbox rows are written with the transition; statements per pass do not grow with the fleet."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts import service
from dashboard.alerts.conditions import ALERT_LOCK_KEY, evaluate
from dashboard.alerts.models import Alert, AlertDelivery
from dashboard.models import db
from dashboard.registry import utcnow

WEBHOOK_SECRET = "a-signing-secret-for-the-tests"


def destination(accounts, url, account=None, name="hook"):
    user = accounts.admin if account is None else \
        (accounts.client_a if account == "client_sharp" else accounts.client_b)
    return service.save_destination({"name": name, "kind": "webhook", "target": url,
                                     "signing_secret": WEBHOOK_SECRET}, user)


def rule(accounts, dest, conditions, account=None, **extra):
    user = accounts.admin if account is None else \
        (accounts.client_a if account == "client_sharp" else accounts.client_b)
    return service.save_rule({"name": "r", "conditions": conditions, "destination_id": dest.id,
                              "account_identifier": account or "", **extra}, user)


def set_bot(bot_id, **columns):
    sets = ", ".join(f"{name} = :{name}" for name in columns)
    db.session.execute(sa.text(f"UPDATE bots SET {sets} WHERE id = :id"),  # noqa: S608
                       {"id": bot_id, **columns})
    db.session.commit()


def alerts(condition=None):
    query = sa.select(Alert).order_by(Alert.id)
    if condition:
        query = query.where(Alert.condition == condition)
    db.session.expire_all()
    return db.session.scalars(query).all()


def deliveries(event=None):
    query = sa.select(AlertDelivery).order_by(AlertDelivery.id)
    if event:
        query = query.where(AlertDelivery.event == event)
    return db.session.scalars(query).all()


BADGE_CASES = {
    "missing": {"display_status": "missing"},
    "crashed": {"display_status": "crashed"},
    "deploy_failed": {"display_status": "deploy_failed", "last_error": "image not found"},
    "stuck": {"display_status": "stuck"},
    "archived_running": {"display_status": "archived_running"},
    "error_lines": {"display_status": "running", "error_log": "ERROR order rejected <b>x</b>"},
}


@pytest.mark.parametrize("condition", sorted(BADGE_CASES))
def test_each_bot_condition_fires_once_and_resolves_once(app, accounts, make_bot, receiver,
                                                          condition):
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, [condition])
    set_bot(bot.id, **BADGE_CASES[condition])
    for _ in range(3):
        evaluate(force=True)
    [alert] = alerts()
    assert (alert.condition, alert.state, alert.bot_id) == (condition, "firing", bot.id)
    assert alert.account_identifier == "client_sharp"
    [fired] = deliveries()
    assert (fired.event, fired.destination_id, fired.alert_id) == ("fired", dest.id, alert.id)
    assert fired.payload["condition"] == condition and fired.payload["bot_name"] == bot.name
    if condition == "error_lines":  # Hummingbot's text, kept as text
        assert alert.detail == "ERROR order rejected <b>x</b>"

    set_bot(bot.id, display_status="running", error_log=None)
    for _ in range(3):
        evaluate(force=True)
    [alert] = alerts()
    assert alert.state == "resolved" and alert.resolved_at is not None
    assert [d.event for d in deliveries()] == ["fired", "resolved"]

    set_bot(bot.id, **BADGE_CASES[condition])  # a new episode is a new alert
    evaluate(force=True)
    assert [a.state for a in alerts()] == ["resolved", "firing"]
    assert [d.event for d in deliveries()] == ["fired", "resolved", "fired"]


def add_pnl_points(bot_id, deltas, now, controller="main"):
    """Raw samples, one a minute, ending now: global_pnl deltas."""
    start = now - timedelta(minutes=len(deltas))
    for n, delta in enumerate(deltas, start=1):
        db.session.execute(sa.text(
            "INSERT INTO performance_points (bot_id, resolution, at, controller, realized, "
            "unrealized, global_pnl, volume) VALUES (:b, 0, :at, :c, 0, 0, :d, 0)"),
            {"b": bot_id, "at": start + timedelta(minutes=n), "d": delta, "c": controller})
    db.session.commit()


def test_drawdown_over_the_threshold_in_the_window(app, accounts, make_bot, receiver):
    now = utcnow()
    bot, calm = make_bot(), make_bot(id="calm", name="calm")
    duo = make_bot(id="duo", name="duo")
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["drawdown"], drawdown_amount="100", drawdown_window_minutes="30")
    # Two controllers losing 60 each in the same samples: the bot lost 120.
    add_pnl_points(duo.id, [0, -30, -30], now, controller="a")
    add_pnl_points(duo.id, [0, -30, -30], now, controller="b")
    # Up 50, down 130, up 5: now 125 under the peak, within the last 30 minutes.
    add_pnl_points(bot.id, [10, 20, 20, -40, -50, -40, 5], now)
    # An old fall, outside the window, then flat.
    add_pnl_points(calm.id, [-500] + [0] * 40, now - timedelta(minutes=1))
    evaluate(now=now, force=True)
    pair, alert = sorted(alerts(), key=lambda a: a.bot_id)  # duo, pmm-btc
    assert (pair.bot_id, pair.state) == (duo.id, "firing") and "120.00" in pair.detail
    assert (alert.bot_id, alert.condition, alert.state) == (bot.id, "drawdown", "firing")
    assert "125.00" in alert.detail and "30 min" in alert.detail
    # It recovers: the last hour's fall is under the threshold once the bot is back up.
    add_pnl_points(bot.id, [120], now + timedelta(minutes=1))
    evaluate(now=now + timedelta(minutes=1), force=True)
    assert {a.bot_id: a.state for a in alerts()} == {bot.id: "resolved", duo.id: "firing"}


def test_drawdown_is_read_again_only_when_its_inputs_changed(app, accounts, make_bot, receiver):
    """Reading every bot's window is the costly part of a pass: it is done again after a new
    sample period, a rule change, or five minutes; in between the open alerts stand."""
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["drawdown"], drawdown_amount="100")
    add_pnl_points(bot.id, [0, -150], now)
    assert evaluate(now=now).ran
    assert [a.state for a in alerts()] == ["firing"]
    add_pnl_points(bot.id, [200], now + timedelta(seconds=30))  # recovered, not yet sampled
    evaluate(now=now + timedelta(seconds=30))
    assert [a.state for a in alerts()] == ["firing"]  # the same inputs: not read again
    db.session.execute(sa.text("UPDATE performance_clock SET sampled_at = :t"),
                       {"t": now + timedelta(seconds=30)})  # a sample period was recorded
    evaluate(now=now + timedelta(seconds=40))
    assert [a.state for a in alerts()] == ["resolved"]
    add_pnl_points(bot.id, [-300], now + timedelta(seconds=50))
    evaluate(now=now + timedelta(seconds=50))
    assert [a.state for a in alerts()] == ["resolved"]
    evaluate(now=now + timedelta(seconds=50 + 301))  # five minutes: read again anyway
    assert [a.state for a in alerts()] == ["resolved", "firing"]


def test_hummingbot_unreachable_after_n_minutes_from_the_snapshots(app, accounts, receiver,
                                                                    reconfigure):
    from dashboard.gateway import hummingbot
    from tests.servers import free_port

    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["hummingbot_unreachable"], unreachable_minutes="5")
    good_url = app.config["HUMMINGBOT_API_URL"]
    reconfigure(HUMMINGBOT_API_URL=f"http://127.0.0.1:{free_port()}")
    assert not hummingbot().feed.snapshot().reachable  # what pages do anyway
    since = db.session.scalar(sa.text("SELECT hummingbot_failing_since FROM alert_clock"))
    assert since is not None
    evaluate(now=since + timedelta(minutes=4), force=True)
    assert alerts() == []  # not yet N minutes
    evaluate(now=since + timedelta(minutes=6), force=True)
    [alert] = alerts()
    assert (alert.bot_id, alert.account_identifier, alert.state) == (None, None, "firing")
    assert alert.detail == "Hummingbot is unreachable" and alert.since == since
    assert [d.event for d in deliveries()] == ["fired"]

    reconfigure(HUMMINGBOT_API_URL=good_url)
    assert hummingbot().feed.snapshot().reachable
    assert db.session.scalar(sa.text("SELECT hummingbot_failing_since FROM alert_clock")) \
        is None
    evaluate(force=True)
    assert alerts()[0].state == "resolved"
    assert [d.event for d in deliveries()] == ["fired", "resolved"]


def test_hold_time_keeps_flapping_bots_quiet(app, accounts, make_bot, receiver):
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["crashed"], hold_seconds="300")
    set_bot(bot.id, display_status="crashed")
    evaluate(now=now - timedelta(seconds=100), force=True)
    evaluate(now=now, force=True)
    assert [a.state for a in alerts()] == ["pending"] and deliveries() == []
    set_bot(bot.id, display_status="running")  # back before the hold: nobody is told
    evaluate(now=now, force=True)
    assert alerts() == [] and deliveries() == []

    set_bot(bot.id, display_status="crashed")
    evaluate(now=now - timedelta(seconds=400), force=True)
    evaluate(now=now - timedelta(seconds=200), force=True)
    assert [a.state for a in alerts()] == ["pending"]
    evaluate(now=now, force=True)
    assert [a.state for a in alerts()] == ["firing"]
    assert [d.event for d in deliveries()] == ["fired"]


def test_repeat_interval_for_long_outages(app, accounts, make_bot, receiver):
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["missing"], repeat_seconds="60")
    set_bot(bot.id, display_status="missing")
    for seconds_ago in (200, 150, 130, 90, 60, 0):
        evaluate(now=now - timedelta(seconds=seconds_ago), force=True)
    # Fired at -200; repeated at -130 (70 s later) and at -60, and at 0.
    assert [d.event for d in deliveries()] == ["fired", "repeat", "repeat", "repeat"]
    assert alerts()[0].last_notified_at == now


def test_rule_without_repeat_sends_one_message_until_resolved(app, accounts, make_bot,
                                                                receiver):
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["missing"])
    rule(accounts, dest, ["missing", "crashed"])  # a second rule to the same destination
    set_bot(bot.id, display_status="missing")
    for hours_ago in (5, 3, 1, 0):
        evaluate(now=now - timedelta(hours=hours_ago), force=True)
    assert [d.event for d in deliveries()] == ["fired"]


@pytest.mark.parametrize("scope", ["bot", "account", "everything"])
def test_mutes_hold_messages_until_they_end(app, accounts, make_bot, receiver, scope):
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["crashed"])
    data = {"minutes": "30", "reason": "maintenance"}
    if scope == "bot":
        data["bot_id"] = bot.id
    elif scope == "account":
        data["account_identifier"] = "client_sharp"
    mute = service.create_mute(data, accounts.admin)
    set_bot(bot.id, display_status="crashed")
    evaluate(now=now, force=True)
    assert [a.state for a in alerts()] == ["firing"]  # the pages still show it
    assert deliveries() == []
    evaluate(now=mute.until + timedelta(seconds=1), force=True)
    assert [d.event for d in deliveries()] == ["fired"]  # still broken after the mute


def test_a_mute_silences_repeats_but_not_the_resolved_message_of_a_told_alert(
        app, accounts, make_bot, receiver):
    """Told it fired, then muted (someone is on it): no repeat during the mute, but when the
    bot recovers the destination hears so, mute or not: it would otherwise believe the bot is
    still down. Once, to the destinations that were told."""
    now = utcnow()
    bot = make_bot()
    told = destination(accounts, receiver.url + "/told", name="told")
    rule(accounts, told, ["crashed"], repeat_seconds="60")
    set_bot(bot.id, display_status="crashed")
    evaluate(now=now, force=True)
    assert [d.event for d in deliveries()] == ["fired"]
    late = destination(accounts, receiver.url + "/late", name="late")
    rule(accounts, late, ["crashed"])  # routed after the fired message: never told
    mute = service.create_mute({"minutes": "60", "bot_id": bot.id}, accounts.admin)
    evaluate(now=now + timedelta(minutes=5), force=True)
    assert [d.event for d in deliveries()] == ["fired"]  # no repeat, nothing to `late`
    set_bot(bot.id, display_status="running")
    evaluate(now=now + timedelta(minutes=10), force=True)
    assert [a.state for a in alerts()] == ["resolved"]
    assert [(d.event, d.destination_id) for d in deliveries()] == \
        [("fired", told.id), ("resolved", told.id)]
    evaluate(now=mute.until + timedelta(seconds=1), force=True)
    assert len(deliveries()) == 2


def test_an_alert_that_began_and_ended_inside_a_mute_tells_nobody(app, accounts, make_bot,
                                                                  receiver):
    now = utcnow()
    bot = make_bot()
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["crashed"])
    mute = service.create_mute({"minutes": "30", "bot_id": bot.id}, accounts.admin)
    set_bot(bot.id, display_status="crashed")
    evaluate(now=now, force=True)
    set_bot(bot.id, display_status="running")
    evaluate(now=now + timedelta(minutes=1), force=True)
    evaluate(now=mute.until + timedelta(seconds=1), force=True)
    assert [a.state for a in alerts()] == ["resolved"]
    assert deliveries() == []


def test_a_mute_of_another_bot_or_account_does_not_hold_messages(app, accounts, make_bot,
                                                                  receiver):
    bot = make_bot()
    other = make_bot(id="other", name="other", account_identifier="client_other")
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["crashed"])
    service.create_mute({"minutes": "30", "bot_id": other.id}, accounts.admin)
    service.create_mute({"minutes": "30", "account_identifier": "client_other"}, accounts.admin)
    set_bot(bot.id, display_status="crashed")
    evaluate(force=True)
    assert [d.event for d in deliveries()] == ["fired"]


def test_routing_by_account_reaches_exactly_the_routed_destinations(app, accounts, make_bot,
                                                                    receiver):
    sharp_bot = make_bot()
    other_bot = make_bot(id="o1", name="o1", account_identifier="client_other")
    operator = destination(accounts, receiver.url + "/operator", name="operator")
    sharp = destination(accounts, receiver.url + "/sharp", account="client_sharp", name="s")
    other = destination(accounts, receiver.url + "/other", account="client_other", name="o")
    rule(accounts, operator, ["crashed"])  # every account
    rule(accounts, sharp, ["crashed"], account="client_sharp")
    rule(accounts, other, ["missing"], account="client_other")  # another condition
    set_bot(sharp_bot.id, display_status="crashed")
    set_bot(other_bot.id, display_status="crashed")
    evaluate(force=True)
    routed = {(d.payload["bot_id"], d.destination_id) for d in deliveries()}
    assert routed == {(sharp_bot.id, operator.id), (sharp_bot.id, sharp.id),
                      (other_bot.id, operator.id)}


def test_a_client_destination_never_hears_of_another_account(app, accounts, make_bot,
                                                             receiver):
    """Even a rule for all accounts written straight into the table (the service refuses
    it) cannot send one account's alert to another account's destination."""
    bot = make_bot(account_identifier="client_other", id="o1", name="o1")
    sharp = destination(accounts, receiver.url, account="client_sharp")
    db.session.execute(sa.text(
        "INSERT INTO alert_rules (name, conditions, destination_id, created_by) "
        "VALUES ('forged', ARRAY['crashed'], :d, 'x')"), {"d": sharp.id})
    set_bot(bot.id, display_status="crashed")
    evaluate(force=True)
    assert [a.state for a in alerts()] == ["firing"] and deliveries() == []


def test_alert_without_rules_still_fires_for_the_pages(app, make_bot):
    bot = make_bot()
    set_bot(bot.id, display_status="stuck")
    evaluate(force=True)
    assert [(a.condition, a.state) for a in alerts()] == [("stuck", "firing")]
    assert deliveries() == []


def test_one_open_alert_per_bot_and_condition_and_per_fleet_condition(app, make_bot):
    bot = make_bot()
    set_bot(bot.id, display_status="stuck")
    evaluate(force=True)
    for bot_id in (bot.id, None):
        if bot_id is None:
            db.session.execute(sa.text(
                "INSERT INTO alerts (condition, since) VALUES ('hummingbot_unreachable', now())"))
        with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
            db.session.execute(sa.text(
                "INSERT INTO alerts (bot_id, condition, since) VALUES (:b, :c, now())"),
                {"b": bot_id, "c": "stuck" if bot_id else "hummingbot_unreachable"})


def test_one_evaluator_at_a_time_and_once_a_period(committed_app, monkeypatch):
    monkeypatch.setitem(committed_app.config, "ALERT_EVALUATE_SECONDS", 30)
    with committed_app.app_context():
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ALERT_LOCK_KEY})
            try:
                report = evaluate(force=True)
            finally:
                other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ALERT_LOCK_KEY})
                other.commit()
        assert not report.ran and "another process" in report.reason
        assert evaluate().ran
        assert not evaluate().ran  # less than a period later
        db.session.rollback()


def add_bots(count: int, start: int = 0) -> None:
    db.session.execute(sa.text("""
        INSERT INTO bots (id, name, account_identifier, strategy, connector, pair,
                          display_status, error_log)
        SELECT 'b' || n, 'b' || n, 'client_sharp', 'pure_market_making', 'binance', 'BTC-USDT',
               (ARRAY['running', 'crashed', 'missing', 'stuck'])[1 + n % 4],
               CASE WHEN n % 5 = 0 THEN 'ERROR x' END
        FROM generate_series(:first, :last) AS n
    """), {"first": start + 1, "last": start + count})
    db.session.commit()


def test_statements_per_pass_do_not_grow_with_the_fleet(app, accounts, receiver, statements):
    dest = destination(accounts, receiver.url)
    rule(accounts, dest, ["crashed", "missing", "stuck", "error_lines", "drawdown"],
         drawdown_amount="10", repeat_seconds="60")
    counts = []
    for start, count in ((0, 40), (40, 400)):
        add_bots(count, start)
        statements.clear()
        report = evaluate(force=True)
        counts.append(len(statements))
        assert report.ran and report.queued > 0
        # A pass with everything already open: the same statements again.
        statements.clear()
        evaluate(force=True)
        counts.append(len(statements))
    assert len(set(counts)) == 1, counts
    assert counts[0] <= 12, counts
