"""The alert services the pages call: validation as field -> message, and access: a client
reaches only its own account's destinations, rules, mutes, deliveries and alerts."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from dashboard.alerts import service
from dashboard.alerts.conditions import evaluate
from dashboard.alerts.models import AlertDestination
from dashboard.models import db
from dashboard.validation import ValidationError

SIGNING = "a-signing-secret-for-the-tests"


def hook(user, url, name="hook", **extra):
    return service.save_destination({"name": name, "kind": "webhook", "target": url,
                                     "signing_secret": SIGNING, **extra}, user)


def test_validation_errors_name_each_field(app, accounts):
    with pytest.raises(ValidationError) as bad:
        service.save_destination({"kind": "telegram", "target": "nope", "chat_id": "x y"},
                                 accounts.admin)
    assert set(bad.value.errors) == {"name", "target", "chat_id"}
    with pytest.raises(ValidationError) as bad:
        service.save_destination({"name": "w", "kind": "webhook",
                                  "target": "http://127.0.0.1/"}, accounts.admin)
    assert set(bad.value.errors) == {"signing_secret"}
    with pytest.raises(ValidationError) as bad:
        service.save_destination({"name": "e", "kind": "email", "host": "127.0.0.1",
                                  "port": "99999", "from": "x", "to": "y@example.com",
                                  "username": "u"}, accounts.admin)
    assert set(bad.value.errors) == {"port", "from", "target"}
    with pytest.raises(ValidationError) as bad:
        service.save_destination({"name": "k", "kind": "pager"}, accounts.admin)
    assert "kind" in bad.value.errors


def test_rule_validation(app, accounts, receiver):
    dest = hook(accounts.admin, receiver.url)
    with pytest.raises(ValidationError) as bad:
        service.save_rule({"name": "", "conditions": ["nope"], "destination_id": dest.id,
                           "hold_seconds": "-1", "repeat_seconds": "5"}, accounts.admin)
    assert set(bad.value.errors) == {"name", "conditions", "hold_seconds", "repeat_seconds"}
    with pytest.raises(ValidationError) as bad:
        service.save_rule({"name": "d", "conditions": ["drawdown"], "destination_id": dest.id},
                          accounts.admin)
    assert set(bad.value.errors) == {"drawdown_amount"}
    made = service.save_rule({"name": "d", "conditions": "drawdown,crashed",
                              "destination_id": str(dest.id), "drawdown_amount": "25.5",
                              "drawdown_window_minutes": "15"}, accounts.admin)
    assert made.conditions == ["crashed", "drawdown"]
    assert made.params == {"drawdown_amount": 25.5, "drawdown_window_minutes": 15}


def test_an_edit_with_a_blank_secret_keeps_the_stored_one(app, accounts, receiver):
    dest = hook(accounts.admin, receiver.url + "/first")
    service.save_destination({"name": "renamed", "target": "", "signing_secret": ""},
                             accounts.admin, dest.id)
    db.session.expire_all()
    kept = db.session.get(AlertDestination, dest.id)
    assert (kept.name, kept.target, kept.signing_secret) == \
        ("renamed", receiver.url + "/first", SIGNING)


def test_a_client_owns_its_destinations_and_nothing_else(app, accounts, receiver):
    sharp, other, admin = accounts.client_a, accounts.client_b, accounts.admin
    mine = hook(sharp, receiver.url, account_identifier="client_other")  # ignored for clients
    assert mine.account_identifier == "client_sharp"
    theirs = hook(other, receiver.url, name="theirs")
    operators = hook(admin, receiver.url, name="ops")
    assert [d.id for d in db.session.scalars(service.visible_destinations(sharp))] == [mine.id]
    assert {d.id for d in db.session.scalars(service.visible_destinations(admin))} == \
        {mine.id, theirs.id, operators.id}
    for foreign in (theirs.id, operators.id, 10**6):
        for attempt in (lambda i: service.get_destination_or_404(i, sharp),
                        lambda i: service.save_destination({"name": "x"}, sharp, i),
                        lambda i: service.delete_destination(i, sharp),
                        lambda i: service.test_send(i, sharp)):
            with pytest.raises(NotFound):
                attempt(foreign)
    assert db.session.get(AlertDestination, theirs.id).name == "theirs"


def test_a_client_rule_routes_only_its_account_to_its_own_destinations(app, accounts,
                                                                       receiver):
    sharp = accounts.client_a
    mine = hook(sharp, receiver.url)
    theirs = hook(accounts.client_b, receiver.url, name="theirs")
    operators = hook(accounts.admin, receiver.url, name="ops")
    made = service.save_rule({"name": "r", "conditions": ["crashed"], "destination_id": mine.id,
                              "account_identifier": ""}, sharp)
    assert made.account_identifier == "client_sharp"
    for dest in (theirs, operators):
        with pytest.raises(ValidationError) as bad:
            service.save_rule({"name": "r", "conditions": ["crashed"],
                               "destination_id": dest.id}, sharp)
        assert "destination_id" in bad.value.errors
    with pytest.raises(ValidationError) as bad:
        service.save_rule({"name": "r", "conditions": ["hummingbot_unreachable"],
                           "destination_id": mine.id}, sharp)
    assert "conditions" in bad.value.errors
    # An admin cannot point one account's rule at another account's destination either.
    with pytest.raises(ValidationError):
        service.save_rule({"name": "r", "conditions": ["crashed"], "destination_id": theirs.id,
                           "account_identifier": "client_sharp"}, accounts.admin)
    ops_rule = service.save_rule({"name": "ops", "conditions": ["crashed"],
                                  "destination_id": operators.id}, accounts.admin)
    assert [r.id for r in db.session.scalars(service.visible_rules(sharp))] == [made.id]
    with pytest.raises(NotFound):
        service.delete_rule(ops_rule.id, sharp)


def test_client_mutes_cover_only_their_own_bots(app, accounts, make_bot):
    sharp = accounts.client_a
    mine = make_bot()
    theirs = make_bot(id="o1", name="o1", account_identifier="client_other")
    muted = service.create_mute({"bot_id": mine.id, "minutes": "60"}, sharp)
    everything = service.create_mute({"minutes": "60"}, sharp)  # no subject: its account
    assert (everything.bot_id, everything.account_identifier) == (None, "client_sharp")
    for data in ({"bot_id": theirs.id}, {"account_identifier": "client_other"}):
        with pytest.raises(ValidationError):
            service.create_mute({**data, "minutes": "60"}, sharp)
    with pytest.raises(ValidationError) as bad:
        service.create_mute({"until": "2000-01-01T00:00:00"}, sharp)
    assert "until" in bad.value.errors
    fleet = service.create_mute({"minutes": "60"}, accounts.admin)  # the operator: everything
    assert (fleet.bot_id, fleet.account_identifier) == (None, None)
    assert {m.id for m in db.session.scalars(service.visible_mutes(sharp))} == \
        {muted.id, everything.id}
    for foreign in (fleet.id, service.create_mute({"bot_id": theirs.id, "minutes": "5"},
                                                  accounts.admin).id):
        with pytest.raises(NotFound):
            service.delete_mute(foreign, sharp)


def test_delivery_log_and_alerts_are_scoped_to_the_clients_account(app, accounts, make_bot,
                                                                   receiver):
    sharp = accounts.client_a
    mine_bot = make_bot()
    their_bot = make_bot(id="o1", name="o1", account_identifier="client_other")
    mine = hook(sharp, receiver.url)
    ops = hook(accounts.admin, receiver.url, name="ops")
    service.save_rule({"name": "r", "conditions": ["crashed"], "destination_id": mine.id}, sharp)
    service.save_rule({"name": "o", "conditions": ["crashed"], "destination_id": ops.id},
                      accounts.admin)
    db.session.execute(sa.text("UPDATE bots SET display_status = 'crashed'"))
    evaluate(force=True)
    log = service.list_deliveries(sharp)
    assert {d.destination_id for d in log} == {mine.id} and len(log) == 1
    assert len(service.list_deliveries(accounts.admin)) == 3
    assert len(service.list_deliveries(accounts.admin, destination_id=ops.id,
                                       status="pending", event="fired")) == 2
    ops_delivery = service.list_deliveries(accounts.admin, destination_id=ops.id)[0]
    db.session.execute(sa.text("UPDATE alert_deliveries SET status = 'dead'"))
    with pytest.raises(NotFound):
        service.retry_delivery(ops_delivery.id, sharp)
    assert service.retry_delivery(log[0].id, sharp).status == "pending"

    assert [a.bot_id for a in service.open_alerts_for_bot(mine_bot.id, sharp)] == [mine_bot.id]
    assert service.open_alerts_for_bot(their_bot.id, sharp) == []
    assert len(service.open_alerts_for_account("client_sharp", sharp)) == 1
    with pytest.raises(NotFound):
        service.open_alerts_for_account("client_other", sharp)
    assert service.open_alert_count(sharp) == 1
    assert service.open_alert_count(accounts.admin) == 2


def test_describe_destination_shows_hints_only(app, accounts, receiver):
    url = receiver.url + "/services/T0/B0/verysecretpath"
    dest = hook(accounts.admin, url)
    shown = service.describe_destination(dest)
    assert shown["target"] == "set, ending …path" and shown["signing_secret"].startswith("set")
    assert url not in repr(shown) and SIGNING not in repr(shown)


def test_enabled_is_kept_on_an_edit_that_does_not_say(app, accounts, receiver):
    dest = hook(accounts.admin, receiver.url, enabled="0")
    assert dest.enabled is False
    service.save_destination({"name": "renamed"}, accounts.admin, dest.id)
    assert dest.enabled is False
    service.save_destination({"name": "renamed", "enabled": "1"}, accounts.admin, dest.id)
    assert dest.enabled is True
    rule = service.save_rule({"name": "r", "conditions": ["crashed"], "destination_id": dest.id,
                              "enabled": "0"}, accounts.admin)
    service.save_rule({"name": "r2", "conditions": ["crashed"], "destination_id": dest.id},
                      accounts.admin, rule.id)
    assert rule.enabled is False and rule.name == "r2"
