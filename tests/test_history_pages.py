"""The history pages: the account page agrees with its statement, clients see only their own
account, bad periods are refused with the form kept, charts mark runs."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.history.charts import amount
from dashboard.history.services import account_figures
from dashboard.models import db
from tests.history_data import seed_history


@pytest.fixture
def history(app, make_bot, simulator):
    return seed_history(simulator, make_bot)


def read_csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("days", [1, 7, 30])
def test_the_statement_of_a_period_sums_to_the_account_page(history, login, days):
    now = history
    first = (now - timedelta(days=days - 1)).date()
    client = login.as_client_a()
    rows = read_csv(client.get(
        f"/accounts/client_sharp/statement?from={first}&to={now.date()}&format=csv"))
    figures = account_figures("client_sharp", now)["USDT"]
    page = client.get("/accounts/client_sharp").get_data(as_text=True)

    expected_pnl = {1: figures.today, 7: figures.d7, 30: figures.d30}[days]
    expected_volume = {1: figures.volume_today, 7: figures.volume_d7,
                       30: figures.volume_d30}[days]
    assert {r["account"] for r in rows} == {"client_sharp"}
    assert {(r["bot_id"], r["controller"]) for r in rows} <= {
        ("sharp-a", "c1"), ("sharp-a", "c2"), ("sharp-b", "c1")}
    assert sum(float(r["global_pnl"]) for r in rows) == pytest.approx(expected_pnl, abs=1e-6)
    assert sum(float(r["volume"]) for r in rows) == pytest.approx(expected_volume, abs=1e-6)
    assert expected_volume > 0
    assert amount(expected_pnl, "USDT") in page and amount(
        expected_volume, "USDT", signed=False) in page


def test_all_time_statement_sums_to_the_all_time_figure(history, login):
    rows = read_csv(login.as_admin().get(
        "/accounts/client_sharp/statement?from=2020-01-01&to=2029-12-31&format=csv"))
    figures = account_figures("client_sharp", history)["USDT"]
    assert sum(float(r["global_pnl"]) for r in rows) == pytest.approx(figures.all, abs=1e-6)


def test_clients_get_only_their_own_history_on_every_route(history, login):
    other = login.as_client_b()
    for url in ("/accounts/client_sharp", "/accounts/client_sharp/statement",
                "/accounts/client_sharp/statement?format=csv",
                "/api/accounts/client_sharp/history", "/bots/sharp-a/statement?format=csv",
                "/api/bots/sharp-a/history"):
        response = other.get(url)
        assert response.status_code == 404, url
        assert "sharp-a" not in response.get_data(as_text=True), url
    own = other.get("/api/accounts/client_other/history?from=2020-01-01").get_json()
    assert own["rows"] and {r["bot_id"] for r in own["rows"]} == {"other-a"}
    # Admins see any account that exists; an unknown one is a 404 for everybody.
    assert login.as_admin().get("/api/accounts/client_sharp/history").status_code == 200
    assert login.as_admin().get("/accounts/no_such_account").status_code == 404


def test_an_admin_opens_an_account_whose_bots_are_all_archived(history, login, statements):
    """Whether an account exists is read with the page's figures (every definition counts,
    archived ones too), not in a statement of its own."""
    db.session.execute(sa.text("UPDATE bots SET archived_at = now() "
                               "WHERE account_identifier = 'client_other'"))
    db.session.commit()
    admin = login.as_admin()
    statements.clear()
    assert admin.get("/accounts/client_other").status_code == 200
    assert admin.get("/accounts/no_such_account").status_code == 404
    assert not [s for s in statements if "EXISTS" in s]


def test_clients_land_on_their_account_page(history, login):
    assert login.as_client_a().get("/").headers["Location"] == "/accounts/client_sharp"
    assert login.as_admin().get("/").headers["Location"] == "/bots"


@pytest.mark.parametrize(("query", "field"), [("from=2026-13-01", "from"), ("to=yesterday", "to"),
                                              ("from=2026-05-02&to=2026-05-01", "from")])
def test_a_bad_period_is_refused_with_the_input_kept(history, login, query, field):
    response = login.as_admin().get(f"/accounts/client_sharp/statement?{query}&format=csv")
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert f'id="{field}-error"' in body
    given = dict(part.split("=") for part in query.split("&"))
    assert f'value="{given[field]}"' in body
    api = login.as_admin().get(f"/api/accounts/client_sharp/history?{query}")
    assert api.status_code == 400 and field in api.get_json()["fields"]


def test_the_bot_page_charts_both_runs_with_values_and_a_table(history, login):
    body = login.as_client_a().get("/bots/sharp-a?range=7d").get_data(as_text=True)
    assert body.count('<g class="run">') == 1  # the restart; the first run began 35 days ago
    assert "<title>Run started" in body and "cumulative PnL" in body
    assert 'aria-current="page">7 d<' in body
    assert "The chart&#39;s figures as a table" in body or "The chart's figures as a table" in body
    all_runs = login.as_client_a().get("/bots/sharp-a?range=all").get_data(as_text=True)
    assert all_runs.count('<g class="run">') == 2


def test_the_list_shows_a_sparkline_per_sampled_bot_and_account_totals(history, login):
    body = login.as_admin().get("/bots").get_data(as_text=True)
    assert body.count('<svg class="spark') == 3
    assert 'href="/accounts/client_sharp"' in body and 'href="/accounts/client_other"' in body


def test_the_shell_export_is_the_same_statement(history, login, app):
    first = (history - timedelta(days=6)).date()
    url = f"/accounts/client_sharp/statement?from={first}&to={history.date()}&format=csv"
    page_csv = login.as_admin().get(url).get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=[
        "history", "export", "--account", "client_sharp", "--from", str(first),
        "--to", str(history.date())])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == page_csv.splitlines() and page_csv.count("\n") > 2
    bad = app.test_cli_runner().invoke(args=["history", "export", "--bot", "sharp-a",
                                             "--from", "never"])
    assert bad.exit_code == 2 and "--from must be a date" in bad.output
