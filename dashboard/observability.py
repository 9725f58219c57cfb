"""Structured logs: one JSON line per request and per lifecycle action, each with the request
id that the response also carries in `X-Request-ID` (and error pages show)."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request

ACCESS_LOG = "dashboard.access"
EVENT_LOG = "dashboard.events"


class JsonFormatter(logging.Formatter):
    """`{"ts":..., "level":..., "logger":..., "msg":..., **extra}` on one line."""

    RESERVED = set(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" not in record.__dict__:
            entry["request_id"] = g.get("request_id")
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (gunicorn's own logs stay as they are)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    root.addHandler(handler)
    root.setLevel(level)


def log_lifecycle(bot_id: str, action: str, actor: str, from_status: str | None,
                  to_status: str | None, details: dict[str, Any]) -> None:
    logging.getLogger(EVENT_LOG).info(
        "bot %s: %s", bot_id, action,
        extra={"bot_id": bot_id, "action": action, "actor": actor, "from_status": from_status,
               "to_status": to_status, "error": details.get("error"),
               # Taken now: the line may be formatted later, outside the request.
               "request_id": g.get("request_id") if has_request_context() else None},
    )


def count_sql_statements(app: Flask) -> None:
    """Count the SQL statements each request runs, in `g.sql_statements` and the response
    header X-SQL-Statements (SQL_COUNT_HEADER=1; for benchmarks and tests, off by default)."""
    from sqlalchemy import event

    from .models import db

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if has_request_context():
            g.sql_statements = g.get("sql_statements", 0) + 1

    @app.after_request
    def add_header(response):
        response.headers["X-SQL-Statements"] = str(g.get("sql_statements", 0))
        return response


def init_app(app: Flask) -> None:
    if app.config.get("LOG_FORMAT", "json") == "json" and not app.testing:
        configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    if app.config.get("SQL_COUNT_HEADER"):
        count_sql_statements(app)
    access = logging.getLogger(ACCESS_LOG)

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        if request.endpoint == "static":
            return response
        # Only a user this request already loaded: logging must never query the database.
        loaded = g.get("_login_user")
        user = loaded.username if loaded is not None and loaded.is_authenticated else None
        access.info(
            "%s %s %s", request.method, request.path, response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 1),
                "user": user,
                "htmx": request.headers.get("HX-Request") == "true",
                "remote": request.remote_addr,
                "request_id": g.get("request_id"),
            },
        )
        return response
