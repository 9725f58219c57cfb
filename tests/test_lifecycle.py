"""Deploy, start, stop, stop-and-archive through the pages as an admin, against the simulator:
intent first, one remote call, the outcome on the row and in the history; failures and
ambiguous outcomes; crashes settled by reconcile; concurrent deploys make one remote deploy."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard import lifecycle
from dashboard.models import Bot, BotEvent, db
from dashboard.registry import utcnow
from tests.concurrency import run_together
from tests.conftest import Login

DEPLOY_SCRIPT = "/bot-orchestration/deploy-v2-script"
DEPLOY_CONTROLLERS = "/bot-orchestration/deploy-v2-controllers"
SCRIPT_FORM = {"mode": "script", "image": "hummingbot/hummingbot:latest",
               "script": "simple_pmm.py", "script_config": "simple_pmm_btc.yml"}
CONTROLLERS_FORM = {"mode": "controllers", "image": "hummingbot/hummingbot:latest",
                    "controllers": "pmm_btc_1.yml, grid_eth_1",
                    "max_global_drawdown_quote": "150", "max_controller_drawdown_quote": "50"}


@pytest.fixture
def sim(simulator):
    """The simulator with the test account, warm-up of 5 s and a clock that only moves
    when told to."""
    simulator.state.add_account("client_sharp")
    simulator.configure(warmup_seconds=5, stopping_seconds=3)
    simulator.advance(0)
    return simulator


def sent_requests(app) -> list:
    """What the dashboard's own client really sends (observing its session, no mocks)."""
    seen: list = []
    app.extensions["hummingbot"].client.session.hooks["response"].append(
        lambda response, *a, **k: seen.append(response.request))
    return seen


def events(bot_id: str) -> list[BotEvent]:
    return list(db.session.scalars(
        select(BotEvent).where(BotEvent.bot_id == bot_id).order_by(BotEvent.id)))


def actions(bot_id: str) -> list[str]:
    return [e.action for e in events(bot_id)]


def fresh(bot_id: str) -> Bot:
    db.session.expire_all()
    return db.session.get(Bot, bot_id)


def page_text(response) -> str:
    return response.get_data(as_text=True)


def badge(admin, bot_id: str) -> str:
    html = page_text(admin.get("/bots", headers={"HX-Request": "true"}))
    start = html.index(f'id="bot-{bot_id}"')
    return html[html.index('data-status="', start) + 13:].split('"', 1)[0]


def sim_bots(simulator) -> dict:
    return simulator.state.snapshot()["bots"]


def deploy_requests(simulator) -> int:
    return (simulator.request_count("POST", DEPLOY_SCRIPT)
            + simulator.request_count("POST", DEPLOY_CONTROLLERS))


# ---------------------------------------------------------------------------- deploy
def test_deploy_as_a_script(app, login, make_bot, sim):
    make_bot()
    admin = login.as_admin()
    form = admin.get("/bots/pmm-btc/deploy")
    assert form.status_code == 200 and 'value="script" checked' in page_text(form)

    response = admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM, follow_redirects=True)
    bot = fresh("pmm-btc")
    assert bot.status == "running"
    assert list(sim_bots(sim)) == [bot.instance_name]  # stored = Hummingbot's unique name
    assert bot.instance_name.startswith(f"pmm-btc-{bot.deploy_request_id[:6]}-")
    assert f"Deployed pmm-btc as {bot.instance_name}." in page_text(response)
    assert sim.request_count("POST", DEPLOY_SCRIPT) == 1
    assert bot.deploy_settings["script_config"] == "simple_pmm_btc.yml"
    [run] = sim.state.bot_runs({"bot_name": bot.instance_name}, 10, 0)
    sent = json.loads(run["deployment_config"])
    assert (sent["script"], sent["script_config"], sent["credentials_profile"]) == (
        "simple_pmm.py", "simple_pmm_btc.yml", "client_sharp")

    requested, deployed = events("pmm-btc")[1:]
    assert (requested.action, requested.from_status, requested.to_status) == (
        "deploy_requested", "stopped", "deploying")
    assert requested.details["request_id"] == bot.deploy_request_id
    assert (deployed.action, deployed.to_status) == ("deployed", "running")
    assert deployed.details["instance_name"] == bot.instance_name
    assert "created successfully" in deployed.details["message"]

    assert badge(admin, "pmm-btc") == "stopped_container_up"  # warming up: no MQTT yet
    sim.advance(6)
    assert badge(admin, "pmm-btc") == "running_script"
    detail = page_text(admin.get("/bots/pmm-btc"))
    assert "deploy requested" in detail and "deployed" in detail


