"""HummingbotClient against the running simulator: every call, every error class, retries and
the circuit breaker. Real HTTP over loopback; time-based behaviour uses counters and fake clocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.hummingbot import (
    BotRun,
    CircuitBreaker,
    Container,
    HummingbotAuthError,
    HummingbotCircuitOpen,
    HummingbotClient,
    HummingbotError,
    HummingbotProtocolError,
    HummingbotRejected,
    HummingbotTimeout,
    HummingbotUnreachable,
    LiveBot,
    client_from_settings,
)

STATUS = "/bot-orchestration/status"
DEPLOY_CONTROLLERS = "/bot-orchestration/deploy-v2-controllers"
DEPLOY_SCRIPT = "/bot-orchestration/deploy-v2-script"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(simulator):
    with simulator.client() as c:
        yield c


def sent_requests(client: HummingbotClient) -> list:
    """Record the requests this client really sends (observing our own session, no mocks)."""
    seen: list = []
    client.session.hooks["response"].append(lambda response, *a, **k: seen.append(response))
    return seen


# ---------------------------------------------------------------------------- the calls
def test_health(client):
    info = client.health()
    assert (info.name, info.version, info.status) == ("Hummingbot API", "1.0.1", "running")


def test_status_is_empty_without_bots(client):
    assert client.status() == {}


def test_status_parses_live_bots(simulator, client):
    pmm = simulator.seed_bot("pmm", controllers=["pmm_btc_1", "grid_eth_1"])
    script = simulator.seed_bot("script", script="simple_pmm.py")
    simulator.state.add_log(pmm, "ERROR", "order rejected")

    bots = client.status()
    assert set(bots) == {pmm, script}
    bot = bots[pmm]
    assert isinstance(bot, LiveBot)
    assert bot.status == "running"
    assert bot.source == "docker"
    assert bot.recently_active is True
    assert bot.is_trading and not bot.trading_stopped
    assert set(bot.controllers) == {"pmm_btc_1", "grid_eth_1"}
    perf = bot.controllers["pmm_btc_1"]
    assert perf.status == "running"
    assert isinstance(perf.volume_traded, float) and perf.volume_traded > 0
    assert isinstance(perf.global_pnl_pct, float)
    assert bot.total_global_pnl_quote is not None
    assert bot.error_logs[-1].msg == "order rejected"
    assert bot.error_logs[-1].level == "ERROR"
    assert isinstance(bot.error_logs[-1].timestamp, float)

    plain = bots[script]
    assert plain.status == "stopped" and plain.recently_active and plain.controllers == {}
    assert not plain.trading_stopped


def test_bot_status_known_and_unknown(simulator, client):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    bot = client.bot_status(name)
    assert bot is not None and bot.name == name and bot.status == "running"
    assert bot.source is None  # the per-bot route has no source
    assert client.bot_status("ghost") is None


def test_deploy_controllers_returns_the_new_name(simulator, client):
    seen = sent_requests(client)
    result = client.deploy_controllers(
        "pmm-btc-a1b2",
        "master_account",
        ["pmm_btc_1", "grid_eth_1.yml"],
        max_global_drawdown_quote=50.0,
    )
    assert result.instance_name.startswith("pmm-btc-a1b2-")
    assert result.instance_name != "pmm-btc-a1b2"
    assert result.controllers_deployed == ["pmm_btc_1", "grid_eth_1.yml"]
    assert result.script_config_generated == f"{result.instance_name}.yml"
    assert "created successfully" in result.message
    assert seen[0].request.headers["ngrok-skip-browser-warning"] == "true"

    bot = client.status()[result.instance_name]
    assert bot.status == "stopped" and not bot.recently_active  # warming up
    simulator.advance(2)
    assert client.bot_status(result.instance_name).is_trading

    run = client.bot_runs(bot_name=result.instance_name)[0]
    assert run.deployment_config["max_global_drawdown_quote"] == 50.0
    assert run.deployment_config["controllers_config"] == ["pmm_btc_1", "grid_eth_1.yml"]


def test_deploy_script(simulator, client):
    result = client.deploy_script("twap-1", "master_account", script="twap")
    assert result.instance_name.startswith("twap-1-")
    assert result.controllers_deployed == []
    assert result.script_config_generated is None
    run = client.bot_runs(bot_name=result.instance_name)[0]
    assert (run.strategy_type, run.strategy_name, run.config_name) == ("script", "twap", None)


@pytest.mark.parametrize(
    ("instance", "profile"), [("bad name", "master_account"), ("ok", "../etc"), ("", "x")]
)
def test_bad_names_are_refused_before_sending(simulator, client, instance, profile):
    with pytest.raises(HummingbotRejected, match="Invalid"):
        client.deploy_script(instance, profile)
    with pytest.raises(HummingbotRejected, match="Invalid"):
        client.deploy_controllers(instance, profile, ["pmm_btc_1"])
    assert simulator.request_count("POST", DEPLOY_SCRIPT) == 0
    assert simulator.request_count("POST", DEPLOY_CONTROLLERS) == 0


def test_refused_input_says_nothing_was_sent(client):
    with pytest.raises(HummingbotRejected) as caught:
        client.deploy_script("bad name", "master_account")
    assert caught.value.request_sent is False


def test_deploy_for_an_unknown_account_is_rejected_with_the_server_message(client):
    with pytest.raises(HummingbotRejected) as caught:
        client.deploy_script("pmm", "client_ghost")
    assert caught.value.status_code == 500
    assert "bots/credentials/client_ghost" in str(caught.value)


def test_deploy_name_clash_is_rejected(simulator, client):
    simulator.configure(local_time="2025-07-01T14:30:12")
    assert client.deploy_script("pmm", "master_account").instance_name == "pmm-20250701-143012"
    with pytest.raises(HummingbotRejected, match="Conflict"):
        client.deploy_script("pmm", "master_account")


def test_deploy_failure_is_rejected_with_the_docker_message(simulator, client):
    simulator.set_fault("deploy_failure", message="pull access denied for hummingbot/nope")
    with pytest.raises(HummingbotRejected, match="pull access denied"):
        client.deploy_controllers("pmm", "master_account", ["pmm_btc_1"])
    assert client.status() == {}


def test_stop_then_start_a_controller_bot(simulator, client):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    client.stop_bot(name)
    bot = client.bot_status(name)
    assert bot.status == "running"
    assert bot.trading_stopped and not bot.is_trading
    client.start_bot(name, log_level="INFO")
    assert client.bot_status(name).is_trading


@pytest.mark.parametrize("action", ["start_bot", "stop_bot"])
def test_start_or_stop_an_unknown_bot_is_rejected(client, action):
    with pytest.raises(HummingbotRejected, match="Bot ghost not found"):
        getattr(client, action)("ghost")


def test_stop_and_archive_always_sends_skip_order_cancellation(simulator, client):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    seen = sent_requests(client)
    message = client.stop_and_archive(name)
    assert message == f"Stop and archive process started for bot {name}"
    assert "skip_order_cancellation=false" in seen[0].request.url
    assert "archive_locally=true" in seen[0].request.url

    assert name not in client.status()
    assert client.bot_status(name).status == "stopping"
    simulator.advance(2)
    assert client.bot_status(name) is None
    run = client.bot_runs(bot_name=name)[0]
    assert run.deployment_status == "ARCHIVED"
    assert run.stopped_at is not None and run.stopped_at.tzinfo is not None


def test_stop_and_archive_an_unknown_bot_is_rejected(client):
    with pytest.raises(HummingbotRejected, match="not found in active bots") as caught:
        client.stop_and_archive("ghost", skip_order_cancellation=True)
    assert caught.value.detail["reason"].startswith("Bot must be actively managed")


def test_bot_runs_are_typed_and_filtered(simulator, client):
    a = simulator.seed_bot("a", controllers=["pmm_btc_1"], age_seconds=60)
    b = simulator.seed_bot("b", script="twap.py", account="client_sharp", age_seconds=30)
    client.stop_bot(a)

    runs = client.bot_runs()
    assert [r.bot_name for r in runs] == [b, a]
    assert all(isinstance(r, BotRun) for r in runs)
    stopped = runs[1]
    assert stopped.run_status == "STOPPED"
    assert stopped.final_status["status"] == "running"  # parsed from its JSON string
    assert stopped.deployment_config["credentials_profile"] == "master_account"
    assert stopped.deployed_at.tzinfo is not None
    assert runs[0].final_status is None
    assert [r.bot_name for r in client.bot_runs(account_name="client_sharp")] == [b]
    assert [r.bot_name for r in client.bot_runs(limit=1, offset=1)] == [a]
    assert client.bot_runs(deployment_status="ARCHIVED") == []


def test_bot_run_parsing_tolerates_garbage():
    run = BotRun.from_payload(
        {
            "id": 3,
            "bot_name": "x",
            "deployment_config": "{not json",
            "final_status": "null",
            "deployed_at": "2025-07-01T12:30:12.345678",  # naive: the server's utcnow()
            "stopped_at": "yesterday",
        }
    )
    assert run.deployment_config is None
    assert run.final_status is None
    assert run.deployed_at == datetime(2025, 7, 1, 12, 30, 12, 345678, tzinfo=UTC)
    assert run.stopped_at is None
    assert BotRun.from_payload({"id": True, "deployment_config": "[1]"}).id is None


def test_accounts_and_add_account(client):
    assert client.accounts() == ["master_account"]
    client.add_account("client_new")
    assert client.accounts() == ["master_account", "client_new"]
    with pytest.raises(HummingbotRejected, match="Account already exists") as caught:
        client.add_account("client_new")
    assert caught.value.status_code == 400
    with pytest.raises(HummingbotRejected, match="Invalid"):
        client.add_account("no spaces please")


def test_controller_configs(simulator, client):
    assert {c["id"] for c in client.controller_configs()} >= {"pmm_btc_1", "grid_eth_1"}
    assert client.bot_controller_configs("ghost") is None
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    configs = client.bot_controller_configs(name)
    assert [c["_config_name"] for c in configs] == ["pmm_btc_1"]


def test_containers(simulator, client):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    active = client.active_containers()
    assert all(isinstance(c, Container) for c in active)
    assert {"hummingbot-api", name} <= {c.name for c in active}
    assert [c.name for c in client.active_containers(name_filter="pmm")] == [name]
    assert client.exited_containers() == []
    simulator.state.exit_bot(name)
    assert [(c.name, c.status) for c in client.exited_containers()] == [(name, "exited")]


def test_a_bare_docker_error_string_is_a_protocol_error(simulator, client):
    simulator.set_fault("docker_down")
    with pytest.raises(HummingbotProtocolError, match="could not list containers"):
        client.active_containers()
    with pytest.raises(HummingbotProtocolError):
        client.exited_containers()


def test_extra_headers_and_the_ngrok_header_are_sent(simulator):
    with simulator.client(extra_headers={"X-Tunnel-Token": "t0k"}) as c:
        seen = sent_requests(c)
        c.health()
    headers = seen[0].request.headers
    assert headers["X-Tunnel-Token"] == "t0k"
    assert headers["ngrok-skip-browser-warning"] == "true"
    assert headers["Authorization"].startswith("Basic ")


def test_ngrok_warning_page_is_skipped_thanks_to_the_header(simulator, client):
    simulator.set_fault("ngrok_warning")
    assert client.status() == {}


# ------------------------------------------------------------------------------- errors
def test_unreachable(simulator, client):
    simulator.set_fault("unreachable")
    with pytest.raises(HummingbotUnreachable, match="connection refused") as caught:
        client.status()
    assert caught.value.request_sent is False
    assert not isinstance(caught.value, HummingbotCircuitOpen)
    simulator.clear_faults()
    assert client.status() == {}


def test_slow_is_a_timeout(simulator):
    simulator.set_fault("slow", seconds=1.0)
    with (
        simulator.client(read_timeout=0.3, read_retries=0) as c,
        pytest.raises(HummingbotTimeout, match=r"did not answer within 0\.3s"),
    ):
        c.status()


def test_wrong_credentials_are_an_auth_error_without_the_password(simulator):
    with (
        HummingbotClient(simulator.url, simulator.username, "s3cret-guess") as c,
        pytest.raises(HummingbotAuthError) as caught,
    ):
        c.status()
    assert caught.value.status_code == 401
    assert "s3cret-guess" not in str(caught.value)
    assert "HUMMINGBOT_API_PASSWORD" in str(caught.value)


def test_unauthorized_fault_is_an_auth_error(simulator, client):
    simulator.set_fault("unauthorized")
    with pytest.raises(HummingbotAuthError):
        client.accounts()


def test_malformed_json_is_a_protocol_error(simulator, client):
    simulator.set_fault("malformed_json")
    with pytest.raises(HummingbotProtocolError, match="invalid JSON"):
        client.status()


def test_html_is_a_protocol_error_naming_the_wrong_url(simulator, client):
    simulator.set_fault("html")
    with pytest.raises(HummingbotProtocolError, match="HTML page") as caught:
        client.status()
    assert "HUMMINGBOT_API_URL" in str(caught.value)


def test_an_ngrok_page_is_a_protocol_error_naming_ngrok(simulator, client):
    simulator.set_fault("ngrok_warning", ignore_header=True)
    with pytest.raises(HummingbotProtocolError, match="ngrok"):
        client.status()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.status(),
        lambda c: c.bot_status("x"),
        lambda c: c.accounts(),
        lambda c: c.bot_runs(),
        lambda c: c.health(),
        lambda c: c.controller_configs(),
        lambda c: c.active_containers(),
        lambda c: c.start_bot("x"),
        lambda c: c.stop_and_archive("x"),
        lambda c: c.deploy_script("x", "master_account"),
    ],
)
def test_wrong_shape_is_a_protocol_error(simulator, client, call):
    simulator.set_fault("wrong_shape")
    with pytest.raises(HummingbotProtocolError, match="unexpected shape"):
        call(client)


def test_error500_with_detail_is_rejected_with_the_detail(simulator, client):
    simulator.set_fault("error500", message="database is locked")
    with pytest.raises(HummingbotRejected, match="database is locked") as caught:
        client.bot_runs()
    assert caught.value.status_code == 500


def test_plain_500_is_rejected_as_an_internal_error(simulator, client):
    simulator.set_fault("error500", plain=True)
    with pytest.raises(HummingbotRejected, match="internal server error"):
        client.status()


def test_a_wrong_base_path_is_a_protocol_error(simulator):
    with HummingbotClient(simulator.url + "/api", simulator.username, simulator.password) as c:
        with pytest.raises(HummingbotProtocolError, match="no route"):
            c.status()
        with pytest.raises(HummingbotProtocolError, match="no route"):
            c.bot_controller_configs("pmm")  # a route 404, not "bot not found"


def test_every_error_is_a_hummingbot_error():
    for cls in (
        HummingbotUnreachable,
        HummingbotCircuitOpen,
        HummingbotTimeout,
        HummingbotAuthError,
        HummingbotProtocolError,
        HummingbotRejected,
    ):
        assert issubclass(cls, HummingbotError)
    assert issubclass(HummingbotCircuitOpen, HummingbotUnreachable)


def test_credentials_in_the_url_never_reach_messages(simulator):
    port = simulator.url.rsplit(":", 1)[1]
    simulator.set_fault("unreachable")
    with (
        HummingbotClient(f"http://who:pa55word@127.0.0.1:{port}", "u", "p") as c,
        pytest.raises(HummingbotUnreachable) as caught,
    ):
        c.health()
    assert "pa55word" not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)


# ------------------------------------------------------------------------------ retries
def test_reads_are_retried_a_bounded_number_of_times(simulator):
    simulator.set_fault("slow", seconds=1.0)
    with (
        simulator.client(read_timeout=0.3, read_retries=2) as c,
        pytest.raises(HummingbotTimeout),
    ):
        c.status()
    assert simulator.request_count("GET", STATUS) == 3


def test_a_read_succeeds_when_a_retry_gets_through(simulator):
    simulator.set_fault("slow", seconds=1.0, times=1)
    with simulator.client(read_timeout=0.3, read_retries=2) as c:
        assert c.status() == {}
    assert simulator.request_count("GET", STATUS) == 2


def test_answers_that_are_errors_are_not_retried(simulator, client):
    simulator.set_fault("error500")
    with pytest.raises(HummingbotRejected):
        client.status()
    assert simulator.request_count("GET", STATUS) == 1


def test_writes_are_never_retried(simulator):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    simulator.set_fault("slow", seconds=1.0)
    with simulator.client(read_timeout=0.3, read_retries=3, deploy_timeout=0.3) as c:
        with pytest.raises(HummingbotTimeout) as caught:
            c.deploy_controllers("pmm", "master_account", ["pmm_btc_1"])
        assert caught.value.request_sent is True  # outcome unknown: reconcile must settle it
        with pytest.raises(HummingbotTimeout):
            c.stop_bot(name)
        with pytest.raises(HummingbotTimeout):
            c.stop_and_archive(name)
    assert simulator.request_count("POST", DEPLOY_CONTROLLERS) == 1
    assert simulator.request_count("POST", "/bot-orchestration/stop-bot") == 1
    assert simulator.request_count("POST", f"/bot-orchestration/stop-and-archive-bot/{name}") == 1


# ------------------------------------------------------------------------------ breaker
def test_breaker_opens_after_the_threshold_and_then_fails_fast(simulator):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=15.0, clock=clock)
    simulator.set_fault("slow", seconds=1.0)
    with simulator.client(read_timeout=0.2, read_retries=0, breaker=breaker) as c:
        for _ in range(3):
            with pytest.raises(HummingbotTimeout):
                c.status()
        assert breaker.state == "open"
        with pytest.raises(HummingbotCircuitOpen, match="not answering") as caught:
            c.status()
        assert caught.value.request_sent is False
        with pytest.raises(HummingbotCircuitOpen):
            c.deploy_script("pmm", "master_account")
    assert simulator.request_count("GET", STATUS) == 3  # the 4th call never left
    assert simulator.request_count("POST", DEPLOY_SCRIPT) == 0


def test_breaker_half_opens_after_reset_after_and_closes_on_success(simulator):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=15.0, clock=clock)
    simulator.set_fault("unreachable")
    with simulator.client(read_retries=0, breaker=breaker) as c:
        for _ in range(2):
            with pytest.raises(HummingbotUnreachable):
                c.status()
        assert breaker.state == "open"
        clock.now += 14.9
        assert breaker.state == "open"
        clock.now += 0.1
        assert breaker.state == "half_open"
        simulator.clear_faults()
        simulator.reset_counts()
        assert c.status() == {}
        assert breaker.state == "closed"
        assert simulator.request_count("GET", STATUS) == 1


def test_a_failed_probe_opens_the_breaker_again(simulator):
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=5.0, clock=clock)
    simulator.set_fault("slow", seconds=1.0)
    with simulator.client(read_timeout=0.2, read_retries=0, breaker=breaker) as c:
        with pytest.raises(HummingbotTimeout):
            c.status()
        clock.now += 5
        with pytest.raises(HummingbotTimeout):  # the probe went out and failed
            c.status()
        assert breaker.state == "open"
        with pytest.raises(HummingbotCircuitOpen):
            c.status()
    assert simulator.request_count("GET", STATUS) == 2


def test_rejections_and_protocol_errors_do_not_open_the_breaker(simulator):
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    simulator.set_fault("error500")
    with simulator.client(breaker=breaker) as c:
        for _ in range(4):
            with pytest.raises(HummingbotRejected):
                c.status()
        simulator.set_fault("malformed_json")
        simulator.clear_faults("error500")
        for _ in range(4):
            with pytest.raises(HummingbotProtocolError):
                c.status()
    assert breaker.state == "closed"


def test_an_answer_resets_the_failure_count(simulator):
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    with simulator.client(read_retries=0, breaker=breaker) as c:
        simulator.set_fault("unreachable")
        with pytest.raises(HummingbotUnreachable):
            c.status()
        simulator.clear_faults()
        c.status()
        simulator.set_fault("unreachable")
        with pytest.raises(HummingbotUnreachable):
            c.status()
    assert breaker.state == "closed"


def test_half_open_lets_exactly_one_probe_through():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=1.0, clock=clock)
    breaker.record_failure()
    clock.now += 1
    breaker.before_call()  # the probe
    with pytest.raises(HummingbotCircuitOpen):
        breaker.before_call()  # everyone else waits for its outcome
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


# ------------------------------------------------------------------------------ factory
def test_client_from_settings(simulator):
    settings = {
        **simulator.settings,
        "HUMMINGBOT_CONNECT_TIMEOUT": "1.5",
        "HUMMINGBOT_READ_TIMEOUT": 3,
        "HUMMINGBOT_EXTRA_HEADERS": '{"X-Extra": "yes"}',
    }
    with client_from_settings(settings) as c:
        assert (c.connect_timeout, c.read_timeout) == (1.5, 3.0)
        seen = sent_requests(c)
        assert c.accounts() == ["master_account"]
    assert seen[0].request.headers["X-Extra"] == "yes"


def test_client_from_settings_shares_a_breaker_and_rejects_bad_headers(simulator):
    breaker = CircuitBreaker()
    assert client_from_settings(simulator.settings, breaker=breaker).breaker is breaker
    with pytest.raises(ValueError):
        client_from_settings({**simulator.settings, "HUMMINGBOT_EXTRA_HEADERS": "[1]"})
