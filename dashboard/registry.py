"""Bot definitions: list, create, edit, archive, restore, each written with its history."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask_login import current_user
from sqlalchemy import and_, func, or_, select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from .access import visible_bots
from .models import Bot, BotEvent, BotVersion, HummingbotServer, User, db
from .observability import log_lifecycle
from .validation import BOT_FIELDS, ValidationError, validate_bot

EDITABLE_FIELDS = tuple(field for field in BOT_FIELDS if field != "id")
# Sort keys for `?sort=` (a leading "-" reverses): the columns, then the tie-breakers. Names
# sort naturally by `name_key` (bot-2 before bot-10); badges by their stored value.
SORT_COLUMNS = {
    "name": (Bot.name_key, Bot.id),
    "account": (Bot.account_identifier, Bot.name_key, Bot.id),
    "status": (Bot.display_status, Bot.name_key, Bot.id),
    "pnl": (Bot.pnl_quote, Bot.name_key, Bot.id),
    "volume": (Bot.volume_quote, Bot.name_key, Bot.id),
    "seen": (Bot.last_seen_at, Bot.name_key, Bot.id),
    "updated": (Bot.updated_at, Bot.name_key, Bot.id),
}
SORTS = (*SORT_COLUMNS, *(f"-{key}" for key in SORT_COLUMNS))
# Status filters beside the badges themselves (status.BADGES).
NEEDS_ATTENTION = "needs_attention"
SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # servers.NAME_RULE (no import cycle)
ARCHIVED_BADGES = ("archived", "archived_running")
TRANSITIONAL = ("deploying", "stopping")


class ConflictError(Exception):
    """Someone changed the bot since the form was loaded: nothing was written."""


class StateError(Exception):
    """The action does not fit the bot's current status."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def bump_version(bot: Bot) -> None:
    """An edit of the definition: forms loaded before it now get a conflict, not a lost update."""
    bot.version = bot.version + 1


def actor_name(user: User | None) -> str:
    return user.username if user is not None else "system"


# Details every event recorded in this context carries (a batch's id while its item runs):
# the lifecycle functions need not know they run inside a batch.
_event_context: ContextVar[Mapping[str, Any] | None] = ContextVar("event_context", default=None)


@contextmanager
def event_context(**details: Any) -> Iterator[None]:
    token = _event_context.set({**(_event_context.get() or {}), **details})
    try:
        yield
    finally:
        _event_context.reset(token)


