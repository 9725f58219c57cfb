"""The factory, settings and health endpoint."""

import time

import pytest

from dashboard import create_app
from dashboard.config import ConfigError, load_settings, normalize_database_url, validate_production


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg2://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+psycopg2://u:p@db/app"),
        ("postgresql+psycopg2://u@db/app", "postgresql+psycopg2://u@db/app"),
    ],
)
def test_database_url_schemes_are_normalised(given, expected):
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["sqlite:///bots.db", "sqlite://", "mysql://u@h/db"])
def test_non_postgresql_database_is_refused_with_a_clear_message(url):
    with pytest.raises(ConfigError, match="PostgreSQL"):
        normalize_database_url(url)


def test_sqlite_refused_at_start_up(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="SQLite is not supported"):
        create_app()


def _production_env(**overrides):
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "k3y-for-the-production-settings-tests-0123456789",
        "DATABASE_URL": "postgres://u:p@db/app",
        "HUMMINGBOT_API_URL": "https://hb.example",
        "HUMMINGBOT_API_USERNAME": "operator",
        "HUMMINGBOT_API_PASSWORD": "s3cret-and-long",
    }
    env.update(overrides)
    return env


def test_production_settings_that_are_safe_pass():
    validate_production(load_settings(_production_env()))


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG"),
        ({"HUMMINGBOT_API_USERNAME": "admin", "HUMMINGBOT_API_PASSWORD": "admin"}, "admin/admin"),
    ],
)
def test_production_refuses_development_defaults(overrides, complaint):
    with pytest.raises(ConfigError, match=complaint):
        validate_production(load_settings(_production_env(**overrides)))


def test_production_app_refuses_to_start_with_dev_secret(monkeypatch):
    for key, value in _production_env(SECRET_KEY="").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="Refusing to start in production"):
        create_app()


def test_wsgi_module_exposes_an_app(monkeypatch, migrated):
    monkeypatch.setenv("DATABASE_URL", migrated)
    import importlib

    import wsgi

    importlib.reload(wsgi)
    assert wsgi.app.config["SQLALCHEMY_DATABASE_URI"] == migrated


def test_healthz_reports_database_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok"}


def test_healthz_is_503_when_database_unreachable(accounts):
    from tests.conftest import base_config

    dead = "postgresql+psycopg2://nobody@127.0.0.1:1/nothing"
    app = create_app(base_config(dead, SQLALCHEMY_ENGINE_OPTIONS={
        "connect_args": {"connect_timeout": 1}}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "unreachable"}


def test_every_response_says_it_varies_on_hx_request(login):
    client = login.as_admin()
    assert "HX-Request" in client.get("/bots").headers["Vary"]


def test_htmx_sri_matches_the_local_copy():
    import base64
    import hashlib

    from dashboard.config import PROJECT_ROOT
    from dashboard.web import HTMX_LOCAL_FILE, HTMX_SRI

    digest = hashlib.sha384((PROJECT_ROOT / "static" / HTMX_LOCAL_FILE).read_bytes()).digest()
    assert "sha384-" + base64.b64encode(digest).decode() == HTMX_SRI


def test_cdn_setting_serves_pinned_htmx_with_integrity(migrated, accounts):
    from tests.conftest import base_config

    app = create_app(base_config(migrated, HTMX_SOURCE="cdn"))
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'src="https://cdn.jsdelivr.net/npm/htmx.org@2.0.8/dist/htmx.min.js"' in page
    assert 'integrity="sha384-' in page
    assert "cdn.jsdelivr.net" in app.test_client().get("/login").headers["Content-Security-Policy"]


def test_local_setting_serves_htmx_from_static(client):
    page = client.get("/login").get_data(as_text=True)
    assert "/static/vendor/htmx-2.0.8.min.js" in page
    assert "cdn.jsdelivr.net" not in client.get("/login").headers["Content-Security-Policy"]
    assert client.get("/static/vendor/htmx-2.0.8.min.js").status_code == 200


def test_logged_in_page_with_database_down_is_a_clean_503(accounts):
    """Regression: rendering the error page asked the database for the user again -> 500."""
    from tests.conftest import base_config

    dead = "postgresql+psycopg2://nobody@127.0.0.1:1/nothing"
    app = create_app(base_config(dead, SQLALCHEMY_ENGINE_OPTIONS={
        "connect_args": {"connect_timeout": 1}}))
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = accounts.admin.get_id()
        session["_auth_at"] = session["_seen_at"] = int(time.time())  # a live session
    for path, headers in (("/bots", {}), ("/bots", {"HX-Request": "true"}), ("/api/bots", {})):
        response = client.get(path, headers=headers)
        assert response.status_code == 503, path
        request_id = response.headers["X-Request-ID"]
        assert request_id and request_id in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)


def test_deploy_timeout_is_a_setting_that_reaches_the_client():
    from dashboard.hummingbot import client_from_settings

    settings = load_settings({"HUMMINGBOT_DEPLOY_TIMEOUT": "45",
                              "HUMMINGBOT_API_URL": "http://127.0.0.1:9"})
    client = client_from_settings(settings.as_flask_config())
    assert client.deploy_timeout == 45.0


@pytest.mark.parametrize(("app_env", "expected"), [("development", "local"),
                                                    ("production", "cdn")])
def test_htmx_comes_from_static_in_development_and_the_cdn_in_production(app_env, expected):
    """`make run` must work without internet; production keeps the pinned CDN copy."""
    assert load_settings({"APP_ENV": app_env}).htmx_source == expected
    assert load_settings({"APP_ENV": app_env, "HTMX_SOURCE": "cdn"}).htmx_source == "cdn"


@pytest.mark.slow
def test_the_embedded_database_prints_nothing_on_start_or_exit(tmp_path):
    """Regression: every CLI command ended with four lines of pgserver's pg_ctl logging."""
    import subprocess
    import sys

    from dashboard.config import PROJECT_ROOT

    script = (
        "import sys; from pathlib import Path\n"
        "from dashboard.observability import configure_logging\n"
        "from dashboard.embedded_db import embedded_database_url\n"
        "configure_logging('INFO')\n"
        "embedded_database_url(Path(sys.argv[1]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pg")], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pg" / "PG_VERSION").exists()  # a server really was started
    assert done.stdout == "" and done.stderr == ""


def test_the_database_pool_has_a_connection_for_every_thread_that_may_want_one(migrated):
    """16 request threads and 4 batch workers once shared 15 connections (SQLAlchemy's
    default 5 + 10): under 24 parallel API clients queued on the login throttle's row lock,
    a request waited 30 s for the pool and got a 500."""
    settings = load_settings({"GUNICORN_THREADS": "16", "BATCH_WORKERS": "4"})
    assert settings.db_pool_size == 16 + 4 + 4
    assert load_settings({"DB_POOL_SIZE": "40"}).db_pool_size == 40
    with pytest.raises(ConfigError, match="DB_POOL_SIZE must be at least 1"):
        load_settings({"DB_POOL_SIZE": "0"})
    from dashboard.models import db

    app = create_app({**settings.as_flask_config(), "SQLALCHEMY_DATABASE_URI": migrated})
    with app.app_context():
        assert db.engine.pool.size() == 24
        db.engine.dispose()
