"""Run the dashboard as a real server process, and talk to it like a browser would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    def __init__(self, database_url: str, port: int | None = None,
                 gunicorn_config: str | None = None, **env: str):
        """`env` adds settings, e.g. the simulator's HUMMINGBOT_API_URL; `gunicorn_config`
        serves with that file (production's) instead of one small worker."""
        self.gunicorn_config = gunicorn_config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "shared-secret-key-for-the-process-tests-0123456789",
            "APP_ENV": "development",
            "HTMX_SOURCE": "local",
            **env,
        }
        self.process: subprocess.Popen | None = None
        # The server's log goes to a file, never to a pipe: nobody reads a pipe while the
        # server runs, and once its 64 KiB buffer is full every logging call blocks, so the
        # request that logs next hangs (seen: a read timeout in CI).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the object

    def log_text(self) -> str:
        """Everything the server process has written to stderr so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def start(self) -> ServerProcess:
        sizing = (["-c", self.gunicorn_config] if self.gunicorn_config
                  else ["--workers", "1", "--threads", "4"])
        command = [sys.executable, "-m", "gunicorn", *sizing, "--bind",
                   f"127.0.0.1:{self.port}", "wsgi:app"]
        # A session of its own, so a kill takes the workers too, as a container stop does.
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=self.log)
        # Generous: two production workers import the app on a machine other tests also load.
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited: " + self.log_text()[-2000:])
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or busy starting
                time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy in {STARTUP_SECONDS} s:\n"
                           + self.log_text()[-2000:])

    def kill(self) -> None:
        """SIGKILL to every process of the server: no shutdown handlers, no flushing."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@contextmanager
def running_server(database_url: str, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, **env).start()
    try:
        yield server
    finally:
        server.stop()


class Browser:
    """A requests session that logs in and submits forms with their CSRF token."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10, **kwargs)

    def submit(self, form_path: str, data: dict, action: str | None = None) -> requests.Response:
        page = self.get(form_path)
        token = CSRF.search(page.text).group(1)
        return self.session.post(self.base_url + (action or form_path),
                                 data={**data, "csrf_token": token}, timeout=10,
                                 allow_redirects=False)

    def login(self, username: str, password: str) -> Browser:
        response = self.submit("/login", {"username": username, "password": password})
        assert response.status_code == 302, response.text
        return self
