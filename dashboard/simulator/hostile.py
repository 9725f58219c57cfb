"""A hostile Hummingbot, for tests: the simulator's answers with attacker-chosen text in them.

Whoever controls (or impersonates) the Hummingbot API chooses every name, log line, controller
name, error and bot-run the dashboard shows. `HostileHummingbot` stands in front of a running
simulator (or any Hummingbot API), forwards each request to it and poisons what comes back,
keeping the real protocol's paths and envelopes:

- `/bot-orchestration/status` also lists bots whose names break Hummingbot's own rule
  (`^[A-Za-z0-9_-]+$`): path traversals toward the JSON API and the action URLs, an attribute
  break-out, `..`;
- every reported bot gets log lines, a controller name, an `error` and a `source` carrying
  htmx markup that would deploy, edit, archive or restore other bots if it were ever processed;
- bot-runs carry the same markup in their strategy, error and deploy body; live controller
  configs carry it in a key and a value; one bot's configs answer HTTP 500 with it.

It records every request it receives (`requests`), so a test can assert that the dashboard
(and a browser looking at it) never sent anything beyond its reads.

    hostile = start_hostile(simulator.url, victim="sharp_mm1", others=["other_mm1", "other_mm2"])
    hostile.url, hostile.requests, hostile.stop()
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

BOT_STATUS = re.compile(r"^/bot-orchestration/([^/]+)/status$")
BOT_CONFIGS = re.compile(r"^/controllers/bots/([^/]+)/configs$")
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "content-encoding",
              "keep-alive"}


def markup(victim: str, others: Iterable[str]) -> list[str]:
    """Elements htmx would act on at once (`hx-trigger=load`) if it ever processed them."""
    others = list(others) or [victim]
    lines = [
        f'<div hx-get="/api/bots/{victim}" hx-trigger="load" hx-swap="outerHTML">x</div>',
        f'<form hx-post="/bots/{victim}/deploy" hx-trigger="load">'
        '<input name="mode" value="script"></form>',
        '<img src="x" onerror="document.title=\'pwned\'">',
        "<script>document.title='pwned'</script>",
    ]
    for other in others:
        lines += [
            f'<form hx-post="/bots/{other}/edit" hx-trigger="load">'
            '<input name="account_identifier" value="client_sharp"></form>',
            f'<form hx-post="/bots/{other}/deploy" hx-trigger="load"></form>',
            f'<button hx-post="/bots/{other}/archive" hx-trigger="load">archive</button>',
            f'<a hx-post="/recovery/bots/{other}/restore" hx-trigger="load">restore</a>',
        ]
    return lines


def hostile_names(victim: str, others: Iterable[str]) -> list[str]:
    """Live bot names that break Hummingbot's own rule."""
    other = next(iter(others), victim)
    return [
        f"zz/../../../api/bots/{victim}",
        f"zz/../../../bots/{other}/archive",
        f'x" hx-post="/bots/{other}/deploy" hx-trigger="load',
        "..",
    ]


@dataclass
class HostileHummingbot:
    """A WSGI app: forward to `upstream`, poison the answer, remember the request."""

    upstream: str
    victim: str
    others: list[str]
    failing_configs: set[str] = field(default_factory=set)  # bots whose configs answer 500
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        self.markup = markup(self.victim, self.others)
        self.names = hostile_names(self.victim, self.others)
        self._lock = threading.Lock()
        self._session = requests.Session()

    # ------------------------------------------------------------------------------ WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((request.method, request.path))
        return self._answer(request)(environ, start_response)

    def posts(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, p) for m, p in self.requests if m != "GET"]

    def _answer(self, request: Request) -> Response:
        match = BOT_CONFIGS.match(request.path)
        if request.method == "GET" and match and match.group(1) in self.failing_configs:
            return _json({"detail": self.markup[1]}, 500)
        target = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        upstream = self._session.request(
            request.method, self.upstream + target,
            data=request.get_data(), timeout=30, allow_redirects=False,
            headers={k: v for k, v in request.headers.items()
                     if k.lower() not in HOP_BY_HOP and k.lower() != "host"})
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        if request.method != "GET" or upstream.status_code != 200 \
                or "json" not in upstream.headers.get("Content-Type", ""):
            return Response(upstream.content, upstream.status_code, headers)
        body = self._poison(request, upstream.json())
        return Response(json.dumps(body), 200, headers)

    # ------------------------------------------------------------------------ poisoning
    def _poison(self, request: Request, body: Any) -> Any:
        path = request.path
        if path == "/bot-orchestration/status" and isinstance(body.get("data"), dict):
            for entry in body["data"].values():
                self._poison_bot(entry)
            for name in self.names:
                body["data"][name] = self._poison_bot({
                    "status": "running", "performance": {}, "error_logs": [],
                    "general_logs": [], "recently_active": True, "source": "docker"})
        elif BOT_STATUS.match(path) and isinstance(body.get("data"), dict) \
                and body["data"].get("status") != "not_found":
            self._poison_bot(body["data"])
        elif path == "/bot-orchestration/bot-runs" and isinstance(body.get("data"), list):
            for run in body["data"]:
                self._poison_run(run)
        elif BOT_CONFIGS.match(path) and isinstance(body, list):
            for config in body:
                config[self.markup[0]] = self.markup[1]
                config["controller_name"] = self.markup[2]
        return body

    def _poison_bot(self, entry: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        lines = [{"level_name": "INFO", "msg": text, "timestamp": now} for text in self.markup]
        entry["general_logs"] = list(entry.get("general_logs") or []) + lines
        entry["error_logs"] = list(entry.get("error_logs") or []) + [
            {"level_name": self.markup[0], "msg": text, "timestamp": now}
            for text in self.markup]
        performance = entry.get("performance")
        if not isinstance(performance, dict):
            performance = entry["performance"] = {}
        performance[self.markup[1]] = {
            "status": self.markup[3],
            "performance": {"realized_pnl_quote": 1.0, "global_pnl_quote": 1.0,
                            "connector_name": self.markup[2], "trading_pair": "BTC-USDT"},
            "error": self.markup[4 % len(self.markup)],
            "custom_info": {"note": self.markup[0]},
        }
        entry["error"] = self.markup[-1]
        entry["source"] = self.markup[-2]
        return entry

    def _poison_run(self, run: dict[str, Any]) -> None:
        try:
            config = json.loads(run.get("deployment_config") or "{}")
        except ValueError:
            config = {}
        if not isinstance(config, dict):
            config = {}
        config.update(script=self.markup[1], script_config=self.markup[0],
                      image=self.markup[2])
        run.update(strategy_name=self.markup[1], error_message=self.markup[-1],
                   image_version=self.markup[2], deployment_config=json.dumps(config),
                   final_status=json.dumps({"error": self.markup[-1]}))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _json(payload: Any, status: int) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json")


@dataclass
class RunningHostile:
    app: HostileHummingbot
    url: str
    _server: Any
    _thread: threading.Thread

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.app.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_hostile(upstream: str, *, victim: str, others: Iterable[str],
                  failing_configs: Iterable[str] = (), host: str = "127.0.0.1"
                  ) -> RunningHostile:
    """Serve a HostileHummingbot in front of `upstream` on a free loopback port."""
    app = HostileHummingbot(upstream, victim, list(others), set(failing_configs))
    server = make_server(host, 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="hostile-hummingbot",
                              daemon=True)
    thread.start()
    return RunningHostile(app=app, url=f"http://{host}:{server.server_port}", _server=server,
                          _thread=thread)
