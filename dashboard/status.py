"""The merge: definitions from PostgreSQL plus what Hummingbot says is live, as display rows.

`merge_rows` is a pure function of (definitions, snapshot); `StatusFeed` is the thin I/O
around it: one `GET /bot-orchestration/status` per refresh period per process, shared by every
viewer and every bot, never one call per bot or per viewer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .hummingbot import (
    HummingbotAuthError,
    HummingbotCircuitOpen,
    HummingbotError,
    HummingbotTimeout,
    HummingbotUnreachable,
    LiveBot,
)
from .models import Bot
from .registry import utcnow

# display_status -> the badge's words. The status is also the CSS class and the API value.
BADGES = {
    "running": "Running",
    "idle": "Idle",
    "running_script": "Running (script)",
    "stopped_container_up": "Stopped (container up)",
    "stopped": "Stopped",
    "missing": "Missing (needs attention)",
    "deploying": "Deploying…",
    "stopping": "Stopping…",
    "deploy_failed": "Deploy failed",
    "error": "Error",
    "archived": "Archived",
    "archived_running": "Archived, still running",
    "crashed": "Crashed (container exited)",
    "starting": "Starting…",
    "stuck": "Stuck (needs attention)",
    "unknown": "Unknown",
}
# Badges that need an operator; a row whose latest report has error log lines needs one too
# (needs_attention below).
ATTENTION = ("missing", "crashed", "deploy_failed", "error", "stuck", "archived_running")
# Badges that mean the bot reported since a Start: "Starting…" ends there.
TRADING = ("running", "idle", "running_script")
# Badges of a bot Hummingbot reports now: only then does an error line in its latest report
# mark it as needing attention (a stopped bot keeps its last line, shown, not counted).
REPORTING = (*TRADING, "stopped_container_up", "starting")
CONTROLLER_STRATEGIES = ("v2_with_controllers",)
# How reconcile's `last_error` starts when Hummingbot accepted a stop-and-archive but no bot-run
# was read as ARCHIVED: such a bot is flagged when Hummingbot lists it again.
ARCHIVE_UNCONFIRMED = "The archive was not confirmed"
DEFAULT_STUCK_AFTER = 120.0  # seconds; the app passes DEPLOY_GRACE_SECONDS


@dataclass(frozen=True)
class LiveSnapshot:
    """What Hummingbot reported at `fetched_at`, or why it could not be asked."""

    fetched_at: datetime
    bots: dict[str, LiveBot]
    error_kind: str | None = None  # "unreachable", "timeout", "auth", "protocol"; None when fine
    error: str | None = None
    # Names of exited containers (Hummingbot's /docker/exited-containers); None: not known.
    exited: frozenset[str] | None = None
    # Served while a refresh has been under way for too long (Hummingbot slow): stale.
    overdue: bool = False
    stuck_after: float = DEFAULT_STUCK_AFTER  # a transition older than this is "stuck"
    # The hummingbot_servers row it came from; None: the server named `default`.
    server_id: int | None = None
    # Read from status_snapshots (shared_status.py): the process that fetched it recorded it.
    shared: bool = False

    def for_server(self, server_id: int | None) -> LiveSnapshot:
        """The snapshot of the server running a bot: one server's snapshot is its own
        (fleet.FleetSnapshot holds one per server)."""
        return self

    @property
    def cache_key(self) -> tuple:
        """What rendered rows depend on (rows_cache)."""
        return (self.fetched_at, self.error_kind, self.overdue)

    @property
    def troubled(self) -> list[tuple[str | None, LiveSnapshot]]:
        """(server name, snapshot) for each banner to show: slow or unreachable."""
        return [(None, self)] if self.stale else []

    @property
    def reachable(self) -> bool:
        return self.error_kind is None

    @property
    def stale(self) -> bool:
        """Badges are the last ones recorded, greyed: no answer, or a refresh overdue."""
        return not self.reachable or self.overdue

    @property
    def slow(self) -> bool:
        """Hummingbot answers too slowly rather than not at all: the banner says so."""
        return self.overdue or self.error_kind == "timeout"

    @classmethod
    def failed(cls, exc: HummingbotError) -> LiveSnapshot:
        if isinstance(exc, HummingbotAuthError):
            kind = "auth"
        elif isinstance(exc, HummingbotTimeout):
            kind = "timeout"
        elif isinstance(exc, HummingbotUnreachable):
            kind = "unreachable"
        else:
            kind = "protocol"
        return cls(fetched_at=utcnow(), bots={}, error_kind=kind, error=str(exc))


@dataclass(frozen=True)
class BotRow:
    bot: Bot
    display_status: str
    live: LiveBot | None
    stale: bool  # Hummingbot unreachable or slow: the badge is the last status seen, greyed
    seen_at: datetime | None

    @property
    def label(self) -> str:
        return BADGES.get(self.display_status, self.display_status)

    @property
    def back_after_archive(self) -> bool:
        return came_back_after_archive(self.bot, self.live)

    @property
    def last_heard_at(self) -> datetime | None:
        """When Hummingbot last reported a bot it no longer lists (for "Missing"); None when
        not since its deploy. Recorded at most every minute while nothing changes."""
        if self.live is not None or not heard_since_deploy(self.bot):
            return None
        return self.bot.last_seen_at

    @property
    def error_log(self) -> str | None:
        """The latest error line of the latest report (the stored one while stale)."""
        if self.live is not None:
            return latest_error(self.live)
        return self.bot.error_log

    @property
    def needs_attention(self) -> bool:
        return needs_attention(self.display_status, self.error_log)


def live_word(live: LiveBot) -> str:
    """What a live bot is doing, from Hummingbot's report alone (stored as last_seen_status)."""
    if live.status in ("running", "idle"):
        return "trading_stopped" if live.trading_stopped else live.status
    if live.status == "stopped":
        return "stopped_active" if live.recently_active else "stopped"
    if live.status in ("stopping", "error"):
        return live.status
    return "unknown"


