"""Configuration versions: a definition's earlier versions, readable diffs, and restore.

Versions are written by registry.apply_edit (the one edit path), in the edit's transaction.
Here they are read, compared and restored; a restore is an ordinary edit (the version check
makes a stale one a conflict) recorded as `version_restored`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_login import current_user
from sqlalchemy import select

from .disclosure import AUTOMATIC_ACTORS, OPERATOR, viewer_redaction
from .models import Bot, BotVersion, User, db
from .registry import EDITABLE_FIELDS, update_bot

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Change:
    """One difference: `path` like config.levels[1].spread; kind added, removed or changed."""

    path: str
    kind: str
    before: Any = None
    after: Any = None


def _key_path(prefix: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every leaf that differs between two JSON values, with its nested path."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = _key_path(path, str(key))
            if key not in after:
                changes.append(Change(sub, "removed", before=before[key]))
            elif key not in before:
                changes.append(Change(sub, "added", after=after[key]))
            else:
                changes.extend(diff(before[key], after[key], sub))
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            sub = f"{path}[{index}]"
            if index >= len(after):
                changes.append(Change(sub, "removed", before=before[index]))
            elif index >= len(before):
                changes.append(Change(sub, "added", after=after[index]))
            else:
                changes.extend(diff(before[index], after[index], sub))
        return changes
    # 1 and 1.0 are the same number in JSON, but True is not 1.
    if before == after and isinstance(before, bool) == isinstance(after, bool):
        return []
    return [Change(path, "changed", before=before, after=after)]


def event_changes(changes: dict[str, list[Any]]) -> list[Change]:
    """A history event's {field: [before, after]} as leaf changes (config expanded)."""
    out: list[Change] = []
    for field, pair in changes.items():
        if isinstance(pair, list | tuple) and len(pair) == 2:
            out.extend(diff(pair[0], pair[1], field))
    return out


def definition(source: Bot | BotVersion) -> dict[str, Any]:
    return {field: getattr(source, field) for field in EDITABLE_FIELDS}


@dataclass(frozen=True)
class VersionView:
    number: int
    fields: dict[str, Any]
    current: bool
    replaced_at: datetime | None
    replaced_by: str | None
    changes: list[Change]  # from this version to the next one


def shown_actor(actor: str | None, user: User | None = None) -> str | None:
    """Operators' logins are for operators: clients see "operator" (disclosure's rule)."""
    user = user or current_user
    if actor is None or user.is_admin or actor in AUTOMATIC_ACTORS:
        return actor
    return OPERATOR


def stored_versions(bot: Bot) -> list[BotVersion]:
    return list(db.session.scalars(
        select(BotVersion).where(BotVersion.bot_id == bot.id).order_by(BotVersion.version)))


def shown_definitions(bot: Bot, sources: list[Bot | BotVersion],
                      user: User | None = None) -> list[dict[str, Any]]:
    """Definitions as this user may read them: a client never sees the accounts the bot
    belonged to before (disclosure's rule; one query, clients only)."""
    fields = [definition(source) for source in sources]
    redaction = viewer_redaction(user or current_user, [bot])
    return fields if redaction is None else [redaction.data(bot, f) for f in fields]


def versions(bot: Bot, user: User | None = None) -> list[VersionView]:
    """Every version, newest (the current definition) first, each with what its successor
    changed."""
    stored = stored_versions(bot)
    fields = shown_definitions(bot, [*stored, bot], user)
    views = [VersionView(v.version, fields[i], False, v.replaced_at,
                         shown_actor(v.replaced_by, user), diff(fields[i], fields[i + 1]))
             for i, v in enumerate(stored)]
    views.append(VersionView(bot.version, fields[-1], True, None, None, []))
    return views[::-1]


def get_version(bot: Bot, number: int) -> BotVersion | None:
    return db.session.scalars(select(BotVersion).where(
        BotVersion.bot_id == bot.id, BotVersion.version == number)).first()


def restore_version(bot: Bot, stored: BotVersion, actor: str, *, expected_version: Any) -> Bot:
    """Make `stored` the definition again, as a new edit. Raises ConflictError when the bot
    changed since `expected_version` was read, ValidationError when the old values no longer
    fit (a name taken since, say)."""
    data = definition(stored)
    data["config"] = json.dumps(data["config"])  # the edit path validates form input
    return update_bot(bot, data, actor, expected_version=expected_version,
                      action="version_restored", details={"restored_from": stored.version})


def to_json(view: VersionView) -> dict[str, Any]:
    from .serializers import iso

    return {
        "version": view.number, "current": view.current, **view.fields,
        "replaced_at": iso(view.replaced_at), "replaced_by": view.replaced_by,
        "changes_to_next": [
            {"path": c.path, "kind": c.kind, "before": c.before, "after": c.after}
            for c in view.changes],
    }
