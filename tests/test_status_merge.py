"""The merge, one test per row of DESIGN.md's badge table. Pure: Bot objects without the DB,
LiveBot objects parsed from payloads shaped like Hummingbot's (HUMMINGBOT_API.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard.hummingbot import HummingbotAuthError, HummingbotUnreachable, LiveBot
from dashboard.models import Bot
from dashboard.status import (
    BADGES,
    LiveSnapshot,
    display_status,
    live_names_for,
    match_live,
    merge_rows,
    orphans,
)

NOW = datetime(2026, 11, 27, 12, 0, 0)
PERF = {"realized_pnl_quote": 1.23, "unrealized_pnl_quote": -0.41, "global_pnl_quote": 0.82,
        "volume_traded": 1520.5}


def bot(name="pmm-btc", *, status="stopped", strategy="pure_market_making", **extra) -> Bot:
    return Bot(id=extra.pop("id", name), name=name, account_identifier="client_sharp",
               strategy=strategy, connector="binance", pair="BTC-USDT", config={},
               status=status, deploy_settings=extra.pop("deploy_settings", {}), **extra)


def live(name, status="running", *, controllers=None, recently_active=True) -> LiveBot:
    if controllers is None:
        controllers = {"pmm_btc_1": PERF} if status in ("running", "idle") else {}
    performance = {c: {"status": "running", "performance": p, "custom_info": {}}
                   for c, p in controllers.items()}
    return LiveBot.from_payload(name, {
        "status": status, "performance": performance, "error_logs": [], "general_logs": [],
        "recently_active": recently_active, "source": "docker"})


def snap(*bots: LiveBot) -> LiveSnapshot:
    return LiveSnapshot(fetched_at=NOW, bots={b.name: b for b in bots})


UNREACHABLE = LiveSnapshot.failed(HummingbotUnreachable("connection refused"))


def row_for(definition: Bot, snapshot: LiveSnapshot):
    [row] = merge_rows([definition], snapshot)
    return row


# -------------------------------------------------------------- any / running or idle
@pytest.mark.parametrize("definition_status", ["stopped", "running", "deploy_failed"])
@pytest.mark.parametrize("word", ["running", "idle"])
def test_running_or_idle_with_performance_shows_running_or_idle(definition_status, word):
    definition = bot(status=definition_status, instance_name="pmm-btc-20261127-120000")
    row = row_for(definition, snap(live("pmm-btc-20261127-120000", word)))
    assert (row.display_status, row.stale, row.label) == (word, False, BADGES[word])
    assert row.live.name == "pmm-btc-20261127-120000"
    assert row.seen_at == NOW


def test_running_with_every_controller_empty_is_stopped_container_up():
    definition = bot(status="running", instance_name="pmm-btc-1")
    report = live("pmm-btc-1", controllers={"pmm_btc_1": {}, "grid_eth_1": {}})
    row = row_for(definition, snap(report))
    assert (row.display_status, row.label) == ("stopped_container_up", "Stopped (container up)")


def test_running_with_one_controller_still_trading_is_running():
    definition = bot(status="running", instance_name="pmm-btc-1")
    report = live("pmm-btc-1", controllers={"pmm_btc_1": {}, "grid_eth_1": PERF})
    assert row_for(definition, snap(report)).display_status == "running"


# ------------------------------------------------------ any / stopped but recently_active
def test_stopped_but_recently_active_script_bot_is_running_script():
    definition = bot(status="running", strategy="pure_market_making", instance_name="s-1")
    row = row_for(definition, snap(live("s-1", "stopped", recently_active=True)))
    assert (row.display_status, row.label) == ("running_script", "Running (script)")


def test_a_script_bot_the_operator_stopped_is_stopped_container_up():
    # Hummingbot's report is the same whether a script bot trades or not: the definition
    # knows the operator stopped it.
    definition = bot(status="stopped", strategy="pure_market_making", instance_name="s-1")
    row = row_for(definition, snap(live("s-1", "stopped", recently_active=True)))
    assert row.display_status == "stopped_container_up"
    definition.last_seen_status, definition.last_seen_at = "stopped_active", NOW
    assert row_for(definition, UNREACHABLE).display_status == "stopped_container_up"
    # A bot from before (no instance name) whose definition says stopped: by strategy.
    legacy = bot("legacy", status="stopped")
    assert row_for(legacy, snap(live("legacy", "stopped"))).display_status == "running_script"


def test_stopped_but_recently_active_controller_bot_is_stopped_container_up():
    definition = bot(status="running", strategy="v2_with_controllers", instance_name="c-1")
    row = row_for(definition, snap(live("c-1", "stopped", recently_active=True)))
    assert row.display_status == "stopped_container_up"


def test_deploy_mode_decides_script_or_controllers_over_the_strategy_name():
    as_script = bot(strategy="v2_with_controllers", instance_name="x-1", status="running",
                    deploy_settings={"mode": "script"})
    as_controllers = bot(strategy="simple_pmm", instance_name="x-1", status="running",
                         deploy_settings={"mode": "controllers"})
    report = snap(live("x-1", "stopped", recently_active=True))
    assert row_for(as_script, report).display_status == "running_script"
    assert row_for(as_controllers, report).display_status == "stopped_container_up"


def test_stopped_and_silent_container_is_stopped_container_up():
    # Just deployed, or a script bot not heard from: the container is there, no MQTT yet.
    definition = bot(status="running", instance_name="s-1")
    row = row_for(definition, snap(live("s-1", "stopped", recently_active=False)))
    assert row.display_status == "stopped_container_up"


# ------------------------------------------------------------------------ absent
def test_definition_running_and_absent_is_missing():
    definition = bot(status="running", instance_name="gone-1")
    row = row_for(definition, snap(live("someone-else")))
    assert (row.display_status, row.label, row.live, row.stale) == (
        "missing", "Missing (needs attention)", None, False)


def test_definition_stopped_and_absent_is_stopped():
    row = row_for(bot(status="stopped", instance_name="gone-1"), snap())
    assert (row.display_status, row.label) == ("stopped", "Stopped")


def test_deploy_failed_and_absent_is_deploy_failed():
    row = row_for(bot(status="deploy_failed", last_error="docker said no"), snap())
    assert (row.display_status, row.label) == ("deploy_failed", "Deploy failed")


# ------------------------------------------------------------- deploying / stopping
@pytest.mark.parametrize("definition_status", ["deploying", "stopping"])
@pytest.mark.parametrize("report", [None, "running", "stopped", "stopping"])
def test_deploying_and_stopping_win_whatever_hummingbot_says(definition_status, report):
    definition = bot(status=definition_status, instance_name="b-1")
    snapshot = snap(live("b-1", report)) if report else snap()
    row = row_for(definition, snapshot)
    assert row.display_status == definition_status
    assert row.label == {"deploying": "Deploying…", "stopping": "Stopping…"}[definition_status]


@pytest.mark.parametrize("definition_status", ["deploying", "stopping"])
def test_deploying_and_stopping_win_while_unreachable_too(definition_status):
    definition = bot(status=definition_status, last_seen_status="running",
                     last_seen_at=NOW - timedelta(minutes=3))
    assert row_for(definition, UNREACHABLE).display_status == definition_status


# ------------------------------------------------------------------- unreachable
@pytest.mark.parametrize(("seen", "strategy", "badge"), [
    ("running", "v2_with_controllers", "running"),
    ("idle", "v2_with_controllers", "idle"),
    ("trading_stopped", "v2_with_controllers", "stopped_container_up"),
    ("stopped_active", "simple_pmm", "running_script"),
    ("stopped_active", "v2_with_controllers", "stopped_container_up"),
])
def test_unreachable_shows_the_last_seen_status_stale_with_its_age(seen, strategy, badge):
    seen_at = NOW - timedelta(minutes=4)
    definition = bot(status="running", strategy=strategy, instance_name="b-1",
                     last_seen_status=seen, last_seen_at=seen_at)
    row = row_for(definition, UNREACHABLE)
    assert (row.display_status, row.stale, row.seen_at, row.live) == (badge, True, seen_at, None)


def test_unreachable_after_reconcile_saw_it_absent_shows_missing_stale():
    definition = bot(status="running", instance_name="b-1", last_seen_status="absent",
                     last_seen_at=NOW)
    row = row_for(definition, UNREACHABLE)
    assert (row.display_status, row.stale) == ("missing", True)


@pytest.mark.parametrize(("status", "badge"), [
    ("stopped", "stopped"), ("deploy_failed", "deploy_failed"), ("running", "unknown")])
def test_unreachable_and_never_seen(status, badge):
    row = row_for(bot(status=status), UNREACHABLE)
    assert (row.display_status, row.stale, row.seen_at) == (badge, True, None)


def test_rejected_credentials_are_their_own_kind_of_failure():
    snapshot = LiveSnapshot.failed(HummingbotAuthError("refused our credentials"))
    assert (snapshot.reachable, snapshot.error_kind) == (False, "auth")
    assert UNREACHABLE.error_kind == "unreachable"
    definition = bot(status="running", last_seen_status="running", last_seen_at=NOW)
    assert row_for(definition, snapshot).stale


def test_unreachable_never_matches_a_live_report():
    # A failed snapshot has no bots; even a stale dict must not be consulted.
    definition = bot(status="running", instance_name="b-1", last_seen_status="idle",
                     last_seen_at=NOW)
    assert display_status(definition, live("b-1"), reachable=False) == ("idle", True)


# ----------------------------------------------------------------------- archived
def test_archived_definition_is_archived():
    definition = bot(status="stopped", instance_name="b-1", archived_at=NOW)
    assert row_for(definition, snap()).display_status == "archived"
    assert row_for(definition, UNREACHABLE).display_status == "archived"


def test_archived_definition_whose_bot_still_runs_needs_attention():
    definition = bot(status="stopped", instance_name="b-1", archived_at=NOW)
    row = row_for(definition, snap(live("b-1", "running")))
    assert (row.display_status, row.needs_attention) == ("archived_running", True)
    assert row.label == "Archived, still running"


# ------------------------------------------------------------------------ matching
def test_matches_by_stored_instance_name_only_when_it_has_one():
    definition = bot("pmm-btc", status="running", instance_name="pmm-btc-abc123-20261127-120000")
    assert live_names_for(definition) == ["pmm-btc-abc123-20261127-120000"]
    # A bot under the plain name is someone else's once an instance name is stored.
    assert match_live(definition, snap(live("pmm-btc")).bots) is None
    assert row_for(definition, snap(live("pmm-btc"))).display_status == "missing"
    found = match_live(definition, snap(live("pmm-btc-abc123-20261127-120000")).bots)
    assert found.name == "pmm-btc-abc123-20261127-120000"


@pytest.mark.parametrize("live_name", ["old-bot", "hummingbot-old-bot"])
def test_bots_from_before_match_by_plain_or_prefixed_name(live_name):
    definition = bot("old-bot", status="running")
    row = row_for(definition, snap(live(live_name)))
    assert (row.display_status, row.live.name) == ("running", live_name)


def test_orphans_are_only_live_bots_no_definition_claims():
    definitions = [
        bot("a", instance_name="a-20261127-120000"),
        bot("legacy"),
        bot("old", id="old"),
        bot("archived", instance_name="archived-1", archived_at=NOW),
    ]
    snapshot = snap(live("a-20261127-120000"), live("legacy"), live("hummingbot-old"),
                    live("archived-1"), live("stranger-1"), live("a"))
    # "a" is not claimed: bot a is known by its stored instance name only.
    assert [o.name for o in orphans(definitions, snapshot)] == ["a", "stranger-1"]
    assert orphans(definitions, UNREACHABLE) == []


def test_merge_keeps_every_definition_in_order():
    definitions = [bot(f"b{i}", status="stopped") for i in range(5)]
    rows = merge_rows(definitions, UNREACHABLE)
    assert [r.bot.name for r in rows] == ["b0", "b1", "b2", "b3", "b4"]
