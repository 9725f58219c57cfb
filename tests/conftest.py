"""Test fixtures: a real PostgreSQL, the schema from the migrations, one rolled-back
transaction per test, and committed fixtures for tests that need several connections.

The database server is the one in TEST_DATABASE_URL, or else a throwaway embedded PostgreSQL
(pgserver) that the suite starts itself. Each xdist worker gets a database of its own.
"""

from __future__ import annotations

import contextvars
import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy.engine import make_url

from dashboard import create_app
from dashboard.models import User, db

pytest_plugins = ["tests.simulator_fixtures", "tests.browser", "tests.alert_receivers"]

TEST_PASSWORD = "a long test passphrase"  # shared by the fixture users


def _server(tmp_path_factory) -> tuple[str, object | None]:
    """The server's URL, and the embedded server when the suite started one (None for
    TEST_DATABASE_URL)."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        from dashboard.config import normalize_database_url

        return normalize_database_url(explicit), None
    import pgserver

    data_dir = tmp_path_factory.mktemp("pg")
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(data_dir, cleanup_mode="delete")
            break
        except subprocess.TimeoutExpired:
            # pgserver gives `pg_ctl start` 10 s; on a loaded machine the server may still be
            # coming up, and asking again finds it running.
            if attempt == 2:
                raise
    return server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1), server


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id) -> Iterator[str]:
    """A fresh, empty database for this worker, dropped at the end (and the embedded server
    stopped then, while pytest still has its output open: left to pgserver's exit handler,
    its log lines hit closed streams and printed "Logging error" tracebacks)."""
    address, server = _server(tmp_path_factory)
    server_url = make_url(address)
    name = f"bm_test_{worker_id}_{os.getpid()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    if server is not None:
        server.cleanup()


def base_config(database_url: str, **overrides) -> dict:
    config = {
        "TESTING": True,
        "APP_ENV": "test",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "HUMMINGBOT_API_URL": None,
        "RECONCILE_INTERVAL_SECONDS": 0,  # tests call reconcile themselves
        "HISTORY_MAINTENANCE_SECONDS": 0,  # and history maintenance
        "HTMX_SOURCE": "local",
        "REQUIRE_ADMIN_MFA": False,  # tests/test_mfa.py turns it on where it is the subject
        "BATCH_WORKERS": 0,  # tests run batch items themselves (executor.run_pending)
        "ALERT_WORKERS": 0,  # and alert deliveries (alerts.delivery.run_pending)
        "ALERT_EVALUATE_SECONDS": 0,  # and condition evaluation
        "ALERTS_ALLOW_LOOPBACK": True,  # receivers listen on loopback
        # The shared snapshot writes on a connection of its own, outside the test's rolled-back
        # transaction (off by default anyway; tests/test_shared_status.py turns it on).
        "STATUS_SHARED": False,
        # Likewise a fleet refresh records in the request's thread here, not in the pool's
        # (the test's session is bound to one connection; process tests record in the pool).
        "STATUS_RECORD_IN_POOL": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def migrated(database_url) -> str:
    """Run the migrations once per worker: the schema always comes from them."""
    from flask_migrate import upgrade

    app = create_app(base_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@dataclass
class Accounts:
    admin: User
    client_a: User
    client_b: User


@pytest.fixture(scope="session")
def accounts(migrated) -> Accounts:
    """Three committed logins shared by the suite (hashing argon2 once, not per test)."""
    from dashboard.users import create_user

    app = create_app(base_config(migrated))
    with app.app_context():
        made = Accounts(
            admin=create_user("admin", TEST_PASSWORD, "admin"),
            client_a=create_user("sharp", TEST_PASSWORD, "client", "client_sharp"),
            client_b=create_user("other", TEST_PASSWORD, "client", "client_other"),
        )
        for user in (made.admin, made.client_a, made.client_b):
            db.session.refresh(user)
            db.session.expunge(user)
        db.engine.dispose()
    return made


class IsolatedClient(FlaskClient):
    """Runs each request in an empty context, as production does: its own app context, `g`
    and database session, not the test's. Afterwards the test's session re-reads rows."""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


def simulator_config(server) -> dict:
    """Point the app at the session's simulator, with test-sized timeouts and no caching
    (the tests of the cache make their own app)."""
    return {
        "HUMMINGBOT_API_URL": server.url,
        "HUMMINGBOT_API_USERNAME": server.username,
        "HUMMINGBOT_API_PASSWORD": server.password,
        "HUMMINGBOT_CONNECT_TIMEOUT": 1.0,
        "HUMMINGBOT_READ_TIMEOUT": 1.0,
        "STATUS_CACHE_SECONDS": 0,
    }


@pytest.fixture(scope="session")
def session_app(migrated, accounts, simulator_server) -> Flask:
    app = create_app(base_config(migrated, **simulator_config(simulator_server)))
    app.test_client_class = IsolatedClient
    return app


class ConnectionBoundSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session picks the app's engine and ignores `bind`; tests need the
    one connection whose outer transaction they roll back."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return self.bind


@pytest.fixture
def app(session_app) -> Iterator[Flask]:
    """The app with every database write of the test inside one transaction, rolled back."""
    from dashboard.gateway import Hummingbot

    # A fresh client, breaker and status feed: no test inherits another's circuit state; the
    # fleet reads the servers again (each test's rows are rolled back).
    session_app.extensions["hummingbot"] = Hummingbot(session_app)
    session_app.extensions["fleet"].forget()
    with session_app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = db._make_scoped_session({
            "class_": ConnectionBoundSession,
            "bind": connection,
            "join_transaction_mode": "create_savepoint",
        })
        try:
            yield session_app
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def reconfigure(app, monkeypatch):
    """Change settings for this test only, and rebuild the per-process Hummingbot link
    (client, breaker, status feed) from them: `reconfigure(STATUS_CACHE_SECONDS=60)`."""
    from dashboard.gateway import Hummingbot

    def apply(**settings):
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)
        app.extensions["hummingbot"] = Hummingbot(app)
        return app.extensions["hummingbot"]

    return apply


@pytest.fixture
def committed_app(migrated, accounts, simulator) -> Iterator[Flask]:
    """For tests that need real commits seen by other connections or processes."""
    app = create_app(base_config(migrated, **simulator_config(simulator.server)))
    app.test_client_class = IsolatedClient
    yield app
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            # Connections a killed server process left behind must not hold locks.
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            # TRUNCATE skips the append-only row trigger on purpose: this is test cleanup.
            conn.execute(sa.text(
                "TRUNCATE alert_deliveries, alerts, alert_mutes, alert_rules, alert_destinations, "
                "batch_items, batches, bot_versions, bot_events, performance_segments, "
                "performance_points, performance_latest, performance_backfills, bots, "
                "login_throttle, performance_server_clock, status_snapshots, "
                "hummingbot_servers"))
            conn.execute(sa.text(
                "UPDATE performance_clock SET sampled_at = NULL, maintained_at = NULL"))
            conn.execute(sa.text(
                "UPDATE alert_clock SET evaluated_at = NULL, hummingbot_failing_since = NULL, "
                "hummingbot_error_kind = NULL, drawdown_at = NULL, drawdown_inputs = NULL"))
            conn.execute(sa.text(
                "UPDATE users SET session_generation = 0, active = true"
            ))
        db.engine.dispose()


@pytest.fixture
def server_env(simulator) -> dict[str, str]:
    """Environment for a dashboard server process talking to this test's simulator."""
    env = {key: str(value) for key, value in simulator_config(simulator.server).items()}
    env["RECONCILE_INTERVAL_SECONDS"] = "0"  # tests that want it turn it on
    env["HISTORY_MAINTENANCE_SECONDS"] = "0"
    env["ALERT_EVALUATE_SECONDS"] = "0"
    return env


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