def test_deploy_as_controllers(app, login, make_bot, sim):
    make_bot(strategy="v2_with_controllers")
    admin = login.as_admin()
    assert 'value="controllers" checked' in page_text(admin.get("/bots/pmm-btc/deploy"))
    admin.post("/bots/pmm-btc/deploy", data=CONTROLLERS_FORM)
    bot = fresh("pmm-btc")
    assert (bot.status, list(sim_bots(sim))) == ("running", [bot.instance_name])
    assert sim.request_count("POST", DEPLOY_CONTROLLERS) == 1
    [run] = sim.state.bot_runs({"bot_name": bot.instance_name}, 10, 0)
    sent = json.loads(run["deployment_config"])
    assert sent["controllers_config"] == ["pmm_btc_1.yml", "grid_eth_1"]
    assert (sent["max_global_drawdown_quote"], sent["max_controller_drawdown_quote"]) == (150, 50)
    sim.advance(6)
    assert badge(admin, "pmm-btc") == "running"
    detail = page_text(admin.get("/bots/pmm-btc", headers={"HX-Request": "true"}))
    assert "<code>pmm_btc_1</code>" in detail and "<code>grid_eth_1</code>" in detail
    # The deploy form starts from what was used last time.
    again = page_text(admin.get("/bots/pmm-btc/deploy"))
    assert 'value="pmm_btc_1.yml, grid_eth_1"' in again and 'value="150.0"' in again


def test_deploy_form_errors_send_nothing(app, login, make_bot, sim):
    make_bot()
    response = login.as_admin().post("/bots/pmm-btc/deploy", data={
        "mode": "controllers", "controllers": "", "image": "Not An Image!",
        "max_global_drawdown_quote": "-3", "script": "..", "script_config": "a/b.yml"})
    assert response.status_code == 422
    html = page_text(response)
    assert "name at least one controller config" in html and "must be a Docker image" in html
    assert "must be a positive amount" in html
    assert html.count("may contain only letters, digits") == 2
    assert deploy_requests(sim) == 0 and fresh("pmm-btc").status == "stopped"


def test_editing_a_deployed_bot_says_it_applies_at_the_next_deploy(app, login, make_bot, sim):
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    page = page_text(admin.get("/bots/pmm-btc/edit"))
    assert "This bot is running: changes are saved now and apply at its next deploy." in page


# ---------------------------------------------------------------------- start / stop
def test_stop_with_and_without_cancelling_orders_then_start(app, login, make_bot, sim):
    make_bot(strategy="v2_with_controllers")
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=CONTROLLERS_FORM)
    sim.advance(6)
    sent = sent_requests(app)

    confirm = page_text(admin.get("/bots/pmm-btc/stop"))
    assert 'name="cancel_orders" value="1" checked' in confirm
    response = admin.post("/bots/pmm-btc/stop", data={"cancel_orders": "0"},
                          follow_redirects=True)
    assert "Stop sent to pmm-btc." in page_text(response)
    assert fresh("pmm-btc").status == "stopped"
    assert badge(admin, "pmm-btc") == "stopped_container_up"  # V2: empty reports after stop
    assert sim_bots(sim)[fresh("pmm-btc").instance_name]["trading"] is False

    admin.post("/bots/pmm-btc/start")
    assert fresh("pmm-btc").status == "running"
    assert badge(admin, "pmm-btc") == "running"

    admin.post("/bots/pmm-btc/stop", data={"cancel_orders": "1"})
    stops = [json.loads(r.body) for r in sent if r.path_url == "/bot-orchestration/stop-bot"]
    assert [s["skip_order_cancellation"] for s in stops] == [True, False]
    history = [(e.action, e.details.get("cancel_orders")) for e in events("pmm-btc")
               if e.action in ("stopped", "started")]
    assert history == [("stopped", False), ("started", None), ("stopped", True)]


