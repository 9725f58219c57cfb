"""What the alerts pages read: destinations, rules, mutes and deliveries scoped to the viewer,
the delivery log's filters, open alerts for a bot or an account, and the header's count.

Scoping goes through `dashboard/access.py` (`owned_or_404`, `owned_rows`): admins see
everything, a client only what belongs to its own account. A delivery belongs to whoever owns
its destination, so a client never learns an operator's destination or what it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import g
from sqlalchemy import Select, func, or_, select

from ..access import owned_rows
from ..models import Bot, db
from ..registry import utcnow
from .models import Alert, AlertDelivery, AlertDestination, AlertMute, AlertRule

# What a page calls each condition code (the codes are the core's, dashboard/alerts/conditions.py).
CONDITION_LABELS = {
    "missing": "Bot missing",
    "crashed": "Container crashed",
    "deploy_failed": "Deploy failed",
    "stuck": "Stuck deploying or stopping",
    "archived_running": "Archived but still running",
    "error_lines": "New error lines in the log",
    "drawdown": "PnL drawdown over a threshold",
    "hummingbot_unreachable": "Hummingbot unreachable or refusing our credentials",
}
KIND_LABELS = {"webhook": "JSON webhook", "slack": "Slack", "discord": "Discord",
               "telegram": "Telegram", "email": "Email (SMTP)"}
DELIVERY_STATUSES = ("pending", "sending", "delivered", "dead")
EVENTS = ("fired", "repeat", "resolved", "test")
PERIODS = {"24h": ("Last 24 hours", timedelta(hours=24)), "7d": ("Last 7 days", timedelta(days=7)),
           "30d": ("Last 30 days", timedelta(days=30)), "all": ("All time", None)}
LOG_PAGE_SIZE = 25
MAX_ERROR_CHARS = 300  # the log's cell; the full text is one click away in the database only


def condition_label(code: str | None) -> str:
    return CONDITION_LABELS.get(code or "", code or "-")


# ------------------------------------------------------------------------------ lists
def destinations(user) -> list[AlertDestination]:
    return list(db.session.scalars(owned_rows(AlertDestination, user)
                                   .order_by(AlertDestination.name, AlertDestination.id)))


def rules(user) -> list[AlertRule]:
    return list(db.session.scalars(owned_rows(AlertRule, user)
                                   .order_by(AlertRule.name, AlertRule.id)))


def visible_mutes(user) -> Select:
    """Mutes of the client's account, and of the client's own bots (a bot's mute names the
    bot, not always its account)."""
    query = select(AlertMute)
    if not user.is_admin:
        own_bots = select(Bot.id).where(Bot.account_identifier == user.account_identifier)
        query = query.where(or_(AlertMute.account_identifier == user.account_identifier,
                                AlertMute.bot_id.in_(own_bots)))
    return query


def mutes(user) -> list[AlertMute]:
    """Mutes still in force, soonest to end first; ended ones are history, not settings."""
    return list(db.session.scalars(visible_mutes(user).where(AlertMute.until > utcnow())
                                   .order_by(AlertMute.until, AlertMute.id)))


# ------------------------------------------------------------------------------ the log
def visible_deliveries(user) -> Select:
    """A delivery is its destination owner's business."""
    query = select(AlertDelivery)
    if not user.is_admin:
        query = query.join(AlertDestination,
                           AlertDestination.id == AlertDelivery.destination_id).where(
            AlertDestination.account_identifier == user.account_identifier)
    return query


@dataclass(frozen=True)
class LogFilters:
    status: str = ""
    destination: int | None = None
    condition: str = ""
    account: str = ""
    period: str = "7d"

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments, for the pager's links (only known keys)."""
        args = {"status": self.status, "destination": self.destination or "",
                "condition": self.condition, "account": self.account, "period": self.period}
        return {key: str(value) for key, value in args.items() if value}


