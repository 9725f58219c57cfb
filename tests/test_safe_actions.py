"""Safe actions (issue 11, item 4): archiving a bot Hummingbot still runs is refused with the
stop-and-archive path offered instead; an archived bot that still runs needs attention; the
stop confirmation's choices read apart from its way back. Real PostgreSQL, the simulator."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard import lifecycle
from dashboard.models import Bot, BotEvent, db
from dashboard.registry import archive_bot


@pytest.fixture
def sim(simulator):
    simulator.state.add_account("client_sharp")
    simulator.configure(warmup_seconds=0, stopping_seconds=3)
    simulator.advance(0)
    return simulator


@pytest.fixture
def running_bot(make_bot, sim):
    """A definition whose instance Hummingbot runs."""
    bot = make_bot()
    bot.instance_name = sim.seed_bot("pmm-btc-abc123", account="client_sharp",
                                     script="simple_pmm.py", timestamped=True)
    bot.status = "running"
    db.session.commit()
    return bot


def fresh(bot_id: str) -> Bot:
    db.session.expire_all()
    return db.session.get(Bot, bot_id)


def actions(bot_id: str) -> list[str]:
    return list(db.session.scalars(
        sa.select(BotEvent.action).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)))


def test_archive_is_refused_while_hummingbot_runs_the_bot(login, running_bot):
    admin = login.as_admin()
    response = admin.post("/bots/pmm-btc/archive")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert f"still runs in Hummingbot as {running_bot.instance_name}" in page
    # The page is the stop-and-archive confirmation, with archiving the definition ticked.
    assert 'action="/bots/pmm-btc/stop-archive"' in page
    assert 'name="archive_definition" value="1" checked' in page
    bot = fresh("pmm-btc")
    assert (bot.status, bot.archived_at) == ("running", None)
    assert "archived" not in actions("pmm-btc")


def test_archive_is_refused_while_hummingbot_cannot_be_asked(login, running_bot, sim):
    sim.set_fault("unreachable")
    response = login.as_admin().post("/bots/pmm-btc/archive")
    assert response.status_code == 409
    assert "cannot be checked" in response.get_data(as_text=True)
    assert fresh("pmm-btc").archived_at is None


def test_archive_of_a_bot_hummingbot_does_not_run_goes_ahead(login, running_bot, sim):
    sim.state.reset()
    sim.state.add_account("client_sharp")
    assert login.as_admin().post("/bots/pmm-btc/archive").status_code == 302
    assert fresh("pmm-btc").status == "archived"


def test_stop_and_archive_then_the_definition_is_archived_when_the_stop_settles(
        login, running_bot, sim):
    admin = login.as_admin()
    name = running_bot.instance_name
    response = admin.post("/bots/pmm-btc/stop-archive",
                          data={"cancel_orders": "1", "archive_definition": "1"})
    assert response.status_code == 302
    assert fresh("pmm-btc").status == "stopping"  # not archived while Hummingbot stops it

    sim.advance(4)  # the archive ends in Hummingbot
    assert name not in sim.state.snapshot()["bots"]
    assert lifecycle.reconcile().settled == ["pmm-btc"]
    bot = fresh("pmm-btc")
    assert bot.status == "archived" and bot.archived_at is not None
    assert actions("pmm-btc")[-3:] == ["archive_started", "stop_settled", "archived"]


def test_stop_and_archive_without_the_box_keeps_the_definition(login, running_bot, sim):
    login.as_admin().post("/bots/pmm-btc/stop-archive", data={"cancel_orders": "1"})
    sim.advance(4)
    lifecycle.reconcile()
    bot = fresh("pmm-btc")
    assert (bot.status, bot.archived_at) == ("stopped", None)


def test_an_archived_bot_that_still_runs_needs_attention(login, running_bot, sim):
    archive_bot(running_bot, "admin")  # as before this check existed, or by the CLI
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    assert "1 needs attention" in page
    item = page.split('id="archived-running-pmm-btc"')[1].split("</li>")[0]
    assert running_bot.instance_name in item
    assert 'href="/bots/pmm-btc/stop-archive"' in item

    # Stopping it in Hummingbot leaves the definition archived and clears the attention.
    assert admin.post("/bots/pmm-btc/stop-archive", data={"cancel_orders": "1"}) \
        .status_code == 302
    assert fresh("pmm-btc").status == "archived"
    sim.advance(4)
    page = admin.get("/recovery").get_data(as_text=True)
    assert "0 need attention" in page and "archived-running-pmm-btc" not in page


def test_stop_confirmation_does_not_label_an_order_choice_like_the_way_back(login,
                                                                            running_bot):
    page = login.as_admin().get("/bots/pmm-btc/stop").get_data(as_text=True)
    radios = page.split("<fieldset>")[1].split("</fieldset>")[0]
    assert "Cancel" not in radios
    assert "Withdraw them from the exchange" in radios
    assert ">Back, change nothing</a>" in page


def test_the_detail_page_keeps_stop_and_archive_in_a_menu_of_their_own(login, running_bot):
    """Deploy, Start and Edit are one click; whatever stops or removes the bot is one click
    further, in the menu, so it is never hit by accident beside Edit."""
    page = login.as_admin().get("/bots/pmm-btc").get_data(as_text=True)
    start = page.index('<div class="page-head">')
    head = page[start:page.index("</div>", page.index("</details>", start))]  # its actions
    menu_start = head.index('<details class="dropdown danger-menu">')
    menu = head[menu_start:head.index("</details>", menu_start)]
    outside = head.replace(menu, "")
    destructive = ('/bots/pmm-btc/stop"', '/bots/pmm-btc/stop-archive"', '/bots/pmm-btc/archive"')
    assert all(target in menu for target in destructive)
    assert not any(target in outside for target in destructive)
    assert all(f'/bots/pmm-btc/{action}"' in outside for action in ("deploy", "start", "edit"))
