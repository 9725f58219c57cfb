"""The per-process link to Hummingbot: one client, one circuit breaker, one status feed.

Nothing here is a source of truth: it is rebuilt at every start, and every process has its
own. Definitions and last-seen statuses live in PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app
from sqlalchemy import String, column, func, or_, update, values
from sqlalchemy.exc import SQLAlchemyError

from .hummingbot import (
    CircuitBreaker,
    HummingbotClient,
    HummingbotUnreachable,
    LiveBot,
    client_from_settings,
)
from .models import Bot, db
from .status import LiveSnapshot, StatusFeed, live_word

log = logging.getLogger(__name__)

LAST_SEEN_REFRESH_SECONDS = 60  # rewrite an unchanged last-seen status at most this often


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
                               on_fresh=record_last_seen)

    def require_client(self) -> HummingbotClient:
        if self.client is None:
            raise HummingbotUnreachable("No Hummingbot API is configured (HUMMINGBOT_API_URL).",
                                        request_sent=False)
        return self.client

    def _fetch_status(self) -> dict[str, LiveBot]:
        return self.require_client().status()


def hummingbot() -> Hummingbot:
    return current_app.extensions["hummingbot"]


def record_last_seen(snapshot: LiveSnapshot) -> None:
    """Store what each live bot was doing, so pages can say so while Hummingbot is down.

    One UPDATE for the whole snapshot, skipping rows whose status is unchanged and recent.
    """
    if not snapshot.bots:
        return
    live = values(column("live_name", String), column("word", String), name="live").data(
        [(name, live_word(bot)) for name, bot in snapshot.bots.items()]
    )
    stale_before = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, LAST_SEEN_REFRESH_SECONDS)
    statement = (
        update(Bot)
        .where(
            Bot.archived_at.is_(None),
            or_(
                Bot.instance_name == live.c.live_name,
                Bot.instance_name.is_(None) & or_(
                    Bot.name == live.c.live_name,
                    func.concat("hummingbot-", Bot.name) == live.c.live_name,
                ),
            ),
            or_(
                Bot.last_seen_status.is_distinct_from(live.c.word),
                Bot.last_seen_at.is_(None),
                Bot.last_seen_at < stale_before,
            ),
        )
        # updated_at is named so its onupdate default does not fire: seeing a status is not
        # an edit of the definition, whose "last update" the list shows.
        .values(last_seen_status=live.c.word, last_seen_at=func.now(),
                updated_at=Bot.updated_at)
        .execution_options(synchronize_session=False)
    )
    try:
        db.session.execute(statement)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record last-seen statuses", exc_info=True)


def start_periodic_reconcile(app: Flask) -> None:
    """Reconcile every RECONCILE_INTERVAL_SECONDS in a daemon thread of this process.

    Every process may run one; a PostgreSQL advisory lock lets only one reconcile at a time.
    """
    interval = app.config["RECONCILE_INTERVAL_SECONDS"]
    if interval <= 0:
        return

    def loop() -> None:
        from .lifecycle import reconcile

        while True:
            try:
                with app.app_context():
                    reconcile(actor="reconcile")
            except Exception:  # keep the loop alive whatever one pass hit
                log.exception("periodic reconcile failed")
            time.sleep(interval)

    threading.Thread(target=loop, name="reconcile", daemon=True).start()


def init_app(app: Flask) -> None:
    app.extensions["hummingbot"] = Hummingbot(app)
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
                started.set()
