"""What the alert pages and the CLI call: destinations, rules, mutes, the delivery log, open
alerts. Every function takes the acting user and checks access here too (access.owns_account,
access.account_scope), whatever the view checked: a client reaches only its own account's
destinations, rules, mutes, deliveries and alerts; anything else is the same 404 as an id
that does not exist.

Secrets (webhook URL, Telegram bot token, SMTP password, signing secret) go in, never out:
`describe_destination` shows them through sealed.hint(); a blank secret field on an edit keeps
the stored one. Saving checks the outbound policy (policy.py); sending checks it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import abort, current_app
from sqlalchemy import Select, or_, select

from ..access import account_scope, owns_account
from ..models import Bot, User, db
from ..registry import utcnow
from ..sealed import hint
from ..validation import ValidationError
from . import policy
from .models import (
    CONDITIONS,
    DESTINATION_KINDS,
    Alert,
    AlertDelivery,
    AlertDestination,
    AlertMute,
    AlertRule,
)

log = logging.getLogger(__name__)

URL_KINDS = ("webhook", "slack", "discord")
FLEET_CONDITIONS = ("hummingbot_unreachable",)  # not about one account: the operator's
TELEGRAM_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
TELEGRAM_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,64})$")
EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}$")
MAX_HOLD_SECONDS = 86_400
MAX_REPEAT_SECONDS = 7 * 86_400
MAX_MUTE = timedelta(days=30)
NAME_CHARS = 80
SIGNATURE_KEY_REQUIRED = ("a signing secret of at least 16 characters is required (receivers "
                       "check the signature with it)")


def _denied(what: str, **context) -> None:
    from ..audit import security_event

    security_event("access_denied", level=logging.WARNING, reason=f"{what} not visible",
                   **context)
    abort(404)


def _text(data: Mapping, name: str, limit: int = 200) -> str:
    return str(data.get(name) or "").strip()[:limit + 1]


def _int(data: Mapping, name: str, errors: dict, low: int, high: int, default: int) -> int:
    raw = str(data.get(name) if data.get(name) is not None else "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = "must be a whole number"
        return default
    if not low <= value <= high:
        errors[name] = f"must be between {low} and {high}"
    return value


def _flag(data: Mapping, name: str, default: bool) -> bool:
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() in {"1", "true", "yes", "on"}


def _owner(data: Mapping, user: User, errors: dict) -> str | None:
    """The owning account: a client's own, always; an admin's choice (blank: the operator)."""
    if not user.is_admin:
        return user.account_identifier
    account = _text(data, "account_identifier", 64) or None
    if account is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", account):
        errors["account_identifier"] = "letters, digits, _ . - only"
    return account


# --------------------------------------------------------------------------- destinations
def visible_destinations(user: User) -> Select:
    query = select(AlertDestination).order_by(AlertDestination.name, AlertDestination.id)
    scope = account_scope(user)
    if scope is not None:
        query = query.where(AlertDestination.account_identifier == scope)
    return query


def get_destination_or_404(destination_id: int, user: User) -> AlertDestination:
    destination = db.session.get(AlertDestination, destination_id)
    if destination is None or not owns_account(destination.account_identifier, user):
        _denied("alert destination", destination_id=destination_id)
    return destination


def describe_destination(destination: AlertDestination) -> dict[str, Any]:
    """What a page or JSON may show: no secret, only hints."""
    return {
        "id": destination.id, "name": destination.name, "kind": destination.kind,
        "account_identifier": destination.account_identifier, "enabled": destination.enabled,
        "settings": dict(destination.settings or {}),
        "target": hint(destination.target),
        "signing_secret": hint(destination.signing_secret),
        "created_by": destination.created_by, "created_at": destination.created_at,
    }


def _destination_fields(data: Mapping, user: User, existing: AlertDestination | None,
                        ) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    config = current_app.config
    kind = existing.kind if existing is not None else _text(data, "kind", 16)
    if kind not in DESTINATION_KINDS:
        errors["kind"] = "choose one of " + ", ".join(DESTINATION_KINDS)
    name = _text(data, "name", NAME_CHARS)
    if not name:
        errors["name"] = "is required"
    elif len(name) > NAME_CHARS:
        errors["name"] = f"at most {NAME_CHARS} characters"
    # Absent: unchanged on an edit, on for a new one (a form sends its checkbox as 0/1).
    fields: dict[str, Any] = {"name": name, "kind": kind, "enabled": _flag(
        data, "enabled", existing.enabled if existing is not None else True)}
    fields["account_identifier"] = (existing.account_identifier if existing is not None
                                    else _owner(data, user, errors))
    # Secrets: blank on an edit keeps the stored value.
    target = str(data.get("target") or "").strip()
    keep = existing is not None and not target
    settings: dict[str, Any] = {}
    if kind in URL_KINDS:
        if not keep:
            if not target:
                errors["target"] = "the webhook URL is required"
            elif len(target) > 2000:
                errors["target"] = "at most 2,000 characters"
            else:
                try:
                    policy.check_url(target, config)
                except policy.PolicyError as exc:
                    errors["target"] = str(exc)
        if kind == "webhook":
            secret = str(data.get("signing_secret") or "").strip()
            if secret:
                if not 16 <= len(secret) <= 200:
                    errors["signing_secret"] = "between 16 and 200 characters"  # noqa: S105
                fields["signing_secret"] = secret
            elif existing is None or not existing.signing_secret:
                errors["signing_secret"] = SIGNATURE_KEY_REQUIRED
    elif kind == "telegram":
        if not keep and not TELEGRAM_TOKEN.fullmatch(target):
            errors["target"] = "a Telegram bot token (digits:letters, from @BotFather)"
        chat = _text(data, "chat_id", 70)
        if not TELEGRAM_CHAT.fullmatch(chat):
            errors["chat_id"] = "a numeric chat id or @channelname"
        settings = {"chat_id": chat}
    elif kind == "email":
        host = _text(data, "host", 253)
        port = _int(data, "port", errors, 1, 65535, 587)
        settings = {"host": host, "port": port, "from": _text(data, "from", 254),
                    "to": _text(data, "to", 254), "starttls": _flag(data, "starttls", True),
                    "username": _text(data, "username", 254) or None}
        for key in ("from", "to"):
            if not EMAIL.fullmatch(settings[key]):
                errors[key] = "an email address"
        if not host:
            errors["host"] = "the SMTP server is required"
        elif "port" not in errors:  # a port out of range overflows the resolver
            try:
                policy.check_host(host, port, config)
            except policy.PolicyError as exc:
                errors["host"] = str(exc)
        if settings["username"] and not target and not keep:
            errors["target"] = "the SMTP password is required with a username"
    if not keep and target:
        fields["target"] = target
    fields["settings"] = settings
    return fields, errors


def save_destination(data: Mapping, user: User,
                     destination_id: int | None = None) -> AlertDestination:
    """Create (no id) or update a destination; ValidationError with field -> message."""
    existing = get_destination_or_404(destination_id, user) if destination_id else None
    fields, errors = _destination_fields(data, user, existing)
    if errors:
        raise ValidationError(errors)
    destination = existing or AlertDestination(created_by=user.username)
    for key, value in fields.items():
        setattr(destination, key, value)
    db.session.add(destination)
    db.session.commit()
    log.info("alert destination %s saved by %s", destination.id, user.username)
    return destination


def delete_destination(destination_id: int, user: User) -> None:
    """Its rules and deliveries go with it (ON DELETE CASCADE)."""
    destination = get_destination_or_404(destination_id, user)
    db.session.delete(destination)
    db.session.commit()


def test_send(destination_id: int, user: User) -> AlertDelivery:
    """Queue a `test` message to the destination (the workers send it)."""
    destination = get_destination_or_404(destination_id, user)
    delivery = AlertDelivery(destination_id=destination.id, event="test",
                             payload={"event": "test", "destination": destination.name,
                                      "requested_by": user.username})
    db.session.add(delivery)
    db.session.commit()
    from .delivery import wake

    wake(current_app)
    return delivery


# --------------------------------------------------------------------------------- rules
def visible_rules(user: User) -> Select:
    query = select(AlertRule).order_by(AlertRule.name, AlertRule.id)
    scope = account_scope(user)
    if scope is not None:
        query = query.where(AlertRule.account_identifier == scope)
    return query


def get_rule_or_404(rule_id: int, user: User) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id)
    if rule is None or not owns_account(rule.account_identifier, user) \
            or (not user.is_admin and rule.account_identifier is None):
        _denied("alert rule", rule_id=rule_id)
    return rule


def _number(data: Mapping, name: str, errors: dict) -> float | None:
    raw = str(data.get(name) if data.get(name) is not None else "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = "must be a number"
        return None
    if not 0 < value < 1e12:
        errors[name] = "must be more than 0"
    return value


def save_rule(data: Mapping, user: User, rule_id: int | None = None) -> AlertRule:
    """Create or update a rule. `conditions`: a list of codes (or one comma-separated text)."""
    existing = get_rule_or_404(rule_id, user) if rule_id else None
    errors: dict[str, str] = {}
    name = _text(data, "name", NAME_CHARS)
    if not name:
        errors["name"] = "is required"
    account = existing.account_identifier if existing is not None \
        else _owner(data, user, errors)
    raw = data.get("conditions") or []
    if isinstance(raw, str):
        raw = raw.split(",")
    conditions = sorted({str(c).strip() for c in raw if str(c).strip()})
    if not conditions:
        errors["conditions"] = "choose at least one condition"
    elif set(conditions) - set(CONDITIONS):
        errors["conditions"] = "unknown condition"
    elif account is not None and set(conditions) & set(FLEET_CONDITIONS):
        errors["conditions"] = "Hummingbot unreachable concerns the whole fleet: only a " \
                               "rule for all accounts can route it"
    destination = None
    try:
        destination_id = int(str(data.get("destination_id") or ""))
    except ValueError:
        errors["destination_id"] = "choose a destination"
    else:
        destination = db.session.get(AlertDestination, destination_id)
        if destination is None or not owns_account(destination.account_identifier, user):
            errors["destination_id"] = "choose a destination"
        elif destination.account_identifier not in (None, account):
            errors["destination_id"] = "that destination belongs to another account"
    hold = _int(data, "hold_seconds", errors, 0, MAX_HOLD_SECONDS, 0)
    repeat = _int(data, "repeat_seconds", errors, 0, MAX_REPEAT_SECONDS, 0)
    if 0 < repeat < 60:
        errors["repeat_seconds"] = "0 (never) or at least 60"
    params: dict[str, Any] = {}
    amount = _number(data, "drawdown_amount", errors)
    if "drawdown" in conditions and amount is None and "drawdown_amount" not in errors:
        errors["drawdown_amount"] = "the drawdown condition needs an amount"
    if amount is not None:
        params["drawdown_amount"] = amount
        params["drawdown_window_minutes"] = _int(data, "drawdown_window_minutes", errors,
                                                 1, 1440, 60)
    if data.get("unreachable_minutes") not in (None, ""):
        params["unreachable_minutes"] = _int(data, "unreachable_minutes", errors, 1, 1440, 5)
    if errors:
        raise ValidationError(errors)
    rule = existing or AlertRule(created_by=user.username)
    rule.name, rule.account_identifier, rule.conditions = name, account, conditions
    rule.destination_id, rule.hold_seconds, rule.repeat_seconds = destination.id, hold, repeat
    rule.params = params
    rule.enabled = _flag(data, "enabled", existing.enabled if existing is not None else True)
    db.session.add(rule)
    db.session.commit()
    return rule


def delete_rule(rule_id: int, user: User) -> None:
    db.session.delete(get_rule_or_404(rule_id, user))
    db.session.commit()


# --------------------------------------------------------------------------------- mutes
def visible_mutes(user: User, *, current_only: bool = True) -> Select:
    query = select(AlertMute).order_by(AlertMute.until.desc(), AlertMute.id)
    if current_only:
        query = query.where(AlertMute.until > utcnow())
    scope = account_scope(user)
    if scope is not None:
        query = query.outerjoin(Bot, Bot.id == AlertMute.bot_id).where(
            or_(AlertMute.account_identifier == scope, Bot.account_identifier == scope))
    return query


def _parse_until(data: Mapping, errors: dict) -> datetime | None:
    """`until` (ISO date-time, UTC) or `minutes` from now."""
    now = utcnow()
    if data.get("minutes") not in (None, ""):
        minutes = _int(data, "minutes", errors, 1, int(MAX_MUTE.total_seconds() // 60), 60)
        return now + timedelta(minutes=minutes)
    raw = _text(data, "until", 40)
    try:
        until = datetime.fromisoformat(raw)
    except ValueError:
        errors["until"] = "a date and time (UTC)"
        return None
    if until.tzinfo is not None:
        try:
            until = until.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            errors["until"] = "a date and time (UTC)"
            return None
    if until <= now:
        errors["until"] = "must be in the future"
    elif until - now > MAX_MUTE:
        errors["until"] = "at most 30 days ahead"
    return until


def create_mute(data: Mapping, user: User) -> AlertMute:
    """A mute of one bot (`bot_id`), one account (`account_identifier`) or, for admins only,
    everything (neither)."""
    errors: dict[str, str] = {}
    bot_id = _text(data, "bot_id", 200) or None
    account = _text(data, "account_identifier", 64) or None
    if bot_id is not None:
        bot = db.session.get(Bot, bot_id)
        if bot is None or not owns_account(bot.account_identifier, user) \
                or (not user.is_admin and bot.is_archived):
            errors["bot_id"] = "no such bot"
        account = None
    elif account is not None:
        if not owns_account(account, user):
            errors["account_identifier"] = "no such account"
    elif not user.is_admin:
        account = user.account_identifier  # a client's mute without a subject: its account
    until = _parse_until(data, errors)
    reason = _text(data, "reason", 200) or None
    if reason is not None and len(reason) > 200:
        errors["reason"] = "at most 200 characters"
    if errors:
        raise ValidationError(errors)
    mute = AlertMute(bot_id=bot_id, account_identifier=account, until=until, reason=reason,
                     created_by=user.username)
    db.session.add(mute)
    db.session.commit()
    return mute


def delete_mute(mute_id: int, user: User) -> None:
    mute = db.session.scalars(visible_mutes(user, current_only=False)
                              .where(AlertMute.id == mute_id)).first()
    if mute is None or (not user.is_admin and mute.account_identifier is None
                        and mute.bot_id is None):
        _denied("alert mute", mute_id=mute_id)
    db.session.delete(mute)
    db.session.commit()


# ---------------------------------------------------------------------- deliveries, alerts
def visible_deliveries(user: User, *, status: str | None = None, event: str | None = None,
                       destination_id: int | None = None, alert_id: int | None = None,
                       bot_id: str | None = None) -> Select:
    """The delivery log, newest first, with filters; a client's: its own destinations'."""
    query = select(AlertDelivery).join(
        AlertDestination, AlertDestination.id == AlertDelivery.destination_id
    ).order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc())
    scope = account_scope(user)
    if scope is not None:
        query = query.where(AlertDestination.account_identifier == scope)
    if status:
        query = query.where(AlertDelivery.status == status)
    if event:
        query = query.where(AlertDelivery.event == event)
    if destination_id is not None:
        query = query.where(AlertDelivery.destination_id == destination_id)
    if alert_id is not None:
        query = query.where(AlertDelivery.alert_id == alert_id)
    if bot_id:
        query = query.join(Alert, Alert.id == AlertDelivery.alert_id).where(
            Alert.bot_id == bot_id)
    return query


def list_deliveries(user: User, *, limit: int = 50, offset: int = 0, **filters
                    ) -> list[AlertDelivery]:
    return list(db.session.scalars(visible_deliveries(user, **filters)
                                   .limit(min(limit, 500)).offset(max(offset, 0))))


def retry_delivery(delivery_id: int, user: User) -> AlertDelivery:
    """A dead delivery goes back to pending with a fresh set of attempts (same key)."""
    delivery = db.session.scalars(visible_deliveries(user).where(AlertDelivery.id == delivery_id)
                                  .with_for_update(of=AlertDelivery)
                                  .execution_options(populate_existing=True)).first()
    if delivery is None:
        _denied("alert delivery", delivery_id=delivery_id)
    if delivery.status != "dead":
        raise ValidationError({"status": "only a dead delivery can be retried"})
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.locked_until = utcnow(), None
    db.session.commit()
    from .delivery import wake

    wake(current_app)
    return delivery


def visible_alerts(user: User, *, open_only: bool = True) -> Select:
    """Alerts `user` may see: an admin every one; a client its account's live bots'."""
    query = select(Alert).order_by(Alert.since.desc(), Alert.id.desc())
    if open_only:
        query = query.where(Alert.state != "resolved")
    scope = account_scope(user)
    if scope is not None:
        query = query.join(Bot, Bot.id == Alert.bot_id).where(
            Alert.account_identifier == scope, Bot.account_identifier == scope,
            Bot.archived_at.is_(None))
    return query


def open_alerts_for_bot(bot_id: str, user: User) -> list[Alert]:
    return list(db.session.scalars(visible_alerts(user).where(Alert.bot_id == bot_id)))


def open_alerts_for_account(account: str, user: User) -> list[Alert]:
    if not owns_account(account, user):
        _denied("account", account=account[:64])
    return list(db.session.scalars(visible_alerts(user)
                                   .where(Alert.account_identifier == account)))


# An admin's open_alert_count as a scalar subquery, for pages that read it along with their
# other small figures in one statement (rows_cache.list_figures, history's page states).
ADMIN_FIRING_COUNT = "(SELECT count(*) FROM alerts WHERE state = 'firing')"


def open_alert_count(user: User) -> int:
    """For the header's bell: firing alerts this user may see."""
    from sqlalchemy import func

    query = visible_alerts(user).where(Alert.state == "firing").order_by(None)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
