"""Issue 10 item 3 on the routes added since the review (servers, alerts): inputs that were a
500, or worse were stored and then made every page a 500. Each is now a field error that
stores nothing, and a server stored with such values earlier greys only itself."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard import servers
from dashboard.alerts.models import AlertDestination, AlertMute
from dashboard.models import HummingbotServer, db
from tests.concurrency import run_together
from tests.conftest import Login

DEEP = "[" * 50_000 + "]" * 50_000
BAD_SERVER_FIELDS = {
    # requests refused these only when asked for the status: every list and page a 500
    "port-out-of-range": {"base_url": "http://127.0.0.1:99999/"},
    "port-not-a-number": {"base_url": "http://127.0.0.1:abc/"},
    "label-too-long": {"base_url": "http://" + "a" * 64 + ".example/"},
    "empty-label": {"base_url": "http://a..b/"},
    "header-outside-latin1": {"extra_headers": '{"X-Team": "\\u20ac"}'},
    "header-lone-surrogate": {"extra_headers": '{"X-Team": "\\ud800"}'},
    "header-line-break": {"extra_headers": '{"X-Team": "a\\r\\nHost: evil"}'},
    "header-name-with-space": {"extra_headers": '{"X Team": "desk"}'},
    "header-not-text": {"extra_headers": '{"X-Team": NaN}'},
    "username-outside-latin1": {"username": "\u20ac-user", "password": "pw"},
    "password-outside-latin1": {"username": "u", "password": "p\u20ac"},
    # a 500 at once
    "invalid-ipv6": {"base_url": "http://[::1/"},
    "headers-nested-50000-deep": {"extra_headers": DEEP},
}
PAGES = ("/bots", "/servers", "/recovery", "/alerts")


def _servers() -> list[tuple]:
    return db.session.execute(sa.select(
        HummingbotServer.name, HummingbotServer.base_url, HummingbotServer.username,
        HummingbotServer.password, HummingbotServer.extra_headers,
        HummingbotServer.updated_at).order_by(HummingbotServer.name)).all()


@pytest.fixture
def default(app):
    """The `default` server's row, as an app started with HUMMINGBOT_API_URL has it."""
    servers.sync_default_server(app)
    return servers.default_server_id()


def _pages_answer(admin) -> None:
    for page in PAGES:
        assert admin.get(page).status_code == 200, page


@pytest.mark.parametrize("fields", BAD_SERVER_FIELDS.values(), ids=BAD_SERVER_FIELDS.keys())
def test_the_servers_form_refuses_what_cannot_be_sent(default, login, fields):
    admin = login.as_admin()
    _pages_answer(admin)  # the default server's row exists before we compare
    before = _servers()
    add = admin.post("/servers", data={"name": "eu", "base_url": "http://127.0.0.1:9/",
                                       **fields})
    assert add.status_code == 422
    assert 'class="field-error"' in add.get_data(as_text=True)
    edit = admin.post("/servers/default/edit", data=fields)
    assert edit.status_code == 422
    assert 'class="field-error"' in edit.get_data(as_text=True)
    assert _servers() == before
    _pages_answer(admin)


@pytest.mark.parametrize("column,value", [
    ("base_url", "http://127.0.0.1:99999/"),
    ("base_url", "http://" + "a" * 64 + ".example/"),
    ("extra_headers", '{"X-Team": "\\u20ac"}'),
    ("username", "\u20ac-user"),
], ids=["port", "label", "header", "username"])
def test_a_server_stored_with_unsendable_settings_greys_only_itself(
        default, login, column, value):
    """Rows written before the form refused these (or by hand): that server is unreachable
    with a reason; the pages answer and the other server stays reachable."""
    admin = login.as_admin()
    _pages_answer(admin)
    row = {"base_url": "http://127.0.0.1:9/", "username": None, "extra_headers": None,
           column: value}
    db.session.add(HummingbotServer(name="eu", **row))  # sealed by the column type
    db.session.commit()
    _pages_answer(admin)
    page = admin.get("/servers").get_data(as_text=True)
    eu = page[page.index('id="server-eu"'):].split("</tr>", 1)[0]
    default = page[page.index('id="server-default"'):].split("</tr>", 1)[0]
    assert "Unreachable" in eu and "cannot be asked" in eu
    assert "Reachable" in default and "Unreachable" not in default


@pytest.mark.parametrize("until", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_mute_until_a_time_outside_the_calendar_in_utc_is_a_field_error(login, until):
    response = login.as_admin().post("/alerts/mutes/new", data={"until": until})
    assert response.status_code == 422
    assert "Until" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AlertMute)) == 0


def test_an_smtp_port_beyond_any_integer_is_a_field_error(login):
    response = login.as_admin().post("/alerts/destinations/new", data={
        "kind": "email", "name": "mail", "host": "localhost", "port": "9" * 20,
        "from": "a@example.com", "to": "b@example.com"})
    assert response.status_code == 422
    assert "must be between 1 and 65535" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AlertDestination)) == 0


@pytest.mark.parametrize("allowed", [False, True])
def test_production_adds_no_plain_http_server_unless_allowed(app, default, login, monkeypatch,
                                                            allowed):
    """Item 5's refusal of an http:// Hummingbot URL holds for servers added on the servers
    page and with `flask servers add` too; http:// to this machine is always accepted."""
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    monkeypatch.setitem(app.config, "HUMMINGBOT_ALLOW_HTTP", allowed)
    admin = login.as_admin()
    page = admin.post("/servers", data={"name": "eu", "base_url": "http://hb-eu.example:8000"})
    edit = admin.post("/servers/default/edit", data={"base_url": "http://hb.example:8000"})
    cli = app.test_cli_runner().invoke(args=[
        "servers", "add", "asia", "http://hb-asia.example", "--password", "pw"])
    if allowed:
        assert (page.status_code, edit.status_code, cli.exit_code) == (302, 302, 0)
    else:
        assert (page.status_code, edit.status_code) == (422, 422)
        assert "Use https://" in page.get_data(as_text=True)
        assert "Use https://" in edit.get_data(as_text=True)
        assert cli.exit_code != 0 and "https://" in cli.output
        assert [name for name, *_ in _servers()] == ["default"]
    assert admin.post("/servers", data={"name": "local", "base_url": "http://127.0.0.1:9"}) \
        .status_code == 302


def test_eight_parallel_adds_of_one_server_name_never_500(committed_app, accounts):
    """Like item 3's parallel archives: one add wins, the others are told the name is taken
    (before: 500 from the unique index for those past the name check at the same moment)."""
    clients = [Login(committed_app.test_client(), accounts).as_admin() for _ in range(8)]
    form = {"name": "eu", "base_url": "http://127.0.0.1:9/"}
    statuses = run_together(8, lambda i: clients[i].post("/servers", data=form).status_code)
    assert sorted(statuses) == [302] + [422] * 7, statuses
    with committed_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(HummingbotServer)
                                 .where(HummingbotServer.name == "eu")) == 1
