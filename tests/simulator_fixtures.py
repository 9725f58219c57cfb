"""Pytest plugin: a real simulated Hummingbot API on a loopback port.

Register with `pytest_plugins = ["tests.simulator_fixtures"]`. Fixtures:

- `simulator_server` (session): the RunningSimulator, one per xdist worker (each on a free port).
- `simulator` (function): a `SimulatorHandle` on that server, reset before and after each test
  (bots, runs, accounts, faults, counters, settings, clock).
- `eu_server` (session): a second simulator with its own login (EU_USERNAME, EU_PASSWORD), for
  tests of several Hummingbot servers; reset it as `simulator` does.

    def test_x(simulator):
        simulator.url, simulator.username, simulator.password, simulator.settings
        simulator.set_fault("slow", seconds=1); simulator.clear_faults()
        name = simulator.seed_bot("orphan", controllers=["pmm_btc_1"])
        simulator.request_count("GET", "/bot-orchestration/status"); simulator.reset_counts()
        simulator.configure(warmup_seconds=0); simulator.advance(2.0)  # manual clock
        client = simulator.client(read_timeout=0.3)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.hummingbot import HummingbotClient
from dashboard.simulator import RunningSimulator, SimulatorState, start_simulator

SIM_USERNAME = "sim-user"
SIM_PASSWORD = "sim-pass-not-default"
EU_USERNAME = "eu-user"
EU_PASSWORD = "eu-secret-password-do-not-show"


class ManualClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float | None = None):
        self.now = time.monotonic() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class SimulatorHandle:
    """What a test needs from the running simulator."""

    def __init__(self, server: RunningSimulator):
        self.server = server
        self._clock: ManualClock | None = None

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def control_url(self) -> str:
        return self.server.control_url

    @property
    def username(self) -> str:
        return self.server.username

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def settings(self) -> dict[str, Any]:
        """Dashboard config keys pointing at this simulator (for create_app(test_config))."""
        return {
            "HUMMINGBOT_API_URL": self.url,
            "HUMMINGBOT_API_USERNAME": self.username,
            "HUMMINGBOT_API_PASSWORD": self.password,
        }

    def set_fault(self, name: str, **options: Any) -> None:
        """Switch a fault on: unreachable, slow (seconds=), error500 (plain=, message=),
        malformed_json, wrong_shape, unauthorized, deploy_failure (message=), deploy_name
        (message=: the unique_instance_name a successful deploy answers), html,
        ngrok_warning (ignore_header=), docker_down. Any fault takes times=, path=, method=."""
        self.state.set_fault(name, **options)

    def clear_faults(self, name: str | None = None) -> None:
        self.state.clear_faults(name)

    def seed_bot(self, name: str, **options: Any) -> str:
        """A live bot as if deployed earlier (see SimulatorState.seed_bot); returns its name."""
        return self.state.seed_bot(name, **options)

    def request_count(self, method: str, path: str) -> int:
        return self.state.request_count(method, path)

    def reset_counts(self) -> None:
        self.state.reset_counts()

    def bot_calls(self) -> dict[tuple[str, str], int]:
        """{(action, name as sent): calls}: start, stop, stop-archive, deploy."""
        return self.state.bot_calls()

    def configure(self, **settings: Any) -> dict[str, Any]:
        """warmup_seconds, stopping_seconds, slow_seconds, local_time (frozen, ISO)."""
        return self.state.configure(**settings)

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (switches it to a manual clock for this test)."""
        if self._clock is None:
            self._clock = ManualClock()
            self.state.set_clock(self._clock)
        self._clock.advance(seconds)

    def client(self, **options: Any) -> HummingbotClient:
        """A HummingbotClient for this simulator; test-friendly defaults, overridable."""
        options.setdefault("connect_timeout", 1.0)
        options.setdefault("read_timeout", 2.0)
        options.setdefault("retry_backoff", 0.0)
        breaker = options.pop("breaker", None)
        return HummingbotClient(self.url, self.username, self.password, breaker=breaker, **options)


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[RunningSimulator]:
    server = start_simulator("127.0.0.1", 0, username=SIM_USERNAME, password=SIM_PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def eu_server() -> Iterator[RunningSimulator]:
    server = start_simulator("127.0.0.1", 0, username=EU_USERNAME, password=EU_PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def simulator(simulator_server: RunningSimulator) -> Iterator[SimulatorHandle]:
    simulator_server.state.reset()
    handle = SimulatorHandle(simulator_server)
    try:
        yield handle
    finally:
        # Also wakes requests still sleeping in a `slow` fault and reopens an unreachable port.
        simulator_server.state.reset()
