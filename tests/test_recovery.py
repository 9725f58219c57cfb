"""The recovery desk: orphans (adopt), missing (redeploy, mark stopped), stuck (settle now),
archived (restore), recreate by hand; on real PostgreSQL and the real simulator."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from dashboard.models import Bot, BotEvent, db
from dashboard.recovery import base_name
from dashboard.registry import archive_bot, utcnow
from tests.conftest import make_bot_data

GRID_CONFIG = {"controller_name": "grid_strike", "trading_pair": "ETH-USDT"}


class FormReader(HTMLParser):
    """The values a browser would submit from one <form id=...>: inputs and textareas."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.values = form_id, False, {}
        self.found, self._textarea = False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = self.found = True
        elif self.inside and tag == "input" and attrs.get("name") \
                and attrs.get("type") not in ("checkbox", "radio", "file"):
            self.values[attrs["name"]] = attrs.get("value") or ""
        elif self.inside and tag == "textarea":
            self._textarea = attrs["name"]
            self.values[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def form_values(page: str, form_id: str) -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(page)
    assert reader.found, f"no form #{form_id} on the page"
    return reader.values


def events_of(bot_id: str) -> list[BotEvent]:
    query = sa.select(BotEvent).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)
    return list(db.session.scalars(query))


def count_bots() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Bot))


def flashes(response) -> str:
    page = response.get_data(as_text=True)
    return " ".join(re.findall(r'class="flash[^"]*"[^>]*>([^<]*)<', page))


@pytest.fixture
def sharp_orphan(simulator) -> str:
    """The incident: a bot running for client_sharp, deployed earlier, with no definition."""
    return simulator.seed_bot("sharp-grid", account="client_sharp", controllers=["grid_eth_1"],
                              timestamped=True)


def adopt_form_of(client, instance_name: str) -> dict[str, str]:
    page = client.get("/recovery").get_data(as_text=True)
    return form_values(page, f"adopt-form-{instance_name}")


# ------------------------------------------------------------------------------ the incident
def test_the_incident_end_to_end_adopt_then_the_client_sees_it_running(login, sharp_orphan):
    admin = login.as_admin()
    page = admin.get("/recovery")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'id="orphan-{sharp_orphan}"' in html
    values = form_values(html, f"adopt-form-{sharp_orphan}")
    # Prefilled from bot-runs (account, strategy) and the live controller config.
    assert values["id"] == values["name"] == "sharp-grid"
    assert values["account_identifier"] == "client_sharp"
    assert values["strategy"] == "v2_with_controllers"
    assert (values["connector"], values["pair"]) == ("binance", "ETH-USDT")
    config = json.loads(values["config"])
    assert config["controllers"][0]["id"] == "grid_eth_1"
    assert config["controllers"][0]["controller_name"] == "grid_strike"

    response = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=values)
    assert response.status_code == 302
    assert response.headers["Location"] == "/bots/sharp-grid"
    bot = db.session.get(Bot, "sharp-grid")
    assert (bot.instance_name, bot.status, bot.account_identifier) == (
        sharp_orphan, "running", "client_sharp")
    assert bot.deploy_settings["mode"] == "controllers"
    assert bot.deploy_settings["controllers"] == ["grid_eth_1"]
    [event] = events_of("sharp-grid")
    assert (event.action, event.actor, event.to_status) == ("adopted", "admin", "running")
    assert event.details["instance_name"] == sharp_orphan
    assert event.details["deployment_config"]["credentials_profile"] == "client_sharp"
    assert f'id="orphan-{sharp_orphan}"' not in admin.get("/recovery").get_data(as_text=True)

    client = login.as_client_a()
    listing = client.get("/bots").get_data(as_text=True)
    assert 'id="bot-sharp-grid"' in listing
    row = listing.split('id="bot-sharp-grid"')[1].split("</tr>")[0]
    assert 'class="badge badge-running">Running<' in row
    detail = client.get("/bots/sharp-grid").get_data(as_text=True)
    assert "grid_strike" in detail and "ETH-USDT" in detail


# --------------------------------------------------------------------------------- orphans
def test_base_name_drops_the_timestamp_and_the_legacy_prefix():
    assert base_name("pmm-btc-20250701-143012") == "pmm-btc"
    assert base_name("hummingbot-pmm-btc") == "pmm-btc"
    assert base_name("pmm-btc") == "pmm-btc"
    assert base_name("x" * 70 + "-20250701-143012") == "x" * 48


