"""One status call per server per period for the whole deployment (STATUS_SHARED).

Each process still asks through its own feed (status.py: single flight, cached for the
period); a feed's refresh comes here first:

- the server's row in `status_snapshots` is younger than the period: it is the answer, and
  Hummingbot is not called;
- otherwise the process that takes the server's advisory lock calls Hummingbot and writes
  the answer (the leader for that refresh). The lock is session-level, on this process's own
  connection, so a killed process's locks go with its connection and the next refresh of any
  other process takes over;
- otherwise another process is calling right now: its last answer, greyed once older than
  the period plus STATUS_WAIT_SECONDS (the server is slow), or a call of our own when there is
  no answer yet, or when this process has just changed something there (`since`) and must
  see the effect.

Any database trouble (the table not migrated yet, PostgreSQL down, a lost connection): the
call of our own, exactly as before sharing, and a warning once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from .hummingbot import LiveBot
from .models import db
from .status import LiveSnapshot

log = logging.getLogger(__name__)

LOCK_CLASS = 0x68627374  # "hbst": pg_try_advisory_lock(LOCK_CLASS, server id)

# The bots only when they differ from what the caller holds (same fetched_at: same answer).
READ = sa.text("""
    SELECT fetched_at, CAST(extract(epoch FROM clock_timestamp() - taken_at) AS float8) AS age,
           error_kind, error, exited,
           CASE WHEN fetched_at IS DISTINCT FROM CAST(:held AS timestamp) THEN bots END AS bots
    FROM status_snapshots WHERE server_id = :server_id
""")
WRITE = sa.text("""
    INSERT INTO status_snapshots (server_id, fetched_at, taken_at, error_kind, error, bots,
                                  exited)
    VALUES (:server_id, :fetched_at, clock_timestamp(), :error_kind, :error,
            CAST(:bots AS jsonb), CAST(:exited AS jsonb))
    ON CONFLICT (server_id) DO UPDATE SET
        fetched_at = excluded.fetched_at, taken_at = excluded.taken_at,
        error_kind = excluded.error_kind, error = excluded.error, bots = excluded.bots,
        exited = excluded.exited
""")
TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:cls, :server_id)")
UNLOCK = sa.text("SELECT pg_advisory_unlock(:cls, :server_id)")


class SharedStatus:
    """Per process: one connection of its own (autocommit) for the locks and the rows,
    used a statement at a time, never while Hummingbot is being called."""

    def __init__(self, app: Flask):
        self.app = app
        self.wait_seconds = float(app.config.get("STATUS_WAIT_SECONDS") or 0)
        self._lock = threading.Lock()
        self._conn: sa.Connection | None = None
        self._pid = os.getpid()
        self._warned = False

    # ------------------------------------------------------------------------ the answer
    def get(self, server_id: int | None, fetch: Callable[[], LiveSnapshot], *, ttl: float,
            held: LiveSnapshot | None, since: datetime | None,
            stuck_after: float) -> LiveSnapshot:
        """This server's status for the period: shared, or fetched (and shared) by us."""
        if server_id is None:  # the app's own server before its row exists
            return fetch()
        try:
            row = self._read(server_id, held)
            if not _fresh(row, ttl, since) and self._execute(
                    TRY_LOCK, {"cls": LOCK_CLASS, "server_id": server_id})[0]:
                return self._lead(server_id, fetch, ttl=ttl, held=held, since=since,
                                  stuck_after=stuck_after)
        except SQLAlchemyError:
            self._trouble()
            return fetch()
        if row is None or (since is not None and row.fetched_at < since):
            return fetch()  # nothing to share yet, or older than our own change
        snapshot = self._snapshot(server_id, row, held, stuck_after)
        if not _fresh(row, ttl, None) and row.age > ttl + self.wait_seconds:
            snapshot = replace(snapshot, overdue=True)  # the leader's call is slow
        return snapshot

    def _lead(self, server_id: int, fetch: Callable[[], LiveSnapshot], *, ttl: float,
              held: LiveSnapshot | None, since: datetime | None,
              stuck_after: float) -> LiveSnapshot:
        """Holding the lock: call Hummingbot (unless someone just did) and share the answer."""
        try:
            row = self._read(server_id, held)
            if _fresh(row, ttl, since):
                return self._snapshot(server_id, row, held, stuck_after)
            snapshot = fetch()
            self._write(server_id, snapshot)
            return snapshot
        finally:
            try:
                self._execute(UNLOCK, {"cls": LOCK_CLASS, "server_id": server_id})
            except SQLAlchemyError:
                self._trouble()  # the connection is gone, and its locks with it

    def _snapshot(self, server_id: int, row: Any, held: LiveSnapshot | None,
                  stuck_after: float) -> LiveSnapshot:
        if row.bots is None and held is not None:  # the answer we hold already
            return replace(held, overdue=False)
        bots = LazyBots(row.bots or {})
        return LiveSnapshot(fetched_at=row.fetched_at, bots=bots, error_kind=row.error_kind,
                            error=row.error, stuck_after=stuck_after, server_id=server_id,
                            exited=frozenset(row.exited) if row.exited is not None else None,
                            shared=True)

    # ------------------------------------------------------------------------ statements
    def _read(self, server_id: int, held: LiveSnapshot | None) -> Any:
        return self._execute(READ, {"server_id": server_id,
                                    "held": held.fetched_at if held is not None else None})

    def _write(self, server_id: int, snapshot: LiveSnapshot) -> None:
        try:
            self._execute(WRITE, {
                "server_id": server_id, "fetched_at": snapshot.fetched_at,
                "error_kind": snapshot.error_kind, "error": snapshot.error,
                "bots": json.dumps({name: bot.raw for name, bot in snapshot.bots.items()}),
                "exited": json.dumps(sorted(snapshot.exited))
                if snapshot.exited is not None else None})
        except SQLAlchemyError:
            self._trouble()  # the others call themselves until a write succeeds

    def _execute(self, statement: sa.TextClause, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._conn is None or self._pid != os.getpid():
                self._conn, self._pid = self._connect(), os.getpid()
            try:
                return self._conn.execute(statement, params).first()
            except SQLAlchemyError:
                self._drop()
                raise

    def _connect(self) -> sa.Connection:
        with self.app.app_context():
            url = db.engine.url
        engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return engine.connect()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()

    def _trouble(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("status snapshots cannot be shared through PostgreSQL now; each "
                        "process asks Hummingbot itself", exc_info=True)


class LazyBots(Mapping[str, LiveBot]):
    """A shared answer's bots, each parsed when first looked at: a process that did not
    fetch does not record either, and its pages look at the few bots they show, so it does
    not parse every bot of every server every period."""

    def __init__(self, raw: dict[str, Any]):
        self._raw = raw
        self._parsed: dict[str, LiveBot] = {}

    def __getitem__(self, name: str) -> LiveBot:
        bot = self._parsed.get(name)
        if bot is None:
            raw = self._raw[name]
            bot = self._parsed[name] = LiveBot.from_payload(
                name, raw if isinstance(raw, dict) else {})
        return bot

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _fresh(row: Any, ttl: float, since: datetime | None) -> bool:
    return row is not None and row.age < ttl and (since is None or row.fetched_at >= since)


def init_app(app: Flask) -> None:
    if app.config.get("STATUS_SHARED"):
        app.extensions["shared_status"] = SharedStatus(app)