def is_script_bot(bot: Bot) -> bool:
    mode = (bot.deploy_settings or {}).get("mode")
    if mode:
        return mode == "script"
    return bot.strategy not in CONTROLLER_STRATEGIES


def live_names_for(bot: Bot) -> list[str]:
    """Names Hummingbot may know this bot by: the stored instance name, or for bots from
    before this system, the plain name and the older `hummingbot-<name>` form."""
    if bot.instance_name:
        return [bot.instance_name]
    return [bot.name, f"hummingbot-{bot.name}"]


def match_live(bot: Bot, live_bots: dict[str, LiveBot]) -> LiveBot | None:
    for name in live_names_for(bot):
        if name in live_bots:
            return live_bots[name]
    return None


def heard_since_deploy(bot: Bot) -> bool:
    return bot.last_seen_at is not None and (
        bot.deploy_requested_at is None or bot.last_seen_at >= bot.deploy_requested_at)


def awaiting_first_report(bot: Bot) -> bool:
    """Deployed, but not reported by Hummingbot since: a new container enters its /status only
    at its next container poll (about a second). Reconcile ends the wait after the deploy
    grace period by recording the bot absent."""
    return (bot.deploy_requested_at is not None and bot.last_seen_status != "absent"
            and not heard_since_deploy(bot))


def came_back_after_archive(bot: Bot, live: LiveBot | None) -> bool:
    """Settled as stopped after an archive nobody confirmed, yet Hummingbot lists it: a bot
    with no container there (MQTT only) survives stop-and-archive and keeps running."""
    return (live is not None and bot.status == "stopped"
            and (bot.last_error or "").startswith(ARCHIVE_UNCONFIRMED))


# ------------------------------------------------------------------------ the badge rule
# What a definition's bot was last seen as: a live word (live_word above), "crashed" (its
# container exited), "absent" (not listed anywhere), "awaiting" (not listed yet since its
# deploy: awaiting_first_report), or None (never looked).
SEEN_WORDS = ("running", "idle", "trading_stopped", "stopped_active", "stopped", "stopping",
              "error", "unknown", "crashed", "absent", "awaiting", None)
LIVE_SEEN = frozenset(SEEN_WORDS[:8])


