"""Pages and API with Hummingbot's live status merged in, against the simulator: every fault
still gives a 200 with every row, greyed, under a banner; live bots show their badge,
performance and logs; clients see live status only for their own bots."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from dashboard.models import db
from dashboard.registry import utcnow

HX = {"HX-Request": "true"}


def deployed(make_bot, simulator, bot_id, *, account="client_sharp", **seed):
    """A definition whose stored instance name is a live simulator bot."""
    seed.setdefault("controllers", ["pmm_btc_1"])
    name = simulator.seed_bot(bot_id, account=account, timestamped=True, **seed)
    bot = make_bot(id=bot_id, name=bot_id, account_identifier=account)
    bot.instance_name, bot.status = name, "running"
    db.session.commit()
    return bot


def badge_of(html: str, bot_id: str) -> str:
    """The badge element of one row, as HTML."""
    row = re.search(rf'<tr id="bot-{re.escape(bot_id)}".*?</tr>', html, re.S)
    assert row, f"no row for {bot_id}"
    badge = (r'<span class="badge[^"]*"[^>]*>(?:<span class="visually-hidden">[^<]*</span>)?'
             r'[^<]*</span>(?:\s*<small[^>]*>[^<]*</small>)?')
    return re.search(badge, row.group(0), re.S).group(0)


# ------------------------------------------------------------------ live status shown
def test_list_shows_running_for_a_live_bot_matched_by_instance_name(login, make_bot,
                                                                     simulator):
    deployed(make_bot, simulator, "pmm-btc")
    make_bot(id="idle-one", name="idle-one")
    page = login.as_admin().get("/bots").get_data(as_text=True)
    assert 'class="badge badge-running"' in badge_of(page, "pmm-btc")
    assert ">Running</span>" in badge_of(page, "pmm-btc")
    assert ">Stopped</span>" in badge_of(page, "idle-one")
    assert "Hummingbot is unreachable" not in page
    assert "status as of" in page


def test_legacy_bot_matches_its_prefixed_name(login, make_bot, simulator):
    simulator.seed_bot("old-bot", script="simple_pmm.py", legacy=True)
    make_bot(id="old-bot", name="old-bot")
    page = login.as_admin().get("/bots").get_data(as_text=True)
    assert "Running (script)" in badge_of(page, "old-bot")


def test_fragment_has_vary_and_as_of_time(login, make_bot, simulator):
    make_bot()
    admin = login.as_admin()
    fragment = admin.get("/bots", headers=HX)
    assert fragment.status_code == 200
    assert "HX-Request" in fragment.headers["Vary"]
    body = fragment.get_data(as_text=True)
    assert not body.lstrip().startswith("<!doctype")
    assert re.search(r'status as of <time class="as-of" datetime="[^"]+Z">\d\d:\d\d:\d\d UTC',
                     body)
    assert "HX-Request" in admin.get("/bots").headers["Vary"]
    assert "HX-Request" in admin.get("/bots/pmm-btc", headers=HX).headers["Vary"]


def test_expired_session_poll_gets_hx_redirect_not_302(client, make_bot):
    make_bot()
    response = client.get("/bots", headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login")


# ----------------------------------------------------------------------- every fault
FAULTS = [
    ("unreachable", {}),
    ("slow", {"seconds": 5}),
    ("error500", {}),
    ("error500", {"plain": True}),
    ("malformed_json", {}),
    ("wrong_shape", {}),
]


@pytest.mark.parametrize(("fault", "options"), FAULTS,
                         ids=[f"{f}{'-plain' if o.get('plain') else ''}" for f, o in FAULTS])
def test_every_fault_gives_200_with_stale_rows_and_the_banner(login, make_bot, simulator,
                                                              reconfigure, fault, options):
    reconfigure(HUMMINGBOT_READ_TIMEOUT=0.2, HUMMINGBOT_BREAKER_THRESHOLD=1)
    seen_at = utcnow() - timedelta(minutes=4, seconds=5)
    running = make_bot(id="was-running", name="was-running")
    running.status, running.instance_name = "running", "was-running-20261127-100000"
    running.last_seen_status, running.last_seen_at = "running", seen_at
    stopped = make_bot(id="never-seen", name="never-seen")
    db.session.commit()
    simulator.set_fault(fault, **options)

    for who in ("admin", "client"):
        browser = login.as_admin() if who == "admin" else login.as_client_a()
        response = browser.get("/bots", headers=HX)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        # "Hummingbot is unreachable." or, for an answer it cannot use, "... or answering
        # with errors."
        # A timeout is not an outage: the banner says Hummingbot is slow.
        assert ("Hummingbot is unreachable" in html) == (fault != "slow")
        assert ("Hummingbot is slow / timing out" in html) == (fault == "slow")
        assert ("answering with errors" in html) == (fault not in ("unreachable", "slow"))
        assert "rejected the dashboard" not in html
        was = badge_of(html, "was-running")
        assert 'class="badge badge-running stale"' in was
        assert "Last seen: </span>Running</span>" in was
        assert "seen 4 min ago" in was
        never = badge_of(html, stopped.id)
        assert "stale" in never and ">Stopped</span>" in never and "never seen" in never
        assert "Hummingbot last tried at" in html  # not "status as of": the rows are old
    assert login.as_admin().get("/bots/was-running").status_code == 200
    assert login.as_admin().get("/bots/was-running", headers=HX).status_code == 200


def test_rejected_credentials_have_their_own_banner_for_admins_only(login, make_bot,
                                                                    simulator):
    make_bot()
    simulator.set_fault("unauthorized")
    admin = login.as_admin().get("/bots", headers=HX)
    html = admin.get_data(as_text=True)
    assert admin.status_code == 200
    assert "Hummingbot rejected the dashboard's credentials." in html
    assert "HUMMINGBOT_API_USERNAME" in html
    assert "Hummingbot is unreachable.</strong>" not in html

    client = login.as_client_a().get("/bots", headers=HX)
    html = client.get_data(as_text=True)
    assert client.status_code == 200
    assert "Hummingbot is unreachable." in html
    assert "credentials" not in html and "HUMMINGBOT_API" not in html
    assert "pmm-btc" in html


def test_clients_do_not_see_the_error_details(login, make_bot, simulator):
    make_bot()
    simulator.set_fault("error500", message="secret internal detail")
    assert "secret internal detail" not in login.as_client_a().get("/bots").get_data(
        as_text=True)
    assert "secret internal detail" in login.as_admin().get("/bots").get_data(as_text=True)


# ------------------------------------------------------------------------------- API
def test_api_items_have_display_status_and_live(login, make_bot, simulator):
    deployed(make_bot, simulator, "pmm-btc")
    make_bot(id="plain", name="plain")
    body = login.as_admin().get("/api/bots").get_json()
    items = {item["id"]: item for item in body["bots"]}
    assert body["hummingbot"] == {"reachable": True, "error": None}
    assert items["pmm-btc"]["display_status"] == "running"
    assert items["pmm-btc"]["status_is_stale"] is False
    assert items["pmm-btc"]["live"]["status"] == "running"
    assert "pmm_btc_1" in items["pmm-btc"]["live"]["performance"]
    assert (items["plain"]["display_status"], items["plain"]["live"]) == ("stopped", None)
    one = login.as_admin().get("/api/bots/pmm-btc").get_json()
    assert one["display_status"] == "running" and one["live"]["status"] == "running"


def test_api_while_unreachable_says_so_and_serves_last_seen(login, make_bot, simulator):
    bot = deployed(make_bot, simulator, "pmm-btc")
    admin = login.as_admin()
    admin.get("/bots")  # a fresh snapshot records what was seen
    simulator.set_fault("unreachable")
    body = admin.get("/api/bots").get_json()
    assert body["hummingbot"] == {"reachable": False, "error": "unreachable"}
    [item] = body["bots"]
    assert (item["id"], item["display_status"], item["status_is_stale"], item["live"]) == (
        bot.id, "running", True, None)
    assert item["last_seen_status"] == "running" and item["last_seen_at"].endswith("Z")


def test_a_client_sees_live_status_only_for_its_own_bots(login, make_bot, simulator):
    deployed(make_bot, simulator, "mine", account="client_sharp")
    deployed(make_bot, simulator, "theirs", account="client_other")
    client = login.as_client_a()
    body = client.get("/api/bots").get_json()
    assert [item["id"] for item in body["bots"]] == ["mine"]
    assert body["bots"][0]["live"]["status"] == "running"
    assert client.get("/api/bots/theirs").status_code == 404
    page = client.get("/bots").get_data(as_text=True)
    assert "mine" in page and "theirs" not in page
    assert client.get("/bots/theirs", headers=HX).status_code == 404
    detail = client.get("/bots/mine", headers=HX).get_data(as_text=True)
    assert "Realized PnL" in detail


# ---------------------------------------------------------------------------- detail
def test_detail_shows_controller_performance_and_logs(login, make_bot, simulator):
    bot = deployed(make_bot, simulator, "pmm-btc", controllers=["pmm_btc_1", "grid_eth_1"])
    simulator.state.add_log(bot.instance_name, "ERROR", "Order rejected: insufficient funds")
    page = login.as_admin().get("/bots/pmm-btc")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for heading in ("Realized PnL", "Unrealized PnL", "Volume", "Latest errors",
                    "Latest log lines"):
        assert heading in html
    assert "<code>pmm_btc_1</code>" in html and "<code>grid_eth_1</code>" in html
    # Amounts in the pair's quote currency (BTC-USDT), signed PnL, thousands separators.
    assert re.search(r'<td class="num"><span class="amount( pos| neg)?">[+-]?[\d,]+\.\d{2,4}'
                     r'</span> <small>USDT</small></td>', html)
    assert "quote</small>" not in html
    assert "Order rejected: insufficient funds" in html
    assert "Controller pmm_btc_1 started" in html
    # Log times are epoch seconds: shown as UTC times.
    assert re.search(r"<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time> <span class=\"level "
                     r"level-error\">ERROR</span> Order rejected", html)
    fragment = login.as_admin().get("/bots/pmm-btc", headers=HX).get_data(as_text=True)
    assert "Realized PnL" in fragment and "<h1>" not in fragment


def test_log_lines_from_hummingbot_are_escaped(login, make_bot, simulator):
    bot = deployed(make_bot, simulator, "pmm-btc")
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    simulator.state.add_log(bot.instance_name, "ERROR", payload)
    simulator.state.add_log(bot.instance_name, "INFO", payload)
    for headers in ({}, HX):
        html = login.as_admin().get("/bots/pmm-btc", headers=headers).get_data(as_text=True)
        assert payload not in html
        assert "<img src=x" not in html and '<script>alert("x")' not in html
        # Both log lists, and the latest error above them.
        assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 3


def test_detail_while_unreachable_shows_the_definition_and_the_banner(login, make_bot,
                                                                      simulator):
    deployed(make_bot, simulator, "pmm-btc")
    simulator.set_fault("unreachable")
    html = login.as_admin().get("/bots/pmm-btc").get_data(as_text=True)
    assert "Hummingbot is unreachable." in html
    assert "Edit" in html and "pmm-btc" in html


# ------------------------------------------- the real Hummingbot API's timing (issue 10, item 6)
def test_a_dead_bot_keeps_its_last_status_for_30s_then_reads_missing_last_heard(
        login, make_bot, simulator):
    """Hummingbot lists a killed container with its last status until its last MQTT message
    is 30 s old; then the row says Missing and when the bot was last heard."""
    simulator.configure(mqtt_linger_seconds=30)
    simulator.advance(0)
    bot = deployed(make_bot, simulator, "pmm-btc")
    admin = login.as_admin()
    assert ">Running</span>" in badge_of(admin.get("/bots").get_data(as_text=True), "pmm-btc")
    simulator.state.exit_bot(bot.instance_name)
    assert ">Running</span>" in badge_of(admin.get("/bots").get_data(as_text=True), "pmm-btc")
    simulator.advance(30)
    shown = badge_of(admin.get("/bots").get_data(as_text=True), "pmm-btc")
    # Its container exited (Hummingbot lists it among exited containers): Crashed, not
    # Missing (issue 11), with when it was last heard.
    assert "Crashed (container exited)" in shown
    assert re.search(r"last heard \d+ (s|min) ago", shown), shown


def test_after_a_hummingbot_restart_the_logs_say_why_they_are_empty(login, make_bot, simulator):
    """Hummingbot keeps log lines in memory only; a bot sends its start-up lines once."""
    deployed(make_bot, simulator, "pmm-btc")
    admin = login.as_admin()
    assert "Controller pmm_btc_1 started" in admin.get("/bots/pmm-btc").get_data(as_text=True)
    simulator.set_fault("unreachable")
    simulator.state.restart()
    simulator.clear_faults()
    page = admin.get("/bots/pmm-btc").get_data(as_text=True)
    assert "Controller pmm_btc_1 started" not in page
    assert "No log lines since Hummingbot last restarted" in page
    assert ">None.</p>" not in page