def test_stop_without_the_orders_choice_cancels_them(app, login, make_bot, sim):
    """The server's own default leaves orders open; a POST that does not say must not."""
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    sent = sent_requests(app)
    admin.post("/bots/pmm-btc/stop")
    admin.post("/bots/pmm-btc/stop-archive")
    [stop] = [json.loads(r.body) for r in sent if r.path_url == "/bot-orchestration/stop-bot"]
    [archive] = [r for r in sent if "stop-and-archive-bot" in r.path_url]
    assert stop["skip_order_cancellation"] is False
    assert "skip_order_cancellation=false" in archive.path_url


def test_start_of_a_bot_hummingbot_does_not_know_is_refused_with_the_reason(
        app, login, make_bot, sim):
    bot = make_bot()
    bot.instance_name, bot.status = "pmm-btc-gone-20260101-000000", "stopped"
    db.session.commit()
    response = login.as_admin().post("/bots/pmm-btc/start", follow_redirects=True)
    assert "Hummingbot did not accept it" in page_text(response)
    assert "not found" in page_text(response)
    bot = fresh("pmm-btc")
    assert bot.status == "stopped" and "not found" in bot.last_error
    assert actions("pmm-btc")[-1] == "start_failed"


def test_start_and_stop_need_a_deployed_bot(app, login, make_bot, sim):
    make_bot()
    admin = login.as_admin()
    response = admin.post("/bots/pmm-btc/start", follow_redirects=True)
    assert "has not been deployed yet" in page_text(response)
    assert "Start…" not in page_text(admin.get("/bots/pmm-btc"))


# ---------------------------------------------------------------------- stop and archive
def test_stop_and_archive_then_reconcile_settles_once_hummingbot_dropped_it(
        app, login, make_bot, sim):
    make_bot(strategy="v2_with_controllers")
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=CONTROLLERS_FORM)
    sim.advance(6)
    name = fresh("pmm-btc").instance_name
    sent = sent_requests(app)

    response = admin.post("/bots/pmm-btc/stop-archive", data={"cancel_orders": "1"},
                          follow_redirects=True)
    assert "is stopping; Hummingbot archives it in the background" in page_text(response)
    [archive] = [r for r in sent if "stop-and-archive-bot" in r.path_url]
    assert "skip_order_cancellation=false" in archive.path_url
    assert fresh("pmm-btc").status == "stopping"
    assert badge(admin, "pmm-btc") == "stopping"
    assert actions("pmm-btc")[-2:] == ["archive_requested", "archive_started"]

    # Hummingbot is still stopping and archiving the container: not settled yet.
    assert name in sim_bots(sim)
    lifecycle.reconcile()
    assert fresh("pmm-btc").status == "stopping"

    sim.advance(4)  # the archive ends; the bot is gone from Hummingbot
    assert name not in sim_bots(sim)
    report = lifecycle.reconcile()
    assert report.settled == ["pmm-btc"]
    bot = fresh("pmm-btc")
    assert (bot.status, bot.instance_name) == ("stopped", name)  # the definition stays
    assert actions("pmm-btc")[-1] == "stop_settled"
    assert badge(admin, "pmm-btc") == "stopped"
    [run] = sim.state.bot_runs({"bot_name": name}, 10, 0)
    assert run["deployment_status"] == "ARCHIVED"

    # Later, with Hummingbot down, the list must not claim it was last seen running.
    sim.set_fault("unreachable")
    assert badge(admin, "pmm-btc") == "stopped"


