"""Hummingbot servers as data: the `hummingbot_servers` table and the rules for editing it.

One server is named `default`: HUMMINGBOT_API_URL and its credentials become (or update) it
when the app starts, so an install from before servers existed needs no step. Credentials are
sealed at rest (sealed.py) and write-only: nothing here returns them to a page, a log or an
export. A server with bots on it can be disabled (its bots show their last status, greyed)
but not removed.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .config import plain_http_to_another_host
from .models import Bot, HummingbotServer, db
from .registry import SERVER_NAME
from .sealed import UnreadableSecret, unseal
from .validation import ValidationError

log = logging.getLogger(__name__)

DEFAULT_SERVER = "default"
# Server names appear in the list, filters, URLs and import files: a short slug, no spaces.
NAME_RULE = SERVER_NAME


class ServerError(Exception):
    """A server change refused (unknown name, bots still on it...)."""


@dataclass(frozen=True)
class ServerSettings:
    """What a link to one server is built from (fleet.py). Holds the credentials: never
    rendered, never logged (its repr leaves them out)."""

    id: int
    name: str
    base_url: str | None
    username: str
    password: str
    extra_headers: dict[str, str]
    enabled: bool

    def __repr__(self) -> str:
        return f"ServerSettings(id={self.id}, name={self.name!r})"

    def client_settings(self, app_config: Any) -> dict[str, Any]:
        """HUMMINGBOT_* keys for hummingbot.client_from_settings: this server's address and
        credentials, the app's timeouts."""
        return {
            "HUMMINGBOT_API_URL": self.base_url,
            "HUMMINGBOT_API_USERNAME": self.username,
            "HUMMINGBOT_API_PASSWORD": self.password,
            "HUMMINGBOT_EXTRA_HEADERS": self.extra_headers,
            **{key: app_config.get(key) for key in (
                "HUMMINGBOT_CONNECT_TIMEOUT", "HUMMINGBOT_READ_TIMEOUT",
                "HUMMINGBOT_DEPLOY_TIMEOUT")},
        }


# What a process compares to see a server added, renamed, switched or edited elsewhere
# (fleet.py): each row's id, name, enabled and updated_at, as one JSON array. A subquery, so a
# page can read it with its other small figures (history bot_page_state) in one statement.
SERVER_ROWS = ("(SELECT json_agg(json_build_array(id, name, enabled, updated_at) ORDER BY id) "
               "FROM hummingbot_servers)")


def server_rows() -> list[list]:
    return db.session.scalar(text("SELECT " + SERVER_ROWS)) or []


RAW_SERVERS = text("SELECT id, name, base_url, username, password, extra_headers, enabled "
                   "FROM hummingbot_servers WHERE id = ANY(:ids)")


def _opened(token: str | None, server: str) -> str:
    """A sealed value, or "" when no configured key opens it (logged without the value):
    that server then fails with an authentication error instead of breaking every page."""
    if token is None:
        return ""
    try:
        return unseal(token)
    except UnreadableSecret:
        log.warning("a credential of hummingbot server %s cannot be decrypted with "
                    "ENCRYPTION_KEYS; set it again", server)
        return ""


def load_settings(ids: list[int]) -> list[ServerSettings]:
    """What the links to these servers are built from (read raw, opened one by one)."""
    rows = db.session.execute(RAW_SERVERS, {"ids": ids}).mappings()
    return [ServerSettings(id=row["id"], name=row["name"], base_url=row["base_url"],
                           username=_opened(row["username"], row["name"]),
                           password=_opened(row["password"], row["name"]),
                           extra_headers=_headers(_opened(row["extra_headers"], row["name"])),
                           enabled=row["enabled"])
            for row in rows]


def _headers(raw: str | None) -> dict[str, str]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


# ------------------------------------------------------------------------------ reading
def all_servers() -> list[HummingbotServer]:
    return list(db.session.scalars(select(HummingbotServer).order_by(HummingbotServer.name)))


