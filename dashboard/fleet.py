"""Every Hummingbot server at once: one link per server (client, breaker, status feed each),
and their status snapshots fetched concurrently.

Links are built from `hummingbot_servers` and kept while a row is unchanged (`updated_at`
is the generation: an edit rebuilds that server's link, so its breaker and feed start over).
The server named `default` uses the app's own link (`app.extensions["hummingbot"]`, built
from HUMMINGBOT_API_URL) whenever that is configured.

A page asks every enabled server in parallel, through each server's feed (single flight:
one refresh per server at a time per process; with STATUS_SHARED, one per server per period
for the whole deployment, shared_status.py). A page waits for a refresh at most
STATUS_WAIT_SECONDS after it began, whoever began it; a server that has not answered by then
shows its previous snapshot, greyed, or "timing out" when it has none, and its fetch goes on
in the pool and fills its feed for the next page. So one slow or dead server greys only its
own bots and never holds a page longer than that budget.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime

from flask import Flask, current_app

from .gateway import Hummingbot, ServerHealth
from .registry import utcnow
from .servers import DEFAULT_SERVER, load_settings, server_rows
from .status import LiveSnapshot

# How long a look at the servers table is trusted. 0: every page reads the table's generation
# (one small query), so an edit in any process is seen by the next page everywhere, and the
# statements a page costs do not depend on timing.
REFRESH_SECONDS = 0.0
MAX_WORKERS = 32  # concurrent status calls per process, whatever the number of servers
RECORDING_AT_ONCE = 4  # snapshots recorded at once per process (each holds a connection)


@dataclass(frozen=True)
class FleetSnapshot:
    """One LiveSnapshot per enabled server, with the shape pages already use for one."""

    fetched_at: datetime
    servers: dict[int, LiveSnapshot]
    names: dict[int, str]
    stuck_after: float
    missing: dict[int, LiveSnapshot] = field(default_factory=dict)  # disabled / unknown

    def for_server(self, server_id: int | None) -> LiveSnapshot:
        found = self.servers.get(server_id) or self.missing.get(server_id)
        if found is None:
            found = LiveSnapshot(fetched_at=self.fetched_at, bots={}, error_kind="disabled",
                                 error="This Hummingbot server is disabled.",
                                 stuck_after=self.stuck_after, server_id=server_id)
        return found

    @property
    def troubled(self) -> list[tuple[str | None, LiveSnapshot]]:
        """Banners to show; unnamed while there is one server (it is "Hummingbot")."""
        named = len(self.servers) > 1
        return [(self.names.get(server_id, "?") if named else None, snapshot)
                for server_id, snapshot in sorted(self.servers.items(),
                                                  key=lambda item: self.names.get(item[0], ""))
                if snapshot.stale]

    @property
    def cache_key(self) -> tuple:
        return tuple((server_id, *snapshot.cache_key)
                     for server_id, snapshot in sorted(self.servers.items()))

    @property
    def reachable(self) -> bool:
        return all(snapshot.reachable for snapshot in self.servers.values())

    @property
    def stale(self) -> bool:
        return any(snapshot.stale for snapshot in self.servers.values())

    @property
    def slow(self) -> bool:
        return any(snapshot.slow for snapshot in self.servers.values())

    @property
    def overdue(self) -> bool:
        return any(snapshot.overdue for snapshot in self.servers.values())

    @property
    def error_kind(self) -> str | None:
        return next((s.error_kind for s in self.servers.values() if s.error_kind), None)

    @property
    def error(self) -> str | None:
        return next((s.error for s in self.servers.values() if s.error), None)


class Fleet:
    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self._generation: tuple | None = None
        self._checked_at = float("-inf")
        self._rows: dict[int, tuple[str, bool]] = {}  # id -> (name, enabled)
        self._links: dict[int, Hummingbot] = {}  # built from rows (not the app's own)
        self._base_urls: dict[int, str | None] = {}  # what disclosure hides from clients
        self._inflight: dict[int, tuple[Future, float]] = {}  # refresh under way, its start
        self._recording = threading.BoundedSemaphore(RECORDING_AT_ONCE)
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS,
                                        thread_name_prefix="hummingbot-status")

    # -------------------------------------------------------------------------- links
    def refresh(self, *, force: bool = False, rows: list | None = None) -> None:
        """Rebuild the links whose row changed (one small query, at most every
        REFRESH_SECONDS unless forced, none when the page read the `rows` already:
        servers.SERVER_ROWS; decrypts only the changed rows)."""
        now = time.monotonic()
        with self._lock:
            if not force and rows is None and now - self._checked_at < REFRESH_SECONDS:
                return
            self._checked_at = now
        generation = tuple(tuple(row) for row in (server_rows() if rows is None else rows))
        with self._lock:
            if generation == self._generation:
                return
            before = {row[0]: row for row in (self._generation or ())}
        changed = [row[0] for row in generation if before.get(row[0]) != row]
        built, base_urls = {}, {}
        for settings in load_settings(changed) if changed else ():
            built[settings.id] = Hummingbot(self.app, settings).bind(settings.id)
            base_urls[settings.id] = settings.base_url
        ids = {row[0] for row in generation}
        with self._lock:
            links = {server_id: link for server_id, link in self._links.items()
                     if server_id in ids and server_id not in built}
            links.update(built)
            self._links = links
            self._base_urls = {server_id: url for server_id, url in
                               {**self._base_urls, **base_urls}.items() if server_id in ids}
            self._rows = {server_id: (name, enabled) for server_id, name, enabled, _ in generation}
            self._generation = generation

    def _own_link(self) -> Hummingbot:
        return self.app.extensions["hummingbot"]

    def link(self, server_id: int | None, *, rows: list | None = None) -> Hummingbot:
        """The link to one server (the app's own for `default` when HUMMINGBOT_API_URL is set).
        Unknown ids raise LookupError. `rows`: the servers' rows, when the page read them."""
        self.refresh(rows=rows)
        with self._lock:
            known = server_id in self._rows
        if not known and server_id is not None:
            self.refresh(force=True)  # added since the last look
        return self._pick(server_id)

    def known_link(self, server_id: int | None) -> Hummingbot:
        """The link as last built, without reading the table (a batch item's breaker check:
        the lifecycle call after it reads the table anyway). LookupError: not built yet."""
        return self._pick(server_id)

    def forget(self) -> None:
        """Read the table again at the next look (after an edit in this process)."""
        with self._lock:
            self._checked_at = float("-inf")

    def _pick(self, server_id: int | None) -> Hummingbot:
        with self._lock:
            name = self._rows.get(server_id, (None, False))[0]
            link = self._links.get(server_id)
        own = self._own_link()
        if name == DEFAULT_SERVER and (own.configured or link is None or not link.configured):
            return own.bind(server_id)
        if server_id is None:
            return own
        if link is None:
            raise LookupError(f"no Hummingbot server with id {server_id}")
        return link

    def enabled(self, *, rows: list | None = None) -> list[tuple[int, str, Hummingbot]]:
        self.refresh(rows=rows)
        with self._lock:
            ids = [(server_id, name) for server_id, (name, on) in self._rows.items() if on]
        return [(server_id, name, self._pick(server_id)) for server_id, name in ids]

    def by_name(self, name: str) -> Hummingbot:
        self.refresh()
        with self._lock:
            found = [server_id for server_id, (known, _) in self._rows.items() if known == name]
        if not found and name == DEFAULT_SERVER:
            return self._own_link()  # no row yet (no bot yet): the app's own link
        if not found:
            raise LookupError(f"no Hummingbot server named {name!r}")
        return self._pick(found[0])

    def is_enabled(self, server_id: int | None) -> bool:
        """Whether the server is switched on, as the servers table says now."""
        self.refresh()
        with self._lock:
            return self._rows.get(server_id, (None, True))[1]

    def base_urls(self) -> list[str]:
        """Every server's address, as current as the servers table (disclosure.py hides them
        from clients: a Hummingbot error may name its server's host without a scheme)."""
        self.refresh()
        with self._lock:
            return [url for url in self._base_urls.values() if url]

    def names(self, *, refresh: bool = True) -> dict[int, str]:
        if refresh:
            self.refresh()
        with self._lock:
            return {server_id: name for server_id, (name, _) in self._rows.items()}

    # ---------------------------------------------------------------------- snapshots
    def snapshot(self, *, rows: list | None = None) -> FleetSnapshot | LiveSnapshot:
        """Every enabled server's shared snapshot; a refresh is recorded (badges, last seen)
        in the pool with the fetch, so the request only reads.

        A snapshot younger than the period is used as it is. Otherwise a refresh runs in the
        pool (one per server per process at a time). A snapshot at most a period out of date
        is shown meanwhile; an older one (or none) is waited for, at most STATUS_WAIT_SECONDS
        after the refresh began, whoever began it. A refresh under way longer than that greys
        the server's previous snapshot (overdue), or shows "timing out" when there is none.
        So a slow server never holds a page longer than that budget."""
        links = self.enabled(rows=rows)  # `rows`: the servers', when the page read them
        stuck_after = self.app.config["DEPLOY_GRACE_SECONDS"]
        if not links:
            own = self._own_link()
            return FleetSnapshot(fetched_at=utcnow(), servers={}, names={},
                                 stuck_after=stuck_after) if not own.configured \
                else self._single(own)
        servers = self._snapshots([(server_id, link) for server_id, _, link in links])
        return FleetSnapshot(fetched_at=min(s.fetched_at for s in servers.values()),
                             servers=servers, names=self.names(refresh=False),
                             stuck_after=stuck_after)

    def server_snapshot(self, server_id: int | None, *,
                        rows: list | None = None) -> LiveSnapshot:
        """One server's snapshot for a page about one of its bots, with the same rule as
        `snapshot`: a slow server never holds the bot's page longer than the budget either."""
        link = self.link(server_id, rows=rows)
        if server_id is None:  # the app's own link, before any server row exists
            return link.feed.snapshot()
        return self._snapshots([(server_id, link)])[server_id]

    def _snapshots(self, links: list[tuple[int, Hummingbot]]) -> dict[int, LiveSnapshot]:
        """Each server's snapshot: cached, or refreshed in the pool and waited for until the
        refresh's own deadline (see `snapshot`)."""
        stuck_after = self.app.config["DEPLOY_GRACE_SECONDS"]
        budget = self.app.config["STATUS_WAIT_SECONDS"]
        servers: dict[int, LiveSnapshot] = {}
        pending: dict[int, tuple[Hummingbot, Future, float, float]] = {}
        for server_id, link in links:
            cached = link.feed.cached()
            if cached is not None:
                link.record_once(cached)
                servers[server_id] = replace(cached, server_id=server_id)
                continue
            future, began = self._refresh(server_id, link)
            # Stale while revalidating: a snapshot at most a period out of date is shown at
            # once while the refresh goes on; only an older one (or none) is waited for.
            age = link.feed.age()
            recent = age is not None and age < 2 * link.feed.ttl
            pending[server_id] = (link, future, began,
                                  time.monotonic() if recent else began + budget)
        # Each refresh is waited for until its own deadline only: a slow server's refresh
        # begun earlier is not waited for again because another server's has just begun.
        for _, future, _, deadline in sorted(pending.values(), key=lambda item: item[3]):
            remaining = deadline - time.monotonic()
            if remaining > 0:
                wait([future], timeout=remaining)
        for server_id, (link, future, began, _) in pending.items():
            if future.done() and future.exception() is None:
                snapshot = future.result()
                link.record_once(snapshot)
            else:  # still fetching: its last snapshot (greyed once the refresh has taken
                # longer than the budget), or "timing out"
                previous = link.feed.peek()
                late = time.monotonic() - began >= budget
                snapshot = replace(previous, overdue=late) if previous is not None else \
                    LiveSnapshot(fetched_at=utcnow(), bots={}, error_kind="timeout",
                                 error="No answer yet.", stuck_after=stuck_after)
            servers[server_id] = replace(snapshot, server_id=server_id)
        return servers

    def _refresh(self, server_id: int, link: Hummingbot) -> tuple[Future, float]:
        """The refresh of one server under way in this process, or a new one: never two at
        once, so a dead server cannot fill the pool with callers waiting for its feed."""
        with self._lock:
            running = self._inflight.get(server_id)
            if running is not None and not running[0].done():
                return running
            started = (self._pool.submit(self._in_context, self._fetch_and_record, link),
                       time.monotonic())
            self._inflight[server_id] = started
            return started

    def settle(self, timeout: float = 60.0) -> None:
        """Wait for the refreshes under way in this process (tests, between scenarios)."""
        with self._lock:
            running = [future for future, _ in self._inflight.values()]
        wait(running, timeout=timeout)

    def _fetch_and_record(self, link: Hummingbot) -> LiveSnapshot:
        """A refresh in the pool: the status, then its recording (badges, last seen,
        samples) in the pool thread's own session, off the request path; a few at a time, so
        twenty servers never take every database connection from the requests."""
        snapshot = link.feed.snapshot(record=False)
        # The tests' in-process harness binds every session to one connection, which a pool
        # thread must not share: there the request records, as it did before.
        if self.app.config.get("STATUS_RECORD_IN_POOL", True):
            with self._recording:
                link.record_once(snapshot)
        return snapshot

    def _in_context(self, call, *args, **kwargs):
        """Pool threads get an app context (the shared snapshot reads PostgreSQL)."""
        with self.app.app_context():
            return call(*args, **kwargs)

    def fresh_snapshots(self, links: list[tuple[int | None, Hummingbot]]
                        ) -> dict[int | None, LiveSnapshot]:
        """Ask each server now, concurrently, and wait for every answer (each bounded by its
        client's timeouts and breaker); nothing recorded (reconcile records after its commit)."""
        futures = {server_id: self._pool.submit(self._in_context, link.feed.snapshot,
                                                max_age=0, record=False)
                   for server_id, link in links}
        return {server_id: replace(future.result(), server_id=server_id)
                for server_id, future in futures.items()}

    def _single(self, own: Hummingbot) -> LiveSnapshot:
        """No server row yet (no bot yet): the app's own server, for whatever bot comes."""
        return own.feed.snapshot()

    def health(self) -> dict[int, ServerHealth]:
        """GET / of every enabled server, concurrently, timed; cached per link for a few
        seconds, so the health page costs one probe per server per period however often it
        is loaded. Disabled servers are not asked."""
        links = self.enabled()
        futures = {server_id: self._pool.submit(link.probe) for server_id, _, link in links}
        timeout = (self.app.config["HUMMINGBOT_CONNECT_TIMEOUT"]
                   + self.app.config["HUMMINGBOT_READ_TIMEOUT"])
        wait(futures.values(), timeout=timeout)
        return {server_id: future.result() if future.done() else
                ServerHealth(reachable=False, error="No answer yet (slow).", breaker="?")
                for server_id, future in futures.items()}

    def invalidate(self) -> None:
        for _, _, link in self.enabled():
            link.feed.invalidate()


def fleet() -> Fleet:
    return current_app.extensions["fleet"]


def init_app(app: Flask) -> None:
    app.extensions["fleet"] = Fleet(app)
