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
from dataclasses import dataclass
from datetime import timedelta

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
from .servers import ServerSettings
from .status import (
    ATTENTION,
    BADGE_RULES_JSON,
    CONTROLLER_STRATEGIES,
    REPORTING,
    TRADING,
    LiveSnapshot,
    StatusFeed,
    latest_error,
    live_word,
)

log = logging.getLogger(__name__)

LAST_SEEN_REFRESH_SECONDS = 60  # rewrite an unchanged last-seen status at most this often
# A snapshot saying what the last one recorded by this process said is recorded again only
# after this long: writes between snapshots keep their own badge (models.py), so only the
# clock can change a badge then (a transition becoming "stuck").
RECORD_AGAIN_SECONDS = 10


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


HEALTH_SECONDS = 5.0  # the health page probes each server at most this often per process


@dataclass(frozen=True)
class ServerHealth:
    """What `GET /` said, and how fast (the /servers page)."""

    reachable: bool
    breaker: str
    latency_ms: float | None = None
    version: str | None = None
    error: str | None = None


class Hummingbot:
    """The link to one Hummingbot server. Built from the app's HUMMINGBOT_* settings (the
    server named `default`), or from a `hummingbot_servers` row (`server`, fleet.py)."""

    def __init__(self, app: Flask, server: ServerSettings | None = None):
        settings = server.client_settings(app.config) if server is not None else app.config
        # None: the `default` server, whatever its id (resolved in SQL when recording).
        self.server_id: int | None = server.id if server is not None else None
        self.name = server.name if server is not None else "default"
        self.configured = bool(settings.get("HUMMINGBOT_API_URL"))
        self.breaker = CircuitBreaker(
            failure_threshold=app.config["HUMMINGBOT_BREAKER_THRESHOLD"],
            reset_after=app.config["HUMMINGBOT_BREAKER_RESET_SECONDS"],
        )
        self.client: HummingbotClient | None = (
            client_from_settings(settings, breaker=self.breaker) if self.configured else None
        )
        shared = app.extensions.get("shared_status")
        self.feed = StatusFeed(self._fetch_status, app.config["STATUS_CACHE_SECONDS"],
                               fetch_exited=self._fetch_exited, on_fresh=self._record_snapshot,
                               on_failed=self._record_failure,
                               stuck_after=app.config["DEPLOY_GRACE_SECONDS"],
                               share=self._shared if shared is not None else None)
        self._shared_status = shared
        self._recorded: tuple[str, float] | None = None  # (facts, when) recorded last
        self._failure_recorded: tuple[str, float] | None = None  # (error kind, when)
        self._recorded_at = None  # fetched_at of the snapshot recorded last
        self._health: tuple[float, ServerHealth] | None = None
        self._record_lock = threading.Lock()
        self.catalog = Catalog({"accounts": lambda: self.require_client().accounts(),
                                "connectors": lambda: self.require_client().connectors()})

    def probe(self) -> ServerHealth:
        """GET / (the API's health route), timed; cached HEALTH_SECONDS."""
        with self._record_lock:
            cached = self._health
            if cached is not None and time.monotonic() - cached[0] < HEALTH_SECONDS:
                return cached[1]
        started = time.monotonic()
        try:
            info = self.require_client().health()
            health = ServerHealth(reachable=True, breaker=self.breaker.state,
                                  latency_ms=(time.monotonic() - started) * 1000,
                                  version=info.version or None)
        except HummingbotError as exc:
            health = ServerHealth(reachable=False, breaker=self.breaker.state, error=str(exc))
        with self._record_lock:
            self._health = (time.monotonic(), health)
        return health

    def bind(self, server_id: int) -> Hummingbot:
        """Name the row this link serves (the app-configured link learns its id late)."""
        self.server_id = self.feed.server_id = server_id
        return self

    def require_client(self) -> HummingbotClient:
        if self.client is None:
            raise HummingbotUnreachable("No Hummingbot API is configured (HUMMINGBOT_API_URL).",
                                        request_sent=False)
        return self.client

    def _shared(self, fetch, *, held, since) -> LiveSnapshot:
        """One call per period for the whole deployment (shared_status.py)."""
        return self._shared_status.get(self.server_id, fetch, ttl=self.feed.ttl, held=held,
                                       since=since, stuck_after=self.feed.stuck_after)

    def _fetch_status(self) -> dict[str, LiveBot]:
        return self.require_client().status()

    def _fetch_exited(self) -> list[str]:
        return [container.name for container in self.require_client().exited_containers()]

    def _record_snapshot(self, snapshot: LiveSnapshot) -> None:
        self.record_once(snapshot)

    def record_once(self, snapshot: LiveSnapshot) -> None:
        """Record a fresh snapshot once, whichever caller sees it first. A snapshot shared by
        another process was recorded there (badges, last seen, samples): not again here."""
        if not snapshot.reachable or snapshot.shared:
            return
        with self._record_lock:
            if self._recorded_at == snapshot.fetched_at:
                return
            self._recorded_at = snapshot.fetched_at
        record_snapshot(snapshot, record_status=self._record)

    def _record(self, snapshot: LiveSnapshot) -> None:
        facts = json.dumps(_live_facts(snapshot), sort_keys=True)
        now = time.monotonic()
        key = f"{snapshot.server_id}:{facts}"
        with self._record_lock:
            last = self._recorded
            if last is not None and last[0] == key and now - last[1] < RECORD_AGAIN_SECONDS:
                return
            self._recorded = (key, now)
        record_last_seen(snapshot, facts)


    def _record_failure(self, snapshot: LiveSnapshot) -> None:
        """Hummingbot failed the status call: the alerts' clock learns since when (at most
        once per RECORD_AGAIN_SECONDS per process while the failure stays the same)."""
        now = time.monotonic()
        with self._record_lock:
            last = self._failure_recorded
            if last is not None and last[0] == snapshot.error_kind \
                    and now - last[1] < RECORD_AGAIN_SECONDS:
                return
            self._failure_recorded = (snapshot.error_kind or "", now)
            self._recorded = None  # the next answer is recorded at once: it ends the failure
        record_failure(snapshot)


