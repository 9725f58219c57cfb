"""Request hooks shared by every view: access checks, request ids, security headers, errors,
and the few template helpers the pages use."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from .access import enforce_access, wants_json
from .models import db
from .registry import utcnow

log = logging.getLogger(__name__)

HTMX_VERSION = "2.0.8"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# The same bytes as static/vendor/htmx-2.0.8.min.js (a test checks the two agree).
HTMX_SRI = "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz"
HTMX_LOCAL_FILE = f"vendor/htmx-{HTMX_VERSION}.min.js"

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def content_security_policy(htmx_source: str) -> str:
    script_src = "'self' https://cdn.jsdelivr.net" if htmx_source == "cdn" else "'self'"
    return "; ".join([
        "default-src 'self'",
        f"script-src {script_src}",
        "style-src 'self'",
        "img-src 'self' data:",  # Pico draws its icons as data: SVGs
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'4 min ago' for a naive UTC timestamp."""
    if value is None:
        return "never"
    seconds = int(((now or utcnow()) - value).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def init_app(app: Flask) -> None:
    csp = content_security_policy(app.config["HTMX_SOURCE"])

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.before_request
    def check_access():
        return enforce_access(app)

    @app.after_request
    def set_headers(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.vary.add("HX-Request")  # the same URL serves a page or its fragment
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        if app.config["APP_ENV"] == "production":
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return response

    def error_response(status: int, title: str, message: str):
        if wants_json():
            return jsonify(error=message, request_id=g.get("request_id")), status
        return render_template("error.html", status=status, title=title, message=message), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_response(400, "Form expired", "The form was stale or incomplete "
                              "(missing security token). Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.name, error.description or error.name)

    @app.errorhandler(OperationalError)
    def database_down(error):
        db.session.rollback()
        log.error("database unavailable: %s", error.orig.__class__.__name__)
        return error_response(503, "Database unavailable",
                              "The database is not answering. Try again in a moment.")

    @app.errorhandler(Exception)
    def unexpected(error):
        db.session.rollback()
        log.exception("unhandled error (request id %s)", g.get("request_id"))
        return error_response(500, "Something went wrong",
                              "An unexpected error occurred. Nothing further was changed.")

    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["utc"] = utc

    @app.context_processor
    def page_globals():
        local = app.config["HTMX_SOURCE"] == "local"
        return {
            "htmx_local_file": HTMX_LOCAL_FILE if local else None,
            "htmx_cdn_url": HTMX_CDN_URL,
            "htmx_sri": HTMX_SRI,
            "request_id": g.get("request_id"),
        }