def test_stop_and_archive_of_a_bot_not_in_hummingbot_is_simply_stopped(
        app, login, make_bot, sim):
    bot = make_bot()
    bot.instance_name, bot.status = "pmm-btc-gone-20260101-000000", "running"
    db.session.commit()
    login.as_admin().post("/bots/pmm-btc/stop-archive", data={"cancel_orders": "1"})
    assert fresh("pmm-btc").status == "stopped"
    assert actions("pmm-btc")[-1] == "archive_not_needed"


def test_stop_and_archive_refused_by_an_http_error_leaves_the_bot_as_it_was(
        app, login, make_bot, sim):
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    name = fresh("pmm-btc").instance_name
    sim.set_fault("error500", message="archive failed: disk full",
                  path=f"/bot-orchestration/stop-and-archive-bot/{name}")
    response = admin.post("/bots/pmm-btc/stop-archive", data={"cancel_orders": "1"},
                          follow_redirects=True)
    assert "disk full" in page_text(response)
    bot = fresh("pmm-btc")
    assert bot.status == "running" and "disk full" in bot.last_error
    assert name in sim_bots(sim)
    assert actions("pmm-btc")[-1] == "archive_failed"


# ------------------------------------------------------------------------ failures
def test_deploy_failure_from_docker_is_deploy_failed_with_the_message(app, login, make_bot,
                                                                     sim):
    make_bot()
    sim.set_fault("deploy_failure", message="no space left on device")
    response = login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                     follow_redirects=True)
    bot = fresh("pmm-btc")
    assert bot.status == "deploy_failed"
    assert "no space left on device" in bot.last_error
    assert "Deploy of pmm-btc failed" in page_text(response)
    assert sim_bots(sim) == {} and deploy_requests(sim) == 1
    assert actions("pmm-btc")[-2:] == ["deploy_requested", "deploy_failed"]
    assert "no space left on device" in events("pmm-btc")[-1].details["error"]
    assert badge(login.as_admin(), "pmm-btc") == "deploy_failed"


def test_a_deploy_answered_with_a_name_another_definition_holds_is_deploy_failed(
        app, login, make_bot, sim):
    """Was a 500 (the unique index) with the bot stuck in deploying."""
    make_bot(id="holder", name="holder").instance_name = "holder-20260101-000000"
    make_bot()
    db.session.commit()
    sim.set_fault("deploy_name", message="holder-20260101-000000")
    response = login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                     follow_redirects=True)
    assert response.status_code == 200
    bot = fresh("pmm-btc")
    assert (bot.status, bot.instance_name) == ("deploy_failed", None)
    assert "another definition already holds" in bot.last_error
    assert "Deploy of pmm-btc failed" in page_text(response)
    assert actions("pmm-btc")[-2:] == ["deploy_requested", "deploy_failed"]
    assert events("pmm-btc")[-1].details["instance_name"] == "holder-20260101-000000"
    assert fresh("holder").instance_name == "holder-20260101-000000"


def test_deploy_for_an_unknown_credentials_profile_is_deploy_failed(app, login, make_bot,
                                                                    sim):
    make_bot(account_identifier="client_unknown")
    login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    bot = fresh("pmm-btc")
    assert bot.status == "deploy_failed"
    assert "No such file or directory" in bot.last_error
    assert sim_bots(sim) == {} and deploy_requests(sim) == 1


def test_a_plain_500_is_ambiguous_and_stays_deploying(app, login, make_bot, sim):
    make_bot()
    sim.set_fault("error500", plain=True, path=DEPLOY_SCRIPT)
    response = login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                     follow_redirects=True)
    bot = fresh("pmm-btc")
    assert bot.status == "deploying" and "Outcome unknown" in bot.last_error
    assert "its outcome is not known yet" in page_text(response)
    assert deploy_requests(sim) == 1


