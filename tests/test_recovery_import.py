"""Import from the recovery page: upload, preview (nothing written), confirm; the CLI's
plan_import / apply_import underneath, the document carried signed and checked again."""

from __future__ import annotations

import io
import json
import re

import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.transfer import apply_import, plan_import
from tests.test_transfer import OLD_METADATA


def upload(client, document, filename="bot_metadata.json"):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.post("/recovery/import", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_preview_then_confirm_imports_the_old_bot_metadata(login):
    admin = login.as_admin()
    assert admin.get("/recovery/import").status_code == 200
    response = upload(admin, OLD_METADATA)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Preview of bot_metadata.json" in page and "bot_metadata format" in page
    assert page.count('data-action="create"') == 2 and "new bot" in page
    assert count(Bot) == 0  # a preview writes nothing

    confirmed = admin.post("/recovery/import/confirm", data={"token": token_of(page)})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/bots"
    assert count(Bot) == 2
    sharp = db.session.get(Bot, "sharp-pmm")
    assert (sharp.account_identifier, sharp.config["order_amount"]) == ("client_sharp", 0.002)
    event = db.session.scalars(sa.select(BotEvent).where(BotEvent.bot_id == "sharp-pmm")).one()
    assert (event.action, event.actor, event.details["source"]) == (
        "imported", "admin", "upload bot_metadata.json")
    assert "Imported bot_metadata.json: 2 created, 0 updated, 0 skipped." in \
        admin.get("/bots").get_data(as_text=True)


def test_preview_says_what_is_updated_and_skipped_and_why(app, login):
    apply_import(plan_import(json.dumps(OLD_METADATA)), "cli", "old.json")
    changed = json.loads(json.dumps(OLD_METADATA))
    changed["sharp-pmm"]["pair"] = "ETH-USDT"
    page = upload(login.as_admin(), changed).get_data(as_text=True)
    update = page.split('id="entry-sharp-pmm"')[1].split("</tr>")[0]
    skip = page.split('id="entry-master-arb"')[1].split("</tr>")[0]
    assert 'data-action="update"' in page and "changed: pair" in update
    assert "already up to date" in skip
    assert db.session.get(Bot, "sharp-pmm").pair == "BTC-USDT"


def test_nothing_to_import_offers_no_confirmation(app, login):
    apply_import(plan_import(json.dumps(OLD_METADATA)), "cli", "old.json")
    page = upload(login.as_admin(), OLD_METADATA).get_data(as_text=True)
    assert "Nothing to import" in page and 'name="token"' not in page


def test_malformed_file_changes_nothing_and_names_the_bad_entry(login):
    bad = json.loads(json.dumps(OLD_METADATA))
    bad["broken-bot"] = {"name": "broken-bot", "account": "client_sharp", "strategy": "pmm",
                         "connector": "binance", "pair": "not a pair"}
    admin = login.as_admin()
    response = upload(admin, bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Entry &#39;broken-bot&#39; is not valid" in page
    assert "pair: may contain only BASE-QUOTE" in page and "Nothing was imported." in page
    assert 'name="token"' not in page
    assert count(Bot) == 0 and count(BotEvent) == 0

    for garbage in (b"{not json", b"[1, 2, 3]", b""):
        response = upload(admin, garbage)
        assert response.status_code == 422, garbage
    assert "not valid JSON" in upload(admin, b"{not json").get_data(as_text=True)
    assert "Not a bot file" in upload(admin, b"[1, 2]").get_data(as_text=True)
    assert "Choose a JSON file" in admin.post("/recovery/import").get_data(as_text=True)
    assert count(Bot) == 0


def test_a_tampered_confirmation_is_refused(login):
    admin = login.as_admin()
    token = token_of(upload(admin, OLD_METADATA).get_data(as_text=True))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (forged, "", "not-a-token"):
        response = admin.post("/recovery/import/confirm", data={"token": bad})
        assert response.status_code == 422
        assert "upload the file again" in response.get_data(as_text=True)
    assert count(Bot) == 0


def test_a_document_from_another_secret_is_refused(app, login):
    from itsdangerous import URLSafeTimedSerializer

    evil = json.dumps({"evil": {"name": "evil", "account": "client_sharp", "strategy": "x",
                                "connector": "binance", "pair": "BTC-USDT"}})
    token = URLSafeTimedSerializer("some other key", salt="recovery-import").dumps(
        {"document": evil, "filename": "x.json", "digest": "0"})
    response = login.as_admin().post("/recovery/import/confirm", data={"token": token})
    assert response.status_code == 422 and count(Bot) == 0


def test_changes_between_preview_and_confirm_show_a_new_preview(app, login):
    admin = login.as_admin()
    token = token_of(upload(admin, OLD_METADATA).get_data(as_text=True))
    # Meanwhile someone imports one of the bots with other values.
    other = {"sharp-pmm": {**OLD_METADATA["sharp-pmm"], "pair": "SOL-USDT"}}
    apply_import(plan_import(json.dumps(other)), "cli", "other.json")

    response = admin.post("/recovery/import/confirm", data={"token": token})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The bots changed since the preview was made" in page
    assert "changed: pair" in page.split('id="entry-sharp-pmm"')[1].split("</tr>")[0]
    assert count(Bot) == 1 and db.session.get(Bot, "sharp-pmm").pair == "SOL-USDT"

    # Confirming the new preview applies it.
    assert admin.post("/recovery/import/confirm",
                      data={"token": token_of(page)}).status_code == 302
    assert count(Bot) == 2 and db.session.get(Bot, "sharp-pmm").pair == "BTC-USDT"


def test_confirming_twice_imports_once(login):
    admin = login.as_admin()
    token = token_of(upload(admin, OLD_METADATA).get_data(as_text=True))
    assert admin.post("/recovery/import/confirm", data={"token": token}).status_code == 302
    again = admin.post("/recovery/import/confirm", data={"token": token})
    assert again.status_code == 409  # the plan is now "skip, skip": shown, not applied
    assert count(Bot) == 2 and count(BotEvent) == 2


def test_our_export_round_trips_through_the_page(app, login, make_bot):
    make_bot(id="kept", name="kept", config='{"levels": [1, 2]}')
    admin = login.as_admin()
    from dashboard.transfer import export_bots

    document = export_bots()
    document["bots"][0].update(id="kept-copy", name="kept-copy")
    page = upload(admin, document, "export.json").get_data(as_text=True)
    assert "export format" in page and page.count('data-action="create"') == 1
    admin.post("/recovery/import/confirm", data={"token": token_of(page)})
    assert db.session.get(Bot, "kept-copy").config == {"levels": [1, 2]}
