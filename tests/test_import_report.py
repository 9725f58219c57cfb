"""Import reports every bad entry at once, with a precise reason each, and warns before
writing when an entry says `running` but Hummingbot runs nothing under its name (issue 11,
item 5): the page preview and the CLI. Real PostgreSQL, the simulator."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, db
from dashboard.transfer import ImportFileError, plan_import
from tests.test_transfer import OLD_METADATA

BAD = {
    "ok": {**OLD_METADATA["master-arb"], "name": "ok"},
    "text": "just a string",
    "listy": {**OLD_METADATA["master-arb"], "name": "listy", "config": [1, 2]},
    "nopair": {**OLD_METADATA["master-arb"], "name": "nopair", "pair": "bitcoin"},
    "dup1": {**OLD_METADATA["master-arb"], "id": "same", "name": "dup1"},
    "dup2": {**OLD_METADATA["master-arb"], "id": "same", "name": "dup2"},
}


def upload(client, document, filename="bots.json"):
    return client.post("/recovery/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(json.dumps(document).encode()), filename)})


def count_bots() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Bot))


def test_every_bad_entry_is_reported_at_once_with_its_reason(app):
    with pytest.raises(ImportFileError) as caught:
        plan_import(json.dumps(BAD))
    assert caught.value.problems == [
        "Entry 'text' is not an object.",
        "Entry 'listy' is not valid: config: must be a JSON object.",
        "Entry 'nopair' is not valid: pair: may contain only BASE-QUOTE, like BTC-USDT.",
        "Entry 'dup2' repeats bot id 'same'.",
    ]
    assert caught.value.summary == "4 entries are not valid. Nothing was imported."


def test_the_page_lists_every_bad_entry_and_writes_nothing(login):
    response = upload(login.as_admin(), BAD)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    problems = page.split('id="import-problems"')[1].split("</div>")[0]
    assert "4 entries are not valid. Nothing was imported." in problems
    assert problems.count("<li>") == 4
    for key in ("text", "listy", "nopair", "dup2"):
        assert f"Entry &#39;{key}&#39;" in problems
    assert count_bots() == 0


def test_the_preview_warns_about_a_running_entry_that_nothing_runs(login, simulator):
    page = upload(login.as_admin(), OLD_METADATA).get_data(as_text=True)
    warnings = page.split('id="import-warnings"')[1].split("</div>")[0]
    assert "sharp-pmm: marked running, but Hummingbot runs nothing under sharp-pmm" in warnings
    assert "master-arb" not in warnings  # not marked running
    assert count_bots() == 0

    simulator.seed_bot("sharp-pmm", account="client_sharp", script="simple_pmm.py")
    page = upload(login.as_admin(), OLD_METADATA).get_data(as_text=True)
    assert 'id="import-warnings"' not in page


def test_the_preview_says_when_hummingbot_cannot_be_asked(login, simulator):
    simulator.set_fault("unreachable")
    page = upload(login.as_admin(), OLD_METADATA).get_data(as_text=True)
    assert "cannot be checked that the 1 new entries marked running really run" in page


def test_the_cli_reports_every_bad_entry_and_warns_before_writing(app, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BAD))
    result = app.test_cli_runner().invoke(args=["bots", "import", str(bad)])
    assert result.exit_code != 0
    for key in ("text", "listy", "nopair", "dup2"):
        assert f"Entry '{key}'" in result.output
    assert "4 entries are not valid. Nothing was imported." in result.output
    assert count_bots() == 0

    good = tmp_path / "old.json"
    good.write_text(json.dumps(OLD_METADATA))
    result = app.test_cli_runner().invoke(args=["bots", "import", str(good)])
    assert result.exit_code == 0, result.output
    warning = result.output.index("Warning: sharp-pmm: marked running, but Hummingbot runs")
    assert warning < result.output.index("create  sharp-pmm")
