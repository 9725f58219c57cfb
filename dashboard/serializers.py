"""Bots as JSON: the API's items and the export file share this shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .disclosure import ClientRedaction
from .models import Bot
from .registry import quote_currency
from .status import BotRow

STORED_COLUMNS = (
    "id", "name", "account_identifier", "strategy", "connector", "pair", "config", "status",
    "created_at", "updated_at", "instance_name", "version", "archived_at", "last_error",
    "last_seen_status", "last_seen_at",
)


def iso(value: datetime | None) -> str | None:
    """Naive timestamps in the database are UTC; say so in the string."""
    return value.isoformat() + "Z" if value is not None else None


def bot_to_dict(bot: Bot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in STORED_COLUMNS:
        value = getattr(bot, column)
        out[column] = iso(value) if isinstance(value, datetime) else value
    return out


def row_to_dict(row: BotRow, redaction: ClientRedaction | None = None) -> dict[str, Any]:
    """A stored bot plus what Hummingbot says: `display_status` is the badge, `live` its report.
    `redaction`: what a client may not read (see disclosure.py); None for admins."""
    data = {
        **bot_to_dict(row.bot),
        "display_status": row.display_status,
        "status_is_stale": row.stale,
        "needs_attention": row.needs_attention,
        "error_log": row.error_log,
        "pnl_quote": row.bot.pnl_quote,
        "volume_quote": row.bot.volume_quote,
        "quote_currency": quote_currency(row.bot.pair),
        "live": row.live.raw if row.live is not None else None,
    }
    return redaction.bot_fields(row.bot, data) if redaction is not None else data