def deploy_times_out(app, login, sim, *, created: bool):
    """A deploy whose answer comes after the client gave up."""
    app.extensions["hummingbot"].client.deploy_timeout = 0.3
    sim.set_fault("slow", seconds=30, path=DEPLOY_SCRIPT)
    if not created:
        sim.set_fault("deploy_failure", message="image not found")
    response = login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                     follow_redirects=True)
    bot = fresh("pmm-btc")
    assert bot.status == "deploying"
    assert "Outcome unknown" in bot.last_error and "did not answer" in bot.last_error
    assert "its outcome is not known yet" in page_text(response)
    assert actions("pmm-btc")[-1] == "deploy_outcome_unknown"
    sim.clear_faults()  # the sleeping request wakes and finishes on the simulator
    wait_for(lambda: sim.state.request_counts() and (
        bool(sim_bots(sim)) if created else True))
    return bot


def wait_for(condition, seconds: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_deploy_timeout_then_reconcile_finds_the_bot_hummingbot_created(app, login,
                                                                        make_bot, sim):
    make_bot()
    deploy_times_out(app, login, sim, created=True)
    [live_name] = sim_bots(sim)
    report = lifecycle.reconcile()
    bot = fresh("pmm-btc")
    assert report.settled == ["pmm-btc"]
    assert (bot.status, bot.instance_name, bot.last_error) == ("running", live_name, None)
    assert actions("pmm-btc")[-1] == "deploy_settled"
    assert deploy_requests(sim) == 1  # never retried


def test_deploy_timeout_with_nothing_created_fails_after_the_grace_period(
        app, login, make_bot, sim, monkeypatch):
    monkeypatch.setitem(app.config, "DEPLOY_GRACE_SECONDS", 60)
    make_bot()
    deploy_times_out(app, login, sim, created=False)
    assert lifecycle.reconcile().failed == []  # still within the grace period
    assert fresh("pmm-btc").status == "deploying"

    bot = fresh("pmm-btc")  # move the request back in time instead of waiting
    bot.deploy_requested_at = utcnow() - timedelta(seconds=61)
    db.session.commit()
    assert lifecycle.reconcile().failed == ["pmm-btc"]
    bot = fresh("pmm-btc")
    assert bot.status == "deploy_failed" and "did not appear in Hummingbot" in bot.last_error
    assert sim_bots(sim) == {} and deploy_requests(sim) == 1


# ---------------------------------------------------------------------------- crashes
def test_crash_after_the_call_before_the_outcome_is_settled_by_reconcile(app, make_bot, sim):
    """Run deploy's steps in order and stop after the remote call, as a crash would."""
    make_bot()
    settings = lifecycle.parse_deploy_settings(SCRIPT_FORM)
    bot = lifecycle._locked("pmm-btc")
    bot.status, bot.deploy_request_id = "deploying", "c0ffee" + "0" * 26
    bot.deploy_requested_at = utcnow()
    db.session.commit()
    result = lifecycle._deploy_call(bot, settings,
                                    lifecycle.sent_instance_name(bot, bot.deploy_request_id))
    # -- the process dies here: the outcome is never written --
    assert fresh("pmm-btc").instance_name is None

    report = lifecycle.reconcile()
    bot = fresh("pmm-btc")
    assert report.settled == ["pmm-btc"]
    assert (bot.status, bot.instance_name) == ("running", result.instance_name)
    assert report.orphans == []


def test_crash_recovery_from_a_seeded_tagged_bot(app, make_bot, sim):
    bot = make_bot()
    bot.status, bot.deploy_request_id = "deploying", "abc123" + "f" * 26
    bot.deploy_requested_at = utcnow()
    db.session.commit()
    live_name = sim.seed_bot("pmm-btc-abc123", timestamped=True, account="client_sharp")
    sim.seed_bot("pmm-btc-zzz999", timestamped=True)  # another deploy's bot: not ours
    report = lifecycle.reconcile()
    assert fresh("pmm-btc").instance_name == live_name
    assert [o.name.startswith("pmm-btc-zzz999-") for o in report.orphans] == [True]


# ----------------------------------------------------------------- concurrent deploys
def committed_bot(app, **changes) -> None:
    from dashboard.registry import create_bot
    from tests.conftest import make_bot_data

    with app.app_context():
        bot = create_bot(make_bot_data(), "admin")
        for key, value in changes.items():
            setattr(bot, key, value)
        db.session.commit()


def test_two_admins_deploying_at_once_make_one_remote_deploy(committed_app, accounts, sim):
    committed_bot(committed_app)
    sim.set_fault("slow", seconds=0.3, path=DEPLOY_SCRIPT)

    def deploy(i):
        admin = Login(committed_app.test_client(), accounts).as_admin()
        return page_text(admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                    follow_redirects=True))

    pages = run_together(4, deploy)
    assert deploy_requests(sim) == 1
    assert len(sim_bots(sim)) == 1
    assert sum("Deployed pmm-btc as" in p for p in pages) == 1
    assert sum("already deploying; nothing was sent" in p
               or "is running as" in p for p in pages) == 3
    with committed_app.app_context():
        bot = db.session.get(Bot, "pmm-btc")
        assert (bot.status, bot.instance_name) == ("running", next(iter(sim_bots(sim))))
        assert actions("pmm-btc").count("deploy_requested") == 1


