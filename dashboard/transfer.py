"""Export every definition as JSON, and import our export or the old in-memory `bot_metadata`.

Import is two steps, so a page can show a preview: `plan_import` reads and checks the whole
file and decides, per entry, create / update / skip and why, writing nothing; `apply_import`
writes that plan in one transaction. A malformed file raises `ImportFileError` naming the bad
entry, and nothing changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from .models import BOT_STATUSES, Bot, db
from .registry import EDITABLE_FIELDS, apply_edit, record_event, utcnow
from .serializers import bot_to_dict, iso
from .servers import DEFAULT_SERVER, default_server_id, get_server, server_names
from .validation import (
    MAX_CONFIG_DEPTH,
    BotFields,
    ValidationError,
    instance_name_problem,
    validate_bot,
)

EXPORT_FORMAT = "bot-management/1"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; `problems` names every bad entry and field."""

    def __init__(self, message: str, problems: list[str] | None = None, summary: str = ""):
        super().__init__(message)
        self.problems = problems or []
        self.summary = summary or message


def _bad_entries(problems: list[str]) -> ImportFileError:
    count = len(problems)
    summary = f"{count} entr{'y is' if count == 1 else 'ies are'} not valid. Nothing was imported."
    return ImportFileError(" ".join([summary, *problems]), problems, summary)


@dataclass
class PlannedEntry:
    key: str
    action: str  # "create", "update" or "skip"
    reason: str
    fields: BotFields
    status: str = "stopped"
    instance_name: str | None = None
    archived_at: datetime | None = None
    changes: dict[str, list[Any]] = field(default_factory=dict)
    server: str = DEFAULT_SERVER  # the Hummingbot server it is on (absent in a file: default)


@dataclass
class ImportPlan:
    source_format: str
    entries: list[PlannedEntry]

    def count(self, action: str) -> int:
        return sum(1 for entry in self.entries if entry.action == action)

    def summary(self) -> str:
        return (f"{self.count('create')} created, {self.count('update')} updated, "
                f"{self.count('skip')} skipped")


def export_bots() -> dict[str, Any]:
    """Every definition with the name of its server (never the server's URL or credentials:
    a file moves between installs, where the same name may point elsewhere)."""
    bots = db.session.scalars(select(Bot).order_by(Bot.id))
    names = server_names()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": iso(utcnow()),
        "bots": [{**bot_to_dict(bot), "server": names.get(bot.server_id, DEFAULT_SERVER)}
                 for bot in bots],
    }


def _normalise_entries(document: Any, problems: list[str],
                       ) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """Both shapes become (key, {our column names}) pairs; an entry that is not an object is
    added to `problems` and left out."""
    if isinstance(document, dict) and isinstance(document.get("bots"), list):
        entries = []
        for index, item in enumerate(document["bots"]):
            if not isinstance(item, dict):
                problems.append(f"Entry #{index + 1} in 'bots' is not an object.")
                continue
            entries.append((str(item.get("id") or f"#{index + 1}"), item))
        return "export", entries
    if isinstance(document, dict) and document and "bots" not in document:
        entries = []
        for key, item in document.items():
            if not isinstance(item, dict):
                problems.append(f"Entry {key!r} is not an object.")
                continue
            entries.append((str(key), {
                "id": item.get("id", key),
                "name": item.get("name", key),
                "account_identifier": item.get("account", item.get("account_identifier")),
                "strategy": item.get("strategy"),
                "connector": item.get("connector"),
                "pair": item.get("pair", item.get("trading_pair")),
                "config": item.get("config", {}),
                "status": item.get("status"),
            }))
        return "bot_metadata", entries
    raise ImportFileError(
        "Not a bot file: expected our export ({\"bots\": [...]}) or the old bot_metadata "
        "object keyed by bot name."
    )


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.removesuffix("Z"))
    except ValueError:
        return None