def badge_rule(status: str, archived: bool, script: bool, deployed: bool, seen: str | None,
               overdue: bool, starting: bool) -> str:
    """The badge (DESIGN.md's table), from a finite set of facts so that it can be tabulated
    for PostgreSQL (BADGE_RULES_JSON): the page and the stored `display_status` agree by
    construction. `overdue`: a deploy, stop or start has waited longer than the grace."""
    if archived:
        return "archived_running" if seen in LIVE_SEEN else "archived"
    if status in ("deploying", "stopping"):
        return "stuck" if overdue else status
    if seen in LIVE_SEEN:
        badge = _badge_for_live_word(status, script, deployed, seen)
        if starting and badge == "stopped_container_up":  # Start sent, nothing reported yet
            return "stuck" if overdue else "starting"
        return badge
    if seen == "crashed":
        return "crashed" if status == "running" else "stopped"
    if seen in ("absent", "awaiting"):
        if status == "running":  # a new container enters /status at its next poll
            return "deploying" if seen == "awaiting" else "missing"
        return "deploy_failed" if status == "deploy_failed" else "stopped"
    return status if status in ("deploy_failed", "stopped") else "unknown"


def _badge_for_live_word(status: str, script: bool, deployed: bool, word: str) -> str:
    if word in ("running", "idle", "stopping", "error"):
        return word
    if word == "stopped_active":
        # A plain script bot always reports "stopped"; recently_active says it is alive, but
        # not whether it trades: after a stop sent from here (a stopped definition with an
        # instance name), the definition knows better.
        stopped_here = status == "stopped" and deployed
        return "running_script" if script and not stopped_here else "stopped_container_up"
    if word in ("trading_stopped", "stopped"):
        return "stopped_container_up"  # the container is up; not trading, or not heard yet
    return "unknown"


def rule_key(status: str | None, archived: bool, script: bool, deployed: bool,
             seen: str | None, overdue: bool, starting: bool) -> str:
    """The key of one tabulated case; RECORD_STATUS in gateway.py builds the same string."""
    flags = (archived, script, deployed)
    return "|".join([status or "stopped", *(str(int(f)) for f in flags), seen or "none",
                     str(int(overdue)), str(int(starting))])


def _tabulate() -> str:
    from .models import BOT_STATUSES

    table = {}
    for status, archived, script, deployed, seen, overdue, starting in itertools.product(
            BOT_STATUSES, *([(False, True)] * 3), SEEN_WORDS, *([(False, True)] * 2)):
        table[rule_key(status, archived, script, deployed, seen, overdue, starting)] = \
            badge_rule(status, archived, script, deployed, seen, overdue, starting)
    return json.dumps(table, separators=(",", ":"))


# Every case of badge_rule, for the set-based UPDATE that stores display_status.
BADGE_RULES_JSON = _tabulate()


def needs_attention(badge: str, error_log: str | None) -> bool:
    """RECORD_STATUS in gateway.py states the same rule in SQL."""
    return badge in ATTENTION or (error_log is not None and badge in REPORTING)


def latest_error(live: LiveBot) -> str | None:
    """The message of the latest error log line of a report, shortened; None without one."""
    if not live.error_logs:
        return None
    line = max(live.error_logs, key=lambda item: item.timestamp or 0)
    text = f"{line.level or 'ERROR'} {line.msg or ''}".strip()
    return text[:ERROR_LOG_LENGTH]


ERROR_LOG_LENGTH = 300


def is_overdue(bot: Bot, now: datetime, stuck_after: float, *, writing: bool = False) -> bool:
    """A deploy or stop (since the row last changed; `writing`: it changes now) or a start
    waiting longer than the grace. RECORD_STATUS in gateway.py states the same rule in SQL."""
    limit = timedelta(seconds=stuck_after)
    if bot.status in ("deploying", "stopping"):
        return not writing and bot.updated_at is not None and now - bot.updated_at > limit
    return bot.start_requested_at is not None and now - bot.start_requested_at > limit


