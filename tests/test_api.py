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


HTMX_PAYLOAD = '<form hx-post="/bots/other/deploy" hx-trigger="load"></form> & <b>'


def test_the_api_refuses_htmx_requests_with_a_reason(login, make_bot):
    """An element htmx processes (ours or injected) can never load JSON into a page."""
    make_bot()
    client = login.as_admin()
    for path in ("/api/bots", "/api/bots/pmm-btc", "/api/openapi.json"):
        assert client.get(path).status_code == 200, path
        refused = client.get(path, headers={"HX-Request": "true"})
        assert refused.status_code == 400, path
        assert "htmx" in refused.get_json()["error"], path
    anonymous = login.client.application.test_client()
    assert anonymous.get("/api/bots", headers={"HX-Request": "true"}).status_code == 400


def test_api_json_carries_no_markup_even_from_hummingbot(login, make_bot, simulator):
    """Hummingbot's text reaches the API as data: `<`, `>` and `&` are \\u escapes, so the
    body holds no markup at all, and decodes to exactly what Hummingbot said."""
    name = simulator.seed_bot("pmm-btc", controllers=["pmm_1"])
    simulator.state.add_log(name, "ERROR", HTMX_PAYLOAD)
    bot = make_bot()
    bot.instance_name = name
    db.session.commit()
    response = login.as_admin().get("/api/bots/pmm-btc")
    raw = response.get_data(as_text=True)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert "\\u003cform hx-post" in raw
    logs = response.get_json()["live"]["error_logs"]
    assert any(line["msg"] == HTMX_PAYLOAD for line in logs)
