"""Bulk actions: what a selection is, what would happen to each bot (the preview), and the
batch written with every item's intent before anything is sent (executor.py sends)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from ..models import BATCH_ACTIONS, Batch, BatchItem, Bot, BotEvent, db
from ..registry import TRANSITIONAL, BotFilters, filtered_bots, utcnow
from ..status import TRADING, display_status, match_live
from ..validation import ValidationError

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_IDS = 10_000
FILTER_KEYS = ("q", "account", "status", "archived")
# Actions that ask Hummingbot something; archive and restore only touch the definition.
REMOTE_ACTIONS = frozenset({"deploy", "start", "stop", "stop-archive"})
ASKS_ORDERS = frozenset({"stop", "stop-archive"})
TITLES = {"deploy": "Deploy", "start": "Start", "stop": "Stop",
          "stop-archive": "Stop and archive", "archive": "Archive", "restore": "Restore"}


@dataclass(frozen=True)
class Selection:
    """Ticked ids, or every bot matching a filter (across pages), and the action."""

    action: str
    ids: tuple[str, ...] = ()
    filters: BotFilters | None = None
    kill_switch: bool = False

    def as_json(self) -> dict[str, Any]:
        if self.filters is not None:
            shown = {key: value for key, value in self.form_fields() if key in FILTER_KEYS}
            return {"filter": shown, "kill_switch": self.kill_switch}
        return {"ids": list(self.ids)}

    def form_fields(self) -> list[tuple[str, str]]:
        """The selection as form fields, so the confirmation re-sends exactly it."""
        fields = [("action", self.action)]
        if self.filters is None:
            return fields + [("ids", bot_id) for bot_id in self.ids]
        f = self.filters
        fields.append(("all", "1"))
        for key, value in (("q", f.q), ("account", f.account), ("status", f.status),
                           ("archived", "1" if f.archived else "")):
            if value:
                fields.append((key, value))
        if self.kill_switch:
            fields.append(("kill", "1"))
        return fields


def parse_selection(args: Any) -> Selection:
    """From the list's form (a query string) or the confirmation (a form). `args` is a
    MultiDict. Raises ValidationError naming the problem."""
    action = args.get("action", "")
    if action not in BATCH_ACTIONS:
        raise ValidationError({"action": "choose Deploy, Start, Stop, Stop and archive, "
                                         "Archive or Restore."})
    if args.get("all") == "1":
        filters = BotFilters.from_args({key: args.get(key, "") for key in FILTER_KEYS})
        kill = args.get("kill") == "1"
        if kill and (action != "stop" or not filters.account):
            raise ValidationError({"kill": "the kill switch stops one account's bots."})
        return Selection(action, filters=filters, kill_switch=kill)
    ids = tuple(dict.fromkeys(args.getlist("ids")))  # ordered, no duplicates
    if not ids:
        raise ValidationError({"ids": "no bots selected: tick some rows, or choose every "
                                      "bot matching the filter."})
    if len(ids) > MAX_IDS or not all(ID_PATTERN.match(bot_id) for bot_id in ids):
        raise ValidationError({"ids": "the selection is not a list of bot ids."})
    return Selection(action, ids=ids)


def selected_bots(selection: Selection) -> list[Bot]:
    if selection.filters is not None:
        return list(db.session.scalars(filtered_bots(selection.filters)))
    # visible_bots (through filtered_bots) with archived included: restore needs them.
    query = filtered_bots(BotFilters(archived=True)).where(Bot.id.in_(selection.ids))
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class PlanItem:
    bot: Bot
    reason: str | None  # None: the action will be sent; else why the bot is skipped
    # The reason as the bot's history keeps it, which its client reads: no server name.
    public_reason: str | None = None

    @property
    def acts(self) -> bool:
        return self.reason is None

    @property
    def history_reason(self) -> str | None:
        return self.public_reason or self.reason


def skip_reason(action: str, bot: Bot) -> str | None:
    """Why `action` would not be sent to `bot` now, or None. One rule for the preview, the
    batch's creation and each item's execution."""
    status = bot.status
    if action == "restore":
        return None if bot.is_archived else "not archived"
    if bot.is_archived:
        return "archived: restore it first"
    if status in TRANSITIONAL:
        return f"{status}: wait until it settles"
    if action == "archive":
        return "still running: stop it first" if status == "running" else None
    if action == "deploy":
        if status == "running":
            return "already running"
        if not (bot.deploy_settings or {}).get("mode"):
            return "never deployed: deploy it once from its page to choose how"
        return None
    if not bot.instance_name:
        return "not deployed yet"
    if action == "start" and status == "running":
        return ALREADY_RUNNING  # unless Hummingbot reports it stopped: overruled
    if action == "stop" and status in ("stopped", "deploy_failed"):
        return ALREADY_STOPPED  # unless Hummingbot reports it trading: overruled
    return None


ALREADY_STOPPED = "already stopped"
ALREADY_RUNNING = "already running"


def overruled(reason: str | None, bot: Bot, snapshot: Any) -> bool:
    """True when Hummingbot reports the opposite of what the definition says: the bot trading
    (badge Running, Idle or Running (script)) though stopped here, because someone started it
    there; or stopped with its container up though running here (stopped there, or by its own
    drawdown limit). The stop (the kill switch's above all) or the start must then reach it
    rather than skip it. A Start sent and not reported yet ("Starting") is not overruled."""
    if reason not in (ALREADY_STOPPED, ALREADY_RUNNING) or snapshot is None:
        return False
    live = snapshot.for_server(bot.server_id)
    found = match_live(bot, live.bots) if live.reachable else None
    if found is None:
        return False
    badge = display_status(bot, found, True)[0]
    return badge in TRADING if reason == ALREADY_STOPPED else badge == "stopped_container_up"


# How a server that cannot take calls now is named in a skip reason, by its snapshot's error.
SERVER_TROUBLE = {"unreachable": "unreachable", "timeout": "not answering (timing out)",
                  "auth": "refusing the dashboard's credentials",
                  "protocol": "answering with errors", "disabled": "disabled"}


def server_down(server_name: str, error_kind: str) -> tuple[str, str]:
    """(the reason admins read, the reason the bot's history keeps) for a bot whose server
    cannot take its call: clients read their bots' history and never see server names."""
    word = SERVER_TROUBLE.get(error_kind, "unreachable")
    return f"server {server_name} {word}", f"its Hummingbot server was {word}"


STILL_THERE = "still in Hummingbot: stop and archive it there first"
# Actions that need the bot's server's status first: those that call it, and archive, which
# (as from a bot's page) must see the bot gone from Hummingbot, else it would be left behind.
STATUS_ACTIONS = REMOTE_ACTIONS | {"archive"}


def server_reason(action: str, bot: Bot, snapshot: Any,
                  names: Mapping[int, str]) -> tuple[str, str] | None:
    """(reason, history reason) when `bot`'s own server stands against `action` now: down,
    breaker open or disabled; or, to archive, still running the bot. From the fleet's
    snapshot; None when nothing does."""
    if snapshot is None or action not in STATUS_ACTIONS:
        return None
    live = snapshot.for_server(bot.server_id)
    if not live.reachable:
        if action == "archive" and not bot.instance_name:
            return None  # never deployed: nothing can be running
        return server_down(names.get(bot.server_id, "?"), live.error_kind or "unreachable")
    if action == "archive" and match_live(bot, live.bots) is not None:
        return STILL_THERE, STILL_THERE
    return None


def plan(action: str, bots: Sequence[Bot], snapshot: Any = None,
         names: Mapping[int, str] | None = None) -> list[PlanItem]:
    """Each bot's fate: the definition's own rule first, then its server's state (from
    `snapshot`, the fleet's status: one per server, shared)."""
    items = []
    for bot in bots:
        reason = skip_reason(action, bot)
        if overruled(reason, bot, snapshot):
            reason = None
        down = None if reason else server_reason(action, bot, snapshot, names or {})
        items.append(PlanItem(bot, down[0], down[1]) if down else PlanItem(bot, reason))
    return items


def skip_summary(items: Sequence[PlanItem]) -> list[tuple[str, int]]:
    return Counter(item.reason for item in items if item.reason).most_common()


def create_batch(selection: Selection, actor: str, *, cancel_orders: bool,
                 snapshot: Any = None, names: Mapping[int, str] | None = None) -> Batch:
    """Write the batch, its items (pending or skipped, with the reason) and a history line for
    each skipped bot, in one transaction, before anything is sent. `snapshot`: the fleet's
    status, so that the bots of a server that is down are skipped as the preview said."""
    items = plan(selection.action, selected_bots(selection), snapshot, names)
    if not any(item.acts for item in items):
        raise ValidationError({"selection": "none of the selected bots can be "
                                            f"{TITLES[selection.action].lower()}ed now."})
    batch = Batch(id=uuid.uuid4().hex, action=selection.action, created_by=actor,
                  cancel_orders=cancel_orders, selection=selection.as_json(),
                  created_at=utcnow())
    db.session.add(batch)
    db.session.flush()
    now = utcnow()
    db.session.execute(insert(BatchItem), [
        {"batch_id": batch.id, "bot_id": item.bot.id, "position": position,
         "state": "pending" if item.acts else "skipped", "note": item.reason,
         "finished_at": None if item.acts else now}
        for position, item in enumerate(items)])
    skipped = [item for item in items if not item.acts]
    if skipped:  # one multi-row INSERT: a kill switch over 1,000 bots stays one statement
        db.session.execute(insert(BotEvent), [
            {"bot_id": item.bot.id, "actor": actor, "action": "batch_skipped",
             "from_status": item.bot.status, "to_status": item.bot.status, "occurred_at": now,
             "details": {"batch_id": batch.id, "batch_action": selection.action,
                         "reason": item.history_reason}}
            for item in skipped])
    db.session.commit()
    return batch


# ------------------------------------------------------------------------------ progress
OPEN_STATES = ("pending", "sending")


def counts(batch_ids: Sequence[str]) -> dict[str, Counter]:
    rows = db.session.execute(
        select(BatchItem.batch_id, BatchItem.state, func.count())
        .where(BatchItem.batch_id.in_(batch_ids))
        .group_by(BatchItem.batch_id, BatchItem.state))
    out: dict[str, Counter] = {batch_id: Counter() for batch_id in batch_ids}
    for batch_id, state, number in rows:
        out[batch_id][state] = number
    return out


def batch_items(batch: Batch) -> list[Any]:
    """Items in selection order with their bot's name."""
    return list(db.session.execute(
        select(BatchItem, Bot.name).join(Bot, Bot.id == BatchItem.bot_id)
        .where(BatchItem.batch_id == batch.id).order_by(BatchItem.position)))


def recent_batches(page: int, per_page: int = 50):
    return db.paginate(select(Batch).order_by(Batch.created_at.desc(), Batch.id),
                       page=page, per_page=per_page, error_out=False)


def describe(selection_json: Mapping[str, Any]) -> str:
    """What was selected, in words, for the batch list."""
    if "ids" in selection_json:
        return f"{len(selection_json['ids'])} ticked"
    shown = ", ".join(f"{k}={v}" for k, v in (selection_json.get("filter") or {}).items())
    prefix = "kill switch: " if selection_json.get("kill_switch") else "all matching "
    return prefix + (shown or "every bot")
