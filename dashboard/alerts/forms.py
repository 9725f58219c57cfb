"""The alerts pages' forms, between the browser and the core's service (service.py holds every
rule: what is valid, who may route what, the outbound policy): what a form submits, turned
into what the service reads; and what a form shows, from a stored row or from the refused
input. Secrets are never among the values shown: their fields are always empty (an empty field
keeps the stored secret), with `sealed.hint()` beside them.
"""

from __future__ import annotations

from datetime import timedelta

from ..registry import utcnow
from .models import AlertDestination, AlertRule

# Hold and repeat are picked from a list (seconds as values, read as words): nobody types 3600.
HOLD_CHOICES = (0, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
REPEAT_CHOICES = (0, 300, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400, 604800)
DESTINATION_KEYS = ("name", "kind", "account_identifier", "chat_id", "host", "port", "from",
                    "to", "username")
RULE_KEYS = ("name", "destination_id", "account_identifier", "hold_seconds", "repeat_seconds",
             "drawdown_amount", "drawdown_window_minutes", "unreachable_minutes")
MUTE_KEYS = ("bot_id", "account_identifier", "until", "reason")


def duration(seconds: int, zero: str) -> str:
    if not seconds:
        return zero
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def choices(options: tuple[int, ...], current: str | int | None, zero: str) -> list[tuple]:
    """(value, label) for a select, with a stored value that is not in the list kept."""
    values = list(options)
    if str(current or "").isdigit() and int(current) not in values:
        values = sorted([*values, int(current)])
    return [(str(v), duration(v, zero)) for v in values]


def _checkbox(form, name: str) -> str:
    # An unticked box sends nothing, which the service would read as its default.
    return "1" if form.get(name) == "1" else "0"


def _text(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:1000] if isinstance(value, str) else ""


# ------------------------------------------------------------------------------ destinations
def destination_data(form) -> dict:
    data = {key: _text(form, key) for key in DESTINATION_KEYS}
    data["target"] = form.get("target", "")
    data["signing_secret"] = form.get("signing_secret", "")
    data["enabled"] = _checkbox(form, "enabled")
    data["starttls"] = _checkbox(form, "starttls")
    return data


def destination_values(row: AlertDestination | None) -> dict:
    """What a destination form starts from: the non-secret settings only."""
    if row is None:
        return {"kind": "webhook", "port": "587", "starttls": True, "enabled": True}
    settings = row.settings or {}
    return {"name": row.name, "kind": row.kind,
            "account_identifier": row.account_identifier or "",
            "chat_id": settings.get("chat_id", ""), "host": settings.get("host", ""),
            "port": str(settings.get("port", 587)), "from": settings.get("from", ""),
            "to": settings.get("to", ""), "starttls": settings.get("starttls", True),
            "username": settings.get("username") or "", "enabled": row.enabled}


def submitted_destination_values(form) -> dict:
    """The refused input, to show again (secrets left out on purpose)."""
    values = {key: _text(form, key) for key in DESTINATION_KEYS}
    values["starttls"] = form.get("starttls") == "1"
    values["enabled"] = form.get("enabled") == "1"
    return values


# ------------------------------------------------------------------------------ rules
def rule_data(form) -> dict:
    data = {key: _text(form, key) for key in RULE_KEYS}
    data["conditions"] = [c for c in form.getlist("conditions") if isinstance(c, str)]
    data["enabled"] = _checkbox(form, "enabled")
    if "drawdown" not in data["conditions"]:
        data.pop("drawdown_amount")  # a value left in the box is not a drawdown rule
    if "hummingbot_unreachable" not in data["conditions"]:
        data.pop("unreachable_minutes")
    return data


def rule_values(row: AlertRule | None, user) -> dict:
    if row is None:
        return {"conditions": ["missing", "crashed", "deploy_failed"], "hold_seconds": "300",
                "repeat_seconds": "0", "drawdown_window_minutes": "60",
                "unreachable_minutes": "5", "enabled": True,
                "account_identifier": "" if user.is_admin else user.account_identifier}
    params = row.params or {}
    return {"name": row.name, "conditions": list(row.conditions or []),
            "destination_id": str(row.destination_id),
            "account_identifier": row.account_identifier or "",
            "hold_seconds": str(row.hold_seconds), "repeat_seconds": str(row.repeat_seconds),
            "drawdown_amount": str(params.get("drawdown_amount", "")),
            "drawdown_window_minutes": str(params.get("drawdown_window_minutes", 60)),
            "unreachable_minutes": str(params.get("unreachable_minutes", 5)),
            "enabled": row.enabled}


def submitted_rule_values(form) -> dict:
    values = {key: _text(form, key) for key in RULE_KEYS}
    values["conditions"] = form.getlist("conditions")
    values["enabled"] = form.get("enabled") == "1"
    return values


# ------------------------------------------------------------------------------ mutes
def mute_data(form) -> dict:
    return {key: _text(form, key) for key in MUTE_KEYS}


def mute_values(args) -> dict:
    """A new mute's form, prefilled from a link (a bot page's 'Mute…'): for the next hour."""
    until = (utcnow() + timedelta(hours=1)).replace(second=0, microsecond=0)
    return {"bot_id": (args.get("bot_id") or "")[:64],
            "account_identifier": (args.get("account") or "")[:64],
            "until": until.isoformat(timespec="minutes"), "reason": ""}
