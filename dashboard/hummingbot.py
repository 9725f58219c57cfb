"""Client for the Hummingbot API: one method per call, typed results, one error family.

No Flask and no database here. Protocol facts (envelopes, quirks) are in
dashboard/simulator/HUMMINGBOT_API.md; the short version: HTTP 200 does not mean success, every
route family has its own envelope, deploys rename the bot and are not idempotent.

Errors (all `HummingbotError`, whose `str()` is safe to show a user: never credentials):

- `HummingbotUnreachable`: no connection (refused, DNS, connect timeout, a 502/503/504 from a
  tunnel or proxy).
- `HummingbotCircuitOpen(HummingbotUnreachable)`: the breaker is open; nothing was sent.
- `HummingbotTimeout`: connected and sent, no answer in time. For writes the outcome is unknown.
- `HummingbotAuthError`: 401/403.
- `HummingbotProtocolError`: an answer we cannot use (HTML, bad JSON, wrong shape, odd status).
- `HummingbotRejected`: the server said no (success:false, status:error, 4xx/5xx with detail),
  or we refused to send an invalid name.

Every error carries `request_sent`: False means the server cannot have acted on the call.
Only idempotent reads (GET) are retried, and only on Unreachable/Timeout.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

DEFAULT_IMAGE = "hummingbot/hummingbot:latest"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
USER_AGENT = "bot-management-dashboard"


# ----------------------------------------------------------------------------------- errors
class HummingbotError(Exception):
    """Base of every client error. `message` is user-safe.

    `request_sent` is False when the server cannot have acted on the call (refused before
    sending, breaker open, invalid input); True otherwise, e.g. a write that timed out.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        operation: str | None = None,
        request_sent: bool = True,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail  # the server's own payload (detail/message/details), if any
        self.operation = operation  # e.g. "GET /bot-orchestration/status"
        self.request_sent = request_sent

    def __str__(self) -> str:
        return self.message


class HummingbotUnreachable(HummingbotError):
    pass


class HummingbotCircuitOpen(HummingbotUnreachable):
    pass


class HummingbotTimeout(HummingbotError):
    pass


class HummingbotAuthError(HummingbotError):
    pass


class HummingbotProtocolError(HummingbotError):
    pass


class HummingbotRejected(HummingbotError):
    pass


# Failures that say "the server is not answering": retried for reads, counted by the breaker.
_NETWORK_ERRORS = (HummingbotUnreachable, HummingbotTimeout)


