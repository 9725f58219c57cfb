"""Real receivers on loopback for the alert tests: a threaded HTTP server taking webhook, Slack,
Discord and Telegram shapes (it can be told to fail or to be slow), and an SMTP server
(aiosmtpd)."""

from __future__ import annotations

import contextlib
import json
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict:
        return json.loads(self.raw)


@dataclass
class Behaviour:
    fail_next: int = 0  # answer 500 to this many requests
    fail_ratio: float = 0.0  # then answer 500 to this share of requests
    slow_ratio: float = 0.0  # and sleep `slow_seconds` before answering this share
    slow_seconds: float = 0.0
    status: int = 200  # the answer otherwise
    hold: threading.Event | None = None  # when set: answer only once this event is set
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)


class Receiver:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.received: list[Received] = []
        self.behaviour = Behaviour()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:  # the sender died mid-request (a killed worker): a
                    self.close_connection = True  # server never acts on half a message
                    return
                with receiver._lock:
                    b = receiver.behaviour
                    failing = b.fail_next > 0 or b.rng.random() < b.fail_ratio
                    if b.fail_next > 0:
                        b.fail_next -= 1
                    slow = b.rng.random() < b.slow_ratio
                    status = 500 if failing else b.status
                if slow:
                    time.sleep(b.slow_seconds)
                if b.hold is not None:
                    b.hold.wait(30)
                if not failing and status < 300:
                    with receiver._lock:
                        receiver.received.append(
                            Received(self.path, dict(self.headers.items()), raw))
                body = b'{"ok": true}'
                # A sender that timed out has left (it will try again): nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # HTTPS: a handshake the client refuses is dropped by accept
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str | None = None) -> list[dict]:
        with self._lock:
            return [r.body for r in self.received if path is None or r.path == path]


@pytest.fixture
def receiver():
    found = Receiver().start()
    yield found
    found.stop()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    from tests.servers import free_port

    mailbox = Mailbox()
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()