def test_double_adoption_stores_one_definition(login, sharp_orphan):
    admin = login.as_admin()
    values = adopt_form_of(admin, sharp_orphan)
    first = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=values)
    second = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt",
                        data={**values, "id": "sharp-grid-again", "name": "sharp-grid-again"})
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == "/bots/sharp-grid"
    assert count_bots() == 1
    assert [e.action for e in events_of("sharp-grid")] == ["adopted"]
    followed = admin.get("/bots/sharp-grid")
    assert "already belongs to the definition sharp-grid" in flashes(followed)


def test_adopting_a_bot_that_vanished_stores_nothing(login, simulator, sharp_orphan):
    admin = login.as_admin()
    values = adopt_form_of(admin, sharp_orphan)
    simulator.state.exit_bot(sharp_orphan)  # gone between page load and save
    response = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=values)
    assert response.status_code == 302 and response.headers["Location"] == "/recovery"
    message = flashes(admin.get("/recovery"))
    assert f"{sharp_orphan} is no longer running in Hummingbot" in message
    assert "Nothing was saved." in message
    assert count_bots() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent)) == 0


def test_adoption_rereads_hummingbot_instead_of_trusting_the_form(login, sharp_orphan):
    admin = login.as_admin()
    values = adopt_form_of(admin, sharp_orphan)
    forged = {**values, "account_identifier": "client_other", "status": "stopped",
              "instance_name": "something-else", "deploy_settings": '{"mode": "script"}'}
    response = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=forged)
    assert response.status_code == 422
    assert "Account must be client_sharp" in response.get_data(as_text=True)
    assert count_bots() == 0

    # Extra fields are ignored: status, instance name and deploy settings come from Hummingbot.
    forged["account_identifier"] = "client_sharp"
    assert admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=forged).status_code == 302
    bot = db.session.get(Bot, "sharp-grid")
    assert (bot.status, bot.instance_name) == ("running", sharp_orphan)
    assert bot.deploy_settings["mode"] == "controllers"


def test_adopt_form_errors_keep_the_input_and_store_nothing(login, sharp_orphan):
    admin = login.as_admin()
    values = {**adopt_form_of(admin, sharp_orphan), "pair": "ethusdt!", "config": '{"a": }'}
    response = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt", data=values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Pair may contain only BASE-QUOTE" in page
    assert "Configuration is not valid JSON" in page
    assert form_values(page, f"adopt-form-{sharp_orphan}")["config"] == '{"a": }'
    assert count_bots() == 0


