"""Login throttling per client address and per username, stored in PostgreSQL.

Every attempt is counted *before* the password is checked, with one atomic upsert per key
(`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`), so parallel requests on any number of
workers and machines cannot slip past the limit between a read and a write. A success gives
its attempt back: it clears the username's count and takes one off the address's, so only
failures add up. Fixed windows of LOGIN_THROTTLE_WINDOW_SECONDS; an attempt over either limit is
refused with 429 and Retry-After, and the password is not even checked.

Keys are HMACs of the username (lowercased) and the address under SECRET_KEY: the table never
holds what someone typed into the username box.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

from flask import current_app, request
from sqlalchemy import text

from .models import db

# Timestamps are naive UTC, like every other column; "now" is the database's clock, shared by
# all processes.
_COUNT_ATTEMPT = text("""
    WITH clock AS (SELECT now() AT TIME ZONE 'UTC' AS now_utc,
                          make_interval(secs => :window) AS span)
    INSERT INTO login_throttle AS t (key, window_started_at, attempts)
    SELECT :key, clock.now_utc, 1 FROM clock
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_started_at <= (SELECT now_utc - span FROM clock)
                        THEN 1 ELSE t.attempts + 1 END,
        window_started_at = CASE WHEN t.window_started_at <= (SELECT now_utc - span FROM clock)
                                 THEN (SELECT now_utc FROM clock) ELSE t.window_started_at END
    RETURNING t.attempts,
              EXTRACT(EPOCH FROM t.window_started_at + (SELECT span FROM clock)
                                 - (SELECT now_utc FROM clock))
""")
_FORGET = text("DELETE FROM login_throttle WHERE key = :key")
_GIVE_BACK = text(
    "UPDATE login_throttle SET attempts = GREATEST(attempts - 1, 0) WHERE key = :key"
)
_PURGE = text("""
    DELETE FROM login_throttle
    WHERE window_started_at <= (now() AT TIME ZONE 'UTC') - make_interval(secs => :window)
""")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds, when refused
    limited_by: str | None = None  # "address" or "username"


def client_address() -> str:
    """The caller's address: the socket peer, or what the trusted proxy says (ProxyFix)."""
    return request.remote_addr or "unknown"


def _key(kind: str, value: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest}"


def _keys(username: str) -> dict[str, tuple[str, int]]:
    config = current_app.config
    return {
        "address": (_key("ip", client_address()), config["LOGIN_MAX_FAILURES_PER_IP"]),
        "username": (_key("user", username.strip().lower()),
                     config["LOGIN_MAX_FAILURES_PER_USERNAME"]),
    }


def begin_attempt(username: str) -> Verdict:
    """Count a login attempt; refuse it if the address or the username is over its limit."""
    window = current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"]
    refused: list[tuple[int, str]] = []
    # Always the same key order, so concurrent attempts lock rows in the same order.
    for kind, (key, limit) in sorted(_keys(username).items(), key=lambda item: item[1][0]):
        attempts, remaining = db.session.execute(
            _COUNT_ATTEMPT, {"key": key, "window": window}
        ).one()
        if attempts > limit:
            refused.append((max(1, math.ceil(remaining)), kind))
    db.session.commit()  # the count must stand even if the request dies while hashing
    if refused:
        retry_after, kind = max(refused)
        return Verdict(False, retry_after, kind)
    return Verdict(True)


def attempt_succeeded(username: str) -> None:
    """The password was right: forget the username's failures, give the address its attempt
    back, and sweep expired rows so the table stays small."""
    keys = _keys(username)
    db.session.execute(_FORGET, {"key": keys["username"][0]})
    db.session.execute(_GIVE_BACK, {"key": keys["address"][0]})
    db.session.execute(_PURGE, {"window": current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"]})
    db.session.commit()