def hummingbot() -> Hummingbot:
    """The link to the server named `default` (the app's HUMMINGBOT_API_URL)."""
    return current_app.extensions["hummingbot"]


def link_for(bot) -> Hummingbot:
    """The link to the server that runs `bot` (fleet.py)."""
    from .fleet import fleet

    return fleet().link(bot.server_id)


# Three equality joins (instance name; plain name or `hummingbot-<name>` for bots from before
# instance names were stored) instead of one OR-join: PostgreSQL hash-joins each, where the OR
# forced a nested loop of every bot against every live bot (2 s at 10,000 x 2,000).
# Follows a CTE `live` with a `live_name` column; shared with history sampling. Only the bots
# of the server the snapshot came from (:server_id; NULL: `default`): the same name on another
# server is another bot.
SERVER_BOTS = """
    server_bots AS NOT MATERIALIZED (
        SELECT * FROM bots WHERE server_id = coalesce(
            CAST(:server_id AS integer),
            (SELECT id FROM hummingbot_servers WHERE name = 'default'))
    )"""
MATCHED_LIVE = SERVER_BOTS + """,
    matched AS (
        SELECT b.id, l.* FROM server_bots b JOIN live l ON b.instance_name = l.live_name
        UNION ALL
        SELECT b.id, l.* FROM server_bots b JOIN live l ON b.name = l.live_name
        WHERE b.instance_name IS NULL
        UNION ALL
        SELECT b.id, l.* FROM server_bots b JOIN live l ON 'hummingbot-' || b.name = l.live_name
        WHERE b.instance_name IS NULL
    )"""  # noqa: S608 - constant SQL pieces
