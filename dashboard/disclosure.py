"""What a client may read of a bot's errors and history: the one place that redacts them.

Admins see everything as stored. A client sees its own bots, but not

- the Hummingbot API's address (our client's errors name it: "Hummingbot API at http://...");
- who among the admins acted: every person is "operator" (automatic actors keep their name);
- the accounts a bot belonged to before an admin moved it to theirs (another client's name).

Pages and the JSON API both go through `viewer_redaction`; nothing is changed in the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import or_, select

from .models import Bot, BotEvent, User, db

OPERATOR = "operator"
AUTOMATIC_ACTORS = frozenset({"reconcile", "system"})
ANOTHER_ACCOUNT = "another account"
HIDDEN_ADDRESS = "[address hidden]"
ACCOUNT_KEYS = frozenset({"account_identifier", "credentials_profile", "account_name"})
# A URL of any scheme, without the punctuation that may end a sentence after it.
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()]*[^\s'\"<>().,;:]", re.IGNORECASE)
API_AT = re.compile(r"Hummingbot API at " + URL.pattern, re.IGNORECASE)


@dataclass(frozen=True)
class ShownEvent:
    """A history event as a client sees it (same attributes as BotEvent)."""

    occurred_at: datetime
    action: str
    actor: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]


class ClientRedaction:
    """Redacts what one client sees of some bots; `previous` maps bot id to the accounts each
    belonged to before its current one."""

    def __init__(self, previous: dict[str, set[str]]):
        from .fleet import fleet

        self.previous = previous
        urls = {current_app.config.get("HUMMINGBOT_API_URL") or "", *fleet().base_urls()}
        # Every server's address in any spelling (a bare host name too), longest first.
        self.addresses = sorted(
            {a for url in urls for a in (url.rstrip("/"), urlsplit(url).hostname or "")
             if len(a) > 3}, key=len, reverse=True)

    def text(self, bot: Bot | None, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = URL.sub(HIDDEN_ADDRESS, API_AT.sub("Hummingbot API", value))
        for address in self.addresses:
            value = value.replace(address, HIDDEN_ADDRESS)
        for account in sorted(self.previous.get(getattr(bot, "id", None), ()), key=len,
                              reverse=True):
            value = re.sub(rf"(?<![A-Za-z0-9_-]){re.escape(account)}(?![A-Za-z0-9_-])",
                           ANOTHER_ACCOUNT, value)
        return value

    def data(self, bot: Bot, value: Any) -> Any:
        """Every string in a JSON-like value redacted (keys kept)."""
        if isinstance(value, dict):
            return {key: self.data(bot, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(bot, item) for item in value]
        return self.text(bot, value)

    def event(self, bot: Bot, event: BotEvent) -> ShownEvent:
        actor = event.actor if event.actor in AUTOMATIC_ACTORS else OPERATOR
        return ShownEvent(occurred_at=event.occurred_at, action=event.action, actor=actor,
                          from_status=event.from_status, to_status=event.to_status,
                          details=self.data(bot, event.details or {}))

    def bot_fields(self, bot: Bot, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "last_error": self.text(bot, data.get("last_error"))}


def _accounts_in(value: Any, key: str | None = None) -> Iterable[str]:
    """Account names anywhere in an event's details (`changes`, `after`, deploy bodies)."""
    if isinstance(value, dict):
        for child_key, child in value.items():
            yield from _accounts_in(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _accounts_in(child, key)
    elif isinstance(value, str) and key in ACCOUNT_KEYS:
        yield value


def previous_accounts(bots: list[Bot], events: Iterable[BotEvent] | None = None
                      ) -> dict[str, set[str]]:
    """Accounts each bot's history names besides its current one. `events`, when the caller
    has loaded them already; else one query for the events that can name an account."""
    if events is None:
        ids = [bot.id for bot in bots]
        events = db.session.scalars(select(BotEvent).where(
            BotEvent.bot_id.in_(ids),
            or_(BotEvent.details.has_key("changes"), BotEvent.details.has_key("after"),
                BotEvent.details.has_key("deployment_config")))) if ids else []
    current = {bot.id: bot.account_identifier for bot in bots}
    found: dict[str, set[str]] = {bot.id: set() for bot in bots}
    for event in events:
        if event.bot_id in found:
            found[event.bot_id].update(a for a in _accounts_in(event.details or {})
                                       if a != current[event.bot_id])
    return found


def viewer_redaction(user: User, bots: list[Bot],
                     events: Iterable[BotEvent] | None = None) -> ClientRedaction | None:
    """None for admins (they see everything); else the redaction for this client."""
    if user.is_admin:
        return None
    return ClientRedaction(previous_accounts(bots, events))


def client_alert_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An alert as a destination a client owns receives it: its detail (the bot's last error,
    say) redacted as on the client's pages. Needs an app context (reads the bot's history)."""
    if not isinstance(payload.get("detail"), str):
        return payload
    bot = db.session.get(Bot, payload["bot_id"]) if payload.get("bot_id") else None
    redaction = ClientRedaction(previous_accounts([bot]) if bot is not None else {})
    return {**payload, "detail": redaction.text(bot, payload["detail"])}