def server_names() -> dict[int, str]:
    """id -> name, without decrypting anything (the list's Server column and filter)."""
    rows = db.session.execute(select(HummingbotServer.id, HummingbotServer.name)
                              .order_by(HummingbotServer.name))
    return dict(rows.all())


def find_server(name: str) -> HummingbotServer | None:
    return db.session.scalar(select(HummingbotServer).where(HummingbotServer.name == name))


def get_server(name: str) -> HummingbotServer:
    server = find_server(name)
    if server is None:
        raise ServerError(f"No Hummingbot server is named {name!r}.")
    return server


def default_server_id() -> int:
    """The id of `default`, created (with no URL yet) when there is none."""
    return db.session.scalar(select(func.default_hummingbot_server_id()))


def bots_per_server() -> dict[int, tuple[int, int]]:
    """server id -> (live definitions, of which Hummingbot was last seen running)."""
    rows = db.session.execute(
        select(Bot.server_id, func.count(),
               func.count().filter(Bot.display_status.in_(
                   ("running", "idle", "running_script", "starting"))))
        .where(Bot.archived_at.is_(None)).group_by(Bot.server_id))
    return {server_id: (defined, running) for server_id, defined, running in rows}


def usual_server_id(account: str | None) -> int | None:
    """Where most of an account's bots are (the deploy form's default); None: no bot yet."""
    if not account:
        return None
    return db.session.scalar(
        select(Bot.server_id).where(Bot.account_identifier == account,
                                    Bot.archived_at.is_(None))
        .group_by(Bot.server_id).order_by(func.count().desc(), Bot.server_id).limit(1))


# ------------------------------------------------------------------------------ writing
# RFC 9110 token: what `requests` accepts as a header name.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
HEADER_VALUE_CHARS = 2000


def _url_problem(base_url: str, allow_http: bool) -> str | None:
    """Why this base URL cannot be stored, or None. Anything `requests` would refuse at call
    time (a bad port, a host name IDNA cannot encode) is refused here: once stored, it made
    every page that asks the servers a 500."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        (parts.hostname or "").encode("idna")
    except (ValueError, UnicodeError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or any(c.isspace() or not c.isprintable() for c in base_url):
        return "An http:// or https:// URL, for example https://hb.example.com."
    if not allow_http and plain_http_to_another_host(base_url):
        return ("Use https:// (the URL carries the Hummingbot password); "
                "HUMMINGBOT_ALLOW_HTTP=true allows http on a private network.")
    if parts.username or parts.password:
        return "Put the credentials in their own fields, not in the URL."
    return None


def _latin1(value: str) -> bool:
    # HTTP Basic and header values go out as ISO-8859-1 (requests encodes them so).
    try:
        value.encode("latin-1")
    except UnicodeError:
        return False
    return not any(c in value for c in "\r\n\x00")


def _headers_problem(extra_headers: str) -> str | None:
    try:
        value = json.loads(extra_headers)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        return 'A JSON object, for example {"X-Team": "desk"}.'
    for name, item in value.items():
        if not HEADER_NAME.match(name) or not isinstance(item, str) \
                or len(item) > HEADER_VALUE_CHARS or not _latin1(item):
            return ("Header names are letters, digits and - (no spaces); values are text in "
                    "Latin-1 without line breaks.")
    return None


def check_values(name: str, base_url: str | None, extra_headers: str | None,
                 *, allow_http: bool = True, username: str | None = None,
                 password: str | None = None) -> dict[str, str]:
    """Errors by field; empty when the values are acceptable."""
    errors: dict[str, str] = {}
    if not NAME_RULE.match(name or ""):
        errors["name"] = ("Lower-case letters, digits, '-' and '_' (at most 64), starting with "
                          "a letter or digit.")
    if base_url is not None and (problem := _url_problem(base_url, allow_http)):
        errors["base_url"] = problem
    for field, value in (("username", username), ("password", password)):
        if value and not _latin1(value):
            errors[field] = "Latin-1 characters only (HTTP Basic sends no others)."
    if extra_headers and (problem := _headers_problem(extra_headers)):
        errors["extra_headers"] = problem
    return errors


def add_server(name: str, base_url: str, username: str = "", password: str = "",
               extra_headers: str | None = None, *, allow_http: bool = True) -> HummingbotServer:
    name = (name or "").strip()
    errors = check_values(name, base_url, extra_headers, allow_http=allow_http,
                          username=username, password=password)
    if not errors and find_server(name) is not None:
        errors["name"] = "A server with this name exists already."
    if errors:
        raise ValidationError(errors)
    server = HummingbotServer(name=name, base_url=base_url, username=username or None,
                              password=password or None, extra_headers=extra_headers or None)
    db.session.add(server)
    try:
        db.session.commit()
    except IntegrityError:  # a parallel add of the same name won; the unique index decides
        db.session.rollback()
        raise ValidationError({"name": "A server with this name exists already."}) from None
    _changed()
    log.info("hummingbot server added: %s", name)  # never the URL's secrets or credentials
    return server


def update_server(server: HummingbotServer, *, base_url: str | None = None,
                  username: str | None = None, password: str | None = None,
                  extra_headers: str | None = None, enabled: bool | None = None,
                  allow_http: bool = True) -> HummingbotServer:
    """Change what is given; None keeps a value (secrets are write-only: an empty form field
    keeps the stored one)."""
    errors = check_values(server.name, base_url, extra_headers, allow_http=allow_http,
                          username=username, password=password)
    if errors:
        raise ValidationError(errors)
    if base_url is not None:
        server.base_url = base_url
    if username:
        server.username = username
    if password:
        server.password = password
    if extra_headers:
        server.extra_headers = extra_headers
    if enabled is not None:
        server.enabled = enabled
    server.updated_at = func.now()  # the fleet rebuilds this server's link
    db.session.commit()
    _changed()
    log.info("hummingbot server updated: %s", server.name)
    return server


def _changed() -> None:
    """This process's fleet looks at the table again (others do at their next page)."""
    from .fleet import fleet

    fleet().forget()


