"""Configuration versions: every edit keeps the version it replaced; diffs name nested paths;
restore is a new, recorded, conflict-safe edit; clients read their own bots' versions with
operators shown as "operator"."""

from __future__ import annotations

import html
import json

import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, BotVersion, db
from dashboard.registry import update_bot
from dashboard.versions import Change, diff
from tests.conftest import make_bot_data

LEVELS = {"order_amount": 0.01, "levels": [{"spread": 0.001}, {"spread": 0.002}]}


def _edit(bot, **changes):
    data = {**make_bot_data(id=bot.id, name=bot.name), **changes}
    return update_bot(bot, data, "admin", expected_version=bot.version)


def _versions(bot_id):
    return list(db.session.scalars(sa.select(BotVersion).where(BotVersion.bot_id == bot_id)
                                   .order_by(BotVersion.version)))


def _events(bot_id):
    return list(db.session.scalars(sa.select(BotEvent).where(BotEvent.bot_id == bot_id)
                                   .order_by(BotEvent.id)))


def test_diff_names_nested_paths():
    before = {"config": LEVELS, "pair": "BTC-USDT"}
    after = {"config": {"order_amount": 0.01, "levels": [{"spread": 0.001}, {"spread": 0.003},
                                                         {"spread": 0.005}],
                        "odd key": True}, "pair": "ETH-USDT"}
    assert diff(before, after) == [
        Change("config.levels[1].spread", "changed", 0.002, 0.003),
        Change("config.levels[2]", "added", None, {"spread": 0.005}),
        Change('config["odd key"]', "added", None, True),
        Change("pair", "changed", "BTC-USDT", "ETH-USDT"),
    ]
    assert diff({"a": 1}, {"a": 1.0}) == []  # the same JSON number
    assert diff({"a": 1}, {"a": True}) == [Change("a", "changed", 1, True)]
    assert diff({"a": {"b": 1}}, {}) == [Change("a", "removed", {"b": 1}, None)]


def test_each_edit_keeps_the_previous_version_in_its_transaction(app, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.02}))
    _edit(bot, pair="ETH-USDT", config=json.dumps({**LEVELS, "order_amount": 0.02}))
    first, second = _versions(bot.id)
    assert (first.version, first.config["order_amount"], first.pair) == (1, 0.01, "BTC-USDT")
    assert (second.version, second.config["order_amount"], second.pair) == (2, 0.02, "BTC-USDT")
    assert first.replaced_by == "admin"
    assert bot.version == 3 and bot.pair == "ETH-USDT"
    edits = [e for e in _events(bot.id) if e.action == "edited"]
    assert [e.details["version"] for e in edits] == [2, 3]
    # No change, no version.
    _edit(bot, pair="ETH-USDT", config=json.dumps({**LEVELS, "order_amount": 0.02}))
    assert len(_versions(bot.id)) == 2


def test_an_import_update_keeps_the_previous_version_too(app, make_bot):
    from dashboard.transfer import apply_import, plan_import

    bot = make_bot()
    document = {"bots": [{**make_bot_data(), "config": {"order_amount": 5}}]}
    apply_import(plan_import(json.dumps(document)), "cli", "file.json")
    [kept] = _versions(bot.id)
    assert kept.config == {"order_amount": 0.01, "bid_spread": 0.002}
    assert db.session.get(Bot, bot.id).config == {"order_amount": 5}


def test_history_shows_the_nested_diff_of_an_edit(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "levels": [{"spread": 0.001}, {"spread": 0.004}]}))
    page = login.as_admin().get(f"/bots/{bot.id}").get_data(as_text=True)
    assert "<code>config.levels[1].spread</code>" in page
    assert "<del>0.002</del> → <ins>0.004</ins>" in page
    assert "configuration changed" not in page


def test_versions_page_and_compare_with_current(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.05}))
    client = login.as_admin()
    listing = client.get(f"/bots/{bot.id}/versions").get_data(as_text=True)
    assert "Version 2" in listing and "Version 1" in listing and "by admin" in listing
    page = client.get(f"/bots/{bot.id}/versions/1")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<code>config.order_amount</code>" in text and "<ins>0.05</ins>" in text
    assert "Restore version 1" in text
    assert client.get(f"/bots/{bot.id}/versions/7").status_code == 404


