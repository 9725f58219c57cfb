"""The per-process link to Hummingbot: one client, one circuit breaker, one status feed.

Nothing here is a source of truth: it is rebuilt at every start, and every process has its
own. Definitions and last-seen statuses live in PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .hummingbot import (
    CircuitBreaker,
    HummingbotClient,
    HummingbotError,
    HummingbotUnreachable,
    LiveBot,
    client_from_settings,
)
from .models import db
from .status import LiveSnapshot, StatusFeed, live_word

log = logging.getLogger(__name__)

LAST_SEEN_REFRESH_SECONDS = 60  # rewrite an unchanged last-seen status at most this often


CATALOG_SECONDS = 60.0  # accounts and connectors change rarely; adding an account refreshes
CATALOG_FAILURE_SECONDS = 5.0  # an outage costs one call per kind per this, not one per form


class Catalog:
    """Hummingbot's accounts and connectors for the forms' pickers: one call per kind per
    period per process, shared by every viewer (like the status feed). None: not known now
    (Hummingbot down): the forms then take free text, unchecked."""

    def __init__(self, fetchers: dict[str, Callable[[], list[str]]]):
        self._fetchers = fetchers
        self._cache: dict[str, tuple[float, list[str] | None]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> list[str] | None:
        with self._lock:
            cached = self._cache.get(kind)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            try:
                value: list[str] | None = sorted(self._fetchers[kind]())
                until = time.monotonic() + CATALOG_SECONDS
            except HummingbotError:
                value, until = None, time.monotonic() + CATALOG_FAILURE_SECONDS
            self._cache[kind] = (until, value)
            return value

    def invalidate(self, kind: str) -> None:
        with self._lock:
            self._cache.pop(kind, None)


class Hummingbot:
    def __init__(self, app: Flask):
        self.configured = bool(app.config.get("HUMMINGBOT_API_URL"))
        self.breaker = CircuitBreaker(
            failure_threshold=app.config["HUMMINGBOT_BREAKER_THRESHOLD"],
            reset_after=app.config["HUMMINGBOT_BREAKER_RESET_SECONDS"],
        )
        self.client: HummingbotClient | None = (
            client_from_settings(app.config, breaker=self.breaker) if self.configured else None
        )
        self.feed = StatusFeed(self._fetch_status, app.config["STATUS_CACHE_SECONDS"],
                               on_fresh=record_snapshot)
        self.catalog = Catalog({"accounts": lambda: self.require_client().accounts(),
                                "connectors": lambda: self.require_client().connectors()})

    def require_client(self) -> HummingbotClient:
        if self.client is None:
            raise HummingbotUnreachable("No Hummingbot API is configured (HUMMINGBOT_API_URL).",
                                        request_sent=False)
        return self.client

    def _fetch_status(self) -> dict[str, LiveBot]:
        return self.require_client().status()


def hummingbot() -> Hummingbot:
    return current_app.extensions["hummingbot"]


# Three equality joins (instance name; plain name or `hummingbot-<name>` for bots from before
# instance names were stored) instead of one OR-join: PostgreSQL hash-joins each, where the OR
# forced a nested loop of every bot against every live bot (2 s at 10,000 x 2,000).
# Follows a CTE `live` with a `live_name` column; shared with history sampling.
MATCHED_LIVE = """
    matched AS (
        SELECT b.id, l.* FROM bots b JOIN live l ON b.instance_name = l.live_name
        UNION ALL
        SELECT b.id, l.* FROM bots b JOIN live l ON b.name = l.live_name
        WHERE b.instance_name IS NULL
        UNION ALL
        SELECT b.id, l.* FROM bots b JOIN live l ON 'hummingbot-' || b.name = l.live_name
        WHERE b.instance_name IS NULL
    )"""
# `updated_at` and `version` are untouched: seeing a status is not an edit of the definition.
# The first report after a deploy is always written (it ends "Deploying").
RECORD_LAST_SEEN = text("""
    WITH live AS (
        SELECT * FROM jsonb_to_recordset(CAST(:live AS jsonb)) AS l(live_name text, word text)
    ), """ + MATCHED_LIVE + """
    UPDATE bots SET last_seen_status = matched.word, last_seen_at = CAST(:seen_at AS timestamp)
    FROM matched
    WHERE bots.id = matched.id AND bots.archived_at IS NULL
      AND (bots.last_seen_status IS DISTINCT FROM matched.word OR bots.last_seen_at IS NULL
           OR bots.last_seen_at < bots.deploy_requested_at
           OR bots.last_seen_at < CAST(:seen_at AS timestamp) - make_interval(secs => :refresh))
""")  # noqa: S608 - constant SQL pieces; values are bound


def record_last_seen(snapshot: LiveSnapshot) -> None:
    """Store what each live bot was doing, so pages can say so while Hummingbot is down.

    One UPDATE for the whole snapshot, skipping rows whose status is unchanged and recent.
    """
    if not snapshot.bots:
        return
    live = [{"live_name": name, "word": live_word(bot)} for name, bot in snapshot.bots.items()]
    try:
        # Stamped with the time Hummingbot answered: "Deploying" ends at the first report
        # after the deploy, and "last heard" is when it was heard.
        db.session.execute(RECORD_LAST_SEEN, {"live": json.dumps(live),
                                              "seen_at": snapshot.fetched_at,
                                              "refresh": LAST_SEEN_REFRESH_SECONDS})
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record last-seen statuses", exc_info=True)


def record_snapshot(snapshot: LiveSnapshot) -> None:
    """Everything a fresh status snapshot is stored for: last-seen statuses, then (at most
    once a sample period, fleet-wide) performance samples. No call to Hummingbot."""
    record_last_seen(snapshot)
    from .history.sampling import record_samples

    try:
        record_samples(snapshot)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record performance samples", exc_info=True)


def _every(app: Flask, name: str, interval: float, job) -> None:
    """Run `job()` every `interval` seconds in a daemon thread of this process (never when
    `interval` <= 0). Every process may run one; the job takes its own advisory lock."""
    if interval <= 0:
        return

    def loop() -> None:
        while True:
            try:
                with app.app_context():
                    job()
            except Exception:  # keep the loop alive whatever one pass hit
                log.exception("periodic %s failed", name)
            time.sleep(interval)

    threading.Thread(target=loop, name=name, daemon=True).start()


def start_periodic_reconcile(app: Flask) -> None:
    """Reconcile every RECONCILE_INTERVAL_SECONDS; one process at a time (advisory lock).
    Reconcile also records the snapshot it fetched: last-seen statuses and samples."""
    from .lifecycle import reconcile

    _every(app, "reconcile", app.config["RECONCILE_INTERVAL_SECONDS"],
           lambda: reconcile(actor="reconcile"))


def start_periodic_history(app: Flask) -> None:
    """Prune (and backfill) the performance history; the job itself runs at most once per
    HISTORY_MAINTENANCE_SECONDS fleet-wide, whichever process wakes first."""
    from .history.retention import maintain

    interval = app.config["HISTORY_MAINTENANCE_SECONDS"]
    _every(app, "history", min(interval, 60.0), maintain)


def init_app(app: Flask) -> None:
    from .rows_cache import RowsCache

    app.extensions["hummingbot"] = Hummingbot(app)
    # Rows are cached no longer than the status they show is shared.
    app.extensions["rows_cache"] = RowsCache(app.config["STATUS_CACHE_SECONDS"])
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def start_background_work():
        # Started by the first request, not at import: CLI commands must not spawn it.
        if started.is_set():
            return
        with lock:
            if not started.is_set():
                start_periodic_reconcile(app)
                start_periodic_history(app)
                started.set()
