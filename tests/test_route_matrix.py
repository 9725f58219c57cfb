"""Every route x every method x {anonymous, client A, client B, admin} (ASVS 8.2.1, 8.2.2,
8.3.1, 8.4.1, 4.1.1, 3.4.*).

The cases come from the URL map itself, so a route added tomorrow is walked tomorrow. Each
endpoint must be in exactly one of the allowlists below, with the access level its decorator
gives it, and every URL argument needs a sample value: a new route fails
`test_every_route_is_classified` until someone decides who may use it.

Client B asks for client A's bot: the answer is the same 404 as for a bot that does not exist,
with none of A's data in the body, and not a single call reaches Hummingbot.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard import create_app
from dashboard.access import access_level
from dashboard.models import Batch, Bot, BotEvent, User, db
from tests.conftest import base_config

PUBLIC = {"static", "auth.login", "auth.login_verify", "auth.logout", "api.healthz",
          "api.readyz"}
LOGGED_IN = {
    "bots.home", "bots.index", "bots.detail", "api.list_bots", "api.get_bot",
    "openapi.document", "auth.change_password", "auth.account_mfa",
    "versions.index", "versions.show", "versions.api_list",
    "history.account", "history.account_statement", "history.bot_statement",
    "history.api_account_history", "history.api_bot_history",
    # Clients manage their own account's alerts; every row is looked up through
    # access.owned_or_404, so another account's id is a 404.
    "alerts.index", "alerts.new_destination", "alerts.edit_destination",
    "alerts.delete_destination", "alerts.test_destination", "alerts.new_rule",
    "alerts.edit_rule", "alerts.delete_rule", "alerts.new_mute", "alerts.delete_mute",
    "alerts.retry_delivery",
}
# Public routes that send an anonymous visitor to the login page by design: logout ends there,
# and the code step of a login without a pending password step starts over there.
ENDS_AT_LOGIN = {"auth.logout", "auth.login_verify"}
ADMIN = {
    "bots.new", "bots.edit", "bots.archive", "bots.restore", "bots.deploy",
    "bots.lifecycle_action",
    "recovery.index", "recovery.mark_stopped", "recovery.redeploy", "recovery.restore",
    "recovery.settle", "recovery.import_file", "recovery.import_confirm", "recovery.adopt_form",
    "recovery.adopt", "recovery.recreate", "recovery.relink", "accounts.new_account",
    "versions.restore",
    "batches.index", "batches.preview", "batches.show",
    "servers.index", "servers.add", "servers.edit", "servers.toggle",
}
# A value for every URL argument any route takes. `bot_id` is client A's bot.
SAMPLES = {"bot_id": "sharp-bot", "instance_name": "orphan-bot", "filename": "app.css",
           "number": "1", "batch_id": "sample-batch", "account": "client_sharp",
           # Client A's alert rows (seed_alert_rows makes them with these ids).
           "destination_id": "900001", "rule_id": "900002", "mute_id": "900003",
           "delivery_id": "900004", "name": "default"}
# URL arguments naming something that belongs to client A's account.
SCOPED_ARGUMENTS = ("bot_id", "account", "destination_id", "rule_id", "mute_id", "delivery_id")
# For each, a value naming nothing at all.
MISSING = {"bot_id": "no-such-bot", "destination_id": "999999", "rule_id": "999999",
           "mute_id": "999999", "delivery_id": "999999"}
SECRETS_OF_A = ("sharp-only", "client_sharp")
ANONYMOUS_STATUS = {"json": 401, "page": 302}

# Built without a database: only the URL map is read at collection time.
_MAP_APP = create_app(base_config("postgresql+psycopg2://unused@127.0.0.1:1/unused"))


def _variants(rule) -> list[dict[str, str]]:
    """One dict of URL values per choice of an `any(...)` converter."""
    values: list[dict[str, str]] = [{}]
    for name in sorted(rule.arguments):
        converter = rule._converters[name]
        choices = [SAMPLES.get(name, f"<no sample for {name}>")]
        if type(converter).__name__ == "AnyConverter":
            choices = sorted(converter.items) if hasattr(converter, "items") else choices
        values = [{**v, name: choice} for v in values for choice in choices]
    return values


def _cases():
    cases = []
    for rule in _MAP_APP.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for values in _variants(rule):
                label = f"{method} {rule.rule} {values}" if values else f"{method} {rule.rule}"
                cases.append(pytest.param(rule.endpoint, method, values, id=label))
    return cases


def test_every_route_is_classified(session_app):
    """Each endpoint in exactly one allowlist, matching its decorator; every argument has a
    sample value. A new route fails here until it is placed."""
    endpoints = {rule.endpoint for rule in session_app.url_map.iter_rules()}
    placed = PUBLIC | LOGGED_IN | ADMIN
    assert not (PUBLIC & LOGGED_IN or PUBLIC & ADMIN or LOGGED_IN & ADMIN)
    assert endpoints - placed == set(), "unclassified routes: add them to an allowlist"
    assert placed - endpoints == set(), "allowlisted routes that no longer exist"
    expected = {**dict.fromkeys(PUBLIC, "public"), **dict.fromkeys(LOGGED_IN, "logged_in"),
                **dict.fromkeys(ADMIN, "admin")}
    actual = {endpoint: access_level(session_app, endpoint) for endpoint in endpoints}
    assert actual == expected
    arguments = {name for rule in session_app.url_map.iter_rules() for name in rule.arguments
                 if type(rule._converters[name]).__name__ != "AnyConverter"}
    assert arguments <= set(SAMPLES), f"add a sample value for {arguments - set(SAMPLES)}"


@pytest.fixture
def world(make_bot, simulator, accounts):
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp",
             config='{"secret_sauce": "sharp-only"}')
    make_bot(id="other-bot", name="other-bot", account_identifier="client_other",
             config='{"secret_sauce": "other-only"}')
    simulator.seed_bot("orphan-bot")
    db.session.add(Batch(id=SAMPLES["batch_id"], action="stop", created_by="admin",
                         selection={"ids": ["sharp-bot"]}))
    db.session.flush()
    seed_alert_rows()
    return accounts


def seed_alert_rows() -> None:
    """Client A's destination, rule, mute, a firing alert on its bot and a dead delivery, with
    the ids of SAMPLES (the test's transaction is rolled back, so fixed ids are safe)."""
    from datetime import timedelta

    from dashboard.alerts.models import (
        Alert,
        AlertDelivery,
        AlertDestination,
        AlertMute,
        AlertRule,
    )
    from dashboard.registry import utcnow

    db.session.add(AlertDestination(
        id=int(SAMPLES["destination_id"]), name="sharp-only hook", kind="slack",
        account_identifier="client_sharp", target="https://hooks.example.com/sharp-only-secret",
        created_by="sharp"))
    db.session.flush()
    db.session.add_all([
        AlertRule(id=int(SAMPLES["rule_id"]), name="sharp-only rule",
                  account_identifier="client_sharp", conditions=["missing"],
                  destination_id=int(SAMPLES["destination_id"]), created_by="sharp"),
        AlertMute(id=int(SAMPLES["mute_id"]), bot_id="sharp-bot",
                  until=utcnow() + timedelta(hours=1), created_by="sharp"),
        Alert(id=900005, bot_id="sharp-bot", account_identifier="client_sharp",
              condition="missing", state="firing", since=utcnow()),
    ])
    db.session.flush()
    db.session.add(AlertDelivery(id=int(SAMPLES["delivery_id"]), alert_id=900005,
                                 destination_id=int(SAMPLES["destination_id"]),
                                 event="fired", status="dead", last_error="sharp-only"))
    db.session.flush()


def alert_state():
    """The alert rows a refused request must leave as they were (a new test delivery aside)."""
    from dashboard.alerts.models import AlertDelivery, AlertDestination, AlertMute, AlertRule

    return (db.session.execute(select(AlertDestination.id, AlertDestination.name,
                                      AlertDestination.enabled).order_by(AlertDestination.id)
                               ).all(),
            db.session.execute(select(AlertRule.id, AlertRule.name).order_by(AlertRule.id)).all(),
            db.session.execute(select(AlertMute.id, AlertMute.until).order_by(AlertMute.id)).all(),
            db.session.execute(select(AlertDelivery.id, AlertDelivery.status)
                               .where(AlertDelivery.event != "test")
                               .order_by(AlertDelivery.id)).all())


def _state():
    """What a refused request must leave untouched."""
    bots = db.session.execute(
        select(Bot.id, Bot.name, Bot.status, Bot.version, Bot.archived_at).order_by(Bot.id)
    ).all()
    events = db.session.scalar(select(db.func.count()).select_from(BotEvent))
    users = db.session.execute(select(User.id, User.session_generation, User.active)).all()
    batches = db.session.scalar(select(db.func.count()).select_from(Batch))
    return bots, events, sorted(users), batches, alert_state()


def _hummingbot_calls(simulator) -> int:
    return sum(simulator.state.request_counts().values())


def _assert_headers(response, label):
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", label
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), label
    assert "object-src 'none'" in headers["Content-Security-Policy"] \
        or "default-src 'none'" in headers["Content-Security-Policy"], label
    assert headers.get("Referrer-Policy"), label
    assert headers.get("X-Request-ID"), label


