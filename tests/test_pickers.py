"""Account and connector pickers (issue 11, item 6): the forms offer what Hummingbot knows,
refuse a typo, still work while Hummingbot is down, and cost one call per kind per period; a
new account is created in Hummingbot on purpose. Real PostgreSQL, the simulator."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from dashboard.models import Bot, db
from tests.conftest import make_bot_data


def count_bots() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Bot))


def test_the_forms_offer_hummingbots_accounts_and_connectors(login, simulator):
    simulator.state.add_account("client_new")
    admin = login.as_admin()
    for path in ("/bots/new", "/recovery/recreate"):
        page = admin.get(path).get_data(as_text=True)
        accounts = page.split('<datalist id="hb-accounts">')[1].split("</datalist>")[0]
        assert '<option value="client_new">' in accounts
        assert '<option value="master_account">' in accounts
        connectors = page.split('<datalist id="hb-connectors">')[1].split("</datalist>")[0]
        assert '<option value="binance_perpetual">' in connectors
        assert 'list="hb-accounts"' in page and 'list="hb-connectors"' in page
        assert f'href="/hummingbot/accounts/new?next={path}"' in page


def test_a_mistyped_account_is_refused_with_a_path_to_create_it(login, simulator):
    admin = login.as_admin()
    for path in ("/bots/new", "/recovery/recreate"):
        response = admin.post(path, data=make_bot_data(account_identifier="client_shrap"))
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert "Account is not an account Hummingbot knows" in page
        assert 'value="client_shrap"' in page  # the input is kept
        # The way to create it stands under the Account field, on both forms.
        account = page.split('name="account_identifier"')[1].split('name="strategy"')[0]
        assert f'href="/hummingbot/accounts/new?name=client_shrap&amp;next={path}"' in account
    assert count_bots() == 0


def test_an_unknown_connector_is_refused(login, simulator):
    response = login.as_admin().post("/bots/new", data=make_bot_data(connector="binanse"))
    assert response.status_code == 422
    assert "Connector is not a connector Hummingbot knows" in response.get_data(as_text=True)
    assert count_bots() == 0


def test_an_account_a_client_login_uses_is_not_a_typo(login, simulator):
    # client_sharp: the fixture login "sharp" is tied to it; Hummingbot lacks it here.
    assert "client_sharp" not in simulator.state.accounts()
    assert login.as_admin().post("/bots/new", data=make_bot_data()).status_code == 302


def test_an_edit_keeps_a_stored_account_hummingbot_lacks(login, make_bot, simulator):
    make_bot(account_identifier="client_legacy")
    admin = login.as_admin()
    form = {**make_bot_data(account_identifier="client_legacy", pair="ETH-USDT"), "version": 1}
    assert admin.post("/bots/pmm-btc/edit", data=form).status_code == 302
    assert db.session.get(Bot, "pmm-btc").pair == "ETH-USDT"


def test_the_forms_work_while_hummingbot_is_down(login, simulator):
    simulator.set_fault("unreachable")
    admin = login.as_admin()
    page = admin.get("/bots/new").get_data(as_text=True)
    assert "Hummingbot cannot be asked right now" in page
    assert 'id="hb-accounts"' not in page
    response = admin.post("/bots/new", data=make_bot_data(account_identifier="client_any"))
    assert response.status_code == 302  # not checked: nothing to check against


def test_the_lists_cost_one_call_per_kind_however_many_forms(login, simulator):
    simulator.reset_counts()
    admin = login.as_admin()
    for _ in range(3):
        admin.get("/bots/new")
        admin.get("/recovery/recreate")
    assert simulator.request_count("GET", "/accounts/") == 1
    assert simulator.request_count("GET", "/connectors/") == 1


def test_an_account_is_created_in_hummingbot_after_a_confirmation(login, simulator, caplog):
    admin = login.as_admin()
    confirm = admin.get("/hummingbot/accounts/new?name=client_new&next=/bots/new")
    page = confirm.get_data(as_text=True)
    assert "Create an account in Hummingbot?" in page and 'value="client_new"' in page
    assert "client_new" not in simulator.state.accounts()  # GET changes nothing

    with caplog.at_level(logging.INFO, logger="dashboard.security"):
        response = admin.post("/hummingbot/accounts/new",
                              data={"name": "client_new", "next": "/bots/new"})
    assert response.status_code == 302 and response.headers["Location"] == "/bots/new"
    assert "client_new" in simulator.state.accounts()
    assert any("hummingbot_account_created" in r.getMessage() and "client_new" in r.getMessage()
               for r in caplog.records)
    # At once offered by the forms (the cached list was refreshed).
    assert '<option value="client_new">' in admin.get("/bots/new").get_data(as_text=True)


def test_creating_an_account_refuses_a_bad_or_existing_name(login, simulator):
    admin = login.as_admin()
    bad = admin.post("/hummingbot/accounts/new", data={"name": "../etc"})
    assert bad.status_code == 422 and "may contain only letters" in bad.get_data(as_text=True)
    existing = admin.post("/hummingbot/accounts/new", data={"name": "master_account"})
    assert existing.status_code == 422 and "already exists" in existing.get_data(as_text=True)
    offsite = admin.post("/hummingbot/accounts/new",
                         data={"name": "client_x", "next": "https://evil.example/"})
    assert offsite.headers["Location"] == "/bots"  # never an open redirect