def set_enabled(name: str, enabled: bool) -> HummingbotServer:
    return update_server(get_server(name), enabled=enabled)


def remove_server(name: str) -> None:
    server = get_server(name)
    count = db.session.scalar(select(func.count()).select_from(Bot)
                              .where(Bot.server_id == server.id))
    if count:
        raise ServerError(f"{count} bot definition(s) are on server {name!r} (archived ones "
                          "count: their history names it). Disable it instead.")
    db.session.delete(server)
    db.session.commit()
    _changed()
    log.info("hummingbot server removed: %s", name)


def sync_default_server(app: Flask) -> None:
    """HUMMINGBOT_API_URL and its credentials become (or update) the server named `default`.
    Quietly does nothing before the migrations have created the table."""
    url = app.config.get("HUMMINGBOT_API_URL")
    if not url:
        return
    extra = app.config.get("HUMMINGBOT_EXTRA_HEADERS") or {}
    wanted = {"base_url": url,
              "username": app.config.get("HUMMINGBOT_API_USERNAME") or None,
              "password": app.config.get("HUMMINGBOT_API_PASSWORD") or None,
              "extra_headers": json.dumps(extra, sort_keys=True) if extra else None}
    try:
        found = db.session.scalar(select(HummingbotServer.id)
                                  .where(HummingbotServer.name == DEFAULT_SERVER))
        if found is None:
            db.session.add(HummingbotServer(name=DEFAULT_SERVER, **wanted))
        else:
            [stored] = load_settings([found])
            if (stored.base_url, stored.username or None, stored.password or None,
                    stored.extra_headers or {}) == (url, wanted["username"], wanted["password"],
                                                    extra or {}):
                return
            db.session.execute(update(HummingbotServer).where(HummingbotServer.id == found)
                               .values(**wanted, updated_at=func.now()))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record HUMMINGBOT_API_URL as the 'default' server "
                    "(migrations not run yet?)")