def test_double_redeploy_of_a_missing_bot_makes_one_remote_deploy(committed_app, accounts,
                                                                   sim):
    """The definition says running, Hummingbot does not have it (Missing): deploy checks
    Hummingbot under the row lock, and the lock must hold until the intent is written."""
    sim.seed_bot("someone-else", controllers=["pmm_btc_1"])  # status is never empty
    committed_bot(committed_app, status="running",
                  instance_name="pmm-btc-old000-20260101-000000")
    sim.set_fault("slow", seconds=0.3, path="/bot-orchestration/status")

    def deploy(i):
        admin = Login(committed_app.test_client(), accounts).as_admin()
        return page_text(admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                    follow_redirects=True))

    pages = run_together(2, deploy)
    assert deploy_requests(sim) == 1
    assert sum("Deployed pmm-btc as" in p for p in pages) == 1
    # The other one was refused cleanly (not a lost race ending in an error page).
    assert sum("already deploying; nothing was sent" in p or "is running as" in p
               for p in pages) == 1


def test_redeploy_is_refused_while_the_current_instance_still_runs(app, login, make_bot,
                                                                   sim):
    """Stop leaves the container up; a new deploy would leave it behind as an orphan."""
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    admin.post("/bots/pmm-btc/stop", data={"cancel_orders": "1"})
    name = fresh("pmm-btc").instance_name
    assert fresh("pmm-btc").status == "stopped"

    response = admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM, follow_redirects=True)
    assert f"is running as {name}" in page_text(response)
    assert deploy_requests(sim) == 1 and list(sim_bots(sim)) == [name]
    assert (fresh("pmm-btc").status, fresh("pmm-btc").instance_name) == ("stopped", name)


def test_redeploy_is_refused_while_hummingbot_cannot_be_asked(app, login, make_bot, sim):
    make_bot()
    sim.set_fault("unreachable")
    response = login.as_admin().post("/bots/pmm-btc/deploy", data=SCRIPT_FORM,
                                     follow_redirects=True)
    assert "Hummingbot is unreachable" in page_text(response)
    assert fresh("pmm-btc").status == "stopped"
    assert actions("pmm-btc") == ["created"]


