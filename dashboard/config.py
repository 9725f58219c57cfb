"""Every setting the dashboard reads from the environment, in one place.

Development defaults are safe to run on a laptop; `validate_production` refuses to start a
production process that still carries one of them.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_PATH = PROJECT_ROOT / "instance"

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - refused in production
DEFAULT_HUMMINGBOT_CREDENTIALS = ("admin", "admin")
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 8  # token_hex(16) has ~13, under 8 about never; "x" * 40 has 1


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _at_least(env: dict[str, str], name: str, default: int, minimum: int) -> int:
    value = _int(env, name, default)
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def secret_key_problem(key: str) -> str | None:
    """Why `key` cannot sign production sessions, or None. Catches the development key,
    short keys and obviously patterned ones ("x" * 40); it cannot prove randomness."""
    if key == DEV_SECRET_KEY or len(key) < 32:
        return "SECRET_KEY must be set to a random value of at least 32 characters"
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT_CHARACTERS:
        return ("SECRET_KEY looks patterned (too few distinct characters); "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    return None


def normalize_database_url(url: str) -> str:
    """Accept the schemes PaaS hosts hand out and pin the psycopg2 driver.

    Railway and Heroku give `postgres://`; SQLAlchemy 2.1 maps a bare `postgresql://` to
    psycopg 3, which is not installed, so both become `postgresql+psycopg2://`.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"DATABASE_URL is not a URL: {url.split('@')[-1]!r}")
    scheme = scheme.lower()
    if scheme.startswith("sqlite"):
        raise ConfigError(
            "SQLite is not supported: Bot Management needs PostgreSQL (JSONB, advisory locks). "
            "Unset DATABASE_URL to use the embedded PostgreSQL, or point it at a PostgreSQL server."
        )
    if scheme in {"postgres", "postgresql", "postgresql+psycopg2"}:
        return f"postgresql+psycopg2://{rest}"
    raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL, got scheme {scheme!r}")


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; `as_flask_config` feeds app.config."""

    env: str
    secret_key: str
    encryption_keys: str
    # Sessions, login throttling and the proxy in front (SECURITY.md explains each choice).
    session_idle_minutes: int
    session_max_hours: int
    login_throttle_window_seconds: int
    login_max_failures_per_username: int
    login_max_failures_per_ip: int
    trusted_proxy_count: int
    require_admin_mfa: bool
    database_url: str | None
    port: int
    hummingbot_api_url: str | None
    hummingbot_allow_http: bool
    hummingbot_username: str
    hummingbot_password: str
    hummingbot_connect_timeout: float
    hummingbot_read_timeout: float
    hummingbot_deploy_timeout: float
    hummingbot_extra_headers: dict[str, str]
    status_cache_seconds: float
    status_wait_seconds: float
    status_shared: bool
    breaker_threshold: int
    breaker_reset_seconds: float
    reconcile_interval_seconds: float
    deploy_grace_seconds: float
    status_poll_seconds: int
    # Performance history (dashboard/history/): README, "Performance history".
    history_sample_seconds: int
    history_raw_hours: int
    history_hourly_days: int
    history_maintenance_seconds: float
    history_backfill: bool
    page_size: int
    max_config_bytes: int
    max_content_length: int
    htmx_source: str
    debug: bool
    log_level: str
    log_format: str
    sql_count_header: bool
    embedded_pgdata: str
    batch_workers: int = 4
    db_pool_size: int = 16
    batch_poll_seconds: float = 1.0
    batch_workers_per_server: int = 3
    # Alerts (dashboard/alerts/): README, "Alerts".
    alert_workers: int = 2
    alert_poll_seconds: float = 1.0
    alert_evaluate_seconds: float = 30.0
    alert_lease_seconds: float = 60.0
    alert_max_attempts: int = 8
    alert_backoff_seconds: float = 5.0
    alert_send_timeout: float = 5.0
    alert_unreachable_minutes: int = 5
    alerts_allow_http: bool = False
    alerts_allow_loopback: bool = False
    alerts_allow_private: bool = False
    alerts_telegram_api_url: str = "https://api.telegram.org"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def as_flask_config(self) -> dict[str, object]:
        return {
            "APP_ENV": self.env,
            "SECRET_KEY": self.secret_key,
            "ENCRYPTION_KEYS": self.encryption_keys,
            "DATABASE_URL": self.database_url,
            "PORT": self.port,
            "HUMMINGBOT_API_URL": self.hummingbot_api_url,
            "HUMMINGBOT_API_USERNAME": self.hummingbot_username,
            "HUMMINGBOT_API_PASSWORD": self.hummingbot_password,
            "HUMMINGBOT_CONNECT_TIMEOUT": self.hummingbot_connect_timeout,
            "HUMMINGBOT_READ_TIMEOUT": self.hummingbot_read_timeout,
            "HUMMINGBOT_DEPLOY_TIMEOUT": self.hummingbot_deploy_timeout,
            "HUMMINGBOT_EXTRA_HEADERS": self.hummingbot_extra_headers,
            "STATUS_CACHE_SECONDS": self.status_cache_seconds,
            "STATUS_WAIT_SECONDS": self.status_wait_seconds,
            "STATUS_SHARED": self.status_shared,
            "HUMMINGBOT_BREAKER_THRESHOLD": self.breaker_threshold,
            "HUMMINGBOT_BREAKER_RESET_SECONDS": self.breaker_reset_seconds,
            "RECONCILE_INTERVAL_SECONDS": self.reconcile_interval_seconds,
            "DEPLOY_GRACE_SECONDS": self.deploy_grace_seconds,
            "STATUS_POLL_SECONDS": self.status_poll_seconds,
            "HISTORY_SAMPLE_SECONDS": self.history_sample_seconds,
            "HISTORY_RAW_HOURS": self.history_raw_hours,
            "HISTORY_HOURLY_DAYS": self.history_hourly_days,
            "HISTORY_MAINTENANCE_SECONDS": self.history_maintenance_seconds,
            "HISTORY_BACKFILL": self.history_backfill,
            "PAGE_SIZE": self.page_size,
            "MAX_CONFIG_BYTES": self.max_config_bytes,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "HTMX_SOURCE": self.htmx_source,
            "DEBUG": self.debug,
            "LOG_LEVEL": self.log_level,
            "LOG_FORMAT": self.log_format,
            "SQL_COUNT_HEADER": self.sql_count_header,
            "BATCH_WORKERS": self.batch_workers,
            "BATCH_POLL_SECONDS": self.batch_poll_seconds,
            "BATCH_WORKERS_PER_SERVER": self.batch_workers_per_server,
            "ALERT_WORKERS": self.alert_workers,
            "ALERT_POLL_SECONDS": self.alert_poll_seconds,
            "ALERT_EVALUATE_SECONDS": self.alert_evaluate_seconds,
            "ALERT_LEASE_SECONDS": self.alert_lease_seconds,
            "ALERT_MAX_ATTEMPTS": self.alert_max_attempts,
            "ALERT_BACKOFF_SECONDS": self.alert_backoff_seconds,
            "ALERT_SEND_TIMEOUT": self.alert_send_timeout,
            "ALERT_UNREACHABLE_MINUTES": self.alert_unreachable_minutes,
            "ALERTS_ALLOW_HTTP": self.alerts_allow_http,
            "ALERTS_ALLOW_LOOPBACK": self.alerts_allow_loopback,
            "ALERTS_ALLOW_PRIVATE": self.alerts_allow_private,
            "ALERTS_TELEGRAM_API_URL": self.alerts_telegram_api_url,
            "SESSION_IDLE_MINUTES": self.session_idle_minutes,
            "SESSION_MAX_HOURS": self.session_max_hours,
            "LOGIN_THROTTLE_WINDOW_SECONDS": self.login_throttle_window_seconds,
            "LOGIN_MAX_FAILURES_PER_USERNAME": self.login_max_failures_per_username,
            "LOGIN_MAX_FAILURES_PER_IP": self.login_max_failures_per_ip,
            "TRUSTED_PROXY_COUNT": self.trusted_proxy_count,
            # Admins without a second factor may only enrol one (access.enforce_access).
            "REQUIRE_ADMIN_MFA": self.require_admin_mfa,
            # __Host-: Secure, no Domain, Path=/ (ASVS 3.3.1/3.3.3); plain HTTP in development.
            "SESSION_COOKIE_NAME": "__Host-session" if self.is_production else "session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.is_production,
            "SESSION_COOKIE_PATH": "/",
            # Remember-me is not offered, and a remember cookie is never honoured (auth.py).
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SECURE": self.is_production,
            "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
            "EMBEDDED_PGDATA": self.embedded_pgdata,
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                # A connection for every thread that may hold one at once, so no request waits
                # for the pool (30 s, then a 500) behind requests queued on a row lock.
                "pool_size": self.db_pool_size,
                "max_overflow": 4,
                # Statement parameters hold clients' configurations and users' data: errors and
                # SQL logs show the statement only.
                "hide_parameters": True,
                # Naive TIMESTAMP columns hold UTC: make NOW() agree whatever the server's zone.
                "connect_args": {"connect_timeout": 5, "options": "-c timezone=UTC"},
            },
        }


# Threads of a process that hold a database connection besides the request threads: the
# status refresh, reconcile, history maintenance and one spare.
BACKGROUND_THREADS = 4


def default_pool_size(env: dict[str, str]) -> int:
    """Every thread of a process that may use the database at once: gunicorn's request
    threads (GUNICORN_THREADS, which gunicorn.conf.py reads too), the batch workers and the
    background jobs."""
    threads = _at_least(env, "GUNICORN_THREADS", 8, 1)
    return threads + _at_least(env, "BATCH_WORKERS", 4, 0) + BACKGROUND_THREADS


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    app_env = env.get("APP_ENV", "development").strip().lower() or "development"
    if app_env not in {"development", "production", "test"}:
        raise ConfigError("APP_ENV must be development, production or test")

    database_url = env.get("DATABASE_URL") or None
    if database_url:
        database_url = normalize_database_url(database_url)

    extra_headers_raw = env.get("HUMMINGBOT_EXTRA_HEADERS", "") or "{}"
    try:
        extra_headers = json.loads(extra_headers_raw)
    except json.JSONDecodeError as exc:
        raise ConfigError("HUMMINGBOT_EXTRA_HEADERS must be a JSON object") from exc
    if not isinstance(extra_headers, dict):
        raise ConfigError("HUMMINGBOT_EXTRA_HEADERS must be a JSON object")

    # Development serves the vendored copy (works offline); production the pinned CDN copy.
    default_htmx = "cdn" if app_env == "production" else "local"
    htmx_source = (env.get("HTMX_SOURCE") or default_htmx).strip().lower()
    if htmx_source not in {"cdn", "local"}:
        raise ConfigError("HTMX_SOURCE must be 'cdn' or 'local'")

    return Settings(
        env=app_env,
        secret_key=env.get("SECRET_KEY") or DEV_SECRET_KEY,
        # Fernet keys for sealed columns (dashboard/sealed.py); empty: derived from SECRET_KEY.
        encryption_keys=env.get("ENCRYPTION_KEYS", ""),
        session_idle_minutes=_at_least(env, "SESSION_IDLE_MINUTES", 30, 1),
        session_max_hours=_at_least(env, "SESSION_MAX_HOURS", 12, 1),
        login_throttle_window_seconds=_at_least(env, "LOGIN_THROTTLE_WINDOW_SECONDS", 900, 1),
        login_max_failures_per_username=_at_least(env, "LOGIN_MAX_FAILURES_PER_USERNAME", 10, 1),
        login_max_failures_per_ip=_at_least(env, "LOGIN_MAX_FAILURES_PER_IP", 50, 1),
        trusted_proxy_count=_at_least(env, "TRUSTED_PROXY_COUNT", 0, 0),
        require_admin_mfa=_bool(env.get("REQUIRE_ADMIN_MFA"), default=app_env == "production"),
        database_url=database_url,
        port=_int(env, "PORT", 5000),
        hummingbot_api_url=(env.get("HUMMINGBOT_API_URL") or None),
        hummingbot_allow_http=_bool(env.get("HUMMINGBOT_ALLOW_HTTP")),
        hummingbot_username=env.get("HUMMINGBOT_API_USERNAME", DEFAULT_HUMMINGBOT_CREDENTIALS[0]),
        hummingbot_password=env.get("HUMMINGBOT_API_PASSWORD", DEFAULT_HUMMINGBOT_CREDENTIALS[1]),
        hummingbot_connect_timeout=_float(env, "HUMMINGBOT_CONNECT_TIMEOUT", 2.0),
        hummingbot_read_timeout=_float(env, "HUMMINGBOT_READ_TIMEOUT", 5.0),
        hummingbot_deploy_timeout=_float(env, "HUMMINGBOT_DEPLOY_TIMEOUT", 30.0),
        hummingbot_extra_headers={str(k): str(v) for k, v in extra_headers.items()},
        status_cache_seconds=_float(env, "STATUS_CACHE_SECONDS", 2.0),
        # How long a page waits for a status refresh it found under way before it shows the
        # server's previous snapshot, greyed (fleet.py): a slow server never holds a page.
        status_wait_seconds=_float(env, "STATUS_WAIT_SECONDS", 1.0),
        # One status call per server per period for the whole deployment (shared_status.py);
        # off by default: PERFORMANCE.md, "Many Hummingbot servers", says when it pays.
        status_shared=_bool(env.get("STATUS_SHARED"), False),
        breaker_threshold=_int(env, "HUMMINGBOT_BREAKER_THRESHOLD", 3),
        # While open, the breaker lets one call probe every this many seconds: under half a
        # poll period, so pages show live status by the first poll after Hummingbot is back.
        breaker_reset_seconds=_float(env, "HUMMINGBOT_BREAKER_RESET_SECONDS",
                                     _int(env, "STATUS_POLL_SECONDS", 5) / 2),
        reconcile_interval_seconds=_float(env, "RECONCILE_INTERVAL_SECONDS", 15.0),
        deploy_grace_seconds=_float(env, "DEPLOY_GRACE_SECONDS", 120.0),
        status_poll_seconds=_int(env, "STATUS_POLL_SECONDS", 5),
        # Raw samples at most once a minute per bot: a smaller value would only grow the table.
        history_sample_seconds=_at_least(env, "HISTORY_SAMPLE_SECONDS", 60, 60),
        history_raw_hours=_at_least(env, "HISTORY_RAW_HOURS", 48, 1),
        history_hourly_days=_at_least(env, "HISTORY_HOURLY_DAYS", 400, 1),
        history_maintenance_seconds=_float(env, "HISTORY_MAINTENANCE_SECONDS", 300.0),
        history_backfill=_bool(env.get("HISTORY_BACKFILL"), default=True),
        page_size=_int(env, "PAGE_SIZE", 50),
        max_config_bytes=_int(env, "MAX_CONFIG_BYTES", 64 * 1024),
        max_content_length=_int(env, "MAX_CONTENT_LENGTH", 2 * 1024 * 1024),
        htmx_source=htmx_source,
        debug=_bool(env.get("FLASK_DEBUG")),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        log_format=env.get("LOG_FORMAT", "json").lower(),
        sql_count_header=_bool(env.get("SQL_COUNT_HEADER")),
        embedded_pgdata=env.get("EMBEDDED_PGDATA") or str(INSTANCE_PATH / "pgdata"),
        # Bulk actions: Hummingbot calls in flight at once per process (0: this process
        # executes none), and how often an idle worker looks for new items.
        batch_workers=_at_least(env, "BATCH_WORKERS", 4, 0),
        db_pool_size=_at_least(env, "DB_POOL_SIZE", default_pool_size(env), 1),
        batch_poll_seconds=_float(env, "BATCH_POLL_SECONDS", 1.0),
        # ...of which at most this many to one Hummingbot server: by default all but one, so
        # a slow server never holds every worker while another server's items wait.
        batch_workers_per_server=_at_least(
            env, "BATCH_WORKERS_PER_SERVER",
            max(1, _at_least(env, "BATCH_WORKERS", 4, 0) - 1), 1),
        # Alerts: delivery threads per process (0: none here), how often conditions are
        # evaluated fleet-wide (0: never in this process), a claim's lease (longer than any
        # send), retries with exponential backoff from ALERT_BACKOFF_SECONDS, then dead.
        alert_workers=_at_least(env, "ALERT_WORKERS", 2, 0),
        alert_poll_seconds=_float(env, "ALERT_POLL_SECONDS", 1.0),
        alert_evaluate_seconds=_float(env, "ALERT_EVALUATE_SECONDS", 30.0),
        alert_lease_seconds=_float(env, "ALERT_LEASE_SECONDS", 60.0),
        alert_max_attempts=_at_least(env, "ALERT_MAX_ATTEMPTS", 8, 1),
        alert_backoff_seconds=_float(env, "ALERT_BACKOFF_SECONDS", 5.0),
        alert_send_timeout=_float(env, "ALERT_SEND_TIMEOUT", 5.0),
        alert_unreachable_minutes=_at_least(env, "ALERT_UNREACHABLE_MINUTES", 5, 1),
        # The outbound policy (alerts/policy.py): plain http, this machine and private
        # networks are refused in production unless allowed; development allows them.
        alerts_allow_http=_bool(env.get("ALERTS_ALLOW_HTTP"), default=app_env != "production"),
        alerts_allow_loopback=_bool(env.get("ALERTS_ALLOW_LOOPBACK"),
                                    default=app_env == "development"),
        alerts_allow_private=_bool(env.get("ALERTS_ALLOW_PRIVATE"),
                                   default=app_env != "production"),
        alerts_telegram_api_url=(env.get("ALERTS_TELEGRAM_API_URL")
                                 or "https://api.telegram.org").rstrip("/"),
    )


def plain_http_to_another_host(url: str | None) -> bool:
    """An http:// URL whose host is not this machine. Loopback is allowed: the password and
    the configurations never leave the host, so TLS would protect nothing there."""
    if not url:
        return False
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name other than localhost may resolve anywhere


def validate_production(settings: Settings) -> None:
    """Refuse to serve production with a development secret or default credentials."""
    if not settings.is_production:
        return
    problems = []
    key_problem = secret_key_problem(settings.secret_key)
    if key_problem:
        problems.append(key_problem)
    if not settings.database_url:
        problems.append("DATABASE_URL must point at the production PostgreSQL")
    if settings.debug:
        problems.append("FLASK_DEBUG must be off")
    if not settings.hummingbot_api_url:
        problems.append("HUMMINGBOT_API_URL must be set")
    if plain_http_to_another_host(settings.hummingbot_api_url) \
            and not settings.hummingbot_allow_http:
        problems.append("HUMMINGBOT_API_URL must use https:// (it carries the Hummingbot "
                        "password and every client's configuration); set "
                        "HUMMINGBOT_ALLOW_HTTP=true only if the network between is private")
    credentials = (settings.hummingbot_username, settings.hummingbot_password)
    if credentials == DEFAULT_HUMMINGBOT_CREDENTIALS:
        problems.append("HUMMINGBOT_API_USERNAME/PASSWORD must not be the default admin/admin")
    if problems:
        raise ConfigError("Refusing to start in production: " + "; ".join(problems) + ".")
