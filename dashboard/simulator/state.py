"""In-memory world of the simulated Hummingbot API: bots, bot-runs, accounts, faults, counters.

Everything lives in one `SimulatorState` guarded by one lock, so the HTTP layer (many threads) and
tests driving the state in-process see the same consistent picture. Time-based transitions
(warm-up, stopping) are computed lazily from an injectable monotonic clock whenever the state is
read, so there are no background threads and tests can swap in a manual clock.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

API_VERSION = "1.0.1"
DEFAULT_IMAGE = "hummingbot/hummingbot:latest"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
MASTER_ACCOUNT = "master_account"
# What GET /connectors/ lists: the real server answers with every connector the installed
# hummingbot package has settings for (a bare list of names); a representative subset.
CONNECTORS = (
    "ascend_ex", "binance", "binance_perpetual", "bitmart", "bybit", "bybit_perpetual",
    "coinbase_advanced_trade", "gate_io", "gate_io_perpetual", "hyperliquid",
    "hyperliquid_perpetual", "kraken", "kucoin", "kucoin_perpetual", "mexc", "okx",
    "okx_perpetual",
)
LOG_LIMIT = 100

DEFAULT_WARMUP_SECONDS = 1.0
DEFAULT_STOPPING_SECONDS = 1.0
# Past the dashboard client's default read timeout (5 s), so `slow` really times it out.
DEFAULT_SLOW_SECONDS = 6.0
# The real server's timings (HUMMINGBOT_API.md, section 6). The defaults above keep tests quick;
# `make run` and `python -m dashboard.simulator` use these, so a person sees what the real
# server does: a new bot absent for a moment, archives that take 15 s, bots heard for 30 s more.
REALISTIC_SETTINGS = {
    "warmup_seconds": 5.0,  # the bot's Hummingbot connects over MQTT
    "appear_seconds": 1.0,  # the server's container poll lists a new container
    "stopping_seconds": 15.0,  # stop-and-archive waits 15 s, then removes the container
    "container_retry_seconds": 20.0,  # 10 attempts x 2 s to stop a container that is not there
    "mqtt_linger_seconds": 30.0,  # a bot heard over MQTT stays listed 30 s after its last word
}

DEPLOY_PATHS = frozenset(
    {"/bot-orchestration/deploy-v2-script", "/bot-orchestration/deploy-v2-controllers"}
)
FAULT_NAMES = frozenset(
    {
        "unreachable",  # API port refuses connections (control port keeps working)
        "slow",  # sleep `seconds` before answering
        "error500",  # 500 {"detail": ...} (or text/plain with plain=True)
        "malformed_json",  # 200 with a truncated JSON body
        "wrong_shape",  # 200 with valid JSON of the wrong shape (list <-> object)
        "unauthorized",  # 401 to everything
        "deploy_failure",  # deploy routes: 200 {"success": false, "message": <docker error>}
        "deploy_name",  # deploy routes: succeed, but answer `message` as unique_instance_name
        "html",  # 200 text/html page (wrong URL / proxy in front of the API)
        "ngrok_warning",  # ngrok's browser-warning page unless ngrok-skip-browser-warning is sent
        "docker_down",  # Docker daemon gone: /docker/* answer 200 with a bare error string
    }
)

# Containers every real deployment has next to the bots; they are not bots.
INFRA_CONTAINERS = (
    ("hummingbot-api", "hummingbot/hummingbot-api:latest"),
    ("hummingbot-postgres", "postgres:16"),
    ("hummingbot-broker", "emqx:5"),
)

DEFAULT_CONTROLLER_CONFIGS: tuple[dict[str, Any], ...] = (
    {
        "id": "pmm_btc_1",
        "controller_name": "pmm_simple",
        "controller_type": "market_making",
        "connector_name": "binance",
        "trading_pair": "BTC-USDT",
        "total_amount_quote": 1000,
        "buy_spreads": [0.01, 0.02],
        "sell_spreads": [0.01, 0.02],
        "leverage": 1,
    },
    {
        "id": "grid_eth_1",
        "controller_name": "grid_strike",
        "controller_type": "generic",
        "connector_name": "binance",
        "trading_pair": "ETH-USDT",
        "total_amount_quote": 500,
        "start_price": 3000,
        "end_price": 3600,
        "leverage": 1,
    },
    {
        "id": "grid_eth_2",
        "controller_name": "grid_strike",
        "controller_type": "generic",
        "connector_name": "kucoin",
        "trading_pair": "ETH-USDT",
        "total_amount_quote": 250,
        "start_price": 2900,
        "end_price": 3500,
        "leverage": 1,
    },
)


class SimulatorError(ValueError):
    """A control operation that makes no sense (unknown fault, duplicate bot, ...)."""


def strip_yml(name: str) -> str:
    return name[:-4] if name.endswith(".yml") else name


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Fault:
    name: str
    seconds: float | None = None  # slow
    times: int | None = None  # None: until cleared; N: switches itself off after N requests
    path: str | None = None  # only requests to this exact path
    method: str | None = None  # only requests with this method
    message: str | None = None  # error500 detail / deploy_failure docker message / deploy_name
    plain: bool = False  # error500 as text/plain "Internal Server Error"
    ignore_header: bool = False  # ngrok_warning even when the skip header is sent

    def applies_to(self, method: str, path: str) -> bool:
        if self.name == "unreachable":
            return False
        if self.name in ("deploy_failure", "deploy_name") and (
            method != "POST" or path not in DEPLOY_PATHS
        ):
            return False
        if self.name == "docker_down" and not (
            path.startswith("/docker/") or (method == "POST" and path in DEPLOY_PATHS)
        ):
            return False
        if self.path is not None and self.path != path:
            return False
        return self.method is None or self.method.upper() == method

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": self.seconds,
            "times": self.times,
            "path": self.path,
            "method": self.method,
            "message": self.message,
            "plain": self.plain,
            "ignore_header": self.ignore_header,
        }


@dataclass
class SimBot:
    name: str
    account: str
    kind: str  # "controller" | "script"
    controllers: list[str]  # controller ids as reported in performance
    script: str | None
    image: str
    container_id: str
    started_at: float  # state clock
    warmup_until: float  # state clock; no MQTT before this
    perf_seed: int
    live_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    trading: bool = True
    stopping_until: float | None = None
    # "running" | "exited" | "removed" (archived) | "none" (an MQTT-only bot: no container here)
    container_status: str = "running"
    source: str = "docker"  # how the server knows it: its container, or only its MQTT messages
    appears_at: float = 0.0  # state clock; the server's container poll lists it from then on
    heard_until: float | None = None  # container gone: listed from its MQTT messages until then
    runs_script: bool = True  # False: a script deploy without script_config runs nothing
    announced: bool = False  # "started" log written once warm-up ended
    error_logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    general_logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))

    @property
    def live(self) -> bool:
        """Its process runs: in its container, or somewhere this server did not start it."""
        return self.container_status in ("running", "none")

    def log(self, level: str, msg: str, logger_name: str | None = None) -> None:
        level = level.upper()
        entry = {
            "level_name": level,
            "msg": msg,
            "timestamp": time.time(),
            "level_no": {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}.get(level, 20),
            "logger_name": logger_name or "hummingbot.strategy.script_strategy_base",
        }
        target = self.error_logs if level in ("ERROR", "CRITICAL") else self.general_logs
        target.append(entry)


@dataclass
class BotRunRecord:
    id: int
    bot_name: str
    deployed_at: datetime
    strategy_type: str
    strategy_name: str
    config_name: str | None
    account_name: str
    image_version: str
    deployment_config: dict[str, Any]
    stopped_at: datetime | None = None
    deployment_status: str = "DEPLOYED"
    run_status: str = "CREATED"
    final_status: dict[str, Any] | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        # deployment_config and final_status are JSON *strings*, as the server stores them.
        return {
            "id": self.id,
            "bot_name": self.bot_name,
            "instance_name": self.bot_name,
            "deployed_at": self.deployed_at.isoformat(),
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "strategy_type": self.strategy_type,
            "strategy_name": self.strategy_name,
            "config_name": self.config_name,
            "account_name": self.account_name,
            "image_version": self.image_version,
            "deployment_status": self.deployment_status,
            "run_status": self.run_status,
            "deployment_config": json.dumps(self.deployment_config),
            "final_status": json.dumps(self.final_status) if self.final_status else None,
            "error_message": self.error_message,
        }


@dataclass
class Settings:
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS
    stopping_seconds: float = DEFAULT_STOPPING_SECONDS
    slow_seconds: float = DEFAULT_SLOW_SECONDS
    # Timings of the real server that tests usually leave at 0 (see REALISTIC_SETTINGS).
    appear_seconds: float = 0.0
    container_retry_seconds: float = 0.0
    mqtt_linger_seconds: float = 0.0
    local_time: str | None = None  # frozen server local time for deploy names (ISO), or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "warmup_seconds": self.warmup_seconds,
            "stopping_seconds": self.stopping_seconds,
            "slow_seconds": self.slow_seconds,
            "appear_seconds": self.appear_seconds,
            "container_retry_seconds": self.container_retry_seconds,
            "mqtt_linger_seconds": self.mqtt_linger_seconds,
            "local_time": self.local_time,
        }


def controller_performance(seed: int, elapsed: float) -> dict[str, Any]:
    """Plausible, slowly changing numbers, deterministic per (bot, controller) and time."""
    rng = random.Random(seed)  # noqa: S311 - repeatable demo numbers, not secrets
    base_volume = rng.uniform(200.0, 3000.0)
    volume_rate = rng.uniform(0.5, 5.0)  # quote per second
    edge = rng.uniform(-0.0004, 0.0015)
    phase = rng.uniform(0.0, 2 * math.pi)
    capital = rng.choice([500.0, 1000.0, 2500.0])
    volume = base_volume + volume_rate * max(elapsed, 0.0)
    realized = volume * edge
    unrealized = math.sin(elapsed / 45.0 + phase) * capital * 0.002
    global_pnl = realized + unrealized
    return {
        "realized_pnl_quote": round(realized, 6),
        "unrealized_pnl_quote": round(unrealized, 6),
        "unrealized_pnl_pct": round(unrealized / capital, 6),
        "realized_pnl_pct": round(realized / capital, 6),
        "global_pnl_quote": round(global_pnl, 6),
        "global_pnl_pct": round(global_pnl / capital, 6),
        "volume_traded": round(volume, 2),
        "open_order_volume": round(capital * 0.2, 2),
        "inventory_imbalance": round(math.sin(elapsed / 90.0 + phase) * 0.3, 4),
        "positions_summary": [],
        "close_type_counts": {"CloseType.TAKE_PROFIT": int(volume // 400)},
    }


class SimulatorState:
    """All mutable state of one simulated Hummingbot API. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed_demo: bool = False,
        realistic: bool = False,
    ):
        self._lock = threading.RLock()
        self._real_clock = clock
        self._default_settings = dict(REALISTIC_SETTINGS) if realistic else {}
        self._reachability_listeners: list[Callable[[bool], None]] = []
        self._wake = threading.Event()
        self.reset(seed_demo=seed_demo)

    # ----------------------------------------------------------------- lifecycle / control
    def reset(self, *, seed_demo: bool = False) -> None:
        """Back to a fresh server: no bots, no runs, master_account only, no faults, no counts."""
        with self._lock:
            was_unreachable = getattr(self, "_faults", {}).get("unreachable") is not None
            self.clock: Callable[[], float] = self._real_clock
            self.settings = Settings(**self._default_settings)
            self._bots: dict[str, SimBot] = {}
            self._runs: list[BotRunRecord] = []
            self._next_run_id = 1
            self._accounts: list[str] = [MASTER_ACCOUNT]
            self._configs: dict[str, dict[str, Any]] = {
                c["id"]: json.loads(json.dumps(c)) for c in DEFAULT_CONTROLLER_CONFIGS
            }
            self._faults: dict[str, Fault] = {}
            self._counts: Counter[str] = Counter()
            self._bot_calls: Counter[tuple[str, str]] = Counter()
            self._performance_dumps: list[dict[str, Any]] = []  # newest last
            self._wake_sleepers()
            if seed_demo:
                self._seed_demo()
        if was_unreachable:
            self._notify_reachability(True)

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Swap the clock used for warm-up/stopping (None restores the real one)."""
        with self._lock:
            self.clock = clock or self._real_clock

    def configure(self, **changes: Any) -> dict[str, Any]:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.settings, key):
                    raise SimulatorError(f"unknown setting {key!r}")
                if key == "local_time":
                    if value is not None:
                        datetime.fromisoformat(value)  # validate early
                else:
                    value = float(value)
                    if value < 0:
                        raise SimulatorError(f"{key} must be >= 0")
                setattr(self.settings, key, value)
            return self.settings.to_dict()

    def add_reachability_listener(self, listener: Callable[[bool], None]) -> None:
        with self._lock:
            self._reachability_listeners.append(listener)

    def remove_reachability_listener(self, listener: Callable[[bool], None]) -> None:
        with self._lock:
            if listener in self._reachability_listeners:
                self._reachability_listeners.remove(listener)

    def _notify_reachability(self, reachable: bool) -> None:
        # Called outside the lock: listeners open/close sockets and join threads.
        with self._lock:
            listeners = list(self._reachability_listeners)
        for listener in listeners:
            listener(reachable)

    # ----------------------------------------------------------------------------- faults
    def set_fault(self, name: str, **options: Any) -> Fault:
        if name not in FAULT_NAMES:
            raise SimulatorError(f"unknown fault {name!r}; known: {sorted(FAULT_NAMES)}")
        allowed = set(Fault.__dataclass_fields__) - {"name"}
        unknown = set(options) - allowed
        if unknown:
            raise SimulatorError(f"unknown fault option(s) {sorted(unknown)}")
        fault = Fault(name=name, **options)
        if fault.times is not None and int(fault.times) < 1:
            raise SimulatorError("times must be >= 1")
        with self._lock:
            became_unreachable = name == "unreachable" and name not in self._faults
            self._faults[name] = fault
            self._wake_sleepers()
        if became_unreachable:
            self._notify_reachability(False)
        return fault

    def clear_faults(self, name: str | None = None) -> None:
        with self._lock:
            names = list(self._faults) if name is None else [name]
            removed = [n for n in names if self._faults.pop(n, None) is not None]
            self._wake_sleepers()
        if "unreachable" in removed:
            self._notify_reachability(True)

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults.values()]

    @property
    def reachable(self) -> bool:
        with self._lock:
            return "unreachable" not in self._faults

    def take_faults(self, method: str, path: str) -> dict[str, Fault]:
        """Faults that apply to this request; counts down and drops the `times`-limited ones."""
        with self._lock:
            hit: dict[str, Fault] = {}
            for name, fault in list(self._faults.items()):
                if not fault.applies_to(method, path):
                    continue
                hit[name] = fault
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[name]
            return hit

    def slow_seconds(self, fault: Fault) -> float:
        with self._lock:
            return fault.seconds if fault.seconds is not None else self.settings.slow_seconds

    def sleep(self, seconds: float) -> None:
        """Sleep for `slow`, but wake early when faults change or the state resets."""
        with self._lock:
            wake = self._wake
        wake.wait(seconds)

    def _wake_sleepers(self) -> None:
        self._wake.set()
        self._wake = threading.Event()

    # ---------------------------------------------------------------------------- counters
    def count_request(self, method: str, path: str) -> None:
        with self._lock:
            self._counts[f"{method} {path}"] += 1

    def request_count(self, method: str, path: str) -> int:
        with self._lock:
            return self._counts[f"{method.upper()} {path}"]

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._bot_calls.clear()

    def bot_calls(self) -> dict[tuple[str, str], int]:
        """Lifecycle calls per (action, bot name as sent): tests count them per bot."""
        with self._lock:
            return dict(self._bot_calls)

    # ------------------------------------------------------------------------------- time
    def _advance(self) -> float:
        """Apply transitions due by now; returns the clock reading used."""
        now = self.clock()
        for bot in list(self._bots.values()):
            if bot.stopping_until is not None and now >= bot.stopping_until:
                self._end_archive(bot, bot.stopping_until)
            if bot.container_status == "removed" and (
                bot.heard_until is None or now >= bot.heard_until
            ):
                del self._bots[bot.name]  # archived and no longer heard: gone for good
            elif bot.live and not bot.announced and now >= bot.warmup_until:
                bot.announced = True
                if bot.kind == "controller":
                    for controller in bot.controllers:
                        bot.log("INFO", f"Controller {controller} started")
                elif bot.runs_script:
                    bot.log("INFO", f"Script {bot.script or 'default'} started")
        return now

    def _end_archive(self, bot: SimBot, at: float) -> None:
        bot.stopping_until = None
        if bot.source == "mqtt":
            # No container to stop: the server gives up ("Failed to stop container X after 10
            # attempts") and the bot, still sending heartbeats, is listed again. No bot-run.
            return
        # Container stopped and removed, files archived. A bot that spoke MQTT is still heard
        # of: the server lists it (source mqtt) until 30 s after its last message.
        bot.container_status = "removed"
        bot.source = "mqtt"
        bot.heard_until = at + self.settings.mqtt_linger_seconds if bot.announced else None
        run = self._latest_run(bot.name)
        if run is not None:
            run.deployment_status = "ARCHIVED"
            run.stopped_at = utc_now()

    def _listed(self, bot: SimBot, now: float) -> bool:
        """In GET /status: live and past the container poll, or still heard over MQTT; never
        while being archived."""
        if bot.stopping_until is not None:
            return False
        if bot.live:
            return now >= bot.appears_at
        return bot.heard_until is not None and now < bot.heard_until

    def _local_now(self) -> datetime:
        if self.settings.local_time:
            return datetime.fromisoformat(self.settings.local_time)
        return datetime.now()  # server local time, as the real server uses

    def timestamped(self, name: str) -> str:
        with self._lock:
            return f"{name}-{self._local_now().strftime('%Y%m%d-%H%M%S')}"

    # ------------------------------------------------------------------------------- bots
    def _new_bot(
        self,
        name: str,
        account: str,
        *,
        controllers: Iterable[str] = (),
        script: str | None = None,
        image: str = DEFAULT_IMAGE,
        warm: bool,
        source: str = "docker",
        runs_script: bool = True,
    ) -> SimBot:
        now = self.clock()
        controller_ids = [self._controller_id(c) for c in controllers]
        bot = SimBot(
            name=name,
            account=account,
            kind="controller" if controller_ids else "script",
            controllers=controller_ids,
            script=script,
            image=image,
            container_id=f"{zlib.crc32(f'{name}{now}'.encode()):08x}" * 8,
            started_at=now,
            warmup_until=now if warm else now + self.settings.warmup_seconds,
            perf_seed=zlib.crc32(name.encode()),
            container_status="none" if source == "mqtt" else "running",
            source=source,
            # A new container is listed at the server's next container poll; a warm bot is
            # one the server has known for a while.
            appears_at=now if warm else now + self.settings.appear_seconds,
            runs_script=runs_script,
            live_configs={
                strip_yml(c): {
                    **self._configs.get(strip_yml(c), {"id": strip_yml(c)}),
                    "_config_name": strip_yml(c),
                }
                for c in controllers
            },
        )
        bot.log("INFO", f"Instance {name} created", "hummingbot.client.hummingbot_application")
        self._bots[name] = bot
        return bot

    def _controller_id(self, config_name: str) -> str:
        config = self._configs.get(strip_yml(config_name))
        if config and isinstance(config.get("id"), str):
            return config["id"]
        return strip_yml(config_name)

    def _container_names(self) -> set[str]:
        bots = {name for name, bot in self._bots.items() if bot.container_status != "removed"}
        return bots | {name for name, _ in INFRA_CONTAINERS}

    def _live_bot(self, name: str, now: float) -> SimBot | None:
        """A bot the server manages (its `active_bots`): live and listed, or being archived."""
        bot = self._bots.get(name)
        if bot is None or not bot.live:
            return None
        return bot if bot.stopping_until is not None or now >= bot.appears_at else None

    def _status_of(self, bot: SimBot, now: float) -> dict[str, Any]:
        if bot.stopping_until is not None:
            return {
                "status": "stopping",
                "message": "Bot is currently being stopped and archived",
                "performance": {},
                "error_logs": [],
                "general_logs": [],
                "recently_active": False,
            }
        warmed = now >= bot.warmup_until
        performance: dict[str, Any] = {}
        if bot.kind == "controller" and warmed:
            for index, controller in enumerate(bot.controllers):
                numbers = (
                    controller_performance(bot.perf_seed + index, now - bot.started_at)
                    if bot.trading
                    else {}  # a V2 bot publishes empty reports after stop-bot
                )
                performance[controller] = {
                    "status": "running",
                    "performance": numbers,
                    "custom_info": {},
                }
        return {
            "status": "running" if performance else "stopped",
            "performance": performance,
            "error_logs": list(bot.error_logs),
            "general_logs": list(bot.general_logs),
            "recently_active": warmed,
        }

    def all_status(self) -> dict[str, Any]:
        """GET /bot-orchestration/status data; bots being archived are left out, like the server."""
        with self._lock:
            now = self._advance()
            return {
                bot.name: {**self._status_of(bot, now), "source": bot.source}
                for bot in self._bots.values()
                if self._listed(bot, now)
            }

    def bot_status(self, name: str) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            bot = self._bots.get(name)
            if bot is None or not (bot.stopping_until is not None or self._listed(bot, now)):
                return {"status": "not_found", "error": f"Bot {name} not found"}
            return self._status_of(bot, now)

    def bot_history(self, name: str, timeout: float) -> dict[str, Any]:
        with self._lock:
            now = self._advance()
            bot = self._live_bot(name, now)
            if bot is None:
                return {"success": False, "message": f"Bot {name} not found"}
            if now < bot.warmup_until:  # not listening to MQTT yet
                return {
                    "success": False,
                    "message": f"No response received from {name} within {timeout} seconds",
                    "timeout": True,
                }
            return {
                "success": True,
                "data": {
                    "header": {"timestamp": time.time(), "reply_to": f"hbot/{name}/history"},
                    "data": {"status": 200, "msg": "", "trades": []},
                },
            }

    # ------------------------------------------------------- stored performance (server DB)
    def dump_performance(self, at: datetime | None = None) -> int:
        """What the real server's 5-minute dump loop stores: one snapshot per controller of
        every live bot (not stopping), stamped `at` (UTC; default now). Tests call it to build
        Hummingbot's own history; returns how many snapshots were stored."""
        with self._lock:
            now = self._advance()
            stamp = at or utc_now()
            if stamp.tzinfo is None:  # naive means UTC
                stamp = stamp.replace(tzinfo=UTC)
            stored = 0
            for bot in self._bots.values():
                if not bot.live or bot.stopping_until is not None:
                    continue
                for controller, report in self._status_of(bot, now)["performance"].items():
                    self._performance_dumps.append({
                        "timestamp": stamp.isoformat(), "bot_name": bot.name,
                        "controller_id": controller, "status": report["status"],
                        "performance": report["performance"], "custom_info": {}})
                    stored += 1
            return stored

    def performance_history(self, *, bot_name: str | None, controller_id: str | None,
                            limit: int, cursor: str | None, start: datetime | None,
                            end: datetime | None, interval_minutes: int):
        """GET /bot-orchestration/controller-performance-history, as the server's repository
        answers it: newest first, `limit` after sampling one row per interval, a cursor."""
        with self._lock:
            rows = []
            for row in reversed(self._performance_dumps):
                at = datetime.fromisoformat(row["timestamp"])
                if (bot_name and row["bot_name"] != bot_name) or (
                        controller_id and row["controller_id"] != controller_id):
                    continue
                if (start and at < start) or (end and at > end):
                    continue
                if cursor and at >= datetime.fromisoformat(cursor.replace("Z", "+00:00")):
                    continue
                rows.append(row)
            rows = rows[: limit * max(1, interval_minutes // 5) + 1]
            sampled, last = [], None
            for row in rows:
                at = datetime.fromisoformat(row["timestamp"])
                if last is None or interval_minutes <= 5 or \
                        (last - at).total_seconds() / 60 >= interval_minutes:
                    sampled.append(json.loads(json.dumps(row)))
                    last = at
            has_more = len(sampled) > limit
            sampled = sampled[:limit]
            return sampled, (sampled[-1]["timestamp"] if has_more and sampled else None), has_more

    def start_bot(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._bot_calls[("start", name)] += 1
            now = self._advance()
            bot = self._live_bot(name, now)
            if bot is None:
                return {"success": False, "message": f"Bot {name} not found"}
            if bot.stopping_until is None and not bot.trading:
                bot.trading = True
                bot.started_at = self.clock()  # Hummingbot counts a new run from zero
                bot.log("INFO", "Start command received: resuming controllers")
            return {"success": True}

    def stop_bot(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._bot_calls[("stop", name)] += 1
            now = self._advance()
            bot = self._live_bot(name, now)
            if bot is None:
                return {"success": False, "message": f"Bot {name} not found"}
            final_status = self._status_of(bot, now)  # captured before the reports are cleared
            if bot.stopping_until is None:
                bot.trading = False
                bot.log("INFO", "Stop command received: stopping controllers")
            self._mark_run_stopped(name, final_status)
            return {"success": True}

    def stop_and_archive(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._bot_calls[("stop-archive", name)] += 1
            now = self._advance()
            bot = self._live_bot(name, now)
            if bot is None:
                active = [b.name for b in self._bots.values() if self._live_bot(b.name, now)]
                return {
                    "status": "error",
                    "message": (
                        f"Bot '{name}' not found in active bots. "
                        f"Active bots: {active}. Cannot perform graceful shutdown."
                    ),
                    "details": {
                        "input_name": name,
                        "actual_bot_name": name,
                        "container_name": name,
                        "active_bots": active,
                        "reason": "Bot must be actively managed via MQTT for graceful shutdown",
                    },
                }
            if bot.stopping_until is None:
                self._mark_run_stopped(name, self._status_of(bot, now))
                bot.trading = False
                # Leaving the live set clears what the server kept from its MQTT messages.
                bot.error_logs.clear()
                bot.general_logs.clear()
                bot.stopping_until = now + self.settings.stopping_seconds
                if bot.source == "mqtt":  # then it tries to stop a container that is not there
                    bot.stopping_until += self.settings.container_retry_seconds
            return {
                "status": "success",
                "message": f"Stop and archive process started for bot {name}",
                "details": {
                    "input_name": name,
                    "actual_bot_name": name,
                    "container_name": name,
                    "process": (
                        "The bot will be gracefully stopped, archived, and removed in the "
                        "background. This process typically takes 20-30 seconds."
                    ),
                },
            }

    def _mark_run_stopped(self, name: str, final_status: dict[str, Any]) -> None:
        # The server only touches a run that is still CREATED/RUNNING.
        run = self._latest_run(name)
        if run is not None and run.run_status in ("CREATED", "RUNNING"):
            run.run_status = "STOPPED"
            run.stopped_at = utc_now()
            run.final_status = final_status

    def deploy(
        self,
        *,
        instance_name: str,
        credentials_profile: str,
        controllers_config: list[str] | None,
        body: dict[str, Any],
        docker_failure: str | None = None,
    ) -> dict[str, Any]:
        """Both deploy routes. Raises FileNotFoundError for an unknown credentials profile."""
        with self._lock:
            self._bot_calls[("deploy", instance_name)] += 1
            self._advance()
            if credentials_profile not in self._accounts:
                raise FileNotFoundError(
                    f"[Errno 2] No such file or directory: 'bots/credentials/{credentials_profile}'"
                )
            unique = self.timestamped(instance_name)
            if docker_failure is not None:
                return {"success": False, "message": docker_failure.replace("{name}", unique)}
            if unique in self._container_names():
                return {"success": False, "message": docker_conflict_message(unique)}
            image = body.get("image") or DEFAULT_IMAGE
            is_controller = controllers_config is not None
            config_name = f"{unique}.yml" if is_controller else body.get("script_config")
            self._new_bot(
                unique,
                credentials_profile,
                controllers=controllers_config or (),
                script="v2_with_controllers.py" if is_controller else body.get("script"),
                image=image,
                warm=False,
                # The container gets only SCRIPT_CONFIG; `script` is just recorded in the run.
                runs_script=is_controller or bool(config_name),
            )
            deployment_config = {**body, "instance_name": unique, "image": image}
            if is_controller:
                deployment_config["script_config"] = config_name
            self._add_run(
                unique,
                strategy_type="controller" if is_controller else "script",
                strategy_name="v2_with_controllers"
                if is_controller
                else (body.get("script") or "default"),
                config_name=config_name,
                account=credentials_profile,
                image=image,
                deployment_config=deployment_config,
            )
            reply: dict[str, Any] = {
                "success": True,
                "message": f"Instance {unique} created successfully.",
            }
            if is_controller:
                reply["script_config_generated"] = config_name
                reply["controllers_deployed"] = list(controllers_config or [])
            reply["unique_instance_name"] = unique
            return reply

    def _add_run(
        self,
        bot_name: str,
        *,
        strategy_type: str,
        strategy_name: str,
        config_name: str | None,
        account: str,
        image: str,
        deployment_config: dict[str, Any],
        deployed_at: datetime | None = None,
    ) -> BotRunRecord:
        run = BotRunRecord(
            id=self._next_run_id,
            bot_name=bot_name,
            deployed_at=deployed_at or utc_now(),
            strategy_type=strategy_type,
            strategy_name=strategy_name,
            config_name=config_name,
            account_name=account,
            image_version=image,
            deployment_config=deployment_config,
        )
        self._next_run_id += 1
        self._runs.append(run)
        return run

    def _latest_run(self, bot_name: str) -> BotRunRecord | None:
        runs = [r for r in self._runs if r.bot_name == bot_name]
        return max(runs, key=lambda r: (r.deployed_at, r.id)) if runs else None

    def bot_runs(self, filters: dict[str, str | None], limit: int, offset: int) -> list[dict]:
        with self._lock:
            self._advance()
            runs = [
                run
                for run in self._runs
                if all(
                    value is None or value == "" or getattr(run, key) == value
                    for key, value in filters.items()
                )
            ]
            runs.sort(key=lambda r: (r.deployed_at, r.id), reverse=True)
            return [run.to_json() for run in runs[offset : offset + limit if limit >= 0 else None]]

    def bot_run(self, run_id: int) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            return next((r.to_json() for r in self._runs if r.id == run_id), None)

    def delete_bot_run(self, run_id: int) -> dict[str, Any] | None:
        """DELETE /bot-orchestration/bot-runs/{id}: forget the record (the bot is untouched)."""
        with self._lock:
            run = next((r for r in self._runs if r.id == run_id), None)
            if run is None:
                return None
            self._runs.remove(run)
            # The simulator keeps no archived folders, so there is never one to delete.
            return {"bot_name": run.bot_name, "archived_folder_deleted": False}

    # ----------------------------------------------------------------- seeding (control)
    def seed_bot(
        self,
        name: str,
        *,
        account: str = MASTER_ACCOUNT,
        controllers: Iterable[str] | None = None,
        script: str | None = None,
        image: str = DEFAULT_IMAGE,
        legacy: bool = False,
        timestamped: bool = False,
        warm: bool = True,
        trading: bool = True,
        with_run: bool | None = None,
        age_seconds: float = 3600.0,
        source: str = "docker",
    ) -> str:
        """Put a live bot in place as if it had been deployed earlier; returns its live name.

        `legacy` names it `hummingbot-<name>` like servers before mid-2025 did (no bot-run by
        default); `timestamped` appends the deploy timestamp like the current server does.
        `source="mqtt"`: a bot this server did not start (by hand, by another server, before a
        rebuild): no container, no bot-run, known only from its MQTT messages.
        """
        if not name or not NAME_PATTERN.match(name):
            raise SimulatorError(f"bad bot name {name!r}")
        if source not in ("docker", "mqtt"):
            raise SimulatorError("source must be docker or mqtt")
        if source == "mqtt" and with_run:
            raise SimulatorError("an MQTT-only bot has no bot-run")
        controllers = list(controllers or [])
        if controllers and script:
            raise SimulatorError("a bot has controllers or a script, not both")
        with self._lock:
            self._advance()
            live_name = f"hummingbot-{name}" if legacy else name
            if timestamped:
                live_name = self.timestamped(live_name)
            if live_name in self._container_names():
                raise SimulatorError(f"bot {live_name!r} already exists")
            if account not in self._accounts:
                self._accounts.append(account)
            bot = self._new_bot(
                live_name,
                account,
                controllers=controllers,
                script=script if not controllers else "v2_with_controllers.py",
                image=image,
                warm=warm,
                source=source,
            )
            bot.trading = trading
            if with_run if with_run is not None else not (legacy or source == "mqtt"):
                is_controller = bool(controllers)
                config_name = f"{live_name}.yml" if is_controller else None
                deployment_config: dict[str, Any] = {
                    "instance_name": live_name,
                    "credentials_profile": account,
                    "image": image,
                    "script_config": config_name,
                    "headless": False,
                }
                if is_controller:
                    deployment_config["controllers_config"] = controllers
                else:
                    deployment_config["script"] = script
                self._add_run(
                    live_name,
                    strategy_type="controller" if is_controller else "script",
                    strategy_name="v2_with_controllers" if is_controller else (script or "default"),
                    config_name=config_name,
                    account=account,
                    image=image,
                    deployment_config=deployment_config,
                    deployed_at=utc_now() - timedelta(seconds=age_seconds),
                )
            return live_name

    def exit_bot(self, name: str) -> None:
        """The bot's container exits on its own (crash): listed as exited at once, and in
        /status with its last status while the server still counts its last MQTT message."""
        with self._lock:
            now = self._advance()
            bot = self._bots.get(name)
            if bot is None:
                raise SimulatorError(f"no bot {name!r}")
            bot.container_status = "exited"
            bot.stopping_until = None
            bot.heard_until = now + self.settings.mqtt_linger_seconds if bot.announced else None

    def restart(self) -> None:
        """The API server restarts: every log line it kept in memory is lost. Bots that
        reported their start-up lines before never send them again. (Combine with the
        `unreachable` fault for the seconds the server is down.)"""
        with self._lock:
            self._advance()
            for bot in self._bots.values():
                bot.error_logs.clear()
                bot.general_logs.clear()

    def add_log(self, name: str, level: str, msg: str) -> None:
        with self._lock:
            self._advance()
            bot = self._bots.get(name)
            if bot is None:
                raise SimulatorError(f"no bot {name!r}")
            bot.log(level, msg)

    def _seed_demo(self) -> None:
        if "client_sharp" not in self._accounts:
            self._accounts.append("client_sharp")
        stamp = (datetime.now() - timedelta(hours=2)).strftime("%Y%m%d-%H%M%S")
        self.seed_bot(f"pmm-btc-{stamp}", controllers=["pmm_btc_1"], age_seconds=7200)
        self.seed_bot(f"simple-pmm-{stamp}", script="simple_pmm.py", age_seconds=7200)
        self.seed_bot(
            f"sharp-grid-{stamp}",
            account="client_sharp",
            controllers=["grid_eth_1", "grid_eth_2"],
            age_seconds=7200,
        )
        self.seed_bot(
            f"sharp-twap-{stamp}", account="client_sharp", script="twap.py", age_seconds=7200
        )

    # ------------------------------------------------------------------- accounts & configs
    def accounts(self) -> list[str]:
        with self._lock:
            return list(self._accounts)

    def add_account(self, name: str) -> bool:
        with self._lock:
            if name in self._accounts:
                return False
            self._accounts.append(name)
            return True

    def controller_configs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(c)) for c in self._configs.values()]

    def controller_config(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            config = self._configs.get(name)
            return json.loads(json.dumps(config)) if config is not None else None

    def save_controller_config(self, name: str, config: dict[str, Any]) -> None:
        with self._lock:
            self._configs[name] = json.loads(json.dumps(config))

    def delete_controller_config(self, name: str) -> bool:
        with self._lock:
            return self._configs.pop(name, None) is not None

    def bot_controller_configs(self, bot_name: str) -> list[dict[str, Any]] | None:
        """The bot's instance directory exists while its container exists (running or exited)."""
        with self._lock:
            self._advance()
            bot = self._bots.get(bot_name)
            if bot is None or bot.container_status in ("none", "removed"):
                return None  # no instance directory on this server
            return [json.loads(json.dumps(c)) for c in bot.live_configs.values()]

    def update_bot_controller_config(
        self, bot_name: str, controller: str, changes: dict[str, Any]
    ) -> str | None:
        """Merge into a bot's live controller config; returns an error detail or None."""
        with self._lock:
            self._advance()
            bot = self._bots.get(bot_name)
            if bot is None or bot.container_status in ("none", "removed"):
                return f"Bot '{bot_name}' not found"
            config = bot.live_configs.get(controller)
            if config is None:
                return f"Controller configuration '{controller}' not found for bot '{bot_name}'"
            config.update(json.loads(json.dumps(changes)))
            return None

    # ---------------------------------------------------------------------------- docker
    def containers(self, status: str, name_filter: str | None) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            rows: list[dict[str, Any]] = []
            if status == "running":
                rows.extend(
                    {
                        "id": f"{zlib.crc32(name.encode()):08x}" * 8,
                        "name": name,
                        "status": "running",
                        "image": image,
                    }
                    for name, image in INFRA_CONTAINERS
                )
            rows.extend(
                {"id": b.container_id, "name": b.name, "status": status, "image": b.image}
                for b in self._bots.values()
                if b.container_status == status
            )
            if name_filter:
                rows = [r for r in rows if name_filter.lower() in r["name"].lower()]
            return rows

    # ------------------------------------------------------------------------ persistence
    def saved(self) -> dict[str, Any]:
        """What a real server keeps across its own restart: containers (with their names,
        accounts and controllers), bot-runs, accounts and controller configs. Faults, counters
        and settings are this process's business and are not saved."""
        with self._lock:
            now = self._advance()
            return {
                "version": 1,
                "accounts": list(self._accounts),
                "configs": json.loads(json.dumps(self._configs)),
                "next_run_id": self._next_run_id,
                "bots": [
                    {
                        "name": b.name, "account": b.account, "kind": b.kind,
                        "controllers": b.controllers, "script": b.script, "image": b.image,
                        "container_id": b.container_id, "perf_seed": b.perf_seed,
                        "age_seconds": now - b.started_at, "trading": b.trading,
                        "container_status": b.container_status, "source": b.source,
                        "runs_script": b.runs_script,
                        "heard_for": None if b.heard_until is None else b.heard_until - now,
                        "live_configs": json.loads(json.dumps(b.live_configs)),
                        "error_logs": list(b.error_logs), "general_logs": list(b.general_logs),
                    }
                    # A bot half-way through stop-and-archive is gone once the server is back,
                    # and so is an archived one.
                    for b in self._bots.values()
                    if b.stopping_until is None and b.container_status != "removed"
                ],
                "runs": [
                    {**run.to_json(), "deployment_config": run.deployment_config,
                     "final_status": run.final_status}
                    for run in self._runs
                ],
            }

    def restore(self, saved: dict[str, Any]) -> None:
        """Replace bots, runs, accounts and configs with `saved()`'s output. Bots come back
        warmed up (their Hummingbot reconnected while nobody watched)."""
        with self._lock:
            now = self.clock()
            self._accounts = list(saved["accounts"])
            self._configs = json.loads(json.dumps(saved["configs"]))
            self._next_run_id = int(saved["next_run_id"])
            self._bots = {}
            for raw in saved["bots"]:
                bot = SimBot(
                    name=raw["name"], account=raw["account"], kind=raw["kind"],
                    controllers=list(raw["controllers"]), script=raw["script"],
                    image=raw["image"], container_id=raw["container_id"],
                    started_at=now - float(raw["age_seconds"]), warmup_until=now,
                    perf_seed=int(raw["perf_seed"]), live_configs=raw["live_configs"],
                    trading=bool(raw["trading"]), container_status=raw["container_status"],
                    source=raw.get("source", "docker"), appears_at=now,
                    heard_until=None if raw.get("heard_for") is None
                    else now + float(raw["heard_for"]),
                    runs_script=bool(raw.get("runs_script", True)), announced=True,
                )
                bot.error_logs.extend(raw["error_logs"])
                bot.general_logs.extend(raw["general_logs"])
                self._bots[bot.name] = bot
            self._runs = [
                BotRunRecord(
                    id=raw["id"], bot_name=raw["bot_name"],
                    deployed_at=datetime.fromisoformat(raw["deployed_at"]),
                    strategy_type=raw["strategy_type"], strategy_name=raw["strategy_name"],
                    config_name=raw["config_name"], account_name=raw["account_name"],
                    image_version=raw["image_version"],
                    deployment_config=raw["deployment_config"],
                    stopped_at=datetime.fromisoformat(raw["stopped_at"])
                    if raw["stopped_at"] else None,
                    deployment_status=raw["deployment_status"], run_status=raw["run_status"],
                    final_status=raw["final_status"], error_message=raw["error_message"],
                )
                for raw in saved["runs"]
            ]

    def snapshot(self) -> dict[str, Any]:
        """Everything a person debugging a test wants to see (GET /_simulator/)."""
        with self._lock:
            now = self._advance()
            return {
                "settings": self.settings.to_dict(),
                "faults": self.faults(),
                "accounts": list(self._accounts),
                "bots": {
                    b.name: {
                        "account": b.account,
                        "kind": b.kind,
                        "controllers": b.controllers,
                        "script": b.script,
                        "container_status": b.container_status,
                        "source": b.source,
                        "listed": self._listed(b, now),
                        "runs_script": b.runs_script,
                        "trading": b.trading,
                        "status": self._status_of(b, now)["status"],
                    }
                    for b in self._bots.values()
                },
                "bot_runs": len(self._runs),
                "request_counts": dict(self._counts),
            }


DOCKER_DOWN_MESSAGE = (
    "Error while fetching server API version: ('Connection aborted.', "
    "FileNotFoundError(2, 'No such file or directory'))"
)


def docker_conflict_message(name: str) -> str:
    container = f"{zlib.crc32(name.encode()):08x}" * 8
    return (
        f"409 Client Error for http+docker://localhost/v1.47/containers/create?name={name}: "
        f'Conflict ("Conflict. The container name "/{name}" is already in use by container '
        f'"{container}". You have to remove (or rename) that container to be able to reuse '
        'that name.")'
    )