# ------------------------------------------------------------------------- clients
@pytest.mark.parametrize("path", ["deploy", "start", "stop", "stop-archive"])
@pytest.mark.parametrize("bot_id", ["mine", "theirs"])
def test_clients_get_404_on_every_lifecycle_route(app, login, make_bot, sim, path, bot_id):
    make_bot(id="mine", name="mine", account_identifier="client_sharp")
    make_bot(id="theirs", name="theirs", account_identifier="client_other")
    client = login.as_client_a()
    assert client.get(f"/bots/{bot_id}/{path}").status_code == 404
    assert client.post(f"/bots/{bot_id}/{path}", data=SCRIPT_FORM).status_code == 404
    assert deploy_requests(sim) == 0
    assert fresh(bot_id).status == "stopped"


def test_a_stopped_script_bot_does_not_read_running(app, login, make_bot, sim):
    """A plain script bot reports `stopped` + recently_active whether it trades or not; after
    the operator stopped it, the badge must not go on saying Running (script)."""
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    sim.advance(6)
    assert badge(admin, "pmm-btc") == "running_script"
    admin.post("/bots/pmm-btc/stop", data={"cancel_orders": "1"})
    assert badge(admin, "pmm-btc") == "stopped_container_up"
    admin.post("/bots/pmm-btc/start")
    assert badge(admin, "pmm-btc") == "running_script"


# ------------------------------------------- the real Hummingbot API's timing (issue 10, item 6)
def test_a_new_bot_reads_deploying_until_hummingbot_first_lists_it(app, login, make_bot, sim):
    """Hummingbot lists a new container only at its next container poll (about a second):
    meanwhile the page says Deploying, not Missing, and reconcile records nothing."""
    sim.configure(appear_seconds=1.0)
    make_bot()
    admin = login.as_admin()
    response = admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM, follow_redirects=True)
    html = page_text(response)
    bot = fresh("pmm-btc")
    assert f"Deployed pmm-btc as {bot.instance_name}." in html
    assert "Missing" not in html and "badge-deploying" in html
    assert badge(admin, "pmm-btc") == "deploying"
    report = lifecycle.reconcile()
    assert report.missing == []
    assert "went_missing" not in actions("pmm-btc")
    assert fresh("pmm-btc").status == "running"

    sim.advance(1.0)  # the container poll lists it
    assert badge(admin, "pmm-btc") == "stopped_container_up"  # no MQTT yet
    sim.state.exit_bot(bot.instance_name)  # once heard of, its absence is news
    assert badge(admin, "pmm-btc") == "crashed"  # its container exited: not just missing


def test_a_new_bot_never_listed_is_missing_after_the_deploy_grace(app, login, make_bot, sim):
    sim.configure(appear_seconds=600.0)
    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    bot = fresh("pmm-btc")
    bot.deploy_requested_at -= timedelta(seconds=app.config["DEPLOY_GRACE_SECONDS"] + 1)
    db.session.commit()
    assert badge(admin, "pmm-btc") == "deploying"
    assert lifecycle.reconcile().missing == ["pmm-btc"]
    assert actions("pmm-btc")[-1] == "went_missing"
    assert events("pmm-btc")[-1].details["reported_since_deploy"] is False
    assert badge(admin, "pmm-btc") == "missing"
    assert "not heard from since its deploy" in page_text(admin.get("/bots"))


def test_a_script_deploy_needs_a_script_config(app, login, make_bot, sim):
    """Hummingbot passes only script_config to the container: a script deploy without one
    would run nothing, so the form asks for it and keeps what was typed."""
    make_bot()
    response = login.as_admin().post("/bots/pmm-btc/deploy", data={
        **SCRIPT_FORM, "script_config": "  "})
    assert response.status_code == 422
    html = page_text(response)
    assert "Script config is required for a script deploy" in html
    assert 'value="simple_pmm.py"' in html  # the input is kept
    assert deploy_requests(sim) == 0
    assert fresh("pmm-btc").status == "stopped" and actions("pmm-btc") == ["created"]
