"""The alerts pages: /alerts, its forms, the open alerts on bot and account pages, the bell.

Access: a client sees and changes only its own account's destinations, rules, mutes and log,
by every route and by id guessing; secrets are write-only and never on a page.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dashboard.alerts.models import Alert, AlertDelivery, AlertDestination, AlertMute, AlertRule
from dashboard.models import db
from dashboard.registry import utcnow

SECRET_URL = "https://hooks.example.com/services/T000/B000/sEcReTtOkEn0123456789"
# Saved through the forms, a URL passes the outbound policy: a loopback one (allowed in tests).
LOOPBACK_URL = "http://127.0.0.1:9/services/T000/B000/sEcReTtOkEn0123456789"
SECRET_SIGNING = "signing-SeCrEt-0123456789abcdef"
TELEGRAM_TOKEN = "123456789:AAHsEcReTtElEgRaMtOkEn0123456789xyz"
SMTP_PASSWORD = "smtp-PaSsWoRd-0123456789"
ALL_SECRETS = (SECRET_URL, LOOPBACK_URL, SECRET_SIGNING, TELEGRAM_TOKEN, SMTP_PASSWORD,
               "sEcReTtOkEn", "AAHsEcReT", "PaSsWoRd", "SeCrEt-0123")
ROUTES_WITH_IDS = {
    "destination": ("/alerts/destinations/{}/edit", "/alerts/destinations/{}/delete",
                    "/alerts/destinations/{}/test"),
    "rule": ("/alerts/rules/{}/edit", "/alerts/rules/{}/delete"),
    "mute": ("/alerts/mutes/{}/delete",),
    "delivery": ("/alerts/deliveries/{}/retry",),
}


def destination(account: str | None, name: str = "hook", kind: str = "webhook", **extra):
    row = AlertDestination(name=name, kind=kind, account_identifier=account,
                           target=extra.pop("target", SECRET_URL),
                           signing_secret=extra.pop("signing_secret", SECRET_SIGNING),
                           settings=extra.pop("settings", {}), created_by="test", **extra)
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def alerts_world(make_bot):
    """Client A's (client_sharp) and client B's (client_other) destination, rule, mute, a dead
    delivery each; an operator's destination; a firing alert on A's bot."""
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp")
    make_bot(id="other-bot", name="other-bot", account_identifier="client_other")
    world = {}
    for key, account, bot in (("a", "client_sharp", "sharp-bot"),
                              ("b", "client_other", "other-bot")):
        dest = destination(account, name=f"{key}-hook")
        rule = AlertRule(name=f"{key}-rule", account_identifier=account,
                         conditions=["missing"], destination_id=dest.id, created_by="test")
        mute = AlertMute(bot_id=bot, until=utcnow() + timedelta(hours=1), reason=f"{key}-mute",
                         created_by="test")
        alert = Alert(bot_id=bot, account_identifier=account, condition="crashed",
                      state="firing", since=utcnow() - timedelta(minutes=7),
                      fired_at=utcnow(), detail=f"{key}: <b>exited</b> with code 137")
        db.session.add_all([rule, mute, alert])
        db.session.flush()
        delivery = AlertDelivery(alert_id=alert.id, destination_id=dest.id, event="fired",
                                 status="dead", attempts=8,
                                 last_error=f"{key}-error: 500 from {SECRET_URL}")
        db.session.add(delivery)
        db.session.flush()
        world[key] = {"destination": dest.id, "rule": rule.id, "mute": mute.id,
                      "delivery": delivery.id, "alert": alert.id}
    world["operator"] = destination(None, name="ops-telegram", kind="telegram",
                                    target=TELEGRAM_TOKEN, signing_secret=None,
                                    settings={"chat_id": "-1001"}).id
    db.session.commit()
    return world


def _counts():
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (AlertDestination, AlertRule, AlertMute, AlertDelivery))


def _snapshot():
    """Everything a refused request must leave as it was."""
    return (db.session.execute(select(AlertDestination.id, AlertDestination.name,
                                      AlertDestination.enabled, AlertDestination.settings)
                               .order_by(AlertDestination.id)).all(),
            db.session.execute(select(AlertRule.id, AlertRule.name, AlertRule.conditions)
                               .order_by(AlertRule.id)).all(),
            db.session.execute(select(AlertMute.id, AlertMute.until)
                               .order_by(AlertMute.id)).all(),
            db.session.execute(select(AlertDelivery.id, AlertDelivery.status,
                                      AlertDelivery.attempts).order_by(AlertDelivery.id)).all())


# ------------------------------------------------------------------------------ the page
def test_admin_sees_everything_and_no_secret(login, alerts_world):
    body = login.as_admin().get("/alerts").get_data(as_text=True)
    for name in ("a-hook", "b-hook", "ops-telegram", "a-rule", "b-rule", "a-mute", "b-mute"):
        assert name in body
    assert "a-error: 500 from [secret]" in body  # the URL an error quoted is blanked
    for secret in ALL_SECRETS:
        assert secret not in body
    assert "set, ending …" in body  # the hint


def test_client_sees_only_its_own(login, alerts_world):
    body = login.as_client_a().get("/alerts").get_data(as_text=True)
    assert "a-hook" in body and "a-rule" in body and "a-mute" in body and "a-error" in body
    for foreign in ("b-hook", "b-rule", "b-mute", "b-error", "ops-telegram", "client_other",
                    "other-bot"):
        assert foreign not in body
    # Filters cannot widen it: another account's destination id or account name.
    other = alerts_world["b"]["destination"]
    body = login.as_client_a().get(f"/alerts?destination={other}&account=client_other"
                                   "&period=all").get_data(as_text=True)
    assert "b-error" not in body and "b-hook" not in body


@pytest.mark.parametrize("kind", sorted(ROUTES_WITH_IDS))
def test_client_cannot_reach_another_accounts_rows_by_id(login, alerts_world, kind):
    """Every id route, GET and POST, with a foreign id, an unknown one and a non-number: the
    same 404, and nothing changes."""
    before = _snapshot()
    foreign = alerts_world["b"][kind]
    client_a = login.as_client_a()
    for pattern in ROUTES_WITH_IDS[kind]:
        for row_id in (foreign, 999_999, "x1", "1;DROP"):
            url = pattern.format(row_id)
            for method in ("GET", "POST") if url.endswith("/edit") else ("POST",):
                response = client_a.open(url, method=method, data={
                    "confirm": "1", "name": "taken", "destination_id": foreign,
                    "conditions": "missing"})
                assert response.status_code == 404, (method, url)
                assert "b-hook" not in response.get_data(as_text=True)
    assert _snapshot() == before
    if kind in ("destination", "rule"):  # the operator's rows too
        target = alerts_world["operator"] if kind == "destination" else None
        if target:
            assert client_a.get(f"/alerts/destinations/{target}/edit").status_code == 404


def test_client_manages_its_own(login, alerts_world):
    client_a = login.as_client_a()
    mine = alerts_world["a"]
    assert client_a.get(f"/alerts/destinations/{mine['destination']}/edit").status_code == 200
    response = client_a.post(f"/alerts/destinations/{mine['destination']}/test")
    assert response.status_code == 303
    test_send = db.session.scalars(select(AlertDelivery).where(
        AlertDelivery.event == "test")).one()
    assert test_send.destination_id == mine["destination"] and test_send.status == "pending"
    assert client_a.post(f"/alerts/deliveries/{mine['delivery']}/retry",
                         data={"confirm": "1"}).status_code == 303
    assert db.session.get(AlertDelivery, mine["delivery"]).status == "pending"
    assert client_a.post(f"/alerts/mutes/{mine['mute']}/delete",
                         data={"confirm": "1"}).status_code == 303
    assert db.session.get(AlertMute, mine["mute"]) is None
    assert client_a.post(f"/alerts/rules/{mine['rule']}/delete",
                         data={"confirm": "1"}).status_code == 303
    assert client_a.post(f"/alerts/destinations/{mine['destination']}/delete",
                         data={"confirm": "1"}).status_code == 303
    assert db.session.get(AlertDestination, mine["destination"]) is None
    assert db.session.get(AlertDestination, alerts_world["b"]["destination"]) is not None


def test_a_delete_without_its_confirmation_changes_nothing(login, alerts_world):
    before = _snapshot()
    client_a = login.as_client_a()
    for url in (f"/alerts/destinations/{alerts_world['a']['destination']}/delete",
                f"/alerts/rules/{alerts_world['a']['rule']}/delete",
                f"/alerts/mutes/{alerts_world['a']['mute']}/delete",
                f"/alerts/deliveries/{alerts_world['a']['delivery']}/retry"):
        assert client_a.post(url).status_code == 400
    assert _snapshot() == before


# ------------------------------------------------------------------------------ destinations
def test_create_a_destination_and_its_secrets_are_write_only(login, alerts_world):
    admin = login.as_admin()
    response = admin.post("/alerts/destinations/new", data={
        "kind": "webhook", "name": "ops hook", "target": LOOPBACK_URL,
        "signing_secret": SECRET_SIGNING, "enabled": "1"})
    assert response.status_code == 303
    row = db.session.scalars(select(AlertDestination).where(
        AlertDestination.name == "ops hook")).one()
    assert row.target == LOOPBACK_URL and row.account_identifier is None and row.enabled
    stored = db.session.execute(db.text("SELECT target FROM alert_destinations WHERE id = :id"),
                                {"id": row.id}).scalar()
    assert "sEcReT" not in stored  # sealed at rest

    form = admin.get(f"/alerts/destinations/{row.id}/edit").get_data(as_text=True)
    assert "set, ending …" in form
    assert not any(secret in form for secret in ALL_SECRETS)
    # Saved with the secret fields empty: the stored ones are kept.
    assert admin.post(f"/alerts/destinations/{row.id}/edit", data={
        "name": "ops hook 2", "target": "", "signing_secret": ""}).status_code == 303
    db.session.refresh(row)
    assert row.name == "ops hook 2" and row.target == LOOPBACK_URL
    assert row.signing_secret == SECRET_SIGNING and not row.enabled
    # A new one replaces it.
    admin.post(f"/alerts/destinations/{row.id}/edit", data={
        "name": "ops hook 2", "target": "http://127.0.0.1:9/new-one-0123456789"})
    db.session.refresh(row)
    assert row.target.endswith("new-one-0123456789")


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "webhook", "name": "", "target": LOOPBACK_URL,
      "signing_secret": SECRET_SIGNING}, "name"),
    ({"kind": "webhook", "name": "x", "target": "http://169.254.169.254/latest/meta-data",
      "signing_secret": SECRET_SIGNING}, "target"),
    ({"kind": "webhook", "name": "x", "target": "ftp://example.com/x",
      "signing_secret": SECRET_SIGNING}, "target"),
    ({"kind": "webhook", "name": "x", "target": LOOPBACK_URL, "signing_secret": "short"},
     "signing_secret"),
    ({"kind": "slack", "name": "x", "target": ""}, "target"),
    ({"kind": "telegram", "name": "x", "target": TELEGRAM_TOKEN, "chat_id": "not a chat"},
     "chat_id"),
    ({"kind": "telegram", "name": "x", "target": "nope", "chat_id": "-100"}, "target"),
    ({"kind": "email", "name": "x", "host": "127.0.0.1", "port": "99999",
      "from": "a@example.com", "to": "b@example.com"}, "port"),
    ({"kind": "email", "name": "x", "host": "127.0.0.1", "from": "a@example.com",
      "to": "not-an-address"}, "to"),
    ({"kind": "pager", "name": "x"}, "kind"),
    ({"kind": "slack", "name": "x", "target": LOOPBACK_URL,
      "account_identifier": "bad account!"}, "account_identifier"),
])
def test_a_bad_destination_comes_back_with_the_input_and_stores_nothing(
        login, alerts_world, data, field):
    before = _counts()
    response = login.as_admin().post("/alerts/destinations/new", data=data)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in body or "Kind: " in body
    if data.get("name"):
        assert f'value="{data["name"]}"' in body
    for secret in ALL_SECRETS:  # not even the secret just typed
        assert secret not in body
    assert _counts() == before


def test_email_and_telegram_destinations(login, alerts_world):
    admin = login.as_admin()
    assert admin.post("/alerts/destinations/new", data={
        "kind": "email", "name": "mail", "host": "127.0.0.1", "port": "2525",
        "from": "bots@example.com", "to": "ops@example.com", "starttls": "1",
        "username": "bots", "target": SMTP_PASSWORD, "enabled": "1"}).status_code == 303
    mail = db.session.scalars(select(AlertDestination).where(
        AlertDestination.name == "mail")).one()
    assert mail.settings == {"host": "127.0.0.1", "port": 2525, "from": "bots@example.com",
                             "starttls": True, "username": "bots", "to": "ops@example.com"}
    assert mail.target == SMTP_PASSWORD
    body = admin.get(f"/alerts/destinations/{mail.id}/edit").get_data(as_text=True)
    assert 'value="ops@example.com"' in body and SMTP_PASSWORD not in body
    assert admin.post("/alerts/destinations/new", data={
        "kind": "telegram", "name": "tg", "target": TELEGRAM_TOKEN,
        "chat_id": "@bot_alerts"}).status_code == 303


def test_a_client_destination_is_its_own_whatever_the_form_says(login, alerts_world):
    response = login.as_client_a().post("/alerts/destinations/new", data={
        "kind": "discord", "name": "mine", "account_identifier": "client_other",
        "target": "http://127.0.0.1:9/api/webhooks/1/abcdefghijklmnop"})
    assert response.status_code == 303
    row = db.session.scalars(select(AlertDestination).where(
        AlertDestination.name == "mine")).one()
    assert row.account_identifier == "client_sharp"


# ------------------------------------------------------------------------------ rules
def test_create_a_rule_with_params(login, alerts_world):
    admin = login.as_admin()
    response = admin.post("/alerts/rules/new", data={
        "name": "drawdown to ops", "destination_id": str(alerts_world["operator"]),
        "conditions": ["drawdown", "hummingbot_unreachable", "missing"],
        "hold_seconds": "600", "repeat_seconds": "3600", "drawdown_amount": "250.5",
        "drawdown_window_minutes": "120", "unreachable_minutes": "3", "enabled": "1"})
    assert response.status_code == 303
    rule = db.session.scalars(select(AlertRule).where(AlertRule.name == "drawdown to ops")).one()
    assert sorted(rule.conditions) == ["drawdown", "hummingbot_unreachable", "missing"]
    assert (rule.hold_seconds, rule.repeat_seconds, rule.account_identifier) == (600, 3600, None)
    assert rule.params == {"drawdown_amount": 250.5, "drawdown_window_minutes": 120,
                           "unreachable_minutes": 3}
    body = admin.get(f"/alerts/rules/{rule.id}/edit").get_data(as_text=True)
    assert 'value="250.5"' in body and '<option value="600" selected>10 min</option>' in body
    assert '<option value="3600" selected>1 h</option>' in body


@pytest.mark.parametrize(("who", "data", "field"), [
    ("admin", {"name": "r", "conditions": ["missing"]}, "destination_id"),
    ("admin", {"name": "r", "destination": "operator"}, "conditions"),
    ("admin", {"name": "r", "conditions": ["nonsense"], "destination": "operator"},
     "conditions"),
    ("admin", {"name": "r", "conditions": ["drawdown"], "destination": "operator",
               "drawdown_amount": "-5"}, "drawdown_amount"),
    ("admin", {"name": "r", "conditions": ["missing"], "destination": "operator",
               "hold_seconds": "abc"}, "hold_seconds"),
    # A client account's destination hears about that account only.
    ("admin", {"name": "r", "conditions": ["missing"], "destination": "a",
               "account_identifier": "client_other"}, "destination_id"),
    ("admin", {"name": "r", "conditions": ["missing"], "destination": "a"},
     "destination_id"),
    # Hummingbot unreachable is not one account's.
    ("admin", {"name": "r", "conditions": ["hummingbot_unreachable"], "destination": "a",
               "account_identifier": "client_sharp"}, "conditions"),
    # A client may route only to its own destinations, and not fleet-wide conditions.
    ("client", {"name": "r", "conditions": ["missing"], "destination": "b"},
     "destination_id"),
    ("client", {"name": "r", "conditions": ["missing"], "destination": "operator"},
     "destination_id"),
    ("client", {"name": "r", "conditions": ["hummingbot_unreachable"], "destination": "a"},
     "conditions"),
])
def test_a_bad_rule_comes_back_and_stores_nothing(login, alerts_world, who, data, field):
    data = dict(data)
    pick = data.pop("destination", None)
    if pick:
        data["destination_id"] = str(alerts_world["operator"] if pick == "operator"
                                     else alerts_world[pick]["destination"])
    before = _counts()
    user = login.as_admin() if who == "admin" else login.as_client_a()
    response = user.post("/alerts/rules/new", data=data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert _counts() == before


def test_a_client_rule_covers_its_own_account(login, alerts_world):
    response = login.as_client_a().post("/alerts/rules/new", data={
        "name": "mine", "conditions": ["crashed"], "account_identifier": "client_other",
        "destination_id": str(alerts_world["a"]["destination"])})
    assert response.status_code == 303
    rule = db.session.scalars(select(AlertRule).where(AlertRule.name == "mine")).one()
    assert rule.account_identifier == "client_sharp"


# ------------------------------------------------------------------------------ mutes
def test_mutes(login, alerts_world):
    until = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    client_a = login.as_client_a()
    before = _counts()
    for data in ({"bot_id": "other-bot", "until": until},  # not its bot
                 {"account_identifier": "client_other", "until": until},  # not its account
                 {"bot_id": "sharp-bot", "until": "2001-01-01T00:00"},
                 {"bot_id": "sharp-bot", "until": "tomorrow"}):
        response = client_a.post("/alerts/mutes/new", data=data)
        assert response.status_code == 422, data
    assert _counts() == before
    assert client_a.post("/alerts/mutes/new", data={
        "account_identifier": "client_sharp", "until": until,
        "reason": "exchange maintenance"}).status_code == 303
    body = client_a.get("/alerts").get_data(as_text=True)
    assert "exchange maintenance" in body and "Account client_sharp" in body
    form = client_a.get("/alerts/mutes/new?bot_id=sharp-bot").get_data(as_text=True)
    assert 'value="sharp-bot"' in form


# ------------------------------------------------------------------------------ the log
def test_the_log_filters_and_pages(login, alerts_world):
    dest = alerts_world["a"]["destination"]
    now = utcnow()
    for index in range(30):
        db.session.add(AlertDelivery(destination_id=dest, event="test",
                                     status="delivered" if index % 2 else "pending",
                                     created_at=now - timedelta(minutes=index)))
    db.session.add(AlertDelivery(destination_id=dest, event="test", status="delivered",
                                 created_at=now - timedelta(days=9)))
    db.session.commit()
    admin = login.as_admin()
    body = admin.get("/alerts").get_data(as_text=True)
    assert "32 deliveries" in body and "Older" in body  # 30 tests + 2 dead; not the old one
    body = admin.get("/alerts?period=all").get_data(as_text=True)
    assert "33 deliveries" in body
    body = admin.get("/alerts?status=dead").get_data(as_text=True)
    assert "2 deliveries" in body and "a-error" in body and "b-error" in body
    body = admin.get("/alerts?condition=crashed&account=client_other").get_data(as_text=True)
    assert "1 deliveries" in body and "b-error" in body
    body = admin.get(f"/alerts?destination={dest}&status=delivered&page=2"
                     ).get_data(as_text=True)
    assert "15 deliveries" in body and "Newer" in body
    assert f'page=1&amp;status=delivered&amp;destination={dest}' in body \
        or "status=delivered" in body
    # Nonsense filters are dropped, not a 500.
    for query in ("status=<b>", "destination=99999999999999", "period=forever",
                  "condition=%00", "page=-1", "account=" + "x" * 500):
        assert admin.get("/alerts?" + query).status_code in (200, 400)


# ------------------------------------------------------------------------------ open alerts
def test_bot_and_account_pages_show_open_alerts_escaped(login, alerts_world):
    client_a = login.as_client_a()
    body = client_a.get("/bots/sharp-bot").get_data(as_text=True)
    section = re.search(r'<section class="open-alerts".*?</section>', body, re.S).group()
    assert "hx-disable" in section and "Container crashed" in section
    assert "a: &lt;b&gt;exited&lt;/b&gt; with code 137" in section
    assert "<b>exited" not in body
    body = client_a.get("/accounts/client_sharp").get_data(as_text=True)
    assert "Open alerts" in body and "sharp-bot" in body and "b: &lt;b&gt;" not in body
    db.session.execute(db.update(Alert).values(state="resolved", resolved_at=utcnow()))
    db.session.commit()
    assert "Open alerts" not in client_a.get("/bots/sharp-bot").get_data(as_text=True)


def test_the_bell_counts_firing_alerts_for_admins(login, alerts_world, statements):
    body = login.as_admin().get("/bots").get_data(as_text=True)
    assert re.search(r'class="bell bell-firing".*?<span class="bell-count">2<', body, re.S)
    counts = [s for s in statements if "count(*)" in s.lower() and "FROM alerts" in s]
    assert len(counts) == 1  # the desktop links and the phone menu share it
    body = login.as_client_a().get("/bots").get_data(as_text=True)
    assert "bell-count" not in body and 'href="/alerts"' in body


@pytest.mark.parametrize("url", ["/bots", "/bots/sharp-bot", "/accounts/client_sharp"])
def test_pages_count_the_bell_with_their_other_figures(login, alerts_world, statements, url):
    """The list, a bot's and an account's page read the bell's count in the statement that
    reads the bots' generation (rows_cache.list_figures, history/services' page states),
    not in a COUNT of its own; and it is the current count, not a cached one."""
    admin = login.as_admin()
    statements.clear()
    body = admin.get(url).get_data(as_text=True)
    assert re.search(r'class="bell bell-firing".*?<span class="bell-count">2<', body, re.S)
    assert re.search(r'bell-firing-count">2<', body)  # the phone's Menu: the same count
    counts = [s for s in statements if "count(*)" in s.lower() and "FROM alerts" in s]
    assert len(counts) == 1 and "bot_changes" in counts[0], counts
    db.session.execute(db.update(Alert).where(Alert.bot_id == "other-bot")
                       .values(state="resolved", resolved_at=utcnow()))
    db.session.commit()
    body = admin.get(url).get_data(as_text=True)
    assert re.search(r'class="bell bell-firing".*?<span class="bell-count">1<', body, re.S)
    body = login.as_client_a().get(url).get_data(as_text=True)
    assert "bell-count" not in body


# ------------------------------------------------------------------------------ secrets
def test_no_page_and_no_json_ever_shows_a_destination_secret(app, login, alerts_world):
    """Every GET route in the URL map (pages and /api/ JSON, alerts or not), as an admin and
    as the owning client, with destinations of every kind holding known secrets; then every
    alerts form refused with errors. None of the secrets appears anywhere."""
    from flask import url_for

    from tests.test_route_matrix import _MAP_APP, SAMPLES, _variants

    mine = alerts_world["a"]
    samples = {**SAMPLES, "destination_id": str(mine["destination"]),
               "rule_id": str(mine["rule"]), "mute_id": str(mine["mute"]),
               "delivery_id": str(mine["delivery"])}
    destination("client_sharp", name="mail", kind="email", target=SMTP_PASSWORD,
                signing_secret=None, settings={"host": "smtp.example.com", "port": 587,
                                               "from": "a@example.com", "to": ["b@example.com"],
                                               "starttls": True, "username": "u"})
    db.session.commit()
    checked = 0
    for user in (login.as_admin, login.as_client_a):
        client = user()
        for rule in _MAP_APP.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in ("static", "auth.logout"):
                continue
            for values in _variants(rule):
                values = {k: samples.get(k, v) for k, v in values.items()}
                with app.test_request_context():
                    url = url_for(rule.endpoint, **values)
                for headers in ({}, {"HX-Request": "true"}):
                    if url.startswith("/api/") and headers:
                        continue
                    body = client.get(url, headers=headers).get_data(as_text=True)
                    leaked = [s for s in ALL_SECRETS if s in body]
                    assert not leaked, (url, leaked)
                    checked += 1
        for url, data in ((f"/alerts/destinations/{mine['destination']}/edit",
                           {"name": "", "target": SECRET_URL + "x",
                            "signing_secret": SECRET_SIGNING}),
                          ("/alerts/destinations/new", {"kind": "telegram", "name": "t",
                                                        "target": TELEGRAM_TOKEN}),
                          ("/alerts/rules/new", {"name": ""}),
                          ("/alerts/mutes/new", {"reason": SMTP_PASSWORD[:5]})):
            body = client.post(url, data=data).get_data(as_text=True)
            assert not [s for s in ALL_SECRETS if s in body], url
    assert checked > 40


@pytest.mark.parametrize("who", ["admin", "client"])
def test_the_alerts_page_costs_the_same_whatever_the_log_holds(login, alerts_world, statements,
                                                               who):
    """Counted, never timed: the page and its filtered log in a fixed number of statements,
    at 30 and at 3,000 deliveries."""
    client = login.as_admin() if who == "admin" else login.as_client_a()
    dest = alerts_world["a"]["destination"]
    paths = ["/alerts", "/alerts?status=delivered&period=all&page=3",
             f"/alerts?destination={dest}&condition=crashed&account=client_sharp"]

    def add(count: int) -> None:
        db.session.execute(db.text("""
            INSERT INTO alert_deliveries (destination_id, alert_id, event, status, created_at)
            SELECT :dest, :alert, 'fired', 'delivered', now() - n * interval '1 minute'
            FROM generate_series(1, :count) AS n"""),
            {"dest": dest, "alert": alerts_world["a"]["alert"], "count": count})
        db.session.commit()

    def per_page() -> dict[str, int]:
        found = {}
        for path in paths:
            statements.clear()
            assert client.get(path).status_code == 200, path
            found[path] = len(statements)
        return found

    add(30)
    few = per_page()
    add(2970)
    assert per_page() == few
    assert max(few.values()) <= 9, few


def test_every_condition_and_kind_has_a_label():
    from dashboard.alerts.models import CONDITIONS, DESTINATION_KINDS
    from dashboard.alerts.pages import CONDITION_LABELS, KIND_LABELS

    assert set(CONDITION_LABELS) == set(CONDITIONS)
    assert set(KIND_LABELS) == set(DESTINATION_KINDS)