# ---------------------------------------------------------------------------------- breaker
class CircuitBreaker:
    """Stops calling a server that keeps not answering.

    Opens after `failure_threshold` consecutive unreachable/timeout failures (an answer of any
    kind, even an error, proves the server is there and resets the count). While open, calls
    fail at once. After `reset_after` seconds one call may probe (half-open): success closes
    the breaker, a network failure opens it again for another `reset_after`.
    Thread-safe; share one breaker between the clients of one server.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_started = 0.0

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._probing or self._clock() - self._opened_at >= self.reset_after:
                return "half_open"
            return "open"

    def retry_in(self) -> float:
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.reset_after - (self._clock() - self._opened_at))

    def before_call(self, where: str = "the Hummingbot API") -> None:
        """Raise HummingbotCircuitOpen unless a call may go out now."""
        with self._lock:
            if self._opened_at is None:
                return
            now = self._clock()
            waited = now - self._opened_at
            # One probe at a time; a probe that never reported back is replaced after a while.
            probe_lost = self._probing and now - self._probe_started >= self.reset_after
            if waited >= self.reset_after and (not self._probing or probe_lost):
                self._probing = True
                self._probe_started = now
                return
            retry_in = max(0.0, self.reset_after - waited)
        raise HummingbotCircuitOpen(
            f"{where} is not answering; not trying again for {retry_in:.0f}s "
            f"(after {self.failure_threshold} failed calls in a row)",
            request_sent=False,
        )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._probing = False


# ---------------------------------------------------------------------------------- results
def _number(value: Any) -> float | None:
    """A finite number, or None: NaN and infinity are no amount (and no JSON either)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _json_field(value: Any) -> dict[str, Any] | None:
    """deployment_config/final_status are JSON encoded as strings; tolerate null and garbage."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The server's stored times are UTC; a naive one (utcnow()) means UTC too.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class HealthInfo:
    name: str
    version: str
    status: str


@dataclass(frozen=True)
class LogLine:
    level: str
    msg: str
    timestamp: float | None

    @classmethod
    def from_payload(cls, payload: Any) -> LogLine:
        if not isinstance(payload, dict):
            return cls(level="INFO", msg=str(payload), timestamp=None)
        return cls(
            level=str(payload.get("level_name") or "INFO"),
            msg=str(payload.get("msg") or ""),
            timestamp=_number(payload.get("timestamp")),
        )


@dataclass(frozen=True)
class ControllerPerformance:
    name: str
    status: str
    realized_pnl_quote: float | None
    unrealized_pnl_quote: float | None
    global_pnl_quote: float | None
    global_pnl_pct: float | None
    volume_traded: float | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def performance(self) -> dict[str, Any]:
        perf = self.raw.get("performance")
        return perf if isinstance(perf, dict) else {}

    @property
    def is_empty(self) -> bool:
        """A V2 bot sends empty reports after stop-bot: the controller no longer trades."""
        return not self.performance

    @property
    def error(self) -> str | None:
        error = self.raw.get("error")
        return str(error) if error else None

    @classmethod
    def from_payload(cls, name: str, payload: Any) -> ControllerPerformance:
        raw = payload if isinstance(payload, dict) else {}
        perf = raw.get("performance") if isinstance(raw.get("performance"), dict) else {}
        return cls(
            name=name,
            status=str(raw.get("status") or "unknown"),
            realized_pnl_quote=_number(perf.get("realized_pnl_quote")),
            unrealized_pnl_quote=_number(perf.get("unrealized_pnl_quote")),
            global_pnl_quote=_number(perf.get("global_pnl_quote")),
            global_pnl_pct=_number(perf.get("global_pnl_pct")),
            volume_traded=_number(perf.get("volume_traded")),
            raw=raw,
        )


@dataclass(frozen=True)
class LiveBot:
    """One bot as Hummingbot reports it right now (only live bots are ever reported)."""

    name: str
    status: str  # running | idle | stopped | stopping | error
    controllers: dict[str, ControllerPerformance]
    error_logs: list[LogLine]
    general_logs: list[LogLine]
    recently_active: bool
    source: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def trading_stopped(self) -> bool:
        """Reports `running` but every controller's performance is empty: a V2 bot after
        stop-bot. Its container is alive; it does not trade."""
        return (
            self.status in ("running", "idle")
            and bool(self.controllers)
            and all(c.is_empty for c in self.controllers.values())
        )

    @property
    def is_trading(self) -> bool:
        return self.status in ("running", "idle") and not self.trading_stopped

    @property
    def error(self) -> str | None:
        error = self.raw.get("error")
        return str(error) if error else None

    @property
    def total_global_pnl_quote(self) -> float | None:
        values = [c.global_pnl_quote for c in self.controllers.values()]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    @property
    def total_volume_quote(self) -> float | None:
        values = [c.volume_traded for c in self.controllers.values()]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    @classmethod
    def from_payload(cls, name: str, payload: dict[str, Any]) -> LiveBot:
        performance = payload.get("performance")
        controllers = (
            {str(k): ControllerPerformance.from_payload(str(k), v) for k, v in performance.items()}
            if isinstance(performance, dict)
            else {}
        )
        return cls(
            name=name,
            status=str(payload.get("status") or "unknown"),
            controllers=controllers,
            error_logs=_log_lines(payload.get("error_logs")),
            general_logs=_log_lines(payload.get("general_logs")),
            recently_active=payload.get("recently_active") is True,
            source=payload.get("source") if isinstance(payload.get("source"), str) else None,
            raw=payload,
        )


def _log_lines(value: Any) -> list[LogLine]:
    return [LogLine.from_payload(item) for item in value] if isinstance(value, list) else []


@dataclass(frozen=True)
class DeployResult:
    instance_name: str  # the timestamped name Hummingbot really runs the bot under: store it
    message: str
    controllers_deployed: list[str]
    script_config_generated: str | None


@dataclass(frozen=True)
class BotRun:
    id: int | None
    bot_name: str
    instance_name: str | None
    account_name: str | None
    strategy_type: str | None
    strategy_name: str | None
    config_name: str | None
    image_version: str | None
    deployment_status: str | None  # DEPLOYED | FAILED | ARCHIVED
    run_status: str | None  # CREATED | STOPPED | ERROR (never RUNNING: do not use for liveness)
    deployed_at: datetime | None
    stopped_at: datetime | None
    deployment_config: dict[str, Any] | None
    final_status: dict[str, Any] | None
    error_message: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> BotRun:
        def text(key: str) -> str | None:
            value = payload.get(key)
            return value if isinstance(value, str) else None

        run_id = payload.get("id")
        return cls(
            id=run_id if isinstance(run_id, int) and not isinstance(run_id, bool) else None,
            bot_name=text("bot_name") or "",
            instance_name=text("instance_name"),
            account_name=text("account_name"),
            strategy_type=text("strategy_type"),
            strategy_name=text("strategy_name"),
            config_name=text("config_name"),
            image_version=text("image_version"),
            deployment_status=text("deployment_status"),
            run_status=text("run_status"),
            deployed_at=_timestamp(payload.get("deployed_at")),
            stopped_at=_timestamp(payload.get("stopped_at")),
            deployment_config=_json_field(payload.get("deployment_config")),
            final_status=_json_field(payload.get("final_status")),
            error_message=text("error_message"),
            raw=payload,
        )


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    status: str
    image: str


# ----------------------------------------------------------------------------------- client
@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any


_HTML_START = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<!--)", re.IGNORECASE)


class HummingbotClient:
    """Talks to one Hummingbot API. Owns a requests.Session; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        read_retries: int = 2,
        retry_backoff: float = 0.2,
        deploy_timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        breaker: CircuitBreaker | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.read_retries = max(0, read_retries)
        self.retry_backoff = retry_backoff
        # Creating a container can take longer than a status read; a deploy timeout is costly
        # (the outcome is unknown), so deploys get their own, longer budget.
        self.deploy_timeout = (
            deploy_timeout if deploy_timeout is not None else max(read_timeout, 30.0)
        )
        self.breaker = breaker
        self._where = f"Hummingbot API at {_safe_url(self.base_url)}"
        self.session = requests.Session()
        self.session.auth = (username, password)
        self.session.headers.update(
            {
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                # Any value makes ngrok's free tier skip its HTML browser-warning page.
                "ngrok-skip-browser-warning": "true",
            }
        )
        self.session.headers.update(dict(extra_headers or {}))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HummingbotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- the calls
    def health(self) -> HealthInfo:
        body = self._call("GET", "/").body
        payload = _expect_dict(body, "GET /", self._where)
        if not isinstance(payload.get("status"), str):
            raise self._shape("GET /", "has no status")
        return HealthInfo(
            name=str(payload.get("name") or ""),
            version=str(payload.get("version") or ""),
            status=payload["status"],
        )

    def status(self) -> dict[str, LiveBot]:
        """Every live bot by name (GET /bot-orchestration/status). Absent means not live."""
        op = "GET /bot-orchestration/status"
        data = self._data_envelope(self._call("GET", "/bot-orchestration/status").body, op)
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise self._shape(op, "data is not an object of bots")
        return {str(name): LiveBot.from_payload(str(name), bot) for name, bot in data.items()}

    def bot_status(self, name: str) -> LiveBot | None:
        """One bot's status, or None when Hummingbot does not know it (`not_found`)."""
        op = f"GET /bot-orchestration/{name}/status"
        path = f"/bot-orchestration/{_segment(name)}/status"
        data = self._data_envelope(self._call("GET", path).body, op)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self._shape(op, "data is not a bot status")
        if data["status"] == "not_found":
            return None
        return LiveBot.from_payload(name, data)

    def deploy_script(
        self,
        instance_name: str,
        credentials_profile: str,
        *,
        script: str | None = None,
        script_config: str | None = None,
        image: str = DEFAULT_IMAGE,
        headless: bool = False,
    ) -> DeployResult:
        """Create a script bot. Never retried: a retry would create a second bot."""
        _check_name(instance_name, "instance name")
        _check_name(credentials_profile, "account (credentials profile)")
        body: dict[str, Any] = {
            "instance_name": instance_name,
            "credentials_profile": credentials_profile,
            "image": image,
            "headless": headless,
        }
        if script is not None:
            body["script"] = script
        if script_config is not None:
            body["script_config"] = script_config
        return self._deploy("/bot-orchestration/deploy-v2-script", body)

    def deploy_controllers(
        self,
        instance_name: str,
        credentials_profile: str,
        controllers_config: list[str],
        *,
        max_global_drawdown_quote: float | None = None,
        max_controller_drawdown_quote: float | None = None,
        image: str = DEFAULT_IMAGE,
        headless: bool = False,
    ) -> DeployResult:
        """Create a V2 controllers bot. Never retried: a retry would create a second bot."""
        _check_name(instance_name, "instance name")
        _check_name(credentials_profile, "account (credentials profile)")
        if not controllers_config:
            raise HummingbotRejected(
                "At least one controller config is required.", request_sent=False
            )
        body: dict[str, Any] = {
            "instance_name": instance_name,
            "credentials_profile": credentials_profile,
            "controllers_config": list(controllers_config),
            "image": image,
            "headless": headless,
        }
        if max_global_drawdown_quote is not None:
            body["max_global_drawdown_quote"] = max_global_drawdown_quote
        if max_controller_drawdown_quote is not None:
            body["max_controller_drawdown_quote"] = max_controller_drawdown_quote
        return self._deploy("/bot-orchestration/deploy-v2-controllers", body)

    def start_bot(
        self,
        name: str,
        *,
        log_level: str | None = None,
        script: str | None = None,
        conf: str | None = None,
    ) -> None:
        """Ask a live bot to start trading. Success means the command was sent, not obeyed."""
        body = {
            "bot_name": name,
            "log_level": log_level,
            "script": script,
            "conf": conf,
            "async_backend": False,
        }
        reply = self._call("POST", "/bot-orchestration/start-bot", json_body=body)
        self._response_envelope(reply.body, "POST /bot-orchestration/start-bot")

    def stop_bot(self, name: str, *, skip_order_cancellation: bool = False) -> None:
        """Ask a live bot to stop trading; its container keeps running."""
        body = {
            "bot_name": name,
            "skip_order_cancellation": skip_order_cancellation,
            "async_backend": False,
        }
        reply = self._call("POST", "/bot-orchestration/stop-bot", json_body=body)
        self._response_envelope(reply.body, "POST /bot-orchestration/stop-bot")

    def stop_and_archive(
        self,
        name: str,
        *,
        skip_order_cancellation: bool = False,
        archive_locally: bool = True,
        s3_bucket: str | None = None,
    ) -> str:
        """Start stopping, removing and archiving a bot; returns the server's message.

        The server defaults skip_order_cancellation to true (orders left on the exchange), so
        we always send it. The reply only says the archive *started*: watch status/bot-runs.
        """
        op = "POST /bot-orchestration/stop-and-archive-bot"
        params: dict[str, str] = {
            "skip_order_cancellation": _flag(skip_order_cancellation),
            "archive_locally": _flag(archive_locally),
        }
        if s3_bucket:
            params["s3_bucket"] = s3_bucket
        path = f"/bot-orchestration/stop-and-archive-bot/{_segment(name)}"
        body = _expect_dict(self._call("POST", path, params=params).body, op, self._where)
        status = body.get("status")
        message = body.get("message") if isinstance(body.get("message"), str) else ""
        if status == "success":
            return message
        if status == "error":
            raise HummingbotRejected(
                message or f"Hummingbot refused to archive bot {name}.",
                detail=body.get("details"),
                operation=op,
            )
        raise self._shape(op, "has no success/error status")

    def bot_runs(
        self,
        *,
        bot_name: str | None = None,
        account_name: str | None = None,
        strategy_type: str | None = None,
        strategy_name: str | None = None,
        run_status: str | None = None,
        deployment_status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BotRun]:
        """One page of bot-runs, newest first. Filter it: unfiltered it can be megabytes."""
        op = "GET /bot-orchestration/bot-runs"
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        filters = {
            "bot_name": bot_name,
            "account_name": account_name,
            "strategy_type": strategy_type,
            "strategy_name": strategy_name,
            "run_status": run_status,
            "deployment_status": deployment_status,
        }
        params.update({k: v for k, v in filters.items() if v is not None})
        body = self._call("GET", "/bot-orchestration/bot-runs", params=params).body
        data = self._data_envelope(body, op)
        if not isinstance(data, list) or not all(isinstance(run, dict) for run in data):
            raise self._shape(op, "data is not a list of runs")
        return [BotRun.from_payload(run) for run in data]

    def controller_performance_history(
        self, bot_name: str, *, end_time: datetime | None = None, cursor: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page (newest first) of the performance snapshots Hummingbot's server stored for
        a bot (every 5 minutes while it ran), and the cursor of the next page or None. Servers
        from before mid-2026 lack the route: a HummingbotError like any other."""
        op = "GET /bot-orchestration/controller-performance-history"
        params: dict[str, Any] = {"bot_name": bot_name, "limit": limit, "interval": "5m"}
        if end_time is not None:
            params["end_time"] = end_time.isoformat()
        if cursor is not None:
            params["cursor"] = cursor
        body = self._call("GET", "/bot-orchestration/controller-performance-history",
                          params=params).body
        data = self._data_envelope(body, op)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise self._shape(op, "data is not a list of snapshots")
        pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
        next_cursor = pagination.get("next_cursor") if pagination.get("has_more") else None
        return data, next_cursor if isinstance(next_cursor, str) else None

    def accounts(self) -> list[str]:
        """Credentials profiles Hummingbot knows (our account identifiers)."""
        body = self._call("GET", "/accounts/").body
        if not isinstance(body, list) or not all(isinstance(a, str) for a in body):
            raise self._shape("GET /accounts/", "is not a list of names")
        return body

    def connectors(self) -> list[str]:
        """Connector names the server's hummingbot package supports (GET /connectors/)."""
        body = self._call("GET", "/connectors/").body
        if not isinstance(body, list) or not all(isinstance(c, str) for c in body):
            raise self._shape("GET /connectors/", "is not a list of names")
        return body

    def add_account(self, name: str) -> None:
        """Create a credentials profile; an existing one is HummingbotRejected."""
        _check_name(name, "account name")
        self._call("POST", "/accounts/add-account", params={"account_name": name}, ok=(200, 201))

    def controller_configs(self) -> list[dict[str, Any]]:
        body = self._call("GET", "/controllers/configs/").body
        if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
            raise self._shape("GET /controllers/configs/", "is not a list of configs")
        return body

    def bot_controller_configs(self, bot_name: str) -> list[dict[str, Any]] | None:
        """A deployed bot's live controller configs; None when Hummingbot has no such bot."""
        op = f"GET /controllers/bots/{bot_name}/configs"
        path = f"/controllers/bots/{_segment(bot_name)}/configs"
        reply = self._call("GET", path, passthrough=(404,))
        if reply.status == 404:
            if _detail(reply.body) == "Not Found":  # no such route: wrong URL, not a bot
                raise self._not_found_route(op)
            return None
        if not isinstance(reply.body, list) or not all(isinstance(c, dict) for c in reply.body):
            raise self._shape(op, "is not a list of configs")
        return reply.body

    def active_containers(self, name_filter: str | None = None) -> list[Container]:
        return self._containers("/docker/active-containers", name_filter)

    def exited_containers(self, name_filter: str | None = None) -> list[Container]:
        return self._containers("/docker/exited-containers", name_filter)

    # ------------------------------------------------------------------- shared handling
    def _deploy(self, path: str, body: dict[str, Any]) -> DeployResult:
        op = f"POST {path}"
        reply = self._call("POST", path, json_body=body, timeout=self.deploy_timeout)
        payload = _expect_dict(reply.body, op, self._where)
        if payload.get("success") is not True:
            if payload.get("success") is False:
                message = payload.get("message")
                raise HummingbotRejected(
                    f"Hummingbot could not create the bot: {message or 'no reason given'}",
                    detail=payload,
                    operation=op,
                )
            raise self._shape(op, "has no success flag")
        unique = payload.get("unique_instance_name")
        if not isinstance(unique, str) or not unique:
            raise self._shape(op, "has no unique_instance_name")
        deployed = payload.get("controllers_deployed")
        generated = payload.get("script_config_generated")
        return DeployResult(
            instance_name=unique,
            message=str(payload.get("message") or ""),
            controllers_deployed=[str(c) for c in deployed] if isinstance(deployed, list) else [],
            script_config_generated=generated if isinstance(generated, str) else None,
        )

    def _containers(self, path: str, name_filter: str | None) -> list[Container]:
        op = f"GET {path}"
        params = {"name_filter": name_filter} if name_filter else None
        body = self._call("GET", path, params=params).body
        if isinstance(body, str):  # Docker errors come back as a bare string with HTTP 200
            raise HummingbotProtocolError(
                f"{self._where} could not list containers: {body}", detail=body, operation=op
            )
        if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
            raise self._shape(op, "is not a list of containers")
        return [
            Container(
                id=str(c.get("id") or ""),
                name=str(c.get("name") or ""),
                status=str(c.get("status") or ""),
                image=str(c.get("image") or ""),
            )
            for c in body
        ]

    def _data_envelope(self, body: Any, op: str) -> Any:
        """`{"status": "success", "data": ...}`."""
        payload = _expect_dict(body, op, self._where)
        if payload.get("status") == "success" and "data" in payload:
            return payload["data"]
        if payload.get("status") == "error":
            raise HummingbotRejected(
                str(payload.get("message") or payload.get("error") or "Hummingbot said error"),
                detail=payload,
                operation=op,
            )
        raise self._shape(op, "is not a success/data envelope")

    def _response_envelope(self, body: Any, op: str) -> dict[str, Any]:
        """`{"status": "success", "response": {"success": bool, "message"?: str}}`."""
        payload = _expect_dict(body, op, self._where)
        response = payload.get("response")
        if payload.get("status") != "success" or not isinstance(response, dict):
            raise self._shape(op, "is not a success/response envelope")
        if response.get("success") is True:
            return response
        if response.get("success") is False:
            raise HummingbotRejected(
                str(response.get("message") or "Hummingbot refused the command."),
                detail=response,
                operation=op,
            )
        raise self._shape(op, "has no success flag")

    def _shape(self, op: str, problem: str) -> HummingbotProtocolError:
        return HummingbotProtocolError(
            f"{self._where} answered {op} with an unexpected shape: the reply {problem}. "
            "Is HUMMINGBOT_API_URL pointing at a compatible Hummingbot API?",
            operation=op,
        )

    def _not_found_route(self, op: str) -> HummingbotProtocolError:
        return HummingbotProtocolError(
            f"{self._where} has no route for {op} (HTTP 404): HUMMINGBOT_API_URL probably "
            "points at the wrong place, or the API version differs.",
            status_code=404,
            operation=op,
        )

    # ---------------------------------------------------------------------- transport
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200,),
        passthrough: tuple[int, ...] = (),
        timeout: float | None = None,
    ) -> _Reply:
        """One logical call: breaker check, retries for GET only, error mapping."""
        if self.breaker is not None:
            self.breaker.before_call(self._where)
        attempts = 1 + (self.read_retries if method == "GET" else 0)
        try:
            for attempt in range(attempts):
                try:
                    reply = self._send(method, path, params, json_body, ok, passthrough, timeout)
                    break
                except _NETWORK_ERRORS:
                    if attempt + 1 >= attempts:
                        raise
                    if self.retry_backoff > 0:
                        time.sleep(self.retry_backoff * (2**attempt))
        except _NETWORK_ERRORS:
            if self.breaker is not None:
                self.breaker.record_failure()
            raise
        except HummingbotError:
            # The server answered (even if with an error): it is reachable.
            if self.breaker is not None:
                self.breaker.record_success()
            raise
        if self.breaker is not None:
            self.breaker.record_success()
        return reply

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        ok: tuple[int, ...],
        passthrough: tuple[int, ...],
        timeout: float | None,
    ) -> _Reply:
        op = f"{method} {path}"
        url = self.base_url + path
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=(self.connect_timeout, timeout or self.read_timeout),
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            raise HummingbotUnreachable(
                f"{self._where} is unreachable: no connection within {self.connect_timeout:g}s.",
                operation=op,
                request_sent=False,
            ) from None
        except requests.ReadTimeout:
            raise HummingbotTimeout(
                f"{self._where} did not answer within {timeout or self.read_timeout:g}s.",
                operation=op,
            ) from None
        except requests.ConnectionError as exc:
            raise _connection_error(self._where, op, exc) from None
        except ValueError:
            # Nothing was sent: a port out of range, a host IDNA cannot encode, a header or
            # login outside Latin-1 (requests' InvalidURL and InvalidHeader are ValueErrors),
            # stored before the servers form refused them or set in the environment. This
            # server is unusable; the other servers and the pages are not.
            raise HummingbotUnreachable(
                f"{self._where} cannot be asked: its URL, headers or credentials cannot be "
                "sent (check the server's settings).", request_sent=False, operation=op
            ) from None
        except requests.RequestException:
            raise HummingbotUnreachable(
                f"{self._where} could not be reached.", request_sent=True, operation=op
            ) from None
        return self._interpret(response, op, ok, passthrough)

    def _interpret(
        self,
        response: requests.Response,
        op: str,
        ok: tuple[int, ...],
        passthrough: tuple[int, ...],
    ) -> _Reply:
        code = response.status_code
        if code in (401, 403):
            raise HummingbotAuthError(
                f"{self._where} refused our credentials (HTTP {code}): check "
                "HUMMINGBOT_API_USERNAME and HUMMINGBOT_API_PASSWORD.",
                status_code=code,
                detail=_detail(_try_json(response)),
                operation=op,
            )
        if code in (502, 503, 504):
            # A tunnel or proxy answering for a server that is down.
            raise HummingbotUnreachable(
                f"{self._where} is unreachable: the gateway in front of it answered HTTP {code}.",
                request_sent=True,
                status_code=code,
                operation=op,
            )
        if _looks_like_html(response):
            raise HummingbotProtocolError(
                _html_message(self._where, op, response), status_code=code, operation=op
            )
        body = _try_json(response)
        if code in ok or code in passthrough:
            if body is _INVALID:
                raise HummingbotProtocolError(
                    f"{self._where} sent invalid JSON for {op} "
                    f"(Content-Type: {response.headers.get('Content-Type') or 'none'}).",
                    status_code=code,
                    detail=response.text[:200],
                    operation=op,
                )
            return _Reply(code, body)
        server_says = _detail(body)
        if code == 404 and server_says == "Not Found":
            raise self._not_found_route(op)
        if code == 405 or (300 <= code < 400):
            raise HummingbotProtocolError(
                f"{self._where} answered {op} with HTTP {code}: wrong URL or API version?",
                status_code=code,
                operation=op,
            )
        if 400 <= code < 600:
            if server_says is None:
                server_says = (
                    "internal server error" if code >= 500 else f"request refused (HTTP {code})"
                )
            raise HummingbotRejected(
                f"Hummingbot rejected {op} (HTTP {code}): {server_says}",
                status_code=code,
                detail=body if body is not _INVALID else None,
                operation=op,
            )
        raise HummingbotProtocolError(
            f"{self._where} answered {op} with unexpected HTTP {code}.",
            status_code=code,
            operation=op,
        )


