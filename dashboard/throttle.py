"""Login throttling per client address and per username, stored in PostgreSQL.

Only failures count toward a lockout. `begin_attempt` locks the address's and the username's
rows (one upsert each, always in key order, so two attempts can never wait on each other in a
cycle) and refuses when either already holds its limit of failures; the locks stay held while
the password is checked, until `attempt_failed`, `attempt_succeeded` or `end_attempt` commits.
So parallel guesses queue behind each other and cannot slip past the limit between a read and
a write, on any number of workers and machines, while any number of parallel *valid* logins
only ever wait for one password check each: a success never adds to a count. Fixed windows of
LOGIN_THROTTLE_WINDOW_SECONDS, starting at a key's first failure; a refused attempt gets 429
with Retry-After, and the password is not even checked.

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
# all processes. The upsert locks the row (an expired window starts over at zero) and returns
# the failures in the window and the seconds left of it.
_LOCK = text("""
    WITH clock AS (SELECT now() AT TIME ZONE 'UTC' AS now_utc,
                          make_interval(secs => :window) AS span)
    INSERT INTO login_throttle AS t (key, window_started_at, attempts)
    SELECT :key, clock.now_utc, 0 FROM clock
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_started_at <= (SELECT now_utc - span FROM clock)
                        THEN 0 ELSE t.attempts END,
        window_started_at = CASE WHEN t.window_started_at <= (SELECT now_utc - span FROM clock)
                                 THEN (SELECT now_utc FROM clock) ELSE t.window_started_at END
    RETURNING t.attempts,
              EXTRACT(EPOCH FROM t.window_started_at + (SELECT span FROM clock)
                                 - (SELECT now_utc FROM clock))
""")
# A key's window starts at its first failure, not at the success that created its row.
_COUNT_FAILURE = text("""
    UPDATE login_throttle SET
        window_started_at = CASE WHEN attempts = 0 THEN now() AT TIME ZONE 'UTC'
                                 ELSE window_started_at END,
        attempts = attempts + 1
    WHERE key = :key
""")
_FORGET = text("DELETE FROM login_throttle WHERE key = :key")
# SKIP LOCKED: rows another attempt holds are left for a later sweep, never waited for (waiting
# on rows outside our own two keys could close a cycle with that attempt).
_PURGE = text("""
    DELETE FROM login_throttle WHERE key IN (
        SELECT key FROM login_throttle
        WHERE window_started_at <= (now() AT TIME ZONE 'UTC') - make_interval(secs => :window)
        FOR UPDATE SKIP LOCKED)
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


def _keys(username: str) -> list[tuple[str, str, int]]:
    """(kind, key, limit) for the address and the username, in the one order rows are locked."""
    config = current_app.config
    return sorted([
        ("address", _key("ip", client_address()), config["LOGIN_MAX_FAILURES_PER_IP"]),
        ("username", _key("user", username.strip().lower()),
         config["LOGIN_MAX_FAILURES_PER_USERNAME"]),
    ], key=lambda item: item[1])


def begin_attempt(username: str) -> Verdict:
    """Lock the address's and the username's rows; refuse if either is at its failure limit.

    An allowed attempt must end with attempt_failed, attempt_succeeded or end_attempt (the
    request's end rolls back, and so releases the locks, at the latest)."""
    window = current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"]
    refused: list[tuple[int, str]] = []
    for kind, key, limit in _keys(username):
        failures, remaining = db.session.execute(
            _LOCK, {"key": key, "window": window}
        ).one()
        if failures >= limit:
            refused.append((max(1, math.ceil(remaining)), kind))
    if refused:
        db.session.commit()
        retry_after, kind = max(refused)
        return Verdict(False, retry_after, kind)
    return Verdict(True)


def attempt_failed(username: str) -> None:
    """Wrong credentials: one more failure for the address and for the username."""
    for _kind, key, _limit in _keys(username):
        db.session.execute(_COUNT_FAILURE, {"key": key})
    db.session.commit()  # the count must stand whatever the request does next


def attempt_succeeded(username: str) -> None:
    """The credentials were right: forget the username's failures (the address keeps its own:
    a success elsewhere must not wipe a guesser's count), and sweep expired rows."""
    for kind, key, _limit in _keys(username):
        if kind == "username":
            db.session.execute(_FORGET, {"key": key})
    db.session.execute(_PURGE, {"window": current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"]})
    db.session.commit()


def end_attempt() -> None:
    """Neither a failure nor a success (half a login waiting for its second factor, a form
    error after the right password): release the locks, count nothing."""
    db.session.commit()
