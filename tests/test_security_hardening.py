"""Sizes, settings and processes from the outside review: bounded flashed messages, SQL
parameters kept out of errors and logs, no plain-HTTP Hummingbot in production, the dev
server's PostgreSQL stopped by SIGTERM, and no file outside the product named by it."""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.exc import DataError

from dashboard.config import ConfigError, load_settings, validate_production
from dashboard.models import db
from dashboard.web import MAX_FLASH_CHARS
from tests.servers import ROOT, free_port
from tests.test_lifecycle import SCRIPT_FORM

SECRET = "client-secret-config-value-0123"


# ------------------------------------------------------------------ flashed messages
def session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_an_8000_character_hummingbot_error_does_not_bloat_the_session_cookie(login, make_bot,
                                                                              simulator):
    """It made an 8.5 KB cookie, which browsers drop (and every later request got a 431)."""
    make_bot(account_identifier="master_account")
    noise = secrets.token_hex(4000)  # 8,000 characters that, unlike "x" * 8000, do not compress
    simulator.set_fault("deploy_failure", message="docker said: " + noise)
    admin = login.as_admin()
    response = admin.post("/bots/pmm-btc/deploy", data=SCRIPT_FORM)
    assert response.status_code == 302
    assert len(session_cookie(response)) < 2000
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    [flash] = re.findall(r'<p class="flash flash-error"[^>]*>([^<]*)</p>', page)
    assert flash.startswith("Deploy of pmm-btc failed") and "docker said: " + noise[:20] in flash
    assert len(flash) == MAX_FLASH_CHARS and flash.endswith("…")
    assert noise in page  # the bot's page still shows the whole error


def test_many_flashes_keep_only_the_latest(app, login, make_bot):
    make_bot()
    admin = login.as_admin()
    for _ in range(20):  # each archive or restore flashes one message, none is shown yet
        admin.post("/bots/pmm-btc/archive")
        response = admin.post("/bots/pmm-btc/restore")
    assert len(session_cookie(response)) < 2000
    page = admin.get("/bots").get_data(as_text=True)
    assert page.count("Bot pmm-btc restored.") + page.count("Bot pmm-btc archived") == 5


# ------------------------------------------------------------------ SQL parameters
def test_sql_errors_never_show_statement_parameters(app):
    with pytest.raises(DataError) as failure, db.engine.connect() as conn:
        # PostgreSQL's own message names no value here, so only SQLAlchemy could leak it.
        conn.execute(sa.text("SELECT 1 / 0, CAST(:value AS text)"), {"value": SECRET})
    assert SECRET not in str(failure.value)
    assert "parameters hidden" in str(failure.value)


def test_sql_logs_never_show_statement_parameters(app, caplog):
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), \
            db.engine.connect() as conn:
        conn.execute(sa.text("SELECT :value"), {"value": SECRET})
    assert "SELECT" in caplog.text  # the statement was logged...
    assert SECRET not in caplog.text  # ...without its parameters


# ------------------------------------------------------------------ plain HTTP to Hummingbot
PRODUCTION = {
    "APP_ENV": "production", "SECRET_KEY": "Zq3-production-like-key-for-start-up-81f0c2",
    "DATABASE_URL": "postgres://u:p@db/app", "HUMMINGBOT_API_USERNAME": "operator",
    "HUMMINGBOT_API_PASSWORD": "s3cret-and-long",
}


@pytest.mark.parametrize("url", ["http://hb.example:8000", "HTTP://10.0.0.5", "http://hb"])
def test_production_refuses_plain_http_to_another_host(url):
    with pytest.raises(ConfigError, match="HUMMINGBOT_ALLOW_HTTP"):
        validate_production(load_settings({**PRODUCTION, "HUMMINGBOT_API_URL": url}))
    # Unless the operator says the network between is private.
    validate_production(load_settings({**PRODUCTION, "HUMMINGBOT_API_URL": url,
                                       "HUMMINGBOT_ALLOW_HTTP": "true"}))


@pytest.mark.parametrize("url", ["https://hb.example", "http://127.0.0.1:8000",
                                 "http://localhost:8000", "http://[::1]:8000"])
def test_production_accepts_https_and_this_machine(url):
    validate_production(load_settings({**PRODUCTION, "HUMMINGBOT_API_URL": url}))


# ------------------------------------------------------------------ the dev server
@pytest.mark.slow
def test_sigterm_stops_the_dev_servers_embedded_postgresql(tmp_path):
    """Only Ctrl-C used to: SIGTERM ended Python at once and left PostgreSQL running."""
    pgdata = tmp_path / "pgdata"
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "HUMMINGBOT_API_URL", "APP_ENV")}
    env.update(EMBEDDED_PGDATA=str(pgdata), PORT=str(port), SIMULATOR_PORT=str(free_port()),
               LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "-m", "dashboard.devserver"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "the dev server exited on its own"
            assert time.monotonic() < deadline, "the dev server never answered"
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        postgres = int((pgdata / "postmaster.pid").read_text().split()[0])
        assert pid_alive(postgres)

        server.send_signal(signal.SIGTERM)
        assert server.wait(60) is not None
        deadline = time.monotonic() + 30
        while pid_alive(postgres):  # pg_ctl stop -w has returned; the process may linger
            assert time.monotonic() < deadline, "PostgreSQL is still running"
            time.sleep(0.1)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; PostgreSQL's parent reaps it, and "Z" means gone.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


# ------------------------------------------------------------------ no outside files
def test_the_product_names_no_file_outside_itself():
    """The simulator pointed at a development machine's path for its protocol notes; those
    notes now live in the product, beside the simulator."""
    assert (ROOT / "dashboard/simulator/HUMMINGBOT_API.md").is_file()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    offenders = []
    for name in tracked:
        if name.startswith("tests/") or not name.endswith((".py", ".md", ".html", ".toml",
                                                          ".cfg", ".txt", ".yml", "Makefile")):
            continue
        text = (ROOT / name).read_text(errors="replace")
        if "/work/" in text or "../shared/" in text:
            offenders.append(name)
    assert offenders == []