def parse_log_filters(args) -> LogFilters:
    """Unknown values are dropped rather than refused: the filters are select boxes, and a
    stale bookmark should still show the log."""
    status = args.get("status", "")
    raw_destination = args.get("destination", "")
    condition = args.get("condition", "")
    period = args.get("period", "7d")
    account = (args.get("account") or "").strip()[:64]
    return LogFilters(
        status=status if status in DELIVERY_STATUSES else "",
        destination=int(raw_destination) if raw_destination.isascii()
        and raw_destination.isdigit() and len(raw_destination) < 10 else None,
        condition=condition if condition in CONDITION_LABELS or condition == "test" else "",
        account=account,
        period=period if period in PERIODS else "7d",
    )


def delivery_log(user, filters: LogFilters, page: int):
    """One page of deliveries, newest first, with what the table shows beside each: its
    destination's name and kind, and its alert's condition, bot and account. Filtered and
    paginated in SQL (two statements: the page and its count)."""
    query = (
        select(AlertDelivery, AlertDestination.name, AlertDestination.kind,
               Alert.condition, Alert.bot_id, Alert.account_identifier, Bot.name)
        .join(AlertDestination, AlertDestination.id == AlertDelivery.destination_id)
        .outerjoin(Alert, Alert.id == AlertDelivery.alert_id)
        .outerjoin(Bot, Bot.id == Alert.bot_id)
    )
    if not user.is_admin:
        query = query.where(AlertDestination.account_identifier == user.account_identifier)
    if filters.status:
        query = query.where(AlertDelivery.status == filters.status)
    if filters.destination:
        query = query.where(AlertDelivery.destination_id == filters.destination)
    if filters.condition == "test":
        query = query.where(AlertDelivery.event == "test")
    elif filters.condition:
        query = query.where(Alert.condition == filters.condition)
    if filters.account:
        query = query.where(Alert.account_identifier == filters.account)
    span = PERIODS[filters.period][1]
    if span is not None:
        query = query.where(AlertDelivery.created_at >= utcnow() - span)
    query = query.order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc())
    total = db.session.scalar(select(func.count()).select_from(
        query.order_by(None).subquery())) or 0
    rows = db.session.execute(query.limit(LOG_PAGE_SIZE)
                              .offset((page - 1) * LOG_PAGE_SIZE)).all()
    return LogPage(items=rows, page=page, total=total)


@dataclass(frozen=True)
class LogPage:
    """A page of the log (rows of several columns, which db.paginate does not give)."""

    items: list
    page: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page * LOG_PAGE_SIZE < self.total

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def redacted(text: str | None, secrets: list[str]) -> str:
    """A receiver's or a library's error text, cut short, with any destination secret in it
    blanked: an exception message may quote the URL it failed on, and a webhook URL is the
    secret itself."""
    text = (text or "")[:MAX_ERROR_CHARS * 4]
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[secret]")
    return text[:MAX_ERROR_CHARS]


def destination_secrets(rows: list[AlertDestination]) -> list[str]:
    secrets = []
    for row in rows:
        secrets += [row.target or "", row.signing_secret or ""]
        # The token inside a Telegram or webhook URL path, when the URL is quoted in part.
        secrets += [part for part in (row.target or "").split("/") if len(part) >= 16]
    return secrets


# ------------------------------------------------------------------------------ open alerts
def open_alerts_for_bot(bot_id: str) -> list[Alert]:
    return list(db.session.scalars(
        select(Alert).where(Alert.bot_id == bot_id, Alert.state == "firing")
        .order_by(Alert.since, Alert.id)))


def open_alerts_for_account(account: str) -> list[tuple[Alert, str | None]]:
    """Firing alerts of the account's bots (and of the account itself), with each bot's name."""
    return list(db.session.execute(
        select(Alert, Bot.name).outerjoin(Bot, Bot.id == Alert.bot_id)
        .where(Alert.account_identifier == account, Alert.state == "firing")
        .order_by(Alert.since, Alert.id).limit(200)))


def firing_count() -> int:
    """The header bell: one COUNT per request at most (the partial index on non-resolved
    alerts keeps it small whatever the history holds)."""
    if "firing_alerts" not in g:
        g.firing_alerts = db.session.scalar(
            select(func.count()).select_from(Alert).where(Alert.state == "firing")) or 0
    return g.firing_alerts