# ------------------------------------------------------------------------------ helpers
_INVALID = object()


def _try_json(response: requests.Response) -> Any:
    if not response.content:
        return _INVALID
    try:
        return response.json()
    except ValueError:
        return _INVALID


def _looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "text/html" in content_type or bool(_HTML_START.match(response.content[:200]))


def _html_message(where: str, op: str, response: requests.Response) -> str:
    text = response.text.lower()
    if "ngrok" in text:
        return (
            f"{where} answered {op} with an ngrok HTML page instead of JSON: the tunnel's "
            "browser-warning page or an ngrok error (tunnel offline?). Check the tunnel and "
            "HUMMINGBOT_API_URL; HUMMINGBOT_EXTRA_HEADERS can add headers the tunnel needs."
        )
    return (
        f"{where} answered {op} with an HTML page instead of JSON: HUMMINGBOT_API_URL "
        "probably points at a web site, a login page or a proxy rather than the Hummingbot API."
    )


def _detail(body: Any) -> str | None:
    """The server's own words from `{"detail": ...}` or `{"message": ...}`."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail", body.get("message"))
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return detail["message"]  # newer servers: {"detail": {"errors": [...], "message": ...}}
    if isinstance(detail, list):  # pydantic 422: [{"loc": [...], "msg": "..."}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query")]
                parts.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
        return "; ".join(parts) or None
    return None


def _expect_dict(body: Any, op: str, where: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HummingbotProtocolError(
            f"{where} answered {op} with an unexpected shape: expected an object, got "
            f"{type(body).__name__}. Is HUMMINGBOT_API_URL pointing at a compatible API?",
            operation=op,
        )
    return body


def _connection_error(where: str, op: str, exc: requests.ConnectionError) -> HummingbotError:
    text = repr(exc)
    if "NameResolutionError" in text or "Name or service not known" in text:
        reason, sent = "its host name does not resolve", False
    elif "NewConnectionError" in text or "Connection refused" in text:
        reason, sent = "connection refused", False
    else:  # reset or closed after the request went out: the server may have acted on it
        reason, sent = "the connection broke", True
    return HummingbotUnreachable(
        f"{where} is unreachable: {reason}.", request_sent=sent, operation=op
    )


def _check_name(value: str, what: str) -> None:
    # The real server answers a text/plain 500 to a bad name; refuse before sending.
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise HummingbotRejected(
            f"Invalid {what} {value!r}: use only letters, digits, '-' and '_'.",
            request_sent=False,
        )


def _segment(value: str) -> str:
    # Bot names go into the path; refuse anything that would change the path's meaning.
    if not value or "/" in value or value in (".", ".."):
        raise HummingbotRejected(f"Invalid bot name {value!r}.", request_sent=False)
    return requests.utils.quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _safe_url(url: str) -> str:
    """The URL without any user:password@ part, for messages."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # the request will fail too, and say so; the message must not
        return "(an unusable URL)"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# ----------------------------------------------------------------------------- factory
def client_from_settings(
    settings: Mapping[str, Any], *, breaker: CircuitBreaker | None = None
) -> HummingbotClient:
    """Build a client from a Flask config (or any mapping) with the HUMMINGBOT_* keys."""
    extra = settings.get("HUMMINGBOT_EXTRA_HEADERS") or {}
    if isinstance(extra, str):
        extra = json.loads(extra)
    if not isinstance(extra, dict):
        raise ValueError("HUMMINGBOT_EXTRA_HEADERS must be a JSON object")
    return HummingbotClient(
        settings.get("HUMMINGBOT_API_URL") or "http://localhost:8000",
        settings.get("HUMMINGBOT_API_USERNAME") or "",
        settings.get("HUMMINGBOT_API_PASSWORD") or "",
        connect_timeout=float(settings.get("HUMMINGBOT_CONNECT_TIMEOUT") or 2.0),
        read_timeout=float(settings.get("HUMMINGBOT_READ_TIMEOUT") or 5.0),
        deploy_timeout=float(settings.get("HUMMINGBOT_DEPLOY_TIMEOUT") or 30.0),
        extra_headers={str(k): str(v) for k, v in extra.items()},
        breaker=breaker,
    )
