"""Serving the simulator: a switchable API listener plus an always-on control listener.

How `unreachable` works: the API port is served from a socket we bind ourselves with
SO_REUSEADDR + SO_REUSEPORT. To make the port refuse connections we first bind a second,
*non-listening* socket to the same port (allowed by SO_REUSEPORT), then shut the server down and
close the listening socket. The port stays ours, but nothing listens on it, so the kernel answers
every connection attempt with a reset: "connection refused", exactly like a stopped server. To
come back, that placeholder socket starts listening and a new server is built on it. No other
process can grab the port in between. Responses are HTTP/1.0 (no keep-alive), so no pooled
connection survives the switch either.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import CONTROL_PREFIX, create_api_app, create_control_app
from .state import SimulatorState


class _QuietHandler(WSGIRequestHandler):
    # One request per connection: closing the listener must refuse the very next request.
    protocol_version = "HTTP/1.0"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, *args: Any) -> None:
        pass


def _bind(host: str, port: int, *, share: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _claim_port(host: str, port: int) -> int:
    """Prove the port is free with a plain bind (SO_REUSEPORT would let two servers share it
    silently), and return its number (port 0 picks a free one)."""
    with _bind(host, port, share=False) as probe:
        return probe.getsockname()[1]


class SwitchableListener:
    """A threaded WSGI server whose port can refuse connections and come back on demand."""

    def __init__(self, host: str, port: int, app: Flask):
        self.host = host
        self.app = app
        self._lock = threading.Lock()
        self.port: int = _claim_port(host, port)
        self._idle: socket.socket | None = _bind(host, self.port)
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            sock = self._idle or _bind(self.host, self.port)
            self._idle = None
            sock.listen(128)
            # fd= makes werkzeug use (a duplicate of) our socket instead of binding its own.
            server = ThreadedWSGIServer(
                self.host, self.port, self.app, handler=_QuietHandler, fd=sock.fileno()
            )
            sock.close()
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"simulator-{self.port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def close(self, *, keep_port: bool = True) -> None:
        with self._lock:
            if keep_port and self._idle is None:
                self._idle = _bind(self.host, self.port)  # hold the port before letting go
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                assert self._thread is not None
                self._thread.join(timeout=5)
                self._server = self._thread = None
            if not keep_port and self._idle is not None:
                self._idle.close()
                self._idle = None

    def on_reachability(self, reachable: bool) -> None:
        if reachable:
            self.open()
        else:
            self.close()


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass
class RunningSimulator:
    """A simulator serving on real sockets. `state` can be driven in-process."""

    state: SimulatorState
    username: str
    password: str
    api: SwitchableListener
    control: SwitchableListener
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return _url(self.api.host, self.api.port)

    @property
    def control_url(self) -> str:
        return _url(self.control.host, self.control.port) + CONTROL_PREFIX

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.state.remove_reachability_listener(self.api.on_reachability)
        self.state.clear_faults()  # wakes requests sleeping in the `slow` fault
        self.api.close(keep_port=False)
        self.control.close(keep_port=False)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    username: str = "admin",
    password: str = "admin",  # noqa: S107 - the real server's default, for parity
    control_port: int = 0,
    seed_demo: bool = False,
    realistic: bool = False,
    state: SimulatorState | None = None,
) -> RunningSimulator:
    """Serve the simulated API on host:port (0 picks a free port) and its control API on
    control_port. Returns at once; the servers run in daemon threads until `.stop()`.
    `realistic` uses the real server's delays (REALISTIC_SETTINGS) instead of the quick ones."""
    state = state or SimulatorState(seed_demo=seed_demo, realistic=realistic)
    api = SwitchableListener(host, port, create_api_app(state, username, password))
    control = SwitchableListener(host, control_port, create_control_app(state))
    control.open()
    if state.reachable:
        api.open()
    state.add_reachability_listener(api.on_reachability)
    return RunningSimulator(
        state=state, username=username, password=password, api=api, control=control
    )
