"""Is this orphan the missing bot? The rule behind the recovery desk's Re-link.

A Missing definition (it should run; Hummingbot runs nothing under its instance name) and an
orphan (Hummingbot runs it; no definition claims it) are the same bot when the orphan's name
carries the definition's deploy request tag (`<name>-<tag>-YYYYmmdd-HHMMSS`: the deploy whose
answer was lost), or when its name stem is the definition's name and the account and strategy
Hummingbot recorded for it agree with the definition. Pure functions: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .models import Bot

TIMESTAMP = r"-\d{8}-\d{6}$"
LEGACY_PREFIX = "hummingbot-"
TAG = re.compile(r"-[0-9a-f]{6}$")  # the request tag the dashboard puts in a sent name


@dataclass(frozen=True)
class Known:
    """What Hummingbot recorded about an orphan (bot-runs); None where it is not known."""

    account: str | None = None
    strategy: str | None = None


def name_stem(instance_name: str) -> str:
    """The name an operator gave the bot: without Hummingbot's timestamp, the `hummingbot-`
    prefix of older servers, and our request tag."""
    name = re.sub(TIMESTAMP, "", instance_name)
    if name.startswith(LEGACY_PREFIX) and len(name) > len(LEGACY_PREFIX):
        name = name[len(LEGACY_PREFIX):]
    return TAG.sub("", name)


def same_bot(bot: Bot, live_name: str, known: Known | None = None) -> str | None:
    """Why `live_name` is this definition's bot, or None when it is not (or not surely)."""
    if bot.deploy_request_id:
        tag = bot.deploy_request_id[:6]
        if re.search(rf"-{re.escape(tag)}{TIMESTAMP}", live_name):
            return "same deploy request"
    if name_stem(live_name).lower() != bot.name.lower():
        return None
    known = known or Known()
    if known.account is not None and known.account != bot.account_identifier:
        return None
    if known.strategy is not None and known.strategy.removesuffix(".py") != bot.strategy:
        return None
    return "same name, account and strategy"


def pair_up(missing: Iterable[Bot], orphan_names: Iterable[str],
            known: Mapping[str, Known]) -> dict[str, tuple[str, str]]:
    """bot id -> (orphan name, reason), for pairs that match each other and nothing else:
    an ambiguous match is never offered."""
    orphan_names = list(orphan_names)
    found: dict[str, list[tuple[str, str]]] = {}
    for bot in missing:
        for name in orphan_names:
            reason = same_bot(bot, name, known.get(name))
            if reason:
                found.setdefault(bot.id, []).append((name, reason))
    claims: dict[str, int] = {}
    for matches in found.values():
        for name, _ in matches:
            claims[name] = claims.get(name, 0) + 1
    return {bot_id: matches[0] for bot_id, matches in found.items()
            if len(matches) == 1 and claims[matches[0][0]] == 1}
