"""Request hooks shared by every view: access checks, request ids, security headers, errors,
and the few template helpers the pages use."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from urllib.parse import quote

from flask import Flask, abort, g, jsonify, render_template, request, session
from flask.json.provider import DefaultJSONProvider
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from .access import ADMIN, access_level, enforce_access, wants_json
from .audit import security_event
from .models import db
from .registry import utcnow

log = logging.getLogger(__name__)

HTMX_VERSION = "2.0.8"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# The same bytes as static/vendor/htmx-2.0.8.min.js (a test checks the two agree).
HTMX_SRI = "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz"
HTMX_LOCAL_FILE = f"vendor/htmx-{HTMX_VERSION}.min.js"

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PAGER_KEYS = ("q", "account", "server", "status", "sort", "archived", "attention")

# Sent on every response, pages, fragments, JSON, errors and static files alike (ASVS 3.4).
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # obsolete beside frame-ancestors, kept for old browsers
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
HSTS = "max-age=63072000; includeSubDomains"
# Flashed messages travel in the session cookie until shown: an 8,000-character Hummingbot
# error made a cookie browsers drop (and every later request a 431). The full text stays on
# the bot's page and in its history.
MAX_FLASH_CHARS = 300
MAX_FLASHES = 5


def content_security_policy(htmx_source: str) -> str:
    # The CDN is allowed for the one pinned file, not the whole origin: a path without a
    # trailing slash matches exactly (CSP 3), so no other file on the CDN can run here.
    script_src = f"'self' {HTMX_CDN_URL}" if htmx_source == "cdn" else "'self'"
    return "; ".join([
        "default-src 'self'",
        f"script-src {script_src}",
        "style-src 'self'",
        "img-src 'self' data:",  # Pico draws its icons as data: SVGs
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def path_segment(value) -> str:
    """One URL path segment: `/` is encoded too (Werkzeug and Jinja's `urlencode` keep it), so a
    value from outside can never add segments that a browser would then resolve, as in
    `zz/../../../api/bots/x`."""
    return quote(str(value), safe="!$'()*+,:;=@")


class SegmentConverter(BaseConverter):
    """The default URL converter, with `path_segment` for building URLs."""

    def to_url(self, value) -> str:
        return path_segment(value)


def encode_slashes_in_urls(app: Flask) -> None:
    """Before any blueprint: rules pick their converters when they are added."""
    app.url_map.converters["default"] = app.url_map.converters["string"] = SegmentConverter


class InertJSONProvider(DefaultJSONProvider):
    """JSON with `<`, `>` and `&` written as \\u escapes (they only occur inside strings): the
    same data, but no markup even if a browser or htmx ever read it as HTML."""

    def dumps(self, obj, **kwargs) -> str:
        text = super().dumps(obj, **kwargs)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def refuse_htmx_on_the_api() -> None:
    """`before_request`: the JSON API is data, never a fragment to swap into a page. htmx marks
    every request it makes, so an element that was not ours asking /api/ gets a 400 (which
    htmx does not swap either)."""
    if wants_json() and "HX-Request" in request.headers:
        abort(400, "The JSON API does not answer htmx requests (HX-Request): it serves data, "
                   "not page fragments.")


def ensure_request_id() -> str:
    """`g.request_id`: the caller's X-Request-ID if it is sane, else a new one. Error
    handlers call it too, because a request refused by an earlier hook (CSRF runs first)
    never reached the hook below."""
    if not g.get("request_id"):
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    return g.request_id


def _has_nul(values) -> bool:
    # A malformed multipart part can come back without a name (None): not a NUL, not a crash.
    return any("\x00" in (key or "") or "\x00" in (value or "") for key, value in values)


def reject_unusable_input(max_length: int | None):
    """`before_request`: a body announced larger than allowed is refused before it is read
    (413, as JSON under /api/), and a NUL character anywhere in the path, the query or a form
    is a 400: PostgreSQL cannot store one, and no name, id or setting contains one."""
    if max_length is not None and (request.content_length or 0) > max_length:
        abort(413)
    if "\x00" in request.path or _has_nul(request.args.items(multi=True)):
        abort(400, "The request contains a NUL character.")
    if request.method in STATE_CHANGING and _has_nul(request.form.items(multi=True)):
        abort(400, "The request contains a NUL character.")


def bound_flashed_messages() -> None:
    """The one place flashed messages are bounded: the latest MAX_FLASHES, each cut to
    MAX_FLASH_CHARS, before the session cookie is written."""
    if "_flashes" not in session:  # `in` does not mark the session accessed (Vary: Cookie)
        return
    flashes = session["_flashes"]
    bounded = [(category, _shorten(str(message))) for category, message in flashes]
    bounded = bounded[-MAX_FLASHES:]
    if bounded != flashes:
        session["_flashes"] = bounded


def _shorten(message: str) -> str:
    if len(message) <= MAX_FLASH_CHARS:
        return message
    return message[:MAX_FLASH_CHARS - 1].rstrip() + "…"


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
    # JSON is data, never a document: if it is ever opened as one, it runs nothing.
    json_csp = "default-src 'none'; frame-ancestors 'none'; sandbox"
    proxies = app.config.get("TRUSTED_PROXY_COUNT", 0)
    if proxies:
        # Trust exactly that many X-Forwarded-For/-Proto hops; with 0 (the default) the
        # headers are ignored, so a client cannot pick its own address to dodge throttling.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    @app.before_request
    def assign_request_id():
        ensure_request_id()

    app.json = InertJSONProvider(app)
    app.before_request(refuse_htmx_on_the_api)

    @app.before_request
    def check_input():
        reject_unusable_input(app.config.get("MAX_CONTENT_LENGTH"))

    @app.before_request
    def check_access():
        from .auth import note_activity

        refusal = enforce_access(app)
        if refusal is None:
            note_activity()
        return refusal

    @app.after_request
    def set_headers(response):
        response.headers["X-Request-ID"] = ensure_request_id()
        response.headers["Content-Security-Policy"] = (
            json_csp if response.mimetype == "application/json" else csp)
        response.headers.update(STATIC_HEADERS)
        response.vary.add("HX-Request")  # the same URL serves a page or its fragment
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        if app.config["APP_ENV"] == "production":
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    @app.after_request
    def bound_flashes(response):
        bound_flashed_messages()
        return response

    @app.after_request
    def log_admin_actions(response):
        """Every state-changing request to an admin endpoint, whatever its outcome."""
        if request.method in STATE_CHANGING and access_level(app, request.endpoint) == ADMIN \
                and not g.get("database_down"):
            from flask_login import current_user

            if current_user.is_authenticated and current_user.is_admin:
                security_event("admin_action", endpoint=request.endpoint,
                               target=request.view_args or {}, status=response.status_code)
        return response

    def error_response(status: int, title: str, message: str):
        request_id = ensure_request_id()
        if wants_json():
            return jsonify(error=message, request_id=request_id), status
        return render_template("error.html", status=status, title=title, message=message), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        security_event("csrf_refused", level=logging.WARNING, endpoint=request.endpoint,
                       reason=error.description)
        return error_response(400, "Form expired", "The form was stale or incomplete "
                              "(missing security token). Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.name, error.description or error.name)

    @app.errorhandler(OperationalError)
    def database_down(error):
        db.session.rollback()
        # The error page must not ask the database who is logged in: Flask-Login caches the
        # request's user in g._login_user, so pin an anonymous one for this response.
        g.database_down = True
        g._login_user = AnonymousUserMixin()
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
    # The pager repeats the list's filters, and only those: url_for must never see a query
    # key such as `endpoint` or `_scheme` (a 500, or a javascript: link).
    app.jinja_env.globals["pager_args"] = lambda: {
        key: request.args[key] for key in PAGER_KEYS if request.args.get(key)}
    app.jinja_env.filters["utc"] = utc
    app.jinja_env.filters["segment"] = path_segment

    @app.context_processor
    def page_globals():
        local = app.config["HTMX_SOURCE"] == "local"
        return {
            "htmx_local_file": HTMX_LOCAL_FILE if local else None,
            "htmx_cdn_url": HTMX_CDN_URL,
            "htmx_sri": HTMX_SRI,
            "request_id": ensure_request_id(),
        }
