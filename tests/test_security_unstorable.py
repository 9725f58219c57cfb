"""Values JSON can carry but PostgreSQL cannot store, and import entries that are no bot: each
was a 500 (or a traceback in the CLI) and is now a clear 4xx or field error that changes
nothing, on every way in (create, edit, recreate, adopt, web import, CLI import)."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.transfer import ImportFileError, plan_import
from tests.conftest import make_bot_data
from tests.test_recovery import adopt_form_of
from tests.test_transfer import OLD_METADATA

# JSON text a browser or a script may send: json.loads reads NaN and Infinity (1e999 too), and
# "\ud800" as a lone surrogate, which UTF-8 (and so the database driver) cannot encode.
UNSTORABLE = {
    "nan": '{"order_amount": NaN}',
    "infinity": '{"order_amount": Infinity}',
    "minus-infinity": '{"order_amount": [-Infinity]}',
    "1e999": '{"order_amount": 1e999}',
    "surrogate-value": '{"note": "\\ud800"}',
    "surrogate-key": '{"\\ud800": 1}',
}
MESSAGES = ("finite numbers", "lone surrogates")


def count_rows() -> tuple[int, int]:
    return (db.session.scalar(sa.select(sa.func.count()).select_from(Bot)),
            db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent)))


def says_why(text: str) -> bool:
    return any(message in text for message in MESSAGES)


@pytest.mark.parametrize("config", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_create_and_recreate_refuse_unstorable_configurations(login, config):
    admin = login.as_admin()
    for path in ("/bots/new", "/recovery/recreate"):
        response = admin.post(path, data=make_bot_data(config=config))
        assert response.status_code == 422, path
        assert says_why(response.get_data(as_text=True)), path
        assert count_rows() == (0, 0)


@pytest.mark.parametrize("config", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_edit_refuses_unstorable_configurations(login, make_bot, config):
    bot = make_bot()
    before = (dict(bot.config), bot.version, count_rows())
    response = login.as_admin().post("/bots/pmm-btc/edit", data=make_bot_data(
        config=config, version=str(bot.version)))
    assert response.status_code == 422
    assert says_why(response.get_data(as_text=True))
    db.session.expire_all()
    bot = db.session.get(Bot, "pmm-btc")
    assert (dict(bot.config), bot.version, count_rows()) == before


@pytest.fixture
def orphan(simulator) -> str:
    return simulator.seed_bot("sharp-grid", account="client_sharp", controllers=["grid_eth_1"],
                              timestamped=True)


@pytest.mark.parametrize("config", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_adopt_refuses_unstorable_configurations(login, orphan, config):
    admin = login.as_admin()
    values = {**adopt_form_of(admin, orphan), "config": config}
    response = admin.post(f"/recovery/orphans/{orphan}/adopt", data=values)
    assert response.status_code == 422
    assert says_why(response.get_data(as_text=True))
    assert count_rows() == (0, 0)


# ------------------------------------------------------------------------------ import
BAD_VALUES = {"nan": float("nan"), "infinity": float("inf"), "surrogate": "\ud800"}


def metadata_with(value) -> str:
    document = json.loads(json.dumps(OLD_METADATA))
    document["sharp-pmm"]["config"]["order_amount"] = value
    return json.dumps(document)  # writes NaN, Infinity and "\ud800" as JSON text


def upload(client, text: str):
    return client.post("/recovery/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(text.encode()), "bots.json")})


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_web_import_preview_and_confirm_refuse_unstorable_values(app, login, value):
    admin = login.as_admin()
    text = metadata_with(value)
    preview = upload(admin, text)
    assert preview.status_code == 422
    page = preview.get_data(as_text=True)
    assert says_why(page) and "sharp-pmm" in page and 'name="token"' not in page
    # A confirmation signed before this fix (its preview accepted the file) is checked again.
    from dashboard.recovery import _serializer

    token = _serializer().dumps({"document": text, "filename": "bots.json", "digest": "x"})
    confirmed = admin.post("/recovery/import/confirm", data={"token": token})
    assert confirmed.status_code == 422
    assert says_why(confirmed.get_data(as_text=True))
    assert count_rows() == (0, 0)


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_cli_import_refuses_unstorable_values(app, tmp_path, value):
    source = tmp_path / "bots.json"
    source.write_text(metadata_with(value))
    result = app.test_cli_runner().invoke(args=["bots", "import", str(source)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert says_why(result.output) and "Traceback" not in result.output
    assert count_rows() == (0, 0)


@pytest.mark.parametrize("instance_name", [
    123, ["a"], {"a": 1}, True, "../../x", "a\r\nb", "a b", "x" * 5000, "\ud800",
])
def test_import_refuses_an_instance_name_hummingbot_would_not_give(app, login, instance_name):
    """Today's import stored '../../x', CRLF and 5,000-character names; adopt never did."""
    document = {"bots": [{**make_bot_data(), "config": {}, "instance_name": instance_name}]}
    text = json.dumps(document)
    with pytest.raises(ImportFileError, match="instance_name"):
        plan_import(text)
    response = upload(login.as_admin(), text)
    assert response.status_code == 422 and "instance_name" in response.get_data(as_text=True)
    assert count_rows() == (0, 0)


@pytest.mark.parametrize("server", [["default"], {"name": "default"}, 123, True, "\ud800",
                                    "x" * 5000, "../default"])
def test_import_refuses_a_server_that_is_no_server_name(app, login, server):
    """Files name each bot's Hummingbot server (issue 14); a list or an object there was a
    TypeError (a 500 on the web, a traceback in the CLI)."""
    document = {"bots": [{**make_bot_data(), "config": {}, "server": server}]}
    text = json.dumps(document)
    with pytest.raises(ImportFileError, match="Hummingbot server"):
        plan_import(text)
    response = upload(login.as_admin(), text)
    assert response.status_code == 422
    assert "Hummingbot server" in response.get_data(as_text=True)
    assert count_rows() == (0, 0)


def test_import_keeps_a_good_instance_name(app):
    document = {"bots": [{**make_bot_data(), "config": {},
                          "instance_name": "pmm-btc-20260701-143012"}]}
    assert plan_import(json.dumps(document)).entries[0].instance_name == \
        "pmm-btc-20260701-143012"


DEEP = "[" * 50_000 + "]" * 50_000


def test_a_file_nested_50000_deep_is_a_clear_error_on_the_web(login):
    response = upload(login.as_admin(), '{"bots": ' + DEEP + "}")
    assert response.status_code == 422
    assert "nested too deeply" in response.get_data(as_text=True)
    assert count_rows() == (0, 0)


def test_a_file_nested_50000_deep_is_a_clear_error_in_the_cli(app, tmp_path):
    source = tmp_path / "deep.json"
    source.write_text(DEEP)
    result = app.test_cli_runner().invoke(args=["bots", "import", str(source)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "nested too deeply" in result.output and "Traceback" not in result.output
