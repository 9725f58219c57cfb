"""Re-link (issue 11, item 5): a Missing definition and an orphan that is the same bot (same
deploy request tag, or same name stem, account and strategy) are offered as one Re-link on
both recovery sections; it stores the new instance name on the existing definition, which
keeps its id and history. Real PostgreSQL, the simulator."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.relink import Known, name_stem, pair_up, same_bot

REQUEST_ID = "abcdef0123456789abcdef0123456789"


@pytest.fixture
def missing(make_bot, simulator):
    """A definition that says running; its stored instance is gone from Hummingbot."""
    simulator.state.add_account("client_sharp")
    bot = make_bot(id="lost", name="lost", strategy="v2_with_controllers")
    bot.status, bot.instance_name = "running", "lost-000000-20250101-000000"
    bot.deploy_request_id = REQUEST_ID
    db.session.commit()
    return bot


def events_of(bot_id: str) -> list[str]:
    return list(db.session.scalars(
        sa.select(BotEvent.action).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)))


def count_bots() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Bot))


def test_the_orphan_of_a_lost_deploy_is_re_linked_keeping_id_and_history(
        login, missing, simulator):
    # The deploy whose answer was lost: Hummingbot runs it under the request's tag.
    orphan = simulator.seed_bot("lost-abcdef", account="client_sharp",
                                controllers=["pmm_btc_1"], timestamped=True)
    history_before = events_of("lost")
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    # Offered on both sections, as the same action.
    row = page.split('id="missing-lost"')[1].split("</tr>")[0]
    action = f'action="/recovery/bots/lost/relink/{orphan}"'
    assert action in row and f"Hummingbot runs it as <code>{orphan}</code>" in row
    box = page.split(f'id="relink-orphan-{orphan}"')[1].split("</div>")[0]
    assert action in box and "same deploy request" in box

    response = admin.post(f"/recovery/bots/lost/relink/{orphan}")
    assert response.status_code == 302
    db.session.expire_all()
    bot = db.session.get(Bot, "lost")
    assert (bot.id, bot.instance_name, bot.status) == ("lost", orphan, "running")
    assert count_bots() == 1  # no `lost-2`
    assert events_of("lost") == [*history_before, "relinked"]
    event = db.session.scalars(sa.select(BotEvent).where(
        BotEvent.bot_id == "lost", BotEvent.action == "relinked")).one()
    assert event.details["from_instance"] == "lost-000000-20250101-000000"
    assert event.details["instance_name"] == orphan

    page = admin.get("/recovery").get_data(as_text=True)
    assert 'id="missing-lost"' not in page and f'id="orphan-{orphan}"' not in page
    assert "0 need attention" in page


def test_same_name_account_and_strategy_is_offered_and_re_linked(login, missing, simulator):
    missing.deploy_request_id = None
    db.session.commit()
    orphan = simulator.seed_bot("lost", account="client_sharp", controllers=["pmm_btc_1"],
                                timestamped=True)
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    assert "same name, account and strategy" in page.split(f'id="relink-orphan-{orphan}"')[1]
    assert admin.post(f"/recovery/bots/lost/relink/{orphan}").status_code == 302
    assert db.session.get(Bot, "lost").instance_name == orphan


def test_same_name_but_another_account_is_not_offered_and_is_refused(login, missing,
                                                                     simulator):
    missing.deploy_request_id = None
    db.session.commit()
    orphan = simulator.seed_bot("lost", account="client_other", controllers=["pmm_btc_1"],
                                timestamped=True)
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    assert "/relink/" not in page
    response = admin.post(f"/recovery/bots/lost/relink/{orphan}", follow_redirects=True)
    assert "does not look like lost" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Bot, "lost").instance_name == "lost-000000-20250101-000000"
    assert "relinked" not in events_of("lost")


def test_name_stem_drops_timestamp_legacy_prefix_and_request_tag():
    assert name_stem("pmm-btc-abcdef-20250701-143012") == "pmm-btc"
    assert name_stem("hummingbot-pmm-btc-20250701-143012") == "pmm-btc"
    assert name_stem("pmm-btc") == "pmm-btc"


def test_an_ambiguous_match_is_never_offered():
    one = Bot(id="a", name="pmm", account_identifier="x", strategy="s")
    two = Bot(id="b", name="pmm", account_identifier="x", strategy="s")
    names = ["pmm-20250101-000000", "pmm-20250102-000000"]
    assert pair_up([one], names, {}) == {}  # one definition, two candidates
    assert pair_up([one, two], names[:1], {}) == {}  # two definitions, one candidate
    assert pair_up([one], names[:1], {}) == {"a": (names[0], "same name, account and strategy")}
    assert same_bot(one, names[0], Known(account="y")) is None
    assert same_bot(one, names[0], Known(strategy="other.py")) is None
