"""What /readyz reports: the database, its migrations, and Hummingbot (informational)."""

from __future__ import annotations

from typing import Any

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .fleet import fleet
from .models import db


def migration_head() -> str | None:
    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


def readiness() -> dict[str, Any]:
    report: dict[str, Any] = {"database": "ok", "migrations": "unknown"}
    try:
        current = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:
        db.session.rollback()
        report["database"] = "unreachable"
        current = None
    if report["database"] == "ok":
        head = migration_head()
        report["migrations"] = "at head" if current == head else f"at {current}, head is {head}"
    snapshot = fleet().snapshot()
    report["hummingbot"] = "ok" if snapshot.reachable else snapshot.error_kind
    report["ready"] = report["database"] == "ok" and report["migrations"] == "at head"
    return report