def badge_for(bot: Bot, seen: str | None, now: datetime,
              stuck_after: float = DEFAULT_STUCK_AFTER, *, writing: bool = False) -> str:
    overdue = is_overdue(bot, now, stuck_after, writing=writing)
    return badge_rule(bot.status or "stopped", bot.archived_at is not None, is_script_bot(bot),
                      bot.instance_name is not None, seen, overdue,
                      bot.start_requested_at is not None)


def seen_in(bot: Bot, snapshot: LiveSnapshot) -> str:
    """What a reachable snapshot says about the bot: a live word, crashed or absent."""
    live = match_live(bot, snapshot.bots)
    if live is not None:
        return live_word(live)
    if snapshot.exited and any(name in snapshot.exited for name in live_names_for(bot)):
        return "crashed"
    return "awaiting" if awaiting_first_report(bot) else "absent"


def last_seen(bot: Bot) -> str | None:
    """What the last recorded snapshot said (the stored `live_state`), for stale pages and
    for writes between snapshots; rows from before it was stored fall back to last_seen."""
    seen = bot.live_state or bot.last_seen_status
    if seen in (None, "absent", "awaiting"):
        return "awaiting" if awaiting_first_report(bot) else seen
    return seen


def display_status(bot: Bot, live: LiveBot | None, reachable: bool,
                   now: datetime | None = None) -> tuple[str, bool]:
    """(badge, stale) for one definition, given its live report (if any)."""
    now = now or utcnow()
    if not reachable:
        return badge_for(bot, last_seen(bot), now), True
    if live is not None:
        return badge_for(bot, live_word(live), now), False
    return badge_for(bot, "awaiting" if awaiting_first_report(bot) else "absent", now), False


def merge_rows(bots: Iterable[Bot], snapshot: LiveSnapshot) -> list[BotRow]:
    rows = []
    now = snapshot.fetched_at
    for bot in bots:
        own = snapshot.for_server(bot.server_id)  # matched on its own server only
        if own.stale:  # the last recorded facts, greyed
            status, live = badge_for(bot, last_seen(bot), now, own.stuck_after), None
        else:
            live = match_live(bot, own.bots)
            status = badge_for(bot, seen_in(bot, own), now, own.stuck_after)
        seen_at = own.fetched_at if live is not None else bot.last_seen_at
        rows.append(BotRow(bot=bot, display_status=status, live=live, stale=own.stale,
                           seen_at=seen_at))
    return rows


def orphans(definitions: Iterable[Bot], snapshot: LiveSnapshot) -> list[LiveBot]:
    """Live bots no definition matches (archived ones included: they still claim the name)."""
    claimed = {name for bot in definitions for name in live_names_for(bot)}
    return [live for name, live in sorted(snapshot.bots.items()) if name not in claimed]


