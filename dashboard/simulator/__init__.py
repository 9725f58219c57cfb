"""A faithful stand-in for the Hummingbot API (hummingbot-api 1.0.1), for development and tests.

Start it on its own::

    python -m dashboard.simulator --port 8000 [--host 127.0.0.1] [--username admin
        --password admin] [--control-port 0] [--fault NAME ...] [--seed-demo]

or in-process::

    sim = start_simulator(port=0, username="u", password="p")   # RunningSimulator
    sim.url, sim.control_url, sim.state                          # state: SimulatorState
    sim.stop()

The API port serves the real paths, envelopes, status codes and quirks described in
HUMMINGBOT_API.md beside this file (Basic auth except on `GET /`, exact trailing slashes, renamed
deploys, `not_found` with HTTP 200, `stopping` then gone on stop-and-archive, ...), and the real
server's timing (section 6): a new container is listed only at the next container poll
(`appear_seconds`), stop-and-archive removes the container after `stopping_seconds`, a bot heard
over MQTT stays listed `mqtt_linger_seconds` after its last message (after an archive or a
crash), and an MQTT-only bot (`source: "mqtt"`: no container, no bot-run) survives
stop-and-archive: hidden for `stopping_seconds + container_retry_seconds`, then back. A script
deploy without `script_config` runs no script (`script` is only recorded). These timings are 0
by default (tests) and realistic with `realistic=True` (`make run`, the command line).

Control API (never behind faults or auth). Served on the control port (`sim.control_url`), and
also under the same prefix on the API port while that port is open; to clear `unreachable`
use the control port, since the API port refuses connections then.

    GET    /_simulator/                 state overview (settings, faults, bots, counters)
    POST   /_simulator/reset            fresh state; body {"seed_demo": true} to add demo bots
    POST   /_simulator/restart          the API restarts: in-memory log lines are lost (pair
                                        with the unreachable fault for its downtime)
    GET    /_simulator/faults           active faults
    PUT    /_simulator/faults/<name>    switch a fault on; body (all optional):
                                        {"seconds": 1.5, "times": 1, "path": "/x", "method": "GET",
                                         "message": "...", "plain": true, "ignore_header": true}
    DELETE /_simulator/faults/<name>    switch one fault off
    DELETE /_simulator/faults           switch every fault off
    GET|PUT /_simulator/settings        {"warmup_seconds", "stopping_seconds", "slow_seconds",
                                         "appear_seconds", "container_retry_seconds",
                                         "mqtt_linger_seconds",
                                         "local_time": "2025-07-01T14:30:12" or null}
    POST   /_simulator/bots             seed a live bot as if deployed earlier: {"name",
                                        "account", "controllers": [...] | "script", "legacy",
                                        "timestamped", "warm", "trading", "with_run",
                                        "age_seconds", "image", "source": "docker" | "mqtt"}
                                        -> 201 {"name": live name}
    POST   /_simulator/bots/<name>/exit its container exits (crash): gone from /status
    POST   /_simulator/bots/<name>/logs append a log line {"level": "ERROR", "msg": "..."}
    GET    /_simulator/counts           {"counts": {"GET /bot-orchestration/status": 3, ...}};
                                        with ?method=GET&path=/x -> {"count": n}
    DELETE /_simulator/counts           reset the request counters

Faults: unreachable (connection refused, see server.py), slow (sleep `seconds`, default
settings.slow_seconds = 6, past the client's default read timeout), error500 (JSON detail, or
text/plain with plain=true), malformed_json, wrong_shape (a list where an object is expected and
vice versa), unauthorized (401 everywhere), deploy_failure (deploy answers 200 success:false with
a Docker error), html (a generic HTML page), ngrok_warning (ngrok's browser-warning page unless
the request sends `ngrok-skip-browser-warning`, or always with ignore_header=true), docker_down
(/docker/* answer 200 with a bare error string, deploys fail with it). `times`
switches a fault off by itself after that many requests; `path`/`method` narrow it.
"""

from .server import RunningSimulator, SwitchableListener, start_simulator
from .state import FAULT_NAMES, Fault, SimulatorError, SimulatorState

__all__ = [
    "FAULT_NAMES",
    "Fault",
    "RunningSimulator",
    "SimulatorError",
    "SimulatorState",
    "SwitchableListener",
    "start_simulator",
]
