"""Cost that must not grow with the number of bots (counted, never timed)."""

import pytest
import sqlalchemy as sa

from dashboard.models import db


def add_bots(count: int, start: int = 0) -> None:
    db.session.execute(sa.text("""
        INSERT INTO bots (id, name, account_identifier, strategy, connector, pair)
        SELECT 'b' || n, 'b' || n, 'client_sharp', 'pure_market_making', 'binance', 'BTC-USDT'
        FROM generate_series(:first, :last) AS n
    """), {"first": start + 1, "last": start + count})


PAGES = [("/bots", {}), ("/bots", {"HX-Request": "true"}), ("/bots?page=2", {}),
         ("/bots?account=client_sharp&status=stopped", {}), ("/api/bots", {}),
         ("/bots/b1", {}), ("/bots/b1", {"HX-Request": "true"}),
         ("/accounts/client_sharp", {}), ("/accounts/client_sharp/statement", {}),
         ("/api/accounts/client_sharp/history", {}), ("/bots/b1/statement", {})]


@pytest.mark.parametrize("who", ["admin", "client"])
def test_statements_per_request_do_not_grow_with_bots(login, statements, who, monkeypatch):
    client = login.as_admin() if who == "admin" else login.as_client_a()
    # Recording a status snapshot is once per period per process, not per request: counted
    # once here (test_recording_a_snapshot_is_one_statement_whatever_the_fleet), not per page.
    monkeypatch.setattr("dashboard.gateway.RECORD_AGAIN_SECONDS", float("inf"))
    client.get("/bots")

    def per_page():
        found = {}
        for path, headers in PAGES:
            statements.clear()
            assert client.get(path, headers=headers).status_code == 200, path
            found[(path, headers.get("HX-Request"))] = len(statements)
        return found

    add_bots(60)  # more than a page, so every list shows a full page of 50
    per_page()  # warm: the first pages read the servers once (the fleet's generation)
    few = per_page()
    add_bots(600, start=60)
    many = per_page()
    assert few == many
    # A handful per page, never one per row. 11 since alerts: the admins' header counts firing
    # alerts (one COUNT per page) and a bot's page lists its open ones (one more); 13 since
    # servers: every page reads the servers' generation, a bot's page its server too.
    assert max(many.values()) <= 13, many
    # The bell's count is read with the bots' generation (rows_cache.list_figures); a
    # bot's and an account's pages read the history state, the bots' generation, the bell
    # and the account's counts in one statement (history/services' page states): for admins
    # the list went from 11 to 10, a bot's page from 13 to 12, an account's from 11 to 9;
    # for clients an account's page from 9 to 8 (history rendered anew: no shared cache here).
    budgets = {"admin": {"/bots": 10, "/bots/b1": 12, "/accounts/client_sharp": 9},
               "client": {"/bots": 9, "/bots/b1": 12, "/accounts/client_sharp": 8}}[who]
    for path, budget in budgets.items():
        assert many[(path, None)] <= budget, (path, many[(path, None)])


def test_list_pages_use_indexes_not_a_sort_of_every_bot(app, accounts):
    # A fleet of the size the list is built for: with a few thousand rows a deep page may
    # rightly be cheaper as a scan and a sort, and the planner's choice then flips.
    add_bots(10000)
    db.session.execute(sa.text("ANALYZE bots"))
    from dashboard.registry import BotFilters, filtered_bots

    for filters in (BotFilters(), BotFilters(account="client_sharp"),
                    BotFilters(status="stopped")):
        query = filtered_bots(filters, accounts.admin).limit(50).offset(1500)
        compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(db.session.scalars(sa.text(f"EXPLAIN {compiled}")))
        assert "Index" in plan and "Sort" not in plan, plan
