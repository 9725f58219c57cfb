"""The merge: definitions from PostgreSQL plus what Hummingbot says is live, as display rows.

`merge_rows` is a pure function of (definitions, snapshot); `StatusFeed` is the thin I/O
around it: one `GET /bot-orchestration/status` per refresh period per process, shared by every
viewer and every bot, never one call per bot or per viewer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from .hummingbot import (
    HummingbotAuthError,
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
    "unknown": "Unknown",
}
CONTROLLER_STRATEGIES = ("v2_with_controllers",)
# How reconcile's `last_error` starts when Hummingbot accepted a stop-and-archive but no bot-run
# was read as ARCHIVED: such a bot is flagged when Hummingbot lists it again.
ARCHIVE_UNCONFIRMED = "The archive was not confirmed"


@dataclass(frozen=True)
class LiveSnapshot:
    """What Hummingbot reported at `fetched_at`, or why it could not be asked."""

    fetched_at: datetime
    bots: dict[str, LiveBot]
    error_kind: str | None = None  # "unreachable", "auth", "protocol"; None when fine
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error_kind is None

    @classmethod
    def failed(cls, exc: HummingbotError) -> LiveSnapshot:
        if isinstance(exc, HummingbotAuthError):
            kind = "auth"
        elif isinstance(exc, HummingbotUnreachable | HummingbotTimeout):
            kind = "unreachable"
        else:
            kind = "protocol"
        return cls(fetched_at=utcnow(), bots={}, error_kind=kind, error=str(exc))


@dataclass(frozen=True)
class BotRow:
    bot: Bot
    display_status: str
    live: LiveBot | None
    stale: bool  # Hummingbot unreachable: the badge is the last status seen, greyed
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


def _badge_for_live_word(bot: Bot, word: str) -> str:
    if word in ("running", "idle", "stopping", "error"):
        return word
    if word == "trading_stopped":
        return "stopped_container_up"
    if word == "stopped_active":
        # A plain script bot always reports "stopped"; recently_active says it is alive, but
        # not whether it trades: after a stop sent from here (a stopped definition with an
        # instance name), the definition knows better.
        stopped_here = bot.status == "stopped" and bot.instance_name is not None
        return "running_script" if is_script_bot(bot) and not stopped_here \
            else "stopped_container_up"
    if word == "stopped":
        return "stopped_container_up"  # the container is up, nothing heard from it yet
    if word == "absent":  # reconcile looked and it was not there
        return "missing" if bot.status == "running" else "stopped"
    return "unknown"


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


def display_status(bot: Bot, live: LiveBot | None, reachable: bool) -> tuple[str, bool]:
    """(badge, stale) for one definition, per the table in DESIGN.md."""
    if bot.archived_at is not None:
        return "archived", False
    if bot.status in ("deploying", "stopping"):
        return bot.status, False
    if not reachable:
        if bot.last_seen_status:
            return _badge_for_live_word(bot, bot.last_seen_status), True
        return (bot.status if bot.status in ("deploy_failed", "stopped") else "unknown"), True
    if live is not None:
        return _badge_for_live_word(bot, live_word(live)), False
    if bot.status == "running":
        return ("deploying" if awaiting_first_report(bot) else "missing"), False
    if bot.status == "deploy_failed":
        return "deploy_failed", False
    return "stopped", False


def merge_rows(bots: Iterable[Bot], snapshot: LiveSnapshot) -> list[BotRow]:
    rows = []
    for bot in bots:
        live = match_live(bot, snapshot.bots) if snapshot.reachable else None
        status, stale = display_status(bot, live, snapshot.reachable)
        seen_at = snapshot.fetched_at if live is not None else bot.last_seen_at
        rows.append(BotRow(bot=bot, display_status=status, live=live, stale=stale,
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
        on_fresh: Callable[[LiveSnapshot], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.ttl = ttl
        self._on_fresh = on_fresh
        self._clock = clock
        self._state = threading.Lock()  # guards the fields below; never held while fetching
        self._flight = threading.Lock()  # held by the one caller that is fetching
        self._snapshot: LiveSnapshot | None = None
        self._taken_at = 0.0

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
                stale = self._snapshot
            if stale is not None and not wants_fresh:
                return stale  # someone is fetching; show what we have meanwhile
            self._flight.acquire()
        try:
            fresh = self._current(max_age)
            if fresh is not None:
                return fresh  # fetched by the caller we waited for
            try:
                snapshot = LiveSnapshot(fetched_at=utcnow(), bots=self._fetch())
            except HummingbotError as exc:
                snapshot = LiveSnapshot.failed(exc)
            with self._state:
                self._snapshot, self._taken_at = snapshot, self._clock()
        finally:
            self._flight.release()
        if record and snapshot.reachable and self._on_fresh is not None:
            self._on_fresh(snapshot)
        return snapshot

    def invalidate(self) -> None:
        """After a lifecycle action, so the next page shows its effect."""
        with self._state:
            self._snapshot = None