class StatusFeed:
    """One status call per `ttl` seconds per process, shared by every caller.

    Single flight: one caller fetches while the others wait for its answer, or, when there is
    an older snapshot to show, get that at once (stale while revalidating), so a slow
    Hummingbot delays one request per period, not every request. Failures are cached for the
    same period, so an outage costs one call per period too, and the client's circuit breaker
    makes that call fail fast.
    """

    def __init__(
        self,
        fetch: Callable[[], dict[str, LiveBot]],
        ttl: float,
        *,
        fetch_exited: Callable[[], Iterable[str]] | None = None,
        on_fresh: Callable[[LiveSnapshot], None] | None = None,
        on_failed: Callable[[LiveSnapshot], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stuck_after: float = DEFAULT_STUCK_AFTER,
        share: Callable[..., LiveSnapshot] | None = None,
    ):
        self._fetch = fetch
        # share(fetch, held=, since=): the deployment's shared answer (shared_status.py).
        self._share = share
        self._invalidated_at: datetime | None = None  # our own change: see its effect
        self._fetch_exited = fetch_exited
        self.ttl = ttl
        self._on_fresh = on_fresh
        self._on_failed = on_failed
        self._clock = clock
        self.stuck_after = stuck_after
        self.server_id: int | None = None  # stamped on every snapshot (LiveSnapshot)
        self._state = threading.Lock()  # guards the fields below; never held while fetching
        self._flight = threading.Lock()  # held by the one caller that is fetching
        self._snapshot: LiveSnapshot | None = None
        self._taken_at = 0.0
        self._flight_since: float | None = None  # when the fetch under way began

    def _current(self, max_age: float) -> LiveSnapshot | None:
        with self._state:
            if self._snapshot is not None and self._clock() - self._taken_at < max_age:
                return self._snapshot
            return None

    def snapshot(self, *, max_age: float | None = None, record: bool = True) -> LiveSnapshot:
        """The shared snapshot, fetched when older than `max_age` (default: the ttl).

        Callers passing `max_age` (lifecycle, reconcile) always wait for a fetch of their own.
        `record=False` skips `on_fresh` (which writes and commits): for callers inside a
        transaction whose locks must outlive the fetch; they record after their commit."""
        wants_fresh = max_age is not None
        max_age = self.ttl if max_age is None else max_age
        fresh = self._current(max_age)
        if fresh is not None:
            return fresh
        if not self._flight.acquire(blocking=False):
            with self._state:
                stale, since = self._snapshot, self._flight_since
            if stale is not None and not wants_fresh:
                # Someone is fetching; show what we have meanwhile, greyed once the fetch
                # has taken longer than a period (Hummingbot is slow).
                overdue = since is not None and self._clock() - since > max(self.ttl, 0.5)
                return replace(stale, overdue=True) if overdue else stale
            self._flight.acquire()
        try:
            fresh = self._current(max_age)
            if fresh is not None:
                return fresh  # fetched by the caller we waited for
            with self._state:
                self._flight_since = self._clock()
                held, since = self._snapshot, self._invalidated_at
            if self._share is None or wants_fresh:
                snapshot = self._fetch_snapshot()
            else:
                snapshot = self._share(self._fetch_snapshot, held=held, since=since)
            with self._state:
                self._snapshot, self._taken_at = snapshot, self._clock()
                self._flight_since = None
        finally:
            self._flight.release()
        if record and snapshot.reachable and self._on_fresh is not None:
            self._on_fresh(snapshot)
        elif record and not snapshot.reachable and self._on_failed is not None:
            self._on_failed(snapshot)
        return snapshot

    def _fetch_snapshot(self) -> LiveSnapshot:
        """The status call, then (when it answered) the exited containers: a crashed bot's
        container is listed there. Without that list, crashed bots read as missing."""
        try:
            snapshot = LiveSnapshot(fetched_at=utcnow(), bots=self._fetch(),
                                    stuck_after=self.stuck_after, server_id=self.server_id)
        except HummingbotError as exc:
            failed = replace(LiveSnapshot.failed(exc), stuck_after=self.stuck_after,
                             server_id=self.server_id)
            with self._state:
                before = self._snapshot
            if isinstance(exc, HummingbotCircuitOpen) and before is not None \
                    and before.error_kind == "timeout":
                # The breaker opened because Hummingbot timed out: still slow, not gone.
                failed = replace(failed, error_kind="timeout")
            return failed
        if self._fetch_exited is not None:
            # Should it fail, the status still stands; crashed reads as missing this time.
            with contextlib.suppress(HummingbotError):
                snapshot = replace(snapshot, exited=frozenset(self._fetch_exited()))
        return snapshot

    def cached(self) -> LiveSnapshot | None:
        """The shared snapshot while it is younger than the ttl, without fetching."""
        return self._current(self.ttl)

    def age(self) -> float | None:
        """Seconds since the last snapshot was taken (None: never)."""
        with self._state:
            return None if self._snapshot is None else self._clock() - self._taken_at

    @property
    def fetching(self) -> bool:
        """A refresh is under way in this process."""
        return self._flight.locked()

    def peek(self) -> LiveSnapshot | None:
        """The last snapshot, whatever its age, without fetching (None: never fetched)."""
        with self._state:
            return self._snapshot

    def invalidate(self) -> None:
        """After a lifecycle action, so the next page shows its effect."""
        with self._state:
            self._snapshot = None
            self._invalidated_at = utcnow()
