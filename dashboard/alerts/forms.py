"""The alerts pages' forms: read a submitted form into checked values, or a dict of field ->
message for the page to show beside the user's input; then write.

Secrets are write-only: an edit form shows `sealed.hint()` and an empty field, and an empty
field keeps what is stored. Who may route what is decided here, once, for every form:
a client's destinations, rules and mutes are its own account's, and a destination owned by a
client account only ever hears about that account's bots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from ..access import visible_bots
from ..models import Bot, db
from ..registry import actor_name, utcnow
from ..validation import HUMMINGBOT_NAME, ValidationError
from .models import AlertDelivery, AlertDestination, AlertMute, AlertRule
from .pages import CONDITION_LABELS, KIND_LABELS

MAX_NAME = 80
MAX_REASON = 200
MAX_SECRET = 2000
MAX_HOLD_MINUTES = 24 * 60
MAX_REPEAT_MINUTES = 7 * 24 * 60
MAX_MUTE = timedelta(days=366)
URL_KINDS = ("webhook", "slack", "discord")
TELEGRAM_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$")
TELEGRAM_CHAT = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{5,64})$")
EMAIL = re.compile(r"^[^@\s,;<>]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
SIGNING = "signing_secret"  # the form field's name (not a secret)
# Conditions about the whole Hummingbot deployment, not one account's bots: the operator's.
OPERATOR_CONDITIONS = frozenset({"hummingbot_unreachable"})


def _text(form, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value.strip()[:limit + 1] if isinstance(value, str) else ""


def _whole(raw: str, errors: dict, name: str, lowest: int, highest: int, default: int) -> int:
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not lowest <= int(raw) <= highest:
        errors[name] = f"must be a whole number from {lowest} to {highest}."
        return default
    return int(raw)


def _owner(form, user, errors: dict) -> str | None:
    """A client's rows are its own account's, whatever the form says; an admin picks one, or
    none (the operator's)."""
    if not user.is_admin:
        return user.account_identifier
    owner = _text(form, "account_identifier", 64)
    if not owner:
        return None
    if len(owner) > 64 or not HUMMINGBOT_NAME.match(owner):
        errors["account_identifier"] = "must be an account name (letters, digits, _ and -)."
    return owner


# ------------------------------------------------------------------------------ destinations
@dataclass
class DestinationInput:
    name: str
    kind: str
    account_identifier: str | None
    target: str  # empty: keep the stored one
    signing_secret: str  # likewise
    settings: dict = field(default_factory=dict)
    enabled: bool = True


def check_url(url: str) -> str | None:
    """The outbound policy, at save time (the core checks again at send time: DNS changes)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL."
    try:
        from . import policy
    except ImportError:  # the core's policy module is not on this branch yet
        return None
    try:
        policy.check_url(url)
    except ValueError as exc:
        return f"is refused: {exc}"
    return None


def parse_destination(form, user, existing: AlertDestination | None) -> DestinationInput:
    errors: dict[str, str] = {}
    name = _text(form, "name", MAX_NAME)
    if not name:
        errors["name"] = "is required."
    elif len(name) > MAX_NAME:
        errors["name"] = f"must be at most {MAX_NAME} characters."
    kind = existing.kind if existing else _text(form, "kind", 20)
    if kind not in KIND_LABELS:
        errors["kind"] = "must be one of the listed kinds."
    owner = existing.account_identifier if existing else _owner(form, user, errors)
    target = form.get("target", "") if isinstance(form.get("target", ""), str) else ""
    target = target.strip()
    signing = (form.get("signing_secret") or "").strip()
    settings: dict = {}
    if len(target) > MAX_SECRET:
        errors["target"] = f"must be at most {MAX_SECRET} characters."
    elif kind in URL_KINDS:
        if not target and existing is None:
            errors["target"] = "is required."
        elif target:
            problem = check_url(target)
            if problem:
                errors["target"] = problem
        short = "must be at least 16 characters (your receiver checks the signature with it)."
        if ((kind == "webhook" and existing is None) or signing) and len(signing) < 16:
            errors[SIGNING] = short
    elif kind == "telegram":
        if not target and existing is None:
            errors["target"] = "is required."
        elif target and not TELEGRAM_TOKEN.match(target):
            errors["target"] = "must look like a bot token from BotFather (123456:ABC...)."
        chat = _text(form, "chat_id", 70)
        if not TELEGRAM_CHAT.match(chat):
            errors["chat_id"] = "must be a numeric chat id or an @channel name."
        settings = {"chat_id": chat}
    elif kind == "email":
        host = _text(form, "host", 253)
        if not HOST.match(host):
            errors["host"] = "must be a host name."
        port = _whole(_text(form, "port", 6), errors, "port", 1, 65535, 587)
        sender = _text(form, "from", 320)
        if not EMAIL.match(sender):
            errors["from"] = "must be an email address."
        recipients = [part.strip() for part in _text(form, "to", 1000).split(",") if part.strip()]
        if not recipients or len(recipients) > 20 or not all(EMAIL.match(r) for r in recipients):
            errors["to"] = "must be one to twenty email addresses, separated by commas."
        username = _text(form, "username", 200)
        if len(username) > 200:
            errors["username"] = "must be at most 200 characters."
        settings = {"host": host, "port": port, "from": sender, "to": recipients,
                    "starttls": form.get("starttls") == "1", "username": username}
    if errors:
        raise ValidationError(errors)
    return DestinationInput(name=name, kind=kind, account_identifier=owner, target=target,
                            signing_secret=signing if kind == "webhook" else "",
                            settings=settings, enabled=form.get("enabled") == "1")


def save_destination(values: DestinationInput, user,
                     existing: AlertDestination | None = None) -> AlertDestination:
    now = utcnow()
    row = existing or AlertDestination(kind=values.kind, created_by=actor_name(user),
                                       account_identifier=values.account_identifier,
                                       created_at=now, settings={})
    row.name = values.name
    row.settings = values.settings
    row.enabled = values.enabled
    row.updated_at = now
    if values.target:  # an empty field keeps the stored secret
        row.target = values.target
    if values.signing_secret:
        row.signing_secret = values.signing_secret
    if existing is None:
        db.session.add(row)
    db.session.commit()
    return row


def form_values_of_destination(row: AlertDestination | None) -> dict:
    """What an edit form starts from: every non-secret setting, never the secrets."""
    if row is None:
        return {"kind": "webhook", "port": "587", "starttls": True, "enabled": True}
    settings = row.settings or {}
    return {"name": row.name, "kind": row.kind, "account_identifier": row.account_identifier
            or "", "chat_id": settings.get("chat_id", ""), "host": settings.get("host", ""),
            "port": str(settings.get("port", "587")), "from": settings.get("from", ""),
            "to": ", ".join(settings.get("to", [])), "starttls": settings.get("starttls", True),
            "username": settings.get("username", ""), "enabled": row.enabled}


def submitted_destination_values(form) -> dict:
    """The user's input, to re-render a refused form with (secrets left out on purpose)."""
    keys = ("name", "kind", "account_identifier", "chat_id", "host", "port", "from", "to",
            "username")
    values = {key: _text(form, key, 1000) for key in keys}
    values["starttls"] = form.get("starttls") == "1"
    values["enabled"] = form.get("enabled") == "1"
    return values


# ------------------------------------------------------------------------------ rules
def parse_rule(form, user, destinations: list[AlertDestination]) -> dict:
    errors: dict[str, str] = {}
    name = _text(form, "name", MAX_NAME)
    if not name:
        errors["name"] = "is required."
    elif len(name) > MAX_NAME:
        errors["name"] = f"must be at most {MAX_NAME} characters."
    allowed = set(CONDITION_LABELS) - (set() if user.is_admin else OPERATOR_CONDITIONS)
    conditions = [c for c in form.getlist("conditions") if isinstance(c, str)]
    if not conditions:
        errors["conditions"] = "must include at least one condition."
    elif not set(conditions) <= allowed:
        errors["conditions"] = "must be chosen from the listed conditions."
    conditions = [c for c in CONDITION_LABELS if c in conditions]  # a stable order
    raw_destination = _text(form, "destination_id", 12)
    destination = next((d for d in destinations if str(d.id) == raw_destination), None)
    if destination is None:
        errors["destination_id"] = "must be one of your destinations."
    account = _owner(form, user, errors)
    if destination is not None and destination.account_identifier is not None \
            and account != destination.account_identifier and "account_identifier" not in errors:
        # A client's destination hears about that client's bots only.
        errors["account_identifier"] = (
            f"must be {destination.account_identifier}: the destination belongs to that account.")
    hold = _whole(_text(form, "hold_minutes", 6), errors, "hold_minutes", 0, MAX_HOLD_MINUTES, 5)
    repeat = _whole(_text(form, "repeat_minutes", 6), errors, "repeat_minutes", 0,
                    MAX_REPEAT_MINUTES, 0)
    params: dict = {}
    if "drawdown" in conditions:
        raw = _text(form, "drawdown_amount", 20)
        try:
            amount = float(raw)
        except ValueError:
            amount = -1.0
        if not 0 < amount < 1e12:
            errors["drawdown_amount"] = "must be a positive amount in the pair's quote currency."
        params["drawdown_amount"] = amount
        params["drawdown_window_minutes"] = _whole(
            _text(form, "drawdown_window_minutes", 6), errors, "drawdown_window_minutes", 5,
            MAX_REPEAT_MINUTES, 60)
    if "hummingbot_unreachable" in conditions:
        params["unreachable_minutes"] = _whole(
            _text(form, "unreachable_minutes", 6), errors, "unreachable_minutes", 1,
            MAX_HOLD_MINUTES, 5)
    if errors:
        raise ValidationError(errors)
    return {"name": name, "conditions": conditions, "destination_id": destination.id,
            "account_identifier": account, "hold_seconds": hold * 60,
            "repeat_seconds": repeat * 60, "params": params,
            "enabled": form.get("enabled") == "1"}


def save_rule(values: dict, user, existing: AlertRule | None = None) -> AlertRule:
    now = utcnow()
    row = existing or AlertRule(created_by=actor_name(user), created_at=now)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    if existing is None:
        db.session.add(row)
    db.session.commit()
    return row


def form_values_of_rule(row: AlertRule | None, user) -> dict:
    if row is None:
        return {"conditions": ["missing", "crashed", "deploy_failed"], "hold_minutes": "5",
                "repeat_minutes": "0", "drawdown_window_minutes": "60",
                "unreachable_minutes": "5", "enabled": True,
                "account_identifier": "" if user.is_admin else user.account_identifier}
    params = row.params or {}
    return {"name": row.name, "conditions": list(row.conditions or []),
            "destination_id": str(row.destination_id),
            "account_identifier": row.account_identifier or "",
            "hold_minutes": str(row.hold_seconds // 60),
            "repeat_minutes": str(row.repeat_seconds // 60),
            "drawdown_amount": str(params.get("drawdown_amount", "")),
            "drawdown_window_minutes": str(params.get("drawdown_window_minutes", 60)),
            "unreachable_minutes": str(params.get("unreachable_minutes", 5)),
            "enabled": row.enabled}


def submitted_rule_values(form) -> dict:
    keys = ("name", "destination_id", "account_identifier", "hold_minutes", "repeat_minutes",
            "drawdown_amount", "drawdown_window_minutes", "unreachable_minutes")
    values = {key: _text(form, key, 1000) for key in keys}
    values["conditions"] = form.getlist("conditions")
    values["enabled"] = form.get("enabled") == "1"
    return values


# ------------------------------------------------------------------------------ mutes
def parse_mute(form, user) -> dict:
    errors: dict[str, str] = {}
    bot_id = _text(form, "bot_id", 64)
    account = _text(form, "account_identifier", 64)
    if bool(bot_id) == bool(account):
        errors["bot_id"] = "or an account: give exactly one of the two."
    elif bot_id:
        bot = db.session.scalars(visible_bots(user).where(Bot.id == bot_id)).first()
        if bot is None:
            errors["bot_id"] = "must be the id of one of your bots."
    elif not user.is_admin and account != user.account_identifier:
        errors["account_identifier"] = f"must be your account, {user.account_identifier}."
    elif len(account) > 64 or not HUMMINGBOT_NAME.match(account):
        errors["account_identifier"] = "must be an account name (letters, digits, _ and -)."
    until = parse_until(_text(form, "until", 40), errors)
    reason = _text(form, "reason", MAX_REASON)
    if len(reason) > MAX_REASON:
        errors["reason"] = f"must be at most {MAX_REASON} characters."
    if errors:
        raise ValidationError(errors)
    return {"bot_id": bot_id or None, "account_identifier": None if bot_id else account,
            "until": until, "reason": reason}


def parse_until(raw: str, errors: dict) -> datetime | None:
    """A `datetime-local` value, read as UTC; in the future, within a year."""
    try:
        until = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        until = None
    if until is None or until.tzinfo is not None:
        errors["until"] = "must be a date and time (UTC), such as 2026-12-01T08:00."
        return None
    now = utcnow()
    if until <= now:
        errors["until"] = "must be in the future."
    elif until - now > MAX_MUTE:
        errors["until"] = "must be within a year."
    return until


def save_mute(values: dict, user) -> AlertMute:
    row = AlertMute(created_by=actor_name(user), **values)
    db.session.add(row)
    db.session.commit()
    return row


def default_mute_values(args) -> dict:
    """A mute form prefilled from a link (a bot page's 'Mute…'): for the next hour."""
    until = (utcnow() + timedelta(hours=1)).replace(second=0, microsecond=0)
    return {"bot_id": (args.get("bot_id") or "")[:64],
            "account_identifier": (args.get("account") or "")[:64],
            "until": until.isoformat(timespec="minutes"), "reason": ""}


def own_destinations(user) -> list[AlertDestination]:
    from .pages import destinations

    return destinations(user)


def destination_in_use(row: AlertDestination) -> int:
    return db.session.scalar(select(db.func.count()).select_from(AlertRule)
                             .where(AlertRule.destination_id == row.id)) or 0


# ------------------------------------------------------------------------------ deliveries
def enqueue_test(row: AlertDestination, user) -> AlertDelivery:
    """A `test` delivery in the outbox: the workers send it like any other, so the log shows
    what a real alert would meet (policy, timeouts, retries)."""
    delivery = AlertDelivery(destination_id=row.id, event="test", payload={
        "event": "test", "title": "Test message from Bot Management",
        "text": f"Test message for destination {row.name}, sent by {actor_name(user)}."})
    db.session.add(delivery)
    db.session.commit()
    return delivery


def retry(row: AlertDelivery) -> None:
    """A dead delivery back in the queue, due now, with a fresh set of attempts."""
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.locked_until = None
    db.session.commit()