def test_restore_is_a_new_recorded_version(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, pair="ETH-USDT", config=json.dumps({**LEVELS, "order_amount": 0.05}))
    response = login.as_admin().post(f"/bots/{bot.id}/versions/1/restore",
                                     data={"version": "2"})
    assert response.status_code == 302
    bot = db.session.get(Bot, bot.id)
    assert (bot.version, bot.pair, bot.config) == (3, "BTC-USDT", LEVELS)
    assert [v.version for v in _versions(bot.id)] == [1, 2]
    assert _versions(bot.id)[1].pair == "ETH-USDT"  # the restore kept what it replaced
    last = _events(bot.id)[-1]
    assert (last.action, last.actor, last.details["restored_from"]) == \
        ("version_restored", "admin", 1)
    assert last.details["changes"]["pair"] == ["ETH-USDT", "BTC-USDT"]


def test_a_stale_restore_gets_the_conflict_flow_and_changes_nothing(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.05}))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.07}))  # someone else, later
    events_before = len(_events(bot.id))
    response = login.as_admin().post(f"/bots/{bot.id}/versions/1/restore",
                                     data={"version": "2"})
    assert response.status_code == 409
    text = html.unescape(response.get_data(as_text=True))
    # The edit form's three-way merge: both changed the configuration since version 2.
    assert "Conflict: nothing was saved." in text and 'id="conflict-config"' in text
    assert "0.07" in text  # the saved values now, beside the version's
    assert '"order_amount": 0.01' in text  # the version's values, in the form
    bot = db.session.get(Bot, bot.id)
    assert bot.version == 3 and bot.config["order_amount"] == 0.07
    assert len(_events(bot.id)) == events_before and len(_versions(bot.id)) == 2


def test_restore_of_a_name_taken_since_is_a_field_error(login, make_bot):
    bot = make_bot(id="one", name="first-name")
    _edit(bot, name="second-name")
    make_bot(id="two", name="first-name")
    response = login.as_admin().post("/bots/one/versions/1/restore", data={"version": "2"})
    assert response.status_code == 422
    assert "is already used by another bot" in response.get_data(as_text=True)
    assert db.session.get(Bot, "one").name == "second-name"


def test_clients_read_their_versions_with_operators_unnamed(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.05}))
    client = login.as_client_a()
    for url in (f"/bots/{bot.id}", f"/bots/{bot.id}/versions", f"/bots/{bot.id}/versions/1",
                f"/api/bots/{bot.id}/versions"):
        response = client.get(url)
        text = response.get_data(as_text=True)
        assert response.status_code == 200, url
        assert "operator" in text, url
        assert "admin" not in text.replace("admin-", ""), url
    assert "Restore version" not in client.get(f"/bots/{bot.id}/versions/1").get_data(as_text=True)
    assert client.post(f"/bots/{bot.id}/versions/1/restore",
                       data={"version": "2"}).status_code == 404
    assert login.as_client_b().get(f"/api/bots/{bot.id}/versions").status_code == 404
    assert db.session.get(Bot, bot.id).version == 2


def test_api_lists_versions_with_changes(login, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "order_amount": 0.05}))
    body = login.as_admin().get(f"/api/bots/{bot.id}/versions").get_json()
    assert body["current_version"] == 2
    assert [v["version"] for v in body["versions"]] == [2, 1]
    assert body["versions"][1]["changes_to_next"] == [
        {"path": "config.order_amount", "kind": "changed", "before": 0.01, "after": 0.05}]
    assert body["versions"][1]["replaced_by"] == "admin"


def test_cli_history_prints_events_and_diffs(app, make_bot):
    bot = make_bot(config=json.dumps(LEVELS))
    _edit(bot, config=json.dumps({**LEVELS, "levels": [{"spread": 0.009}]}))
    result = app.test_cli_runner().invoke(args=["bots", "history", bot.id])
    assert result.exit_code == 0, result.output
    assert "edited by admin" in result.output
    assert "config.levels[0].spread: 0.001 -> 0.009" in result.output
    assert "config.levels[1]: removed" in result.output
    assert "Versions: 2 (current), 1" in result.output
    missing = app.test_cli_runner().invoke(args=["bots", "history", "nope"])
    assert missing.exit_code != 0 and "No bot nope" in missing.output