# Then every bot's badge from status.py's badge_rule, tabulated (:rules), with the facts this
# snapshot gives: seen live, crashed (an exited container), absent, or not listed yet since
# its deploy ("awaiting"). Only rows whose badge or facts changed are written; `updated_at`
# and `version` are untouched: seeing a status is not an edit of the definition. `script`,
# `awaiting` and `overdue` state status.py's is_script_bot, awaiting_first_report and
# is_overdue in SQL. The first report after a deploy is always written (it ends "Deploying"),
# stamped with the time Hummingbot answered.
# The first CTEs end a Hummingbot failure the alerts' clock and this server's row recorded
# (record_failure): an answer was recorded. Part of this statement, so recording stays one
# statement; SKIP LOCKED, so a page never waits for an alert evaluation holding the row (the
# next recording clears it).
RECORD_STATUS = text("""
    WITH answered AS (
        UPDATE alert_clock SET hummingbot_failing_since = NULL, hummingbot_error_kind = NULL
        WHERE id = (SELECT id FROM alert_clock WHERE hummingbot_failing_since IS NOT NULL
                    FOR UPDATE SKIP LOCKED)
    ), server_answered AS (
        UPDATE hummingbot_servers SET failing_since = NULL, failing_kind = NULL
        WHERE id = (SELECT id FROM hummingbot_servers
                    WHERE id = CAST(:server_id AS integer) AND failing_since IS NOT NULL
                    FOR UPDATE SKIP LOCKED)
    ), live AS (
        SELECT * FROM jsonb_to_recordset(CAST(:live AS jsonb)) AS l(
            live_name text, word text, pnl float8, volume float8, error_log text, live bool)
    ), """ + MATCHED_LIVE + """, first_match AS (
        SELECT DISTINCT ON (id) * FROM matched ORDER BY id, live DESC
    ), facts AS (
        SELECT b.id, f.*, r.badge,
               r.badge = ANY(:attention)
                   OR (f.error_log IS NOT NULL AND r.badge = ANY(:reporting)) AS attention,
               f.is_live AND b.archived_at IS NULL
                   AND (b.last_seen_status IS DISTINCT FROM f.seen OR b.last_seen_at IS NULL
                        OR b.last_seen_at < b.deploy_requested_at
                        OR b.last_seen_at < :seen_since) AS touch_seen,
               b.display_status AS was_badge, b.needs_attention AS was_attention,
               b.live_state AS was_seen, b.pnl_quote AS was_pnl,
               b.volume_quote AS was_volume, b.error_log AS was_error_log,
               b.start_requested_at IS NOT NULL AS starting
        FROM server_bots b LEFT JOIN first_match m ON m.id = b.id
        CROSS JOIN LATERAL (SELECT
            coalesce(m.live, false) AS is_live,
            coalesce(m.word, CASE
                WHEN b.deploy_requested_at IS NOT NULL
                     AND b.last_seen_status IS DISTINCT FROM 'absent'
                     AND NOT coalesce(b.last_seen_at >= b.deploy_requested_at, false)
                THEN 'awaiting' ELSE 'absent' END) AS seen,
            CASE WHEN m.live THEN m.pnl ELSE b.pnl_quote END AS pnl,
            CASE WHEN m.live THEN m.volume ELSE b.volume_quote END AS volume,
            CASE WHEN m.live THEN m.error_log ELSE b.error_log END AS error_log) f
        CROSS JOIN LATERAL (SELECT CAST(:rules AS jsonb) ->> concat_ws('|',
            coalesce(b.status, 'stopped'), (b.archived_at IS NOT NULL)::int,
            (coalesce(nullif(b.deploy_settings ->> 'mode', ''),
                      CASE WHEN b.strategy = ANY(:controller_strategies)
                           THEN 'controllers' ELSE 'script' END) = 'script')::int,
            (b.instance_name IS NOT NULL)::int, f.seen,
            (CASE WHEN b.status IN ('deploying', 'stopping')
                  THEN coalesce(b.updated_at < :stuck_since, false)
                  ELSE coalesce(b.start_requested_at < :stuck_since, false) END)::int,
            (b.start_requested_at IS NOT NULL)::int) AS badge) r
    ), changed AS (
        SELECT * FROM facts
        WHERE touch_seen OR was_badge IS DISTINCT FROM badge
           OR was_attention IS DISTINCT FROM attention OR was_seen IS DISTINCT FROM seen
           OR was_pnl IS DISTINCT FROM pnl OR was_volume IS DISTINCT FROM volume
           OR was_error_log IS DISTINCT FROM error_log
           OR (starting AND badge = ANY(:trading))
    )
    UPDATE bots SET
        display_status = c.badge, needs_attention = c.attention, live_state = c.seen,
        pnl_quote = c.pnl, volume_quote = c.volume, error_log = c.error_log,
        start_requested_at = CASE WHEN c.badge = ANY(:trading) THEN NULL
                                  ELSE bots.start_requested_at END,
        last_seen_status = CASE WHEN c.touch_seen THEN c.seen ELSE bots.last_seen_status END,
        last_seen_at = CASE WHEN c.touch_seen THEN :now ELSE bots.last_seen_at END
    FROM changed c
    WHERE bots.id = c.id
""")  # noqa: S608 - constant SQL pieces; values are bound


