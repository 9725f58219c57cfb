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
ROW_CONNECTIONS = 4  # per process, for reading and writing the shared answers

# How old the shared answer is (small); its bots only when a caller will use them.
READ_AGE = sa.text("""
    SELECT fetched_at, CAST(extract(epoch FROM clock_timestamp() - taken_at) AS float8) AS age
    FROM status_snapshots WHERE server_id = :server_id
""")
READ = sa.text("""
    SELECT fetched_at, error_kind, error, exited, bots
    FROM status_snapshots WHERE server_id = :server_id
""")
WRITE = sa.text("""
    INSERT INTO status_snapshots (server_id, fetched_at, taken_at, error_kind, error, bots,
                                  exited)
    VALUES (:server_id, :fetched_at, clock_timestamp(), :error_kind, :error,
            CAST(:bots AS json), CAST(:exited AS json))
    ON CONFLICT (server_id) DO UPDATE SET
        fetched_at = excluded.fetched_at, taken_at = excluded.taken_at,
        error_kind = excluded.error_kind, error = excluded.error, bots = excluded.bots,
        exited = excluded.exited
""")
TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:cls, :server_id)")
UNLOCK = sa.text("SELECT pg_advisory_unlock(:cls, :server_id)")


class SharedStatus:
    """Per process: one connection of its own for the locks (a statement at a time, never
    held while Hummingbot is called), and a few pooled ones of its own for the rows, so the
    servers' answers are read and written side by side without taking the requests'."""

    def __init__(self, app: Flask):
        self.app = app
        self.wait_seconds = float(app.config.get("STATUS_WAIT_SECONDS") or 0)
        self._lock = threading.Lock()
        self._conn: sa.Connection | None = None
        self._engine: sa.Engine | None = None
        self._pid = self._engine_pid = os.getpid()  # a forked worker opens its own
        self._warned = False

    # ------------------------------------------------------------------------ the answer
    def get(self, server_id: int | None, fetch: Callable[[], LiveSnapshot], *, ttl: float,
            held: LiveSnapshot | None, since: datetime | None,
            stuck_after: float) -> LiveSnapshot:
        """This server's status for the period: shared, or fetched (and shared) by us."""
        if server_id is None:  # the app's own server before its row exists
            return fetch()
        try:
            row = self._rows(READ_AGE, server_id)
            if not _fresh(row, ttl, since) and self._execute(
                    TRY_LOCK, {"cls": LOCK_CLASS, "server_id": server_id})[0]:
                return self._lead(server_id, fetch, ttl=ttl, held=held, since=since,
                                  stuck_after=stuck_after)
        except (SQLAlchemyError, LookupError):  # LookupError: the row went meanwhile
            self._trouble()
            return fetch()
        if row is None or (since is not None and row.fetched_at < since):
            return fetch()  # nothing to share yet, or older than our own change
        try:
            snapshot = self._snapshot(server_id, row, held, stuck_after)
        except (SQLAlchemyError, LookupError):  # LookupError: the row went meanwhile
            self._trouble()
            return fetch()
        if not _fresh(row, ttl, None) and row.age > ttl + self.wait_seconds:
            snapshot = replace(snapshot, overdue=True)  # the leader's call is slow
        return snapshot

    def _lead(self, server_id: int, fetch: Callable[[], LiveSnapshot], *, ttl: float,
              held: LiveSnapshot | None, since: datetime | None,
              stuck_after: float) -> LiveSnapshot:
        """Holding the lock: call Hummingbot (unless someone just did) and share the answer."""
        try:
            row = self._rows(READ_AGE, server_id)
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

    def _snapshot(self, server_id: int, age: Any, held: LiveSnapshot | None,
                  stuck_after: float) -> LiveSnapshot:
        if held is not None and held.fetched_at == age.fetched_at:  # the answer we hold
            return replace(held, overdue=False)
        row = self._rows(READ, server_id)
        if row is None:
            raise LookupError(server_id)
        return LiveSnapshot(fetched_at=row.fetched_at, bots=LazyBots(row.bots or {}),
                            error_kind=row.error_kind, error=row.error,
                            stuck_after=stuck_after, server_id=server_id,
                            exited=frozenset(row.exited) if row.exited is not None else None,
                            shared=True)

    # ------------------------------------------------------------------------ statements
    def _rows(self, statement: sa.TextClause, server_id: int) -> Any:
        with self._row_engine().connect() as conn:
            return conn.execute(statement, {"server_id": server_id}).first()

    def _write(self, server_id: int, snapshot: LiveSnapshot) -> None:
        try:
            with self._row_engine().begin() as conn:
                conn.execute(WRITE, {
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
        engine = sa.create_engine(self._url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return engine.connect()

    def _row_engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None or self._engine_pid != os.getpid():
                self._engine = sa.create_engine(self._url(), pool_size=ROW_CONNECTIONS,
                                                max_overflow=0, pool_pre_ping=True)
                self._engine_pid = os.getpid()
            return self._engine

    def _url(self) -> sa.URL:
        with self.app.app_context():
            return db.engine.url

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