def _request(client, method, url, **kwargs):
    return client.open(url, method=method, data={} if method != "GET" else None, **kwargs)


@pytest.mark.parametrize(("endpoint", "method", "values"), _cases())
def test_route_matrix(app, client, login, world, simulator, endpoint, method, values):
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint, **values)
    is_api = url.startswith("/api/")
    # Scoped to client A: one of its bots, or its account's history.
    bot_scoped = any(name in values for name in SCOPED_ARGUMENTS)
    label = f"{method} {url}"

    # --- anonymous
    response = _request(client, method, url)
    _assert_headers(response, label)
    assert response.status_code < 500, label
    if endpoint in PUBLIC:
        if endpoint not in ENDS_AT_LOGIN:
            assert not response.headers.get("Location", "").startswith("/login"), label
    else:
        assert response.status_code == ANONYMOUS_STATUS["json" if is_api else "page"], label
        if not is_api:
            assert response.headers["Location"].startswith("/login"), label
            htmx = _request(client, method, url, headers={"HX-Request": "true"})
            assert htmx.status_code == 200 and htmx.headers["HX-Redirect"].startswith("/login")
        else:
            assert response.get_json() == {"error": "authentication required"}
    if endpoint in PUBLIC:
        return

    # --- client B, asking for client A's bot (or for an admin page)
    before = _state()
    simulator.reset_counts()
    response = _request(login.as_client_b(), method, url)
    _assert_headers(response, label)
    body = response.get_data(as_text=True)
    if endpoint in ADMIN or bot_scoped:
        assert response.status_code == 404, label
        assert not any(secret in body for secret in SECRETS_OF_A), label
        assert _hummingbot_calls(simulator) == 0, f"{label}: reached Hummingbot"
    else:
        assert response.status_code < 500 and response.status_code not in (401, 403, 404)
    assert _state() == before, f"{label}: client B changed something"

    # --- client A, on its own bot
    response = _request(login.as_client_a(), method, url)
    _assert_headers(response, label)
    if endpoint in ADMIN:
        assert response.status_code == 404, label
    else:
        assert response.status_code < 500 and response.status_code not in (401, 403, 404), label
        if bot_scoped and method == "GET":
            body = response.get_data(as_text=True)
            assert response.status_code == 200, label
            assert any(mine in body for mine in (*SECRETS_OF_A, "sharp-bot")), label
    assert _state() == before, f"{label}: client A changed something"

    # --- admin
    response = _request(login.as_admin(), method, url)
    _assert_headers(response, label)
    assert response.status_code < 500, label
    assert response.status_code not in (401, 403, 404), label
    assert not response.headers.get("Location", "").startswith("/login"), label


