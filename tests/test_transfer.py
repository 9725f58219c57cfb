"""Import and export: our export, the old in-memory `bot_metadata` shape, and the CLI."""

import json

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.transfer import ImportFileError, apply_import, export_bots, plan_import

# The shape the old Flask service kept in memory (and could dump), keyed by bot name.
OLD_METADATA = {
    "sharp-pmm": {
        "name": "sharp-pmm",
        "account": "client_sharp",
        "strategy": "pure_market_making",
        "connector": "binance",
        "pair": "BTC-USDT",
        "config": {"bid_spread": 0.001, "ask_spread": 0.001, "order_amount": 0.002},
        "status": "running",
    },
    "master-arb": {
        "name": "master-arb",
        "account": "master_account",
        "strategy": "amm_arb",
        "connector": "kucoin",
        "pair": "eth-usdt",
        "config": {},
    },
}


def count_bots():
    return db.session.scalar(sa.select(sa.func.count()).select_from(Bot))


def test_import_of_the_old_shape_creates_definitions(app):
    plan = apply_import(plan_import(json.dumps(OLD_METADATA)), "tester", "old.json")
    assert plan.summary() == "2 created, 0 updated, 0 skipped"
    sharp = db.session.get(Bot, "sharp-pmm")
    assert (sharp.account_identifier, sharp.status) == ("client_sharp", "running")
    assert sharp.config["order_amount"] == 0.002
    master = db.session.get(Bot, "master-arb")
    assert (master.pair, master.status) == ("ETH-USDT", "stopped")
    event = db.session.scalars(sa.select(BotEvent).where(BotEvent.bot_id == "sharp-pmm")).one()
    assert (event.action, event.actor) == ("imported", "tester")
    assert event.details["source"] == "old.json"


def test_import_is_idempotent(app):
    apply_import(plan_import(json.dumps(OLD_METADATA)), "tester", "old.json")
    again = apply_import(plan_import(json.dumps(OLD_METADATA)), "tester", "old.json")
    assert again.summary() == "0 created, 0 updated, 2 skipped"
    assert {e.reason for e in again.entries} == {"already up to date"}
    assert count_bots() == 2


def test_import_updates_changed_definitions_and_says_what_changed(app):
    apply_import(plan_import(json.dumps(OLD_METADATA)), "tester", "old.json")
    changed = json.loads(json.dumps(OLD_METADATA))
    changed["sharp-pmm"]["pair"] = "SOL-USDT"
    plan = apply_import(plan_import(json.dumps(changed)), "tester", "new.json")
    assert plan.summary() == "0 created, 1 updated, 1 skipped"
    assert plan.entries[0].reason == "changed: pair"
    assert db.session.get(Bot, "sharp-pmm").pair == "SOL-USDT"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "Not a bot file"),
        (json.dumps({"bad-one": "just a string"}), "'bad-one' is not an object"),
        (json.dumps({**OLD_METADATA, "broken": {**OLD_METADATA["sharp-pmm"], "name": "bad name",
                                                  "pair": ""}}), "'broken' is not valid"),
        (json.dumps({"bots": [{"id": "x", "name": "x", "account_identifier": "a",
                               "strategy": "s", "connector": "c", "pair": "A-B",
                               "config": "[1]"}]}), "'x' is not valid"),
    ],
)
def test_malformed_file_changes_nothing_and_names_the_entry(app, make_bot, document, message):
    make_bot()
    before = export_bots()["bots"]
    with pytest.raises(ImportFileError, match=message):
        plan_import(document)
    assert export_bots()["bots"] == before


def test_export_then_import_round_trip(app, make_bot):
    make_bot()
    make_bot(id="other", name="other", account_identifier="client_other", config='{"x": [1, 2]}')
    db.session.get(Bot, "other").instance_name = "other-20260101-000000"
    db.session.commit()
    exported = export_bots()
    assert exported["format"] == "bot-management/1"

    # Into an empty table: every definition comes back as it was.
    db.session.execute(sa.text("ALTER TABLE bot_events DISABLE TRIGGER bot_events_append_only"))
    db.session.execute(sa.delete(BotEvent))
    db.session.execute(sa.delete(Bot))
    plan = apply_import(plan_import(json.dumps(exported)), "tester", "export.json")
    assert plan.summary() == "2 created, 0 updated, 0 skipped"
    fields = ("id", "name", "account_identifier", "strategy", "connector", "pair", "config",
              "status", "instance_name")
    again = {b["id"]: {k: b[k] for k in fields} for b in export_bots()["bots"]}
    original = {b["id"]: {k: b[k] for k in fields} for b in exported["bots"]}
    assert again == original


def test_cli_import_and_export(app, tmp_path):
    source = tmp_path / "old.json"
    source.write_text(json.dumps(OLD_METADATA))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bots", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "create  sharp-pmm: new bot" in result.output
    assert "2 created, 0 updated, 0 skipped." in result.output
    result = runner.invoke(args=["bots", "import", str(source)])
    assert "0 created, 0 updated, 2 skipped." in result.output

    target = tmp_path / "export.json"
    result = runner.invoke(args=["bots", "export", str(target)])
    assert result.exit_code == 0, result.output
    assert {b["id"] for b in json.loads(target.read_text())["bots"]} == {"sharp-pmm", "master-arb"}


def test_cli_import_dry_run_writes_nothing(app, tmp_path):
    source = tmp_path / "old.json"
    source.write_text(json.dumps(OLD_METADATA))
    result = app.test_cli_runner().invoke(args=["bots", "import", "--dry-run", str(source)])
    assert "Would be: 2 created" in result.output
    assert count_bots() == 0


def test_cli_import_of_a_malformed_file_fails_clearly(app, tmp_path):
    source = tmp_path / "bad.json"
    source.write_text(json.dumps({"ok": {**OLD_METADATA["sharp-pmm"], "name": "ok"},
                                  "bad": {"name": "bad"}}))
    result = app.test_cli_runner().invoke(args=["bots", "import", str(source)])
    assert result.exit_code != 0
    assert "Entry 'bad' is not valid" in result.output and "Nothing was imported" in result.output
    assert ".." not in result.output  # regression: "is required.. Nothing was imported"
    assert count_bots() == 0
