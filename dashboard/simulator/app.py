"""Flask apps of the simulator: the Hummingbot API itself, and the control API under /_simulator/.

The API app reproduces the real server's paths, envelopes, status codes and quirks (see
HUMMINGBOT_API.md in this package). Routing is exact: no slash redirects, no merged slashes.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from .state import (
    API_VERSION,
    CONNECTORS,
    DOCKER_DOWN_MESSAGE,
    NAME_PATTERN,
    SimulatorError,
    SimulatorState,
)

CONTROL_PREFIX = "/_simulator"
JSON_TYPE = "application/json"
# Paths FastAPI serves without authentication.
PUBLIC_PATHS = frozenset({"/", "/docs", "/openapi.json"})
# Routes whose successful answer is a JSON list (wrong_shape then sends an object instead).
LIST_ENDPOINTS = frozenset(
    {
        "accounts",
        "connectors",
        "controller_configs",
        "bot_controller_configs",
        "active_containers",
        "exited_containers",
    }
)

NGROK_WARNING_PAGE = """<!DOCTYPE html>
<html class="h-full" lang="en-US" dir="ltr"><head><meta charset="utf-8">
<title>ngrok</title></head><body id="ngrok">
<div><h1>You are about to visit: sim-hummingbot.ngrok-free.dev</h1>
<p>Website IP: 127.0.0.1</p>
<p>To remove this page: set and send an <code>ngrok-skip-browser-warning</code> request header
with any value.</p><p>ERR_NGROK_6024</p></div></body></html>
"""
GENERIC_HTML_PAGE = """<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully
installed and working.</p></body></html>
"""
DEFAULT_DOCKER_ERROR = (
    "500 Server Error for http+docker://localhost/v1.47/containers/{name}/start: "
    'Internal Server Error ("failed to create task for container: failed to create shim task: '
    'OCI runtime create failed: runc create failed: unable to start container process")'
)


# --------------------------------------------------------------------------------- helpers
def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None):
    # Keep key order like FastAPI does (Flask would sort keys).
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype=JSON_TYPE, headers=headers)


def plain_500() -> Response:
    return Response("Internal Server Error", status=500, mimetype="text/plain")


def detail(message: Any, status: int, headers: dict[str, str] | None = None):
    return json_response({"detail": message}, status, headers)


class RequestInvalid(Exception):
    """A pydantic-style validation failure: answered 422, or 500 text/plain for a bad name."""

    def __init__(self, errors: list[dict[str, Any]], crash: bool = False):
        super().__init__("validation failed")
        self.errors = errors
        self.crash = crash


def _error(kind: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


_MISSING = object()


def read_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        raise RequestInvalid([_error("missing", ["body"], "Field required", None)])
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise RequestInvalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", 0],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(exc).split(":")[0]},
                }
            ]
        ) from None
    if not isinstance(body, dict):
        raise RequestInvalid(
            [
                _error(
                    "model_attributes_type",
                    ["body"],
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            ]
        )
    return body


def validate(body: dict[str, Any], spec: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """Check `body` against {field: (kind, default)}; default _MISSING means required.

    kinds: str, name (str matching the instance-name pattern), opt_str, bool, opt_float,
    list_str. Unknown fields are ignored, like pydantic's default.
    """
    errors: list[dict[str, Any]] = []
    crash = False
    clean: dict[str, Any] = {}
    for name, (kind, default) in spec.items():
        loc = ["body", name]
        value = body.get(name, _MISSING)
        if value is _MISSING or (value is None and default is _MISSING):
            if default is _MISSING:
                errors.append(_error("missing", loc, "Field required", body))
            else:
                clean[name] = default
            continue
        if kind in ("str", "name") and not isinstance(value, str):
            errors.append(_error("string_type", loc, "Input should be a valid string", value))
        elif kind == "name" and not NAME_PATTERN.match(value):
            # The real server's 422 handler crashes on this one: plain-text 500.
            crash = True
        elif kind == "opt_str" and value is not None and not isinstance(value, str):
            errors.append(_error("string_type", loc, "Input should be a valid string", value))
        elif kind == "bool" and not isinstance(value, bool):
            errors.append(_error("bool_type", loc, "Input should be a valid boolean", value))
        elif (
            kind == "opt_float"
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            errors.append(_error("float_type", loc, "Input should be a valid number", value))
        elif kind == "list_str" and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            errors.append(_error("list_type", loc, "Input should be a valid list", value))
        clean[name] = value
    if crash:
        raise RequestInvalid(errors, crash=True)
    if errors:
        raise RequestInvalid(errors)
    return clean


_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def query_bool(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise RequestInvalid(
        [_error("bool_parsing", ["query", name], "Input should be a valid boolean", raw)]
    )


def query_int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestInvalid(
            [
                _error(
                    "int_parsing",
                    ["query", name],
                    "Input should be a valid integer, unable to parse string as an integer",
                    raw,
                )
            ]
        ) from None


def query_float(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise RequestInvalid(
            [
                _error(
                    "float_parsing",
                    ["query", name],
                    "Input should be a valid number, unable to parse string as a number",
                    raw,
                )
            ]
        ) from None


def check_basic_auth(username: str, password: str) -> Response | None:
    """FastAPI HTTPBasic semantics: different detail for missing vs wrong credentials."""
    challenge = {"WWW-Authenticate": "Basic"}
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "basic":
        return detail("Not authenticated", 401, challenge)
    try:
        user, sep, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return detail("Invalid authentication credentials", 401, challenge)
    if not sep:
        return detail("Invalid authentication credentials", 401, challenge)
    good_user = secrets.compare_digest(user.encode(), username.encode())
    good_secret = secrets.compare_digest(secret.encode(), password.encode())
    if not (good_user and good_secret):
        return detail("Incorrect username or password", 401, challenge)
    return None


def is_control_path(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


# ------------------------------------------------------------------------------ API app
def create_api_app(state: SimulatorState, username: str, password: str) -> Flask:
    app = Flask("hummingbot_api_simulator")
    app.url_map.merge_slashes = False
    _install_error_handlers(app)

    def route(rule: str, endpoint: str, methods: list[str]):
        def register(view: Callable[..., Any]):
            app.add_url_rule(rule, endpoint, view, methods=methods, provide_automatic_options=False)
            return view

        return register

    @app.before_request
    def gatekeeper():
        # Werkzeug answers "/accounts" with a redirect to "/accounts/"; the real API answers 404.
        if isinstance(request.routing_exception, RequestRedirect):
            request.routing_exception = NotFound()
        if is_control_path(request.path):
            return None
        state.count_request(request.method, request.path)
        g.faults = faults = state.take_faults(request.method, request.path)
        if "slow" in faults:
            state.sleep(state.slow_seconds(faults["slow"]))
        if "unauthorized" in faults:
            return detail("Incorrect username or password", 401, {"WWW-Authenticate": "Basic"})
        if "error500" in faults:
            fault = faults["error500"]
            if fault.plain:
                return plain_500()
            return detail(fault.message or "Internal error (simulated fault)", 500)
        if "html" in faults:
            return Response(GENERIC_HTML_PAGE, status=200, mimetype="text/html")
        if "ngrok_warning" in faults and (
            faults["ngrok_warning"].ignore_header
            or "ngrok-skip-browser-warning" not in request.headers
        ):
            return Response(NGROK_WARNING_PAGE, status=200, mimetype="text/html")
        if "malformed_json" in faults:
            return Response('{"status": "success", "data": {"unterminated', mimetype=JSON_TYPE)
        if "docker_down" in faults and request.path.startswith("/docker/"):
            # The server turns DockerException into a bare string (or false), still HTTP 200.
            return json_response(
                False if request.path == "/docker/running" else DOCKER_DOWN_MESSAGE
            )
        if "wrong_shape" in faults:
            if request.endpoint in LIST_ENDPOINTS:
                return json_response({"unexpected": "shape"})
            return json_response(["unexpected", "shape"])
        # Unknown paths and wrong methods are answered before authentication, as in FastAPI.
        if request.routing_exception is None and request.path not in PUBLIC_PATHS:
            return check_basic_auth(username, password)
        return None

    # -- health
    @route("/", "health", ["GET"])
    def health():
        return json_response(
            {"name": "Hummingbot API", "version": API_VERSION, "status": "running"}
        )

    # -- bot orchestration
    @route("/bot-orchestration/status", "all_status", ["GET"])
    def all_status():
        return json_response({"status": "success", "data": state.all_status()})

    @route("/bot-orchestration/<bot_name>/status", "bot_status", ["GET"])
    def bot_status(bot_name: str):
        return json_response({"status": "success", "data": state.bot_status(bot_name)})

    @route("/bot-orchestration/<bot_name>/history", "bot_history", ["GET"])
    def bot_history(bot_name: str):
        query_int("days", 0)
        query_bool("verbose", False)
        timeout = query_float("timeout", 30.0)
        return json_response(
            {"status": "success", "response": state.bot_history(bot_name, timeout)}
        )

    @route("/bot-orchestration/start-bot", "start_bot", ["POST"])
    def start_bot():
        action = validate(
            read_body(),
            {
                "bot_name": ("str", _MISSING),
                "log_level": ("opt_str", None),
                "script": ("opt_str", None),
                "conf": ("opt_str", None),
                "async_backend": ("bool", False),
            },
        )
        return json_response({"status": "success", "response": state.start_bot(action["bot_name"])})

    @route("/bot-orchestration/stop-bot", "stop_bot", ["POST"])
    def stop_bot():
        action = validate(
            read_body(),
            {
                "bot_name": ("str", _MISSING),
                "skip_order_cancellation": ("bool", False),
                "async_backend": ("bool", False),
            },
        )
        return json_response({"status": "success", "response": state.stop_bot(action["bot_name"])})

    @route("/bot-orchestration/stop-and-archive-bot/<bot_name>", "stop_and_archive", ["POST"])
    def stop_and_archive(bot_name: str):
        query_bool("skip_order_cancellation", True)  # default true on the server!
        query_bool("archive_locally", True)
        return json_response(state.stop_and_archive(bot_name))

    @route("/bot-orchestration/bot-runs", "bot_runs", ["GET"])
    def bot_runs():
        limit = query_int("limit", 100)
        offset = query_int("offset", 0)
        filters = {
            key: request.args.get(key)
            for key in (
                "bot_name",
                "account_name",
                "strategy_type",
                "strategy_name",
                "run_status",
                "deployment_status",
            )
        }
        runs = state.bot_runs(filters, limit, offset)
        # `total` is the page's length, not a count of matching runs.
        return json_response(
            {
                "status": "success",
                "data": runs,
                "total": len(runs),
                "limit": limit,
                "offset": offset,
            }
        )

    @route("/bot-orchestration/controller-performance-history", "performance_history", ["GET"])
    def performance_history():
        limit = query_int("limit", 100)
        if limit > 1000:
            raise RequestInvalid([_error("less_than_equal", ["query", "limit"],
                                         "Input should be less than or equal to 1000", limit)])
        interval = request.args.get("interval", "5m")
        minutes = {"5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "12h": 720, "1d": 1440}
        if interval not in minutes:
            raise RequestInvalid([_error(
                "string_pattern_mismatch", ["query", "interval"],
                "String should match pattern '^(5m|15m|30m|1h|4h|12h|1d)$'", interval)])
        try:
            start, end = (datetime.fromisoformat(request.args[key]) if request.args.get(key)
                          else None for key in ("start_time", "end_time"))
        except ValueError as exc:
            return detail(f"Invalid datetime format: {exc}", 400)
        start, end = (t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t
                      for t in (start, end))
        rows, cursor, has_more = state.performance_history(
            bot_name=request.args.get("bot_name"), controller_id=request.args.get("controller_id"),
            limit=limit, cursor=request.args.get("cursor"), start=start, end=end,
            interval_minutes=minutes[interval])
        return json_response({"status": "success", "data": rows, "pagination": {
            "next_cursor": cursor, "has_more": has_more, "limit": limit, "interval": interval}})

    @route("/bot-orchestration/bot-runs/<run_id>", "bot_run", ["GET", "DELETE"])
    def bot_run(run_id: str):
        if not run_id.isdigit():
            raise RequestInvalid(
                [
                    _error(
                        "int_parsing",
                        ["path", "bot_run_id"],
                        "Input should be a valid integer, unable to parse string as an integer",
                        run_id,
                    )
                ]
            )
        if request.method == "DELETE":
            deleted = state.delete_bot_run(int(run_id))
            if deleted is None:
                return detail(f"Bot run {run_id} not found", 404)
            return json_response(
                {
                    "status": "success",
                    "message": f"Bot run {run_id} deleted successfully",
                    **deleted,
                }
            )
        run = state.bot_run(int(run_id))
        if run is None:
            return detail(f"Bot run {run_id} not found", 404)
        return json_response({"status": "success", "data": run})

    @route("/bot-orchestration/deploy-v2-script", "deploy_script", ["POST"])
    def deploy_script():
        body = validate(
            read_body(),
            {
                "instance_name": ("name", _MISSING),
                "credentials_profile": ("name", _MISSING),
                "image": ("str", "hummingbot/hummingbot:latest"),
                "script": ("opt_str", None),
                "script_config": ("opt_str", None),
                "headless": ("bool", False),
            },
        )
        return _deploy(body, controllers=None)

    @route("/bot-orchestration/deploy-v2-controllers", "deploy_controllers", ["POST"])
    def deploy_controllers():
        body = validate(
            read_body(),
            {
                "instance_name": ("name", _MISSING),
                "credentials_profile": ("name", _MISSING),
                "controllers_config": ("list_str", _MISSING),
                "max_global_drawdown_quote": ("opt_float", None),
                "max_controller_drawdown_quote": ("opt_float", None),
                "image": ("str", "hummingbot/hummingbot:latest"),
                "headless": ("bool", False),
            },
        )
        return _deploy(body, controllers=body["controllers_config"])

    def _deploy(body: dict[str, Any], controllers: list[str] | None):
        failure = None
        if "deploy_failure" in g.faults:
            failure = g.faults["deploy_failure"].message or DEFAULT_DOCKER_ERROR
        elif "docker_down" in g.faults:
            failure = DOCKER_DOWN_MESSAGE
        try:
            reply = state.deploy(
                instance_name=body["instance_name"],
                credentials_profile=body["credentials_profile"],
                controllers_config=controllers,
                body=body,
                docker_failure=failure,
            )
        except FileNotFoundError as exc:
            return detail(str(exc), 500)
        if "deploy_name" in g.faults and reply.get("success"):
            # A broken or hostile server: the name it answers is not the bot it made.
            reply["unique_instance_name"] = g.faults["deploy_name"].message
        return json_response(reply)

    # -- accounts
    @route("/accounts/", "accounts", ["GET"])
    def accounts():
        return json_response(state.accounts())

    @route("/accounts/add-account", "add_account", ["POST"])
    def add_account():
        name = request.args.get("account_name")
        if name is None:
            raise RequestInvalid(
                [_error("missing", ["query", "account_name"], "Field required", None)]
            )
        if not state.add_account(name):
            return detail("Account already exists.", 400)
        return json_response({"message": "Account added successfully."}, 201)

    # -- connectors
    @route("/connectors/", "connectors", ["GET"])
    def connectors():
        return json_response(list(CONNECTORS))

    # -- controllers
    @route("/controllers/configs/", "controller_configs", ["GET"])
    def controller_configs():
        return json_response(state.controller_configs())

    @route("/controllers/configs/<config_name>", "controller_config", ["GET", "POST", "DELETE"])
    def controller_config(config_name: str):
        if request.method == "POST":
            state.save_controller_config(config_name, read_body())
            return json_response(
                {"message": f"Configuration '{config_name}' saved successfully"}, 201
            )
        if request.method == "DELETE":
            if not state.delete_controller_config(config_name):
                return detail(f"Configuration '{config_name}' not found", 404)
            return json_response({"message": f"Configuration '{config_name}' deleted successfully"})
        config = state.controller_config(config_name)
        if config is None:
            return detail(f"Configuration '{config_name}' not found", 404)
        return json_response(config)

    @route("/controllers/bots/<bot_name>/configs", "bot_controller_configs", ["GET"])
    def bot_controller_configs(bot_name: str):
        configs = state.bot_controller_configs(bot_name)
        if configs is None:
            return detail(f"Bot '{bot_name}' not found", 404)
        return json_response(configs)

    @route(
        "/controllers/bots/<bot_name>/<controller_name>/config",
        "update_bot_controller_config",
        ["POST"],
    )
    def update_bot_controller_config(bot_name: str, controller_name: str):
        problem = state.update_bot_controller_config(bot_name, controller_name, read_body())
        if problem is not None:
            return detail(problem, 404)
        return json_response(
            {"message": f"Controller configuration for bot '{bot_name}' updated successfully"}
        )

    # -- scripts: only enough to show the exact-slash quirk. One catch-all rule, because
    # werkzeug would otherwise redirect "/scripts/configs" to "/scripts/configs/".
    @route("/scripts/<path:rest>", "scripts", ["GET"])
    def scripts(rest: str):
        if rest == "configs/":
            return json_response([])
        if "/" in rest:
            raise NotFound()
        return detail(f"Script '{rest}' not found", 404)

    # -- docker
    @route("/docker/running", "docker_running", ["GET"])
    def docker_running():
        return json_response(True)

    @route("/docker/active-containers", "active_containers", ["GET"])
    def active_containers():
        return json_response(state.containers("running", request.args.get("name_filter")))

    @route("/docker/exited-containers", "exited_containers", ["GET"])
    def exited_containers():
        return json_response(state.containers("exited", request.args.get("name_filter")))

    app.register_blueprint(control_blueprint(state))
    return app


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestInvalid)
    def invalid(exc: RequestInvalid):
        if exc.crash:
            return plain_500()
        return detail(exc.errors, 422)

    @app.errorhandler(SimulatorError)
    def control_error(exc: SimulatorError):
        return detail(str(exc), 400)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        phrase = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.code or 500, exc.name)
        return detail(phrase, exc.code or 500, headers)

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        app.logger.exception("simulator crashed")
        return plain_500()


# -------------------------------------------------------------------------- control app
def create_control_app(state: SimulatorState) -> Flask:
    """The control port: only /_simulator/ routes, never affected by faults."""
    app = Flask("hummingbot_api_simulator_control")
    _install_error_handlers(app)
    app.register_blueprint(control_blueprint(state))
    return app


def control_blueprint(state: SimulatorState) -> Blueprint:
    bp = Blueprint("simulator_control", __name__, url_prefix=CONTROL_PREFIX)

    def body() -> dict[str, Any]:
        raw = request.get_data()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise SimulatorError("body must be JSON") from None
        if not isinstance(data, dict):
            raise SimulatorError("body must be a JSON object")
        return data

    @bp.get("/")
    def overview():
        return json_response(state.snapshot())

    @bp.post("/restart")
    def restart():
        state.restart()
        return json_response(state.snapshot())

    @bp.post("/reset")
    def reset():
        state.reset(seed_demo=bool(body().get("seed_demo", False)))
        return json_response(state.snapshot())

    @bp.get("/faults")
    def list_faults():
        return json_response({"faults": state.faults()})

    @bp.route("/faults/<name>", methods=["PUT", "POST"])
    def set_fault(name: str):
        fault = state.set_fault(name, **body())
        return json_response({"fault": fault.to_dict(), "faults": state.faults()})

    @bp.delete("/faults/<name>")
    def clear_fault(name: str):
        state.clear_faults(name)
        return json_response({"faults": state.faults()})

    @bp.delete("/faults")
    def clear_faults():
        state.clear_faults()
        return json_response({"faults": state.faults()})

    @bp.get("/settings")
    def get_settings():
        return json_response(state.configure())

    @bp.route("/settings", methods=["PUT", "POST", "PATCH"])
    def update_settings():
        return json_response(state.configure(**body()))

    @bp.post("/bots")
    def seed_bot():
        data = body()
        if "name" not in data:
            raise SimulatorError("name is required")
        try:
            name = state.seed_bot(data.pop("name"), **data)
        except TypeError as exc:  # an option seed_bot does not take
            raise SimulatorError(str(exc)) from None
        return json_response({"name": name}, 201)

    @bp.post("/bots/<name>/exit")
    def exit_bot(name: str):
        state.exit_bot(name)
        return json_response({"name": name, "container_status": "exited"})

    @bp.post("/bots/<name>/logs")
    def add_log(name: str):
        data = body()
        state.add_log(name, str(data.get("level", "INFO")), str(data.get("msg", "")))
        return json_response({"name": name}, 201)

    @bp.get("/counts")
    def counts():
        method, path = request.args.get("method"), request.args.get("path")
        if method and path:
            return json_response({"count": state.request_count(method, path)})
        return json_response({"counts": state.request_counts()})

    @bp.delete("/counts")
    def reset_counts():
        state.reset_counts()
        return json_response({"counts": {}})

    return bp