def test_unknown_and_foreign_bots_look_alike_everywhere(client, login, world, simulator):
    """For every bot-scoped GET route (and alert row), another account's bot (or row) and one
    that does not exist give the same status and the same body (request ids aside)."""
    import re

    client_b = login.as_client_b()
    for rule in _MAP_APP.url_map.iter_rules():
        scoped = [name for name in rule.arguments if name in MISSING]
        if not scoped or "GET" not in rule.methods:
            continue
        for values in _variants(rule):
            with _MAP_APP.test_request_context():
                from flask import url_for

                foreign = url_for(rule.endpoint, **values)
                missing = url_for(rule.endpoint, **{**values, **{
                    name: MISSING[name] for name in scoped}})
            a, b = client_b.get(foreign), client_b.get(missing)
            assert a.status_code == b.status_code == 404, foreign

            def scrub(response):
                # Request ids, and CSRF tokens (signed with the second they were made in).
                text = re.sub(r'name="csrf_token" value="[^"]*"', "TOKEN",
                              response.get_data(as_text=True))
                text = re.sub(r"[\w-]+\.[\w-]{6}\.[\w-]{27}", "TOKEN", text)
                return re.sub(r"[0-9a-f]{32}", "ID", text)

            assert scrub(a) == scrub(b), foreign
