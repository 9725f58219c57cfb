"""Bot Management: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from .config import INSTANCE_PATH, PROJECT_ROOT, ConfigError, load_settings, validate_production


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    settings = load_settings()
    validate_production(settings)

    app = Flask(
        __name__,
        instance_path=str(INSTANCE_PATH),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(settings.as_flask_config())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_uri(app)

    from .extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    from . import sealed

    try:
        sealed.init_app(app)
    except sealed.SealedKeyError as exc:
        raise ConfigError(str(exc)) from exc

    from . import (
        accounts,
        api,
        auth,
        bots,
        openapi,
        recovery_views,
        servers_views,
        versions_views,
    )
    from .web import encode_slashes_in_urls

    encode_slashes_in_urls(app)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(bots.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(recovery_views.bp)
    app.register_blueprint(versions_views.bp)
    app.register_blueprint(servers_views.bp)

    from .batches import executor as batch_executor
    from .batches import views as batch_views

    app.register_blueprint(batch_views.bp)

    from .history import views as history_views

    app.register_blueprint(history_views.bp)

    from .alerts import views as alert_views

    app.register_blueprint(alert_views.bp)

    from .alerts import delivery as alert_delivery
    from .alerts import models as alert_models  # noqa: F401  (the tables join the metadata)
    from .cli import alerts_cli, bots_cli, history_cli, secrets_cli, servers_cli, users_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(bots_cli)
    app.cli.add_command(history_cli)
    app.cli.add_command(secrets_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(servers_cli)

    from . import formatting, gateway, observability, web

    observability.init_app(app)
    gateway.init_app(app)
    web.init_app(app)
    batch_executor.init_app(app)
    alert_delivery.init_app(app)
    formatting.init_app(app)
    return app


def _database_uri(app: Flask) -> str:
    if app.config.get("SQLALCHEMY_DATABASE_URI"):
        return app.config["SQLALCHEMY_DATABASE_URI"]
    if app.config.get("DATABASE_URL"):
        return app.config["DATABASE_URL"]
    if app.config["APP_ENV"] == "production":
        raise ConfigError("DATABASE_URL must be set in production.")
    from .embedded_db import embedded_database_url

    return embedded_database_url(Path(app.config["EMBEDDED_PGDATA"]))
