"""What the alerts pages show, on top of the core's service (service.py does the scoping:
admins see everything, a client only its own account's; a delivery belongs to whoever owns
its destination): labels, the delivery log's filters and page with what each row shows beside
it, open alerts with their bots' names, and the header's count (once per request).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import abort, g, get_template_attribute
from markupsafe import Markup
from sqlalchemy import func, select

from ..disclosure import viewer_redaction
from ..models import Bot, db
from ..registry import utcnow
from . import service
from .models import Alert, AlertDelivery, AlertDestination, AlertMute

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
PERIODS = {"24h": ("Last 24 hours", timedelta(hours=24)), "7d": ("Last 7 days", timedelta(days=7)),
           "30d": ("Last 30 days", timedelta(days=30)), "all": ("All time", None)}
LOG_PAGE_SIZE = 25
MAX_ERROR_CHARS = 300  # the log's cell; the full text is one click away in the database only


def condition_label(code: str | None) -> str:
    return CONDITION_LABELS.get(code or "", code or "-")


# ------------------------------------------------------------------------------ lists
def destinations(user) -> list[AlertDestination]:
    return list(db.session.scalars(service.visible_destinations(user)))


def rules(user) -> list:
    return list(db.session.scalars(service.visible_rules(user)))


def mutes(user) -> list:
    """Mutes still in force, soonest to end first (ended ones are history, not settings)."""
    return sorted(db.session.scalars(service.visible_mutes(user)), key=lambda m: (m.until, m.id))


def _not_visible(what: str, row_id: int):
    from ..audit import security_event

    security_event("access_denied", level=logging.WARNING, reason=f"{what} not visible",
                   row_id=row_id)
    abort(404)


def mute_or_404(mute_id: int, user) -> AlertMute:
    """What service.delete_mute checks, before a view looks at the rest of the form."""
    mute = db.session.scalars(service.visible_mutes(user, current_only=False)
                              .where(AlertMute.id == mute_id)).first()
    if mute is None:
        _not_visible("alert mute", mute_id)
    return mute


def delivery_or_404(delivery_id: int, user) -> AlertDelivery:
    delivery = db.session.scalars(service.visible_deliveries(user)
                                  .where(AlertDelivery.id == delivery_id)).first()
    if delivery is None:
        _not_visible("alert delivery", delivery_id)
    return delivery


# ------------------------------------------------------------------------------ the log
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
    query = service.visible_deliveries(
        user, status=filters.status or None, destination_id=filters.destination,
        event="test" if filters.condition == "test" else None,
    ).add_columns(AlertDestination.name, AlertDestination.kind, Alert.condition, Alert.bot_id,
                  Alert.account_identifier, Bot.name
    ).outerjoin(Alert, Alert.id == AlertDelivery.alert_id
    ).outerjoin(Bot, Bot.id == Alert.bot_id)
    if filters.condition and filters.condition != "test":
        query = query.where(Alert.condition == filters.condition)
    if filters.account:
        query = query.where(Alert.account_identifier == filters.account)
    span = PERIODS[filters.period][1]
    if span is not None:
        query = query.where(AlertDelivery.created_at >= utcnow() - span)
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
@dataclass(frozen=True)
class ShownAlert:
    """An open alert as a client sees it (the attributes the pages read)."""

    id: int
    bot_id: str | None
    condition: str
    state: str
    since: datetime
    detail: str | None


def _as_seen_by(alerts: list[Alert], bots: list[Bot], user) -> list:
    """A deploy_failed alert quotes the bot's last error, which may name the Hummingbot API's
    address or the account the bot was moved from: clients get disclosure's redaction (two
    queries, only when a client has open alerts); admins the rows as stored."""
    redaction = viewer_redaction(user, bots) if alerts else None
    if redaction is None:
        return alerts
    by_id = {bot.id: bot for bot in bots}
    return [ShownAlert(id=a.id, bot_id=a.bot_id, condition=a.condition, state=a.state,
                       since=a.since, detail=redaction.text(by_id[a.bot_id], a.detail)
                       if a.bot_id in by_id else None) for a in alerts]


def open_alerts_for_bot(bot_id: str, user) -> list:
    """Alerts not yet resolved (pending ones are still holding), oldest first."""
    alerts = sorted(service.open_alerts_for_bot(bot_id, user), key=lambda a: (a.since, a.id))
    bot = db.session.get(Bot, bot_id) if alerts and not user.is_admin else None  # loaded
    return _as_seen_by(alerts, [bot] if bot else [], user)


def open_alerts_for_account(account: str, user) -> list[tuple[object, str | None]]:
    """The account's open alerts, each with its bot's name (one more query for the names)."""
    alerts = sorted(service.open_alerts_for_account(account, user), key=lambda a: (a.since, a.id))
    ids = {a.bot_id for a in alerts if a.bot_id}
    bots = list(db.session.scalars(select(Bot).where(Bot.id.in_(ids)))) if ids else []
    names = {bot.id: bot.name for bot in bots}
    return [(alert, names.get(alert.bot_id)) for alert in _as_seen_by(alerts, bots, user)]


def open_alerts_box(alerts: list, label: dict, *, now: datetime,
                    show_bot: bool = False) -> Markup:
    """The open alerts at the top of a bot's or an account's page (nothing when none are
    open), for a shared render: "since" counts from the render's `now`."""
    if not alerts:
        return Markup("")
    return get_template_attribute("alerts/_macros.html", "open_alerts")(
        alerts, label, show_bot=show_bot, now=now)


def firing_count(user) -> int:
    """The header's bell: one COUNT per request at most (the desktop links and the phone menu
    both show it), none when the page already read it (remember_firing_count)."""
    if "firing_alerts" not in g:
        g.firing_alerts = service.open_alert_count(user)
    return g.firing_alerts


def remember_firing_count(count: int) -> None:
    """The bell's count for an admin, read by a page with its other figures in one statement
    (rows_cache.list_figures, history/services' bot_page_state and account_page_state):
    the header then asks the database nothing more."""
    g.firing_alerts = count
