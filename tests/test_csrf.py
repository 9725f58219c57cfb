"""CSRF for real (ASVS 3.5.1, 3.5.3): the suite runs with CSRFProtect switched on.

Every state-changing route in the URL map refuses a missing, forged or foreign token with 400
and changes nothing (no row, no history line, no session revoked, no call to Hummingbot), and
accepts the token both as the form field the pages send and as the X-CSRFToken header htmx
sends. No GET route changes anything. (tests/test_persistence.py shows the real server
enforcing it across processes.)
"""

from __future__ import annotations

import re

import pytest
from flask import url_for
from sqlalchemy import select

from dashboard.models import Batch, Bot, BotEvent, LoginThrottle, User, db
from tests.test_route_matrix import _MAP_APP, _variants, alert_state, seed_alert_rows

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_REFUSAL = "missing security token"


def _cases(methods):
    cases = []
    for rule in _MAP_APP.url_map.iter_rules():
        for method in sorted(rule.methods & methods):
            for values in _variants(rule):
                cases.append(pytest.param(rule.endpoint, method, values,
                                          id=f"{method} {rule.rule} {values}"))
    return cases


@pytest.fixture
def csrf_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    return app


@pytest.fixture
def world(make_bot, simulator):
    make_bot(id="sharp-bot", name="sharp-bot", account_identifier="client_sharp")
    simulator.seed_bot("orphan-bot")
    seed_alert_rows()


def _state(simulator):
    bots = db.session.execute(select(
        Bot.id, Bot.name, Bot.status, Bot.version, Bot.archived_at, Bot.instance_name,
        Bot.config).order_by(Bot.id)).all()
    events = db.session.scalar(select(db.func.count()).select_from(BotEvent))
    users = db.session.execute(select(
        User.id, User.session_generation, User.active, User.password_hash).order_by(User.id)).all()
    throttle = db.session.scalar(select(db.func.count()).select_from(LoginThrottle))
    batches = db.session.scalar(select(db.func.count()).select_from(Batch))
    writes = {k: v for k, v in simulator.state.request_counts().items()
              if not k.startswith("GET")}
    return bots, events, users, throttle, writes, batches, alert_state(), _test_sends()


def _test_sends() -> int:
    from dashboard.alerts.models import AlertDelivery

    return db.session.scalar(select(db.func.count()).select_from(AlertDelivery)
                             .where(AlertDelivery.event == "test"))


def _token(client) -> str:
    page = client.get("/account/password").get_data(as_text=True)
    return TOKEN.search(page).group(1)


def _url(endpoint, values):
    with _MAP_APP.test_request_context():
        return url_for(endpoint, **values)


@pytest.mark.parametrize(("endpoint", "method", "values"), _cases(STATE_CHANGING))
def test_state_changing_route_refuses_bad_tokens_and_accepts_good_ones(
        csrf_on, client, login, world, simulator, endpoint, method, values):
    url = _url(endpoint, values)
    anonymous = endpoint == "auth.login"
    browser = client if anonymous else login.as_admin()
    good = _token(login.as_admin()) if not anonymous else None
    if anonymous:
        with client.session_transaction() as session:
            session.clear()
        good = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    # A well-formed token signed with our key, but minted for another session.
    stranger = csrf_on.test_client()
    foreign = TOKEN.search(stranger.get("/login").get_data(as_text=True)).group(1)

    form = {"username": "admin", "password": "not the password", "version": "1"}
    before = _state(simulator)
    for bad in (None, "", "forged-token", foreign, good + "x"):
        data = dict(form) if bad is None else {**form, "csrf_token": bad}
        response = browser.open(url, method=method, data=data)
        assert response.status_code == 400, (url, bad)
        assert CSRF_REFUSAL in response.get_data(as_text=True), (url, bad)
        assert response.headers["X-Request-ID"] in response.get_data(as_text=True)
        refused_by_header = browser.open(url, method=method, data=form,
                                         headers={"X-CSRFToken": bad or ""})
        assert refused_by_header.status_code == 400, (url, bad)
    assert _state(simulator) == before, f"{url}: a refused request changed something"

    accepted = browser.open(url, method=method, data={**form, "csrf_token": good})
    assert CSRF_REFUSAL not in accepted.get_data(as_text=True), url
    assert accepted.status_code < 500, url
    if not anonymous:  # logout ends the session (and revokes it): start a new one
        browser = login.as_user(db.session.get(User, login.accounts.admin.id))
        good = _token(browser)
    by_header = browser.open(url, method=method, data=form, headers={"X-CSRFToken": good})
    assert CSRF_REFUSAL not in by_header.get_data(as_text=True), url
    assert by_header.status_code < 500, url


def test_a_bot_is_created_with_the_form_token_and_archived_with_the_htmx_header(
        csrf_on, login, world):
    admin = login.as_admin()
    token = _token(admin)
    created = admin.post("/bots/new", data={
        "id": "csrf-ok", "name": "csrf-ok", "account_identifier": "client_sharp",
        "strategy": "pure_market_making", "connector": "binance", "pair": "BTC-USDT",
        "config": "{}", "csrf_token": token})
    assert created.status_code == 302
    archived = admin.post("/bots/csrf-ok/archive", headers={"X-CSRFToken": token,
                                                            "HX-Request": "true"})
    assert archived.status_code == 302
    assert db.session.get(Bot, "csrf-ok").status == "archived"


def test_login_itself_needs_the_token(csrf_on, client, accounts):
    """Login CSRF: a forged login would plant the attacker's session in the victim's browser."""
    from tests.conftest import TEST_PASSWORD

    response = client.post("/login", data={"username": "admin", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "_user_id" not in (client.get_cookie("session").value if client.get_cookie(
        "session") else "")


def test_every_state_changing_route_is_covered():
    """The refusal test above is generated from the URL map: list what it covers, so that a
    route added with, say, PUT is visibly included."""
    covered = {case.values[0] for case in _cases(STATE_CHANGING)}
    assert {"auth.login", "auth.login_verify", "auth.logout", "auth.change_password",
            "auth.account_mfa", "bots.new", "bots.edit",
            "bots.archive", "bots.restore", "bots.deploy", "bots.lifecycle_action",
            "recovery.redeploy", "recovery.relink", "versions.restore", "batches.index",
            "alerts.new_destination", "alerts.edit_destination", "alerts.delete_destination",
            "alerts.test_destination", "alerts.new_rule", "alerts.edit_rule",
            "alerts.delete_rule", "alerts.new_mute", "alerts.delete_mute",
            "alerts.retry_delivery"} <= covered


@pytest.mark.parametrize(("endpoint", "method", "values"), _cases({"GET"}))
def test_no_get_route_changes_anything(app, login, world, simulator, endpoint, method, values):
    url = _url(endpoint, values)
    before = _state(simulator)
    for client in (login.as_admin(), login.as_client_a()):
        for headers in ({}, {"HX-Request": "true"}):
            assert client.get(url, headers=headers).status_code < 500, url
    assert _state(simulator) == before, f"GET {url} changed something"
