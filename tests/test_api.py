"""The JSON API."""

from dashboard.models import Bot, db


def test_api_bots_lists_stored_columns_with_iso_times(login, make_bot):
    make_bot()
    data = login.as_admin().get("/api/bots").get_json()
    [bot] = data["bots"]
    assert bot["id"] == "pmm-btc"
    assert bot["config"] == {"order_amount": 0.01, "bid_spread": 0.002}
    assert bot["status"] == "stopped"
    assert bot["created_at"].endswith("Z") and "T" in bot["created_at"]
    assert {"name", "account_identifier", "strategy", "connector", "pair", "updated_at",
            "instance_name", "version", "archived_at"} <= set(bot)


def test_api_one_bot(login, make_bot):
    make_bot()
    response = login.as_admin().get("/api/bots/pmm-btc")
    assert response.status_code == 200
    assert response.get_json()["pair"] == "BTC-USDT"


def test_api_unknown_bot_is_json_404(login):
    response = login.as_admin().get("/api/bots/nope")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"]


def test_api_hides_archived_bots_unless_asked(login, make_bot):
    make_bot()
    db.session.get(Bot, "pmm-btc").archived_at = db.func.now()
    db.session.flush()
    client = login.as_admin()
    assert client.get("/api/bots").get_json()["bots"] == []
    assert len(client.get("/api/bots?archived=1").get_json()["bots"]) == 1