def test_adopt_refuses_an_id_or_name_already_in_use(login, make_bot, sharp_orphan):
    make_bot(id="sharp-grid", name="sharp-grid")
    admin = login.as_admin()
    values = adopt_form_of(admin, sharp_orphan)
    assert values["id"] == values["name"] == "sharp-grid-2"  # a free one is suggested
    response = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt",
                          data={**values, "id": "sharp-grid", "name": "SHARP-GRID"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Id is already used" in page and "Name is already used" in page
    assert count_bots() == 1


def test_legacy_orphan_without_a_bot_run_asks_for_the_account(login, simulator):
    live = simulator.seed_bot("old-twap", legacy=True, script="twap.py")
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    values = form_values(page, f"adopt-form-{live}")
    assert values["name"] == "old-twap" and values["account_identifier"] == ""
    assert "no bot-run for it" in page
    response = admin.post(f"/recovery/orphans/{live}/adopt", data={
        **values, "account_identifier": "master_account", "strategy": "twap",
        "connector": "binance", "pair": "BTC-USDT"})
    assert response.status_code == 302
    bot = db.session.get(Bot, "old-twap")
    assert (bot.instance_name, bot.deploy_settings) == (live, {})


def test_bots_with_a_definition_are_not_orphans(login, simulator, make_bot):
    make_bot(id="legacy", name="legacy")  # matched by its plain name's hummingbot- form
    simulator.seed_bot("legacy", legacy=True, script="x.py")
    archived = make_bot(id="gone", name="gone")
    archived.instance_name = simulator.seed_bot("gone", timestamped=True, script="y.py")
    archive_bot(archived, "admin")
    page = login.as_admin().get("/recovery").get_data(as_text=True)
    assert 'id="orphan-' not in page
    assert "None: every bot Hummingbot runs has a definition." in page
    # The archived one is still running: the Archived section says so.
    assert f"Still running in Hummingbot as <code>{archived.instance_name}</code>" in page


def test_adopt_form_page_and_its_fragment(login, simulator, sharp_orphan):
    admin = login.as_admin()
    page = admin.get(f"/recovery/orphans/{sharp_orphan}").get_data(as_text=True)
    assert "<html" in page and f'id="adopt-{sharp_orphan}"' in page
    fragment = admin.get(f"/recovery/orphans/{sharp_orphan}", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert form_values(fragment.get_data(as_text=True),
                       f"adopt-form-{sharp_orphan}")["account_identifier"] == "client_sharp"
    simulator.state.exit_bot(sharp_orphan)
    gone = admin.get(f"/recovery/orphans/{sharp_orphan}", headers={"HX-Request": "true"})
    assert gone.status_code == 200 and "not running in Hummingbot" in gone.get_data(as_text=True)
    assert admin.get(f"/recovery/orphans/{sharp_orphan}").headers["Location"] == "/recovery"
    assert admin.get("/recovery/orphans/bad%20name!").status_code == 404


def test_polls_return_the_sections_without_asking_bot_runs(login, simulator, sharp_orphan):
    admin = login.as_admin()
    simulator.reset_counts()
    full = admin.get("/recovery").get_data(as_text=True)
    assert simulator.request_count("GET", "/bot-orchestration/bot-runs") == 1
    simulator.reset_counts()
    poll = admin.get("/recovery", headers={"HX-Request": "true"})
    assert poll.headers["Vary"] == "HX-Request" or "HX-Request" in poll.headers["Vary"]
    fragment = poll.get_data(as_text=True)
    assert "<html" not in fragment and 'id="orphans"' in fragment and "<html" in full
    assert simulator.request_count("GET", "/bot-orchestration/bot-runs") == 0
    assert simulator.request_count("GET", "/bot-orchestration/status") == 1
    # The form on the page is kept by the poll (hx-preserve); a new one loads on demand.
    placeholder = re.search(rf'<div id="adopt-{sharp_orphan}"[^>]*>', fragment).group(0)
    assert 'hx-preserve="true"' in placeholder
    assert f'hx-get="/recovery/orphans/{sharp_orphan}"' in placeholder
    assert f'<div id="adopt-{sharp_orphan}" hx-preserve="true">' in full


def test_hummingbot_unreachable_the_page_still_lists_what_the_table_knows(
        login, simulator, make_bot, sharp_orphan):
    make_bot(id="old", name="old")
    archive_bot(db.session.get(Bot, "old"), "admin")
    simulator.set_fault("unreachable")
    admin = login.as_admin()
    response = admin.get("/recovery")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Hummingbot is unreachable." in page
    # orphans, missing, back after an archive
    assert page.count("Not known while Hummingbot is unreachable.") == 3
    assert 'id="archived-old"' in page
    adopt = admin.post(f"/recovery/orphans/{sharp_orphan}/adopt",
                       data=make_bot_data(id="x", name="x"))
    assert adopt.status_code == 302
    assert "nothing was saved" in flashes(admin.get("/recovery"))
    assert count_bots() == 1


# --------------------------------------------------------------------------------- missing
@pytest.fixture
def missing_bot(make_bot, simulator):
    """A definition that says running; Hummingbot runs nothing under its instance name."""
    simulator.state.add_account("client_sharp")
    bot = make_bot(id="lost", name="lost")
    bot.status, bot.instance_name = "running", "lost-abc123-20250101-000000"
    bot.deploy_settings = {"mode": "script", "image": "hummingbot/hummingbot:latest",
                           "script": "simple_pmm.py", "script_config": "simple_pmm_1.yml",
                           "controllers": [],
                           "max_global_drawdown_quote": None,
                           "max_controller_drawdown_quote": None}
    db.session.commit()
    return bot


REDEPLOY_FORM = {"mode": "script", "image": "hummingbot/hummingbot:latest",
                 "script": "simple_pmm.py", "script_config": "simple_pmm_btc.yml"}


def test_missing_bot_is_listed_and_redeployed_after_the_deploy_confirmation(
        login, simulator, missing_bot):
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    section = page.split('id="missing"')[1].split("</section>")[0]
    assert 'id="missing-lost"' in section and 'href="/recovery/bots/lost/redeploy"' in section
    assert "Missing (needs attention)" in section

    # The button opens the deploy form's confirmation, filled in from the stored settings;
    # nothing is sent until it is confirmed.
    simulator.reset_counts()
    confirm = admin.get("/recovery/bots/lost/redeploy")
    assert confirm.status_code == 200
    form = confirm.get_data(as_text=True)
    assert "<h1>Redeploy lost</h1>" in form
    assert 'action="/recovery/bots/lost/redeploy"' in form
    assert 'name="script" value="simple_pmm.py"' in form
    assert 'href="/recovery"' in form  # the way back goes to the desk
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0
    assert db.session.get(Bot, "lost").status == "running"

    response = admin.post("/recovery/bots/lost/redeploy", data=REDEPLOY_FORM)
    assert response.status_code == 302 and response.headers["Location"] == "/recovery"
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 1
    db.session.refresh(missing_bot)
    assert missing_bot.status == "running"
    assert missing_bot.instance_name.startswith("lost-")
    assert missing_bot.instance_name in simulator.state.all_status()
    actions = [(e.action, e.actor) for e in events_of("lost")]
    assert ("deploy_requested", "admin") in actions and ("deployed", "admin") in actions
    assert "Redeployed lost as" in flashes(admin.get("/recovery"))
    assert 'id="missing-lost"' not in admin.get("/recovery").get_data(as_text=True)

    # A second confirmation is refused by the lifecycle: it runs now.
    simulator.reset_counts()
    admin.post("/recovery/bots/lost/redeploy", data=REDEPLOY_FORM)
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0
    assert f"lost is running as {missing_bot.instance_name}" in flashes(admin.get("/recovery"))


def test_redeploy_confirmation_with_a_bad_field_sends_nothing(login, missing_bot, simulator):
    simulator.reset_counts()
    response = login.as_admin().post("/recovery/bots/lost/redeploy",
                                     data={**REDEPLOY_FORM, "script": "../etc/passwd"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="../etc/passwd"' in page and "Script may contain only" in page
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0
    assert db.session.get(Bot, "lost").instance_name == "lost-abc123-20250101-000000"


def test_redeploy_without_stored_settings_shows_the_empty_deploy_form(login, missing_bot,
                                                                      simulator):
    missing_bot.deploy_settings = {}
    db.session.commit()
    simulator.reset_counts()
    page = login.as_admin().get("/recovery/bots/lost/redeploy").get_data(as_text=True)
    assert 'name="script" value=""' in page
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0
    assert db.session.get(Bot, "lost").status == "running"


def test_redeploy_with_invalid_stored_settings_says_so_on_the_form(login, missing_bot,
                                                                   simulator):
    missing_bot.deploy_settings = {**missing_bot.deploy_settings, "script": "../etc/passwd"}
    db.session.commit()
    simulator.reset_counts()
    page = login.as_admin().get("/recovery/bots/lost/redeploy").get_data(as_text=True)
    assert "deploy settings stored for this bot are not valid" in page
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0


def test_mark_stopped_after_checking_hummingbot_again(login, simulator, missing_bot):
    admin = login.as_admin()
    simulator.seed_bot(missing_bot.instance_name, script="simple_pmm.py")  # it came back
    admin.post("/recovery/bots/lost/mark-stopped")
    assert "is running in Hummingbot again" in flashes(admin.get("/recovery"))
    assert db.session.get(Bot, "lost").status == "running"

    simulator.state.exit_bot(missing_bot.instance_name)
    assert admin.post("/recovery/bots/lost/mark-stopped").status_code == 302
    assert db.session.get(Bot, "lost").status == "stopped"
    event = events_of("lost")[-1]
    assert (event.action, event.actor, event.from_status, event.to_status) == (
        "marked_stopped", "admin", "running", "stopped")
    admin.post("/recovery/bots/lost/mark-stopped")
    assert "not missing; nothing was changed" in flashes(admin.get("/recovery"))


# ----------------------------------------------------------------------------------- stuck
def make_stuck(bot: Bot, status: str, minutes_ago: int = 60) -> None:
    past = utcnow() - timedelta(minutes=minutes_ago)
    bot.status = status
    if status == "deploying":
        bot.deploy_request_id, bot.deploy_requested_at = "abc123" + "0" * 26, past
    else:
        db.session.add(BotEvent(bot_id=bot.id, actor="admin", action="archive_requested",
                                from_status="running", to_status="stopping",
                                details={}, occurred_at=past))
    db.session.commit()


def test_stuck_deploy_is_settled_as_failed_when_nothing_came_up(login, make_bot, simulator):
    make_stuck(make_bot(id="slow", name="slow"), "deploying")
    make_stuck(make_bot(id="fresh", name="fresh"), "deploying", minutes_ago=0)
    admin = login.as_admin()
    page = admin.get("/recovery").get_data(as_text=True)
    section = page.split('id="stuck"')[1].split("</section>")[0]
    assert 'id="stuck-slow"' in section and "Settle now" in section
    assert 'id="stuck-fresh"' not in section  # still within its grace period
    assert "1 h ago" in section

    assert admin.post("/recovery/bots/slow/settle").status_code == 302
    bot = db.session.get(Bot, "slow")
    assert bot.status == "deploy_failed"
    assert ("deploy_failed", "admin") in [(e.action, e.actor) for e in events_of("slow")]
    assert "slow settled: deploying → deploy_failed" in flashes(admin.get("/recovery"))


def test_stuck_deploy_that_did_come_up_settles_as_running(login, make_bot, simulator):
    bot = make_bot(id="late", name="late")
    make_stuck(bot, "deploying")
    live = simulator.seed_bot("late-abc123-20250101-000000", script="simple_pmm.py")
    admin = login.as_admin()
    row = admin.get("/recovery").get_data(as_text=True).split('id="stuck-late"')[1] \
        .split("</tr>")[0]
    assert f"as <code>{live}</code>" in row  # what Hummingbot reports, beside the row
    admin.post("/recovery/bots/late/settle")
    db.session.refresh(bot)
    assert (bot.status, bot.instance_name) == ("running", live)
    assert events_of("late")[-1].action == "deploy_settled"


def test_stuck_stop_still_live_says_what_hummingbot_reports(login, make_bot, simulator):
    bot = make_bot(id="sticky", name="sticky")
    bot.instance_name = simulator.seed_bot("sticky", timestamped=True, controllers=["pmm_btc_1"])
    make_stuck(bot, "stopping")
    admin = login.as_admin()
    admin.post("/recovery/bots/sticky/settle")
    message = flashes(admin.get("/recovery"))
    assert f"sticky is still stopping: Hummingbot reports it as {bot.instance_name}" in message
    event = events_of("sticky")[-1]
    assert (event.action, event.actor, event.details["hummingbot"]) == (
        "settle_checked", "admin", "running")

    simulator.state.exit_bot(bot.instance_name)
    admin.post("/recovery/bots/sticky/settle")
    assert db.session.get(Bot, "sticky").status == "stopped"
    assert events_of("sticky")[-1].action == "stop_settled"
    admin.post("/recovery/bots/sticky/settle")
    assert "nothing to settle" in flashes(admin.get("/recovery"))


def test_settle_does_nothing_while_hummingbot_is_unreachable(login, make_bot, simulator):
    make_stuck(make_bot(id="slow", name="slow"), "deploying")
    simulator.set_fault("unreachable")
    admin = login.as_admin()
    admin.post("/recovery/bots/slow/settle")
    assert "Nothing was settled" in flashes(admin.get("/recovery"))
    assert db.session.get(Bot, "slow").status == "deploying"


# -------------------------------------------------------------------------------- archived
def test_archived_bots_are_listed_and_restored(login, make_bot, simulator):
    archive_bot(make_bot(id="old", name="old"), "admin")
    admin = login.as_admin()
    section = admin.get("/recovery").get_data(as_text=True).split('id="archived"')[1]
    assert 'id="archived-old"' in section and ">Restore<" in section
    assert admin.post("/recovery/bots/old/restore").headers["Location"] == "/recovery"
    bot = db.session.get(Bot, "old")
    assert (bot.status, bot.archived_at) == ("stopped", None)
    assert (events_of("old")[-1].action, events_of("old")[-1].actor) == ("restored", "admin")


def test_restore_refused_when_the_name_is_in_use(login, make_bot, simulator):
    archive_bot(make_bot(id="old", name="old"), "admin")
    make_bot(id="old-2", name="old")
    admin = login.as_admin()
    admin.post("/recovery/bots/old/restore")
    assert "Another active bot is named old" in flashes(admin.get("/recovery"))
    assert db.session.get(Bot, "old").archived_at is not None


# -------------------------------------------------------------------------------- recreate
def test_recreate_by_hand_saves_without_deploying(login, simulator):
    admin = login.as_admin()
    form = admin.get("/recovery/recreate").get_data(as_text=True)
    assert '<option value="master_account">' in form  # Hummingbot's accounts suggested
    simulator.reset_counts()
    response = admin.post("/recovery/recreate", data=make_bot_data(id="sharp-pmm",
                                                                  name="sharp-pmm"))
    assert response.headers["Location"] == "/bots/sharp-pmm"
    bot = db.session.get(Bot, "sharp-pmm")
    assert (bot.status, bot.account_identifier, bot.instance_name) == (
        "stopped", "client_sharp", None)
    assert [(e.action, e.actor) for e in events_of("sharp-pmm")] == [("created", "admin")]
    assert simulator.request_count("POST", "/bot-orchestration/deploy-v2-script") == 0


def test_recreate_then_deploy_opens_the_deploy_form(login, simulator):
    response = login.as_admin().post("/recovery/recreate", data={
        **make_bot_data(id="sharp-pmm", name="sharp-pmm"), "then_deploy": "1"})
    assert response.headers["Location"] == "/bots/sharp-pmm/deploy"
    assert db.session.get(Bot, "sharp-pmm").status == "stopped"  # not deployed yet


def test_recreate_errors_keep_the_input(login, simulator):
    response = login.as_admin().post("/recovery/recreate", data={
        **make_bot_data(pair="nope"), "then_deploy": "1"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Pair may contain only BASE-QUOTE" in page and 'value="nope"' in page
    assert 'name="then_deploy" value="1" checked' in page
    assert count_bots() == 0


# ---------------------------------------------------------------------------------- access
RECOVERY_ROUTES = [
    ("GET", "/recovery"), ("GET", "/recovery/orphans/{orphan}"),
    ("POST", "/recovery/orphans/{orphan}/adopt"), ("GET", "/recovery/bots/{bot}/redeploy"),
    ("POST", "/recovery/bots/{bot}/redeploy"), ("POST", "/recovery/bots/{bot}/relink/{orphan}"),
    ("POST", "/recovery/bots/{bot}/mark-stopped"), ("POST", "/recovery/bots/{bot}/settle"),
    ("POST", "/recovery/bots/{bot}/restore"), ("GET", "/recovery/recreate"),
    ("POST", "/recovery/recreate"), ("GET", "/recovery/import"), ("POST", "/recovery/import"),
    ("POST", "/recovery/import/confirm"),
]


def test_every_recovery_route_is_listed_here(app):
    listed = {path.split("{")[0] for _, path in RECOVERY_ROUTES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("recovery."):
            assert rule.rule.split("<")[0] in listed, rule.rule


@pytest.mark.parametrize(("method", "path"), RECOVERY_ROUTES)
def test_clients_get_404_on_every_recovery_route(login, make_bot, sharp_orphan, method, path):
    bot = make_bot(id="sharp-bot", name="sharp-bot")  # the client's own bot
    bot.status = "running"
    db.session.commit()
    url = path.format(orphan=sharp_orphan, bot="sharp-bot")
    client = login.as_client_a()
    data = make_bot_data(id="hijack", name="hijack")
    response = client.get(url) if method == "GET" else client.post(url, data=data)
    assert response.status_code == 404
    assert sharp_orphan not in response.get_data(as_text=True)
    assert count_bots() == 1 and db.session.get(Bot, "sharp-bot").status == "running"
    assert 'href="/recovery"' not in client.get("/bots").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client):
    response = client.get("/recovery")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.post("/recovery/recreate").status_code == 302


def test_admin_nav_links_to_the_recovery_desk(login):
    assert 'href="/recovery"' in login.as_admin().get("/bots").get_data(as_text=True)


def test_adopting_a_script_bot_marks_connector_and_pair_required_before_submit(login,
                                                                              simulator):
    """A script bot reports no market, so nothing prefills them: the browser must refuse an
    empty submit and the form says why."""
    orphan = simulator.seed_bot("sharp-twap", account="client_sharp", script="twap.py",
                                timestamped=True)
    page = login.as_admin().get(f"/recovery/orphans/{orphan}").get_data(as_text=True)
    for name in ("connector", "pair"):
        tag = re.search(rf'<input type="text" name="{name}"[^>]*>', page).group(0)
        assert 'value=""' in tag and " required" in tag
    assert page.count("(required)") == 2
    assert "Hummingbot does not report it for a script bot" in page