def plan_import(text: str | bytes) -> ImportPlan:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"The file is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the parser recurses per level; no bot file is that deep
        raise ImportFileError(f"The file is nested too deeply to be a bot file (a "
                              f"configuration may be {MAX_CONFIG_DEPTH} levels deep). "
                              "Nothing was imported.") from exc
    problems: list[str] = []  # every bad entry is reported at once, not the first only
    source_format, raw_entries = _normalise_entries(document, problems)
    max_bytes = current_app.config["MAX_CONFIG_BYTES"]

    entries: list[PlannedEntry] = []
    seen_ids: set[str] = set()
    known_servers = set(server_names().values()) | {DEFAULT_SERVER}
    for key, raw in raw_entries:
        try:
            fields = validate_bot(raw, max_config_bytes=max_bytes)
        except ValidationError as exc:
            problems.append(f"Entry {key!r} is not valid: {exc}")
            continue
        instance_name = raw.get("instance_name")
        if instance_name not in (None, "") and (problem := instance_name_problem(instance_name)):
            problems.append(f"Entry {key!r} is not valid: instance_name: {problem}")
            continue
        if fields.id in seen_ids:
            problems.append(f"Entry {key!r} repeats bot id {fields.id!r}.")
            continue
        server = raw.get("server") or DEFAULT_SERVER
        if not isinstance(server, str) or server not in known_servers:  # a list: unhashable
            problems.append(f"Entry {key!r} is on Hummingbot server {str(server)[:64]!r}, which "
                            "this dashboard does not know: add it first (flask servers add).")
            continue
        seen_ids.add(fields.id)
        status = raw.get("status") if raw.get("status") in BOT_STATUSES else "stopped"
        entries.append(PlannedEntry(
            key=key, action="create", reason="new bot", fields=fields, status=status,
            instance_name=instance_name or None,
            archived_at=_parse_time(raw.get("archived_at")) if status == "archived" else None,
            server=server,
        ))
    if problems:
        raise _bad_entries(problems)
    _decide(entries)
    return ImportPlan(source_format=source_format, entries=entries)


def not_running(plan: ImportPlan, live_names: set[str]) -> list[PlannedEntry]:
    """New entries written as `running` that Hummingbot does not run (they would be Missing
    at once), matched the way the status merge matches a definition."""
    def names(entry: PlannedEntry) -> list[str]:
        if entry.instance_name:
            return [entry.instance_name]
        return [entry.fields.name, f"hummingbot-{entry.fields.name}"]

    return [entry for entry in plan.entries
            if entry.status == "running" and entry.action == "create"
            and not any(name in live_names for name in names(entry))]


def _decide(entries: list[PlannedEntry]) -> None:
    """Compare each entry with what is stored: create, update or skip, with the reason."""
    ids = [entry.fields.id for entry in entries]
    existing = {bot.id: bot for bot in db.session.scalars(select(Bot).where(Bot.id.in_(ids)))}
    names = {entry.fields.name.lower() for entry in entries}
    owners_of_names = {
        name.lower(): bot_id
        for name, bot_id in db.session.execute(
            select(Bot.name, Bot.id).where(
                func.lower(Bot.name).in_(names), Bot.archived_at.is_(None)
            )
        )
    }
    for entry in entries:
        current = existing.get(entry.fields.id)
        owner = owners_of_names.get(entry.fields.name.lower())
        if owner is not None and owner != entry.fields.id:
            entry.action, entry.reason = "skip", f"name already used by bot {owner}"
        elif current is None:
            continue
        else:
            entry.changes = {
                name: [getattr(current, name), getattr(entry.fields, name)]
                for name in EDITABLE_FIELDS
                if getattr(current, name) != getattr(entry.fields, name)
            }
            if entry.changes:
                entry.action = "update"
                entry.reason = "changed: " + ", ".join(sorted(entry.changes))
            else:
                entry.action, entry.reason = "skip", "already up to date"


def apply_import(plan: ImportPlan, actor: str, source: str) -> ImportPlan:
    """Write the plan in one transaction; re-checked against the table so it stays idempotent."""
    # Lock every existing row first, in id order: a transaction that changes several bots
    # must hold their locks before the first change takes the bot_changes counter's lock, or
    # it could deadlock with a single edit waiting on that counter.
    ids = sorted(entry.fields.id for entry in plan.entries)
    db.session.scalars(select(Bot.id).where(Bot.id.in_(ids)).order_by(Bot.id).with_for_update())
    _decide(plan.entries)
    for entry in plan.entries:
        details = {"source": source, "format": plan.source_format}
        if entry.action == "create":
            server_id = _server_id(entry.server)
            bot = Bot(**entry.fields.as_dict(), status=entry.status, server_id=server_id,
                      archived_at=entry.archived_at,
                      instance_name=_free_instance_name(entry, server_id))
            db.session.add(bot)
            db.session.flush()
            record_event(bot, "imported", actor, to_status=entry.status,
                         details={**details, "after": entry.fields.as_dict()})
        elif entry.action == "update":
            bot = db.session.get(Bot, entry.fields.id)
            apply_edit(bot, entry.changes, actor, "import_updated", details)
    db.session.commit()
    return plan


def _server_id(name: str) -> int:
    if name == DEFAULT_SERVER:
        return default_server_id()
    return get_server(name).id


def _free_instance_name(entry: PlannedEntry, server_id: int) -> str | None:
    if not entry.instance_name:
        return None
    taken = db.session.scalar(select(Bot.id).where(Bot.instance_name == entry.instance_name,
                                                   Bot.server_id == server_id))
    return None if taken else entry.instance_name