def record_event(
    bot: Bot,
    action: str,
    actor: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> BotEvent:
    event = BotEvent(
        bot_id=bot.id,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        details={**(_event_context.get() or {}), **(details or {})},
        occurred_at=utcnow(),
    )
    db.session.add(event)
    log_lifecycle(bot.id, action, actor, from_status, to_status, event.details)
    return event


@dataclass(frozen=True)
class BotFilters:
    account: str = ""
    status: str = ""  # a badge (display_status) or "needs_attention"
    q: str = ""
    sort: str = "name"  # a key of SORT_COLUMNS, "-" in front for descending
    archived: bool = False
    attention_first: bool = False
    server: str = ""  # a Hummingbot server's name (admins only: bots.py drops it for clients)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> BotFilters:
        """Unknown values fall back to defaults: filters go through allowlists, never into SQL."""
        from .status import BADGES  # status.py imports this module

        status = args.get("status", "")
        status = status if status in BADGES or status == NEEDS_ATTENTION else ""
        sort = args.get("sort", "name")
        return cls(
            account=args.get("account", "").strip()[:64],
            status=status,
            q=args.get("q", "").strip()[:64],
            sort=sort if sort in SORTS else "name",
            archived=args.get("archived") == "1" or status in ARCHIVED_BADGES,
            attention_first=args.get("attention") == "first",
            server=server if SERVER_NAME.match(server := args.get("server", "")) else "",
        )

    @property
    def order(self) -> tuple:
        descending = self.sort.startswith("-")
        first, *ties = SORT_COLUMNS[self.sort.lstrip("-")]
        if self.sort.lstrip("-") in ("name", "account", "status"):
            # Every column one way: PostgreSQL walks the index either way round.
            keys = tuple(c.desc() if descending else c.asc() for c in (first, *ties))
        else:  # numbers and times: the unknown ones last, whichever way
            keys = ((first.desc() if descending else first.asc()).nulls_last(),
                    *(c.asc() for c in ties))
        return (Bot.needs_attention.desc(), *keys) if self.attention_first else keys


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _scoped(filters: BotFilters, user: User | None = None):
    """The viewer's bots narrowed by account and search: what the status chips count."""
    query = visible_bots(user)
    if filters.account:
        query = query.where(Bot.account_identifier == filters.account)
    if filters.server:
        query = query.where(Bot.server_id == select(HummingbotServer.id).where(
            HummingbotServer.name == filters.server).scalar_subquery())
    if filters.q:
        pattern = f"%{_escape_like(filters.q)}%"
        query = query.where(or_(Bot.name.ilike(pattern), Bot.id.ilike(pattern)))
    return query


def _status_condition(filters: BotFilters):
    """The status filter as one SQL condition (None: every bot), shared by the list and its
    totals."""
    if filters.status == NEEDS_ATTENTION:
        # Archived definitions whose bot still runs need attention too: not hidden as archived.
        return Bot.needs_attention  # bare, as in the partial index's predicate
    conditions = []
    if not filters.archived:
        conditions.append(Bot.archived_at.is_(None))
    if filters.status:
        conditions.append(Bot.display_status == filters.status)
    return and_(*conditions) if conditions else None


def filtered_bots(filters: BotFilters, user: User | None = None):
    query = _scoped(filters, user)
    condition = _status_condition(filters)
    if condition is not None:
        query = query.where(condition)
    return query.order_by(*filters.order)


@dataclass(frozen=True)
class Total:
    quote: str  # the pairs' quote currency: amounts in different ones are never added
    pnl: float | None
    volume: float | None
    bots: int


@dataclass(frozen=True)
class ListSummary:
    """Above and below the list: how many bots show each badge (archived ones only while
    they still run) and need attention, for the chips, which ignore the status filter; and
    for the filtered set, on every page, its size and PnL and volume per quote currency."""

    by_status: dict[str, int]
    attention: int
    matching: int
    totals: list[Total]

    @property
    def total(self) -> int:
        return sum(n for status, n in self.by_status.items() if status != "archived_running")


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def quote_currency(pair: str | None) -> str:
    """ETH-USDT -> USDT: Hummingbot's PnL and volume are in the pair's quote currency."""
    parts = (pair or "").split("-")
    return parts[1] if len(parts) > 1 else ""


def list_summary(filters: BotFilters, user: User | None = None) -> ListSummary:
    """One statement: every figure is a FILTERed aggregate over the viewer's scope, grouped by
    badge and quote currency (split_part states quote_currency's rule in SQL)."""
    chip = or_(Bot.archived_at.is_(None), Bot.display_status == "archived_running")
    selected = _status_condition(filters)
    selected = selected if selected is not None else true()
    quote = func.split_part(Bot.pair, "-", 2)
    query = _scoped(filters, user).with_only_columns(
        Bot.display_status, quote,
        func.count().filter(chip), func.count().filter(and_(chip, Bot.needs_attention)),
        func.count().filter(selected), func.sum(Bot.pnl_quote).filter(selected),
        func.sum(Bot.volume_quote).filter(selected),
    ).group_by(Bot.display_status, quote).order_by(None)
    by_status: dict[str, int] = {}
    sums: dict[str, tuple[int, float | None, float | None]] = {}
    attention = 0
    for status, currency, shown, needing, matching, pnl, volume in db.session.execute(query):
        if shown:
            by_status[status] = by_status.get(status, 0) + shown
        attention += needing
        if matching:
            n, p, v = sums.get(currency, (0, None, None))
            sums[currency] = (n + matching, _add(p, pnl), _add(v, volume))
    totals = [Total(quote=q, pnl=p, volume=v, bots=n) for q, (n, p, v) in sorted(sums.items())]
    return ListSummary(by_status=by_status, attention=attention,
                       matching=sum(t.bots for t in totals), totals=totals)


# The distinct accounts by a "loose index scan" on idx_bots_account: one index probe per
# account instead of reading every bot (PostgreSQL has no skip scan of its own).
DISTINCT_ACCOUNTS = text("""
    WITH RECURSIVE accounts(name) AS (
        (SELECT account_identifier FROM bots ORDER BY account_identifier LIMIT 1)
        UNION ALL
        SELECT (SELECT account_identifier FROM bots
                WHERE account_identifier > accounts.name ORDER BY account_identifier LIMIT 1)
        FROM accounts WHERE accounts.name IS NOT NULL
    )
    SELECT name FROM accounts WHERE name IS NOT NULL
""")


def known_accounts(user: User | None = None) -> list[str]:
    """Accounts for the filter menu: every account for admins, the client's own otherwise."""
    user = user or current_user
    if not user.is_admin:
        return [user.account_identifier]
    return list(db.session.scalars(DISTINCT_ACCOUNTS))


def _name_taken(name: str, exclude_id: str | None = None) -> bool:
    query = select(func.count()).select_from(Bot).where(
        func.lower(Bot.name) == name.lower(), Bot.archived_at.is_(None)
    )
    if exclude_id is not None:
        query = query.where(Bot.id != exclude_id)
    return db.session.scalar(query) > 0


def _max_config_bytes() -> int:
    return current_app.config["MAX_CONFIG_BYTES"]


def create_bot(data: Mapping[str, Any], actor: str, *, status: str = "stopped",
               server_id: int | None = None) -> Bot:
    """Store a new definition, on `server_id` (None: the `default` server)."""
    fields = validate_bot(data, max_config_bytes=_max_config_bytes())
    if db.session.get(Bot, fields.id) is not None:
        raise ValidationError({"id": "is already used by another bot."})
    if _name_taken(fields.name):
        raise ValidationError({"name": "is already used by another bot."})
    bot = Bot(**fields.as_dict(), status=status)
    if server_id is not None:
        bot.server_id = server_id
    db.session.add(bot)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        db.session.rollback()
        raise ValidationError({"id": "is already used by another bot."}) from exc
    record_event(bot, "created", actor, to_status=status, details={"after": fields.as_dict()})
    db.session.commit()
    return bot


def update_bot(bot: Bot, data: Mapping[str, Any], actor: str, *, expected_version: Any,
               action: str = "edited", details: Mapping[str, Any] | None = None) -> Bot:
    """Apply an edit if nobody saved the bot since `expected_version` was read."""
    merged = {**data, "id": bot.id}
    fields = validate_bot(merged, max_config_bytes=_max_config_bytes())
    if str(bot.version) != str(expected_version):
        raise ConflictError(bot.id)
    if fields.name.lower() != bot.name.lower() and _name_taken(fields.name, exclude_id=bot.id):
        raise ValidationError({"name": "is already used by another bot."})
    changes = {
        field: [getattr(bot, field), getattr(fields, field)]
        for field in EDITABLE_FIELDS
        if getattr(bot, field) != getattr(fields, field)
    }
    if not changes:
        return bot
    apply_edit(bot, changes, actor, action, details)
    try:
        db.session.commit()
    except StaleDataError as exc:  # lost the race between our read and our UPDATE
        db.session.rollback()
        raise ConflictError(bot.id) from exc
    return bot


def _lock(bot: Bot) -> Bot:
    """The bot's row re-read under a row lock: parallel clicks on one bot queue here, and each
    sees what the one before it wrote (so a repeat is a no-op, never a stale UPDATE's 500)."""
    return db.session.scalars(
        select(Bot).where(Bot.id == bot.id).with_for_update().execution_options(
            populate_existing=True)
    ).one()


def apply_edit(bot: Bot, changes: Mapping[str, list[Any]], actor: str, action: str,
               details: Mapping[str, Any] | None = None) -> BotEvent:
    """The one edit path of a definition (forms, restores, imports): keep the version being
    replaced, apply `changes` ({field: [before, after]}), bump the version, record the event.
    All in the caller's transaction, so a version exists exactly when its edit does."""
    db.session.add(BotVersion(
        bot_id=bot.id, version=bot.version, replaced_at=utcnow(), replaced_by=actor,
        **{field: getattr(bot, field) for field in EDITABLE_FIELDS}))
    for field, (_before, after) in changes.items():
        setattr(bot, field, after)
    bump_version(bot)
    return record_event(bot, action, actor, from_status=bot.status, to_status=bot.status,
                        details={**(details or {}), "changes": dict(changes),
                                 "version": bot.version})


def archive_bot(bot: Bot, actor: str) -> Bot:
    """Archive the definition only. Callers that may find it still running in Hummingbot go
    through `lifecycle.archive` instead, which refuses that."""
    bot = _lock(bot)
    if bot.is_archived:
        return bot
    if bot.status in TRANSITIONAL:
        raise StateError(f"{bot.name} is {bot.status}; wait until it settles before archiving.")
    mark_archived(bot, actor)
    db.session.commit()
    return bot


def mark_archived(bot: Bot, actor: str, details: Mapping[str, Any] | None = None) -> None:
    """Soft-delete the definition (the caller commits)."""
    before = bot.status
    bot.status = "archived"
    bot.archived_at = utcnow()
    bump_version(bot)
    record_event(bot, "archived", actor, from_status=before, to_status="archived",
                 details=details)


def restore_bot(bot: Bot, actor: str) -> Bot:
    bot = _lock(bot)
    if not bot.is_archived:
        return bot
    if _name_taken(bot.name, exclude_id=bot.id):
        raise StateError(
            f"Another active bot is named {bot.name}; rename or archive it before restoring."
        )
    bot.status = "stopped"
    bot.archived_at = None
    bump_version(bot)
    record_event(bot, "restored", actor, from_status="archived", to_status="stopped")
    db.session.commit()
    return bot


def last_edit(bot: Bot) -> BotEvent | None:
    """The newest change of the definition's fields (who saved it last, and when)."""
    return db.session.scalars(
        select(BotEvent).where(BotEvent.bot_id == bot.id,
                               BotEvent.action.in_(("edited", "import_updated", "relinked",
                                                  "version_restored")))
        .order_by(BotEvent.occurred_at.desc(), BotEvent.id.desc()).limit(1)).first()


def bot_history(bot: Bot) -> list[BotEvent]:
    query = (
        select(BotEvent)
        .where(BotEvent.bot_id == bot.id)
        .order_by(BotEvent.occurred_at.desc(), BotEvent.id.desc())
    )
    return list(db.session.scalars(query))