def _live_facts(snapshot: LiveSnapshot) -> list[dict]:
    facts = [{"live_name": name, "word": live_word(bot), "pnl": bot.total_global_pnl_quote,
              "volume": bot.total_volume_quote, "error_log": latest_error(bot), "live": True}
             for name, bot in snapshot.bots.items()]
    facts += [{"live_name": name, "word": "crashed", "live": False}
              for name in sorted(snapshot.exited or ()) if name not in snapshot.bots]
    return facts


def record_last_seen(snapshot: LiveSnapshot, facts: str | None = None) -> None:
    """Store what the snapshot says of every bot: its badge (`display_status`), what each
    live bot was doing (so pages can say so while Hummingbot is down), its PnL, volume and
    latest error line. One UPDATE for the whole fleet, writing only the rows that changed."""
    if not snapshot.reachable:
        return
    now = snapshot.fetched_at
    try:
        db.session.execute(RECORD_STATUS, {
            "live": facts or json.dumps(_live_facts(snapshot)), "rules": BADGE_RULES_JSON,
            "controller_strategies": list(CONTROLLER_STRATEGIES),
            "attention": list(ATTENTION), "reporting": list(REPORTING),
            "trading": list(TRADING), "now": now, "server_id": snapshot.server_id,
            "stuck_since": now - timedelta(seconds=snapshot.stuck_after),
            "seen_since": now - timedelta(seconds=LAST_SEEN_REFRESH_SECONDS),
        })
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record the status snapshot", exc_info=True)


# SKIP LOCKED: a page never waits for an alert evaluation holding the row; the failure is
# recorded by the next failed call (RECORD_AGAIN_SECONDS later at most). A snapshot with no
# server row (a fleet of one before `default` exists) uses alert_clock; a server its own row.
RECORD_FAILURE = text("""
    UPDATE alert_clock SET hummingbot_failing_since = coalesce(hummingbot_failing_since, :now),
                           hummingbot_error_kind = :kind
    WHERE id = (SELECT id FROM alert_clock FOR UPDATE SKIP LOCKED)
""")
# Only a server with a URL can be unreachable (`default` has none until the app is told it).
RECORD_SERVER_FAILURE = text("""
    UPDATE hummingbot_servers SET failing_since = coalesce(failing_since, :now),
                                  failing_kind = :kind
    WHERE id = (SELECT id FROM hummingbot_servers
                WHERE id = :server_id AND enabled AND base_url IS NOT NULL
                FOR UPDATE SKIP LOCKED)
""")


def record_failure(snapshot: LiveSnapshot) -> None:
    """Since when Hummingbot fails the status call, and how ("auth": it refuses our
    credentials): what the Hummingbot-unreachable alert is evaluated from. Never its text."""
    if snapshot.reachable:
        return
    if snapshot.server_id is None and not current_app.config.get("HUMMINGBOT_API_URL"):
        return  # no Hummingbot to be unreachable (development without one)
    statement = RECORD_FAILURE if snapshot.server_id is None else RECORD_SERVER_FAILURE
    try:
        db.session.execute(statement, {"now": snapshot.fetched_at, "kind": snapshot.error_kind,
                                       "server_id": snapshot.server_id})
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not record that Hummingbot failed", exc_info=True)


def record_snapshot(snapshot: LiveSnapshot, record_status=record_last_seen) -> None:
    """Everything a fresh status snapshot is stored for: the badges and last-seen statuses,
    then (at most once a sample period, fleet-wide) performance samples. No call to
    Hummingbot."""
    record_status(snapshot)
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
    from . import fleet, shared_status
    from .rows_cache import RowsCache

    shared_status.init_app(app)
    app.extensions["hummingbot"] = Hummingbot(app)
    fleet.init_app(app)
    # Rows are cached no longer than the status they show is shared.
    app.extensions["rows_cache"] = RowsCache(app.config["STATUS_CACHE_SECONDS"])
    # History blocks are keyed by the minute and the history's own state (history/views.py),
    # so a minute's life is enough; off with the rows cache (STATUS_CACHE_SECONDS=0).
    app.extensions["history_cache"] = RowsCache(
        60.0 if app.config["STATUS_CACHE_SECONDS"] > 0 else 0.0)
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def start_background_work():
        # Started by the first request, not at import: CLI commands must not spawn it.
        if started.is_set():
            return
        with lock:
            if not started.is_set():
                from .servers import sync_default_server

                sync_default_server(app)
                start_periodic_reconcile(app)
                start_periodic_history(app)
                started.set()