class Login:
    """Signs a test client in as a fixture user the way Flask-Login's cookie does."""

    def __init__(self, client: FlaskClient, accounts: Accounts):
        self.client = client
        self.accounts = accounts

    def as_user(self, user: User) -> FlaskClient:
        from dashboard.auth import stamp_session

        with self.client.session_transaction() as session:
            session.clear()
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
            stamp_session(session)  # logged in just now (idle and absolute timeouts)
        return self.client

    def as_admin(self) -> FlaskClient:
        return self.as_user(self.accounts.admin)

    def as_client_a(self) -> FlaskClient:
        return self.as_user(self.accounts.client_a)

    def as_client_b(self) -> FlaskClient:
        return self.as_user(self.accounts.client_b)


@pytest.fixture
def login(client, accounts) -> Login:
    return Login(client, accounts)


def make_bot_data(**overrides) -> dict[str, str]:
    data = {
        "id": "pmm-btc",
        "name": "pmm-btc",
        "account_identifier": "client_sharp",
        "strategy": "pure_market_making",
        "connector": "binance",
        "pair": "BTC-USDT",
        "config": '{"order_amount": 0.01, "bid_spread": 0.002}',
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_bot(app):
    """Create a definition through the service, as an admin would."""
    from dashboard.registry import create_bot

    def make(**overrides):
        return create_bot(make_bot_data(**overrides), "admin")

    return make


@pytest.fixture
def statements(app):
    """Counts the SQL statements the app sends while the test runs."""
    counted: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        counted.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    yield counted
    sa.event.remove(db.engine, "before_cursor_execute", count)
