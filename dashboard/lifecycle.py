"""Deploy, start, stop, stop-and-archive and reconcile: the bot state machine.

    stopped -> deploying -> running | deploy_failed;  running -> stopping -> stopped

Every action locks the row (SELECT ... FOR UPDATE), writes its intent and commits before it
calls Hummingbot, then records the outcome. Deploy is never retried (it is not idempotent): an
ambiguous outcome (timeout, crash) stays `deploying` until reconcile finds the bot or gives up.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from .gateway import hummingbot, link_for, record_failure, record_snapshot
from .hummingbot import (
    DEFAULT_IMAGE,
    DeployResult,
    HummingbotError,
    HummingbotRejected,
    LiveBot,
)
from .models import Bot, BotEvent, db
from .registry import StateError, archive_bot, mark_archived, record_event, utcnow
from .status import (
    ARCHIVE_UNCONFIRMED,
    LiveSnapshot,
    awaiting_first_report,
    heard_since_deploy,
    live_names_for,
    live_word,
    match_live,
    orphans,
    seen_in,
)

log = logging.getLogger(__name__)

RECONCILE_LOCK_KEY = 0x626F746D  # "botm": one reconcile at a time across the fleet
REQUEST_TAG_LENGTH = 6


class LifecycleError(Exception):
    """The action was refused or failed; the message is for the operator."""


class StillRunning(LifecycleError):
    """Archiving the definition alone would leave the bot trading: stop and archive it in
    Hummingbot instead (`live` is None when Hummingbot could not be asked)."""

    def __init__(self, message: str, live: LiveBot | None):
        super().__init__(message)
        self.live = live


# --------------------------------------------------------------------------- deploy settings
@dataclass(frozen=True)
class DeploySettings:
    mode: str  # "script" or "controllers"
    image: str = DEFAULT_IMAGE
    script: str | None = None
    script_config: str | None = None
    controllers: tuple[str, ...] = ()
    max_global_drawdown_quote: float | None = None
    max_controller_drawdown_quote: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "image": self.image, "script": self.script,
            "script_config": self.script_config, "controllers": list(self.controllers),
            "max_global_drawdown_quote": self.max_global_drawdown_quote,
            "max_controller_drawdown_quote": self.max_controller_drawdown_quote,
        }


# A config file name on the Hummingbot server (may end in .yml); never "..", never a path.
CONFIG_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$"


def parse_deploy_settings(form: dict[str, Any]) -> DeploySettings:
    """Check the deploy form; raise ValidationError with a message per bad field."""
    from .validation import ValidationError

    errors: dict[str, str] = {}
    mode = form.get("mode", "")
    if mode not in ("script", "controllers"):
        errors["mode"] = "must be script or controllers."
    image = (form.get("image") or DEFAULT_IMAGE).strip()
    if len(image) > 200 or not re.match(IMAGE_PATTERN, image):
        errors["image"] = "must be a Docker image like hummingbot/hummingbot:latest."

    def name_or_none(key: str) -> str | None:
        value = (form.get(key) or "").strip()
        if value and (len(value) > 100 or not re.match(CONFIG_NAME, value)):
            errors[key] = "may contain only letters, digits, '.', '-' and '_'."
        return value or None

    def amount(key: str) -> float | None:
        raw = (form.get(key) or "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            errors[key] = "must be a number."
            return None
        if not 0 < value < 1e12:
            errors[key] = "must be a positive amount."
        return value

    script, script_config = name_or_none("script"), name_or_none("script_config")
    raw_controllers = form.get("controllers") or ""
    controllers = tuple(c.strip() for c in raw_controllers.replace("\n", ",").split(",")
                        if c.strip())
    for controller in controllers:
        if len(controller) > 100 or not re.match(CONFIG_NAME, controller):
            errors["controllers"] = f"{controller!r} is not a valid config name."
    if mode == "controllers" and not controllers:
        errors["controllers"] = "name at least one controller config."
    if mode == "script" and not script_config and "script_config" not in errors:
        # Hummingbot hands the container only SCRIPT_CONFIG; `script` is just recorded, so
        # without a config the bot would run nothing.
        errors["script_config"] = ("is required for a script deploy: Hummingbot runs the "
                                   "script its config names (the Script field is only "
                                   "recorded).")
    settings = DeploySettings(
        mode=mode, image=image, script=script, script_config=script_config,
        controllers=controllers,
        max_global_drawdown_quote=amount("max_global_drawdown_quote"),
        max_controller_drawdown_quote=amount("max_controller_drawdown_quote"),
    )
    if errors:
        raise ValidationError(errors)
    return settings


def deploy_form_defaults(bot: Bot) -> dict[str, str]:
    saved = bot.deploy_settings or {}
    mode = saved.get("mode") or ("controllers" if bot.strategy == "v2_with_controllers"
                                 else "script")
    return {
        "mode": mode,
        "image": saved.get("image") or DEFAULT_IMAGE,
        "script": saved.get("script") or "",
        "script_config": saved.get("script_config") or "",
        "controllers": ", ".join(saved.get("controllers") or []),
        "max_global_drawdown_quote": _text(saved.get("max_global_drawdown_quote")),
        "max_controller_drawdown_quote": _text(saved.get("max_controller_drawdown_quote")),
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------- helpers
def _locked(bot_id: str) -> Bot:
    bot = db.session.scalars(
        select(Bot).where(Bot.id == bot_id).with_for_update().execution_options(
            populate_existing=True)
    ).first()
    if bot is None:
        raise LifecycleError("That bot no longer exists.")
    return bot


def _fresh_snapshot(bot: Bot) -> LiveSnapshot:
    """Ask the bot's Hummingbot server now. Recording last-seen statuses commits, which would
    end the caller's transaction and with it its row locks and advisory lock: callers record
    after their own commit."""
    return link_for(bot).feed.snapshot(max_age=0, record=False)


def request_tag(request_id: str) -> str:
    return request_id[:REQUEST_TAG_LENGTH]


def sent_instance_name(bot: Bot, request_id: str) -> str:
    """The name we send: Hummingbot appends -YYYYmmdd-HHMMSS, and the tag lets reconcile
    recognise the result without guessing."""
    return f"{bot.name}-{request_tag(request_id)}"


def _deploy_call(bot: Bot, settings: DeploySettings, name: str) -> DeployResult:
    client = link_for(bot).require_client()
    if settings.mode == "controllers":
        return client.deploy_controllers(
            name, bot.account_identifier, list(settings.controllers),
            max_global_drawdown_quote=settings.max_global_drawdown_quote,
            max_controller_drawdown_quote=settings.max_controller_drawdown_quote,
            image=settings.image,
        )
    return client.deploy_script(name, bot.account_identifier, script=settings.script,
                                script_config=settings.script_config, image=settings.image)


def _is_definite_failure(exc: HummingbotError) -> bool:
    """True when Hummingbot certainly created nothing: it was never reached, or it answered
    with a handled refusal. A timeout or an unhandled crash may have created the bot."""
    if not exc.request_sent:
        return True
    if isinstance(exc, HummingbotRejected):
        # A text/plain 500 is the server crashing mid-way; a JSON refusal was handled.
        return not (exc.status_code and exc.status_code >= 500 and exc.detail is None)
    return False


# -------------------------------------------------------------------------------- deploy
def deploy(bot_id: str, settings: DeploySettings, actor: str,
           server_id: int | None = None) -> Bot:
    """Deploy on the bot's server, or first move it onto `server_id` (checked below: not while
    its current server still runs it)."""
    bot = _locked(bot_id)
    if bot.archived_at is not None:
        raise LifecycleError("Restore this bot before deploying it.")
    if bot.status in ("deploying", "stopping"):
        raise LifecycleError(f"{bot.name} is already {bot.status}; nothing was sent.")
    moving = server_id is not None and server_id != bot.server_id
    # Whatever the definition says (a stopped bot's container stays up), a second deploy
    # while the current instance lives would leave that one behind as an orphan. Checked
    # under the row lock, which _fresh_snapshot leaves held.
    link = link_for(bot)
    snapshot = _fresh_snapshot(bot)
    if not snapshot.reachable:
        raise LifecycleError("Hummingbot is unreachable, so it cannot be checked that "
                             f"{bot.name} is not running already; nothing was sent.")
    live = match_live(bot, snapshot.bots)
    if live is not None:
        raise LifecycleError(f"{bot.name} is running as {live.name} in Hummingbot; stop and "
                             "archive it there first. Nothing was sent.")
    if moving:  # its earlier instance name belonged to the other server
        record_event(bot, "server_changed", actor, from_status=bot.status,
                     to_status=bot.status, details={"from_server_id": bot.server_id,
                                                    "to_server_id": server_id})
        bot.server_id, bot.instance_name = server_id, None
        link = link_for(bot)

    request_id = uuid.uuid4().hex
    before = bot.status
    bot.status = "deploying"
    bot.deploy_request_id = request_id
    bot.deploy_requested_at = utcnow()
    bot.deploy_settings = settings.as_dict()
    bot.last_error = None
    bot.last_seen_status = None  # what the earlier instance did says nothing about this one
    name = sent_instance_name(bot, request_id)
    record_event(bot, "deploy_requested", actor, from_status=before, to_status="deploying",
                 details={"request_id": request_id, "sent_name": name,
                          "settings": settings.as_dict()})
    db.session.commit()  # intent is on record before anything leaves this process

    try:
        result: DeployResult | None = _deploy_call(bot, settings, name)
        error: HummingbotError | None = None
    except HummingbotError as exc:
        result, error = None, exc

    bot = _locked(bot_id)
    if bot.deploy_request_id != request_id or bot.status != "deploying":
        db.session.commit()  # reconcile settled it meanwhile
        return bot
    if result is not None and not _took_instance_name(bot, result.instance_name):
        bot.status = "deploy_failed"
        bot.last_error = (f"Hummingbot answered that it runs this bot as {result.instance_name}, "
                          "a name another definition already holds, so the deploy is recorded "
                          "as failed. An admin can look for that name on the recovery desk.")
        record_event(bot, "deploy_failed", actor, from_status="deploying",
                     to_status="deploy_failed",
                     details={"request_id": request_id, "error": bot.last_error,
                              "instance_name": result.instance_name})
    elif result is not None:
        bot.status = "running"
        forget_last_report(bot)  # a new instance: nothing reported by it yet
        record_event(bot, "deployed", actor, from_status="deploying", to_status="running",
                     details={"request_id": request_id, "instance_name": result.instance_name,
                              "message": result.message})
    elif error is not None and _is_definite_failure(error):
        bot.status = "deploy_failed"
        bot.last_error = str(error)
        record_event(bot, "deploy_failed", actor, from_status="deploying",
                     to_status="deploy_failed",
                     details={"request_id": request_id, "error": str(error)})
    else:
        bot.last_error = (f"Outcome unknown ({error}). Nothing will be retried; reconcile "
                          "will find the bot in Hummingbot or mark the deploy failed.")
        record_event(bot, "deploy_outcome_unknown", actor, from_status="deploying",
                     to_status="deploying",
                     details={"request_id": request_id, "error": str(error)})
    db.session.commit()
    link.feed.invalidate()
    return bot


def _took_instance_name(bot: Bot, name: str) -> bool:
    """Give the bot the name Hummingbot answered; False when another definition holds it (the
    column is unique: the index decides, so two deploys racing for one name cannot both win)."""
    try:
        with db.session.begin_nested():
            bot.instance_name = name
    except IntegrityError:
        return False  # the savepoint is rolled back: the bot is as it was, still locked
    return True


def deploy_outcome(bot: Bot, verb: str = "Deploy") -> tuple[str, str]:
    """What the operator is told after a deploy: (message, flash category)."""
    done = {"Deploy": "Deployed", "Redeploy": "Redeployed"}[verb]
    if bot.status == "running":
        return f"{done} {bot.name} as {bot.instance_name}.", "success"
    if bot.status == "deploy_failed":
        return f"{verb} of {bot.name} failed: {bot.last_error}", "error"
    return (f"{verb} of {bot.name} sent; its outcome is not known yet. It will not be "
            "retried: reconcile settles it from what Hummingbot reports.", "info")


# ---------------------------------------------------------------------------- start / stop
def forget_last_report(bot: Bot) -> None:
    """What Hummingbot said of an earlier instance says nothing of this one."""
    bot.live_state = bot.error_log = bot.pnl_quote = bot.volume_quote = None


def _live_instance(bot: Bot) -> str:
    if not bot.instance_name:
        raise LifecycleError(f"{bot.name} has not been deployed yet; deploy it first.")
    return bot.instance_name


def start(bot_id: str, actor: str) -> Bot:
    bot = _locked(bot_id)
    link = link_for(bot)
    name = _live_instance(bot)
    if bot.status in ("deploying", "stopping"):
        raise LifecycleError(f"{bot.name} is {bot.status}; wait until it settles.")
    db.session.commit()  # release the row lock while Hummingbot is called
    try:
        link.require_client().start_bot(name)
    except HummingbotError as exc:
        return _record_failure(bot_id, "start_failed", actor, exc)
    bot = _locked(bot_id)
    before = bot.status
    bot.status = "running"
    bot.last_error = None
    bot.start_requested_at = utcnow()  # "Starting…" until the bot's first report
    record_event(bot, "started", actor, from_status=before, to_status="running",
                 details={"instance_name": name})
    db.session.commit()
    link.feed.invalidate()
    return bot


def stop(bot_id: str, actor: str, *, cancel_orders: bool) -> Bot:
    bot = _locked(bot_id)
    link = link_for(bot)
    name = _live_instance(bot)
    if bot.status in ("deploying", "stopping"):
        raise LifecycleError(f"{bot.name} is {bot.status}; wait until it settles.")
    db.session.commit()
    try:
        link.require_client().stop_bot(name, skip_order_cancellation=not cancel_orders)
    except HummingbotError as exc:
        return _record_failure(bot_id, "stop_failed", actor, exc)
    bot = _locked(bot_id)
    before = bot.status
    bot.status = "stopped"
    record_event(bot, "stopped", actor, from_status=before, to_status="stopped",
                 details={"instance_name": name, "cancel_orders": cancel_orders})
    db.session.commit()
    link.feed.invalidate()
    return bot


# ------------------------------------------------------------------------------- archive
def archive(bot_id: str, actor: str) -> Bot:
    """Archive the definition, unless Hummingbot still runs the bot: hiding a definition
    whose bot keeps trading is refused (StillRunning), and so is archiving while Hummingbot
    cannot be asked about a bot that was deployed."""
    bot = _locked(bot_id)
    if bot.archived_at is None:
        snapshot = _fresh_snapshot(bot)
        if not snapshot.reachable and bot.instance_name:
            raise StillRunning(f"Hummingbot is unreachable, so it cannot be checked that "
                               f"{bot.name} no longer runs; it was not archived.", None)
        live = match_live(bot, snapshot.bots) if snapshot.reachable else None
        if live is not None:
            raise StillRunning(f"{bot.name} still runs in Hummingbot as {live.name}; archiving "
                               "only the definition would leave it trading. It was not "
                               "archived.", live)
    try:
        return archive_bot(bot, actor)
    except StateError as exc:
        raise LifecycleError(str(exc)) from exc


def _archive_request(bot: Bot) -> BotEvent | None:
    """The newest stop-and-archive request of this bot."""
    return db.session.scalars(
        select(BotEvent).where(BotEvent.bot_id == bot.id,
                               BotEvent.action == "archive_requested")
        .order_by(BotEvent.occurred_at.desc(), BotEvent.id.desc()).limit(1)).first()


def stop_and_archive(bot_id: str, actor: str, *, cancel_orders: bool,
                     archive_definition: bool = False) -> Bot:
    """Stop the bot and remove its container in Hummingbot. The definition stays unless
    `archive_definition`: then it is archived once Hummingbot has let the bot go (at once
    when nothing runs, else when reconcile sees the stop settle)."""
    bot = _locked(bot_id)
    link = link_for(bot)
    name = _live_instance(bot)
    if bot.status in ("deploying", "stopping"):
        raise LifecycleError(f"{bot.name} is {bot.status}; wait until it settles.")
    if bot.archived_at is not None:
        return _stop_archived(bot, actor, name, cancel_orders)
    before = bot.status
    bot.status = "stopping"
    record_event(bot, "archive_requested", actor, from_status=before, to_status="stopping",
                 details={"instance_name": name, "cancel_orders": cancel_orders,
                          "archive_definition": archive_definition})
    db.session.commit()
    try:
        message = link.require_client().stop_and_archive(
            name, skip_order_cancellation=not cancel_orders)
    except HummingbotRejected as exc:
        if exc.status_code is not None:  # an HTTP error: the archive did not start
            bot = _locked(bot_id)
            bot.status, bot.last_error = before, f"Stop and archive failed: {exc}"
            record_event(bot, "archive_failed", actor, from_status="stopping",
                         to_status=before, details={"error": str(exc)})
            db.session.commit()
            raise LifecycleError(f"Hummingbot did not accept it: {exc}") from exc
        # HTTP 200 "not found in active bots": nothing runs under that name: stopped.
        bot = _locked(bot_id)
        bot.status = "stopped"
        record_event(bot, "archive_not_needed", actor, from_status="stopping",
                     to_status="stopped", details={"error": str(exc)})
        if archive_definition:
            mark_archived(bot, actor, details={"after": "stop and archive"})
        db.session.commit()
        return bot
    except HummingbotError as exc:
        bot = _locked(bot_id)
        bot.last_error = f"Stop and archive: outcome unknown ({exc}); reconcile will settle it."
        record_event(bot, "archive_outcome_unknown", actor, from_status="stopping",
                     to_status="stopping", details={"error": str(exc)})
        db.session.commit()
        return bot
    bot = _locked(bot_id)
    record_event(bot, "archive_started", actor, from_status="stopping", to_status="stopping",
                 details={"message": message})
    db.session.commit()
    link.feed.invalidate()
    return bot


def _stop_archived(bot: Bot, actor: str, name: str, cancel_orders: bool) -> Bot:
    """An archived definition whose bot still runs: only Hummingbot's side is left to do,
    and the definition stays archived whatever it answers."""
    link = link_for(bot)
    db.session.commit()
    try:
        message = link.require_client().stop_and_archive(
            name, skip_order_cancellation=not cancel_orders)
    except HummingbotError as exc:
        return _record_failure(bot.id, "archive_failed", actor, exc)
    bot = _locked(bot.id)
    record_event(bot, "archive_started", actor, from_status="archived", to_status="archived",
                 details={"instance_name": name, "cancel_orders": cancel_orders,
                          "message": message})
    db.session.commit()
    link.feed.invalidate()
    return bot


def _record_failure(bot_id: str, action: str, actor: str, exc: HummingbotError) -> Bot:
    bot = _locked(bot_id)
    bot.last_error = str(exc)
    record_event(bot, action, actor, from_status=bot.status, to_status=bot.status,
                 details={"error": str(exc)})
    db.session.commit()
    raise LifecycleError(f"Hummingbot did not accept it: {exc}")


def mark_stopped(bot_id: str, actor: str) -> Bot:
    """Accept that a definition which should run does not: the operator's decision."""
    bot = _locked(bot_id)
    before = bot.status
    bot.status = "stopped"
    record_event(bot, "marked_stopped", actor, from_status=before, to_status="stopped")
    db.session.commit()
    return bot


# ----------------------------------------------------------------------------- reconcile
@dataclass
class ReconcileReport:
    ran: bool
    reason: str = ""
    settled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[LiveBot] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # servers left alone this pass

    def summary(self) -> str:
        if not self.ran:
            return f"Reconcile skipped: {self.reason}."
        return (f"Reconciled: {len(self.settled)} settled, {len(self.failed)} deploys failed, "
                f"{len(self.missing)} missing, {len(self.orphans)} orphans.")


def _deployed_as(bot: Bot, snapshot: LiveSnapshot) -> LiveBot | None:
    """The live bot an in-flight deploy produced: `<name>-<tag>-<YYYYmmdd>-<HHMMSS>`.

    Found by the request tag, not by the current name (the definition may have been renamed
    since), and never by the instance name of an earlier deploy."""
    if not bot.deploy_request_id:
        if bot.instance_name and bot.instance_name in snapshot.bots:
            return snapshot.bots[bot.instance_name]
        return None
    tagged = re.compile(rf"-{re.escape(request_tag(bot.deploy_request_id))}-\d{{8}}-\d{{6}}$")
    found = [live for name, live in snapshot.bots.items() if tagged.search(name)]
    return found[0] if len(found) == 1 else None


def reconcile(actor: str = "reconcile", only: str | None = None) -> ReconcileReport:
    """Bring definitions in line with Hummingbot. Idempotent; never deletes anything; does
    nothing while Hummingbot is unreachable; one process at a time (advisory lock)."""
    got_lock = db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": RECONCILE_LOCK_KEY})
    if not got_lock:
        db.session.rollback()
        return ReconcileReport(ran=False, reason="another process is reconciling")
    # The advisory lock lives as long as this transaction: nothing may commit before the end.
    # Every enabled server (or the one running `only`) asked at once; an unreachable one is
    # left alone this pass, the others reconciled.
    from .fleet import fleet

    if only is not None:
        target = db.session.get(Bot, only)
        links = [(target.server_id, link_for(target))] if target is not None else []
    else:
        links = [(server_id, link) for server_id, _, link in fleet().enabled()] \
            or [(None, hummingbot())]
    snapshots = fleet().fresh_snapshots(links)
    reachable = {server_id: snap for server_id, snap in snapshots.items() if snap.reachable}
    for snap in snapshots.values():
        record_failure(snap)  # the alerts learn since when a server fails (a no-op if not)
    if not reachable:
        db.session.rollback()
        errors = "; ".join(sorted({snap.error or "" for snap in snapshots.values()}))
        return ReconcileReport(ran=False, reason=f"Hummingbot unreachable ({errors})")

    report = ReconcileReport(ran=True, unreachable=sorted(
        fleet().names(refresh=False).get(server_id, "default")
        for server_id in snapshots if server_id not in reachable))
    grace = timedelta(seconds=current_app.config["DEPLOY_GRACE_SECONDS"])
    now = utcnow()
    # Read without locks, then lock only the rows that need a change: thousands of running
    # bots must not be row-locked (and rewritten) on every pass. Remote calls happen here,
    # before any row is locked.
    candidates = select(Bot).where(
        Bot.archived_at.is_(None), Bot.status.in_(("deploying", "stopping", "running")),
        Bot.server_id.in_([server_id for server_id in reachable if server_id is not None]))
    if only is not None:
        candidates = candidates.where(Bot.id == only)
    archives: dict[str, str | None] = {}
    to_change = []
    for bot in db.session.scalars(candidates).all():
        snapshot = reachable[bot.server_id]
        if _newer_than(bot, snapshot):
            continue  # written after the status was read (a deploy just ended): next pass
        live = match_live(bot, snapshot.bots)
        if bot.status == "running" and live is None and _first_report_due(bot, now, grace):
            report.missing.append(bot.id)
        if bot.status == "stopping":
            archives[bot.id] = _archive_outcome(bot, live, snapshot, now, grace)
        if _needs_change(bot, snapshot, now, grace, archives):
            to_change.append(bot.id)
    if to_change:
        locked = select(Bot).where(Bot.id.in_(to_change)).with_for_update(skip_locked=True) \
            .execution_options(populate_existing=True)
        for bot in db.session.scalars(locked):
            snapshot = reachable[bot.server_id]
            # Re-checked on the locked, current row: another pass may have settled it.
            if not _newer_than(bot, snapshot) and _needs_change(bot, snapshot, now, grace,
                                                               archives):
                _reconcile_one(bot, snapshot, now, grace, actor, report, archives)
    if only is None:
        for server_id, snapshot in reachable.items():
            on_server = select(Bot) if server_id is None else \
                select(Bot).where(Bot.server_id == server_id)
            report.orphans += orphans(db.session.scalars(on_server).all(), snapshot)
    db.session.commit()
    for snapshot in reachable.values():
        record_snapshot(snapshot)
    return report


def _newer_than(bot: Bot, snapshot: LiveSnapshot) -> bool:
    return bot.updated_at is not None and bot.updated_at >= snapshot.fetched_at


def _first_report_due(bot: Bot, now, grace) -> bool:
    """False while a deployed bot may still be on its way into Hummingbot's /status."""
    return not (awaiting_first_report(bot) and now - bot.deploy_requested_at <= grace)


def _archive_outcome(bot: Bot, live: LiveBot | None, snapshot: LiveSnapshot, now,
                     grace) -> str | None:
    """What became of a stop-and-archive. /status drops a bot as soon as its archive starts,
    so absence alone does not mean it ended, and no bot-run is no proof either (a bot with
    no container there, MQTT only, has none and survives the archive). So:
    "archived": its bot-run says ARCHIVED and /status no longer lists it (a bot heard over
    MQTT stays listed 30 s after its container went); "back": listed again after Hummingbot
    accepted the archive, without an archived run; "overdue": absent, but not archived
    within the grace period; None: still under way (or stuck: the recovery desk shows it)."""
    requested, started = db.session.execute(
        select(func.max(BotEvent.occurred_at).filter(BotEvent.action == "archive_requested"),
               func.max(BotEvent.occurred_at).filter(BotEvent.action == "archive_started"))
        .where(BotEvent.bot_id == bot.id)).one()
    overdue = "overdue" if requested is None or now - requested > grace else None
    archived = False
    if bot.instance_name:
        try:
            runs = link_for(bot).require_client().bot_runs(bot_name=bot.instance_name, limit=1)
        except HummingbotError:
            return overdue if live is None else None
        archived = bool(runs) and runs[0].deployment_status == "ARCHIVED"
    if live is None:
        return "archived" if archived else overdue
    if archived:
        return None  # its last MQTT messages still list it for a while
    # Listed in a snapshot taken after Hummingbot accepted the archive: it came back.
    accepted = started is not None and (requested is None or started >= requested) \
        and started < snapshot.fetched_at
    return "back" if accepted else None


def _needs_change(bot: Bot, snapshot: LiveSnapshot, now, grace,
                  archives: dict[str, str | None]) -> bool:
    if bot.status == "deploying":
        return _deployed_as(bot, snapshot) is not None or bot.deploy_requested_at is None \
            or now - bot.deploy_requested_at > grace
    live = match_live(bot, snapshot.bots)
    if bot.status == "stopping":
        return archives.get(bot.id) is not None
    if bot.status == "running":  # newly missing
        return live is None and bot.last_seen_status != "absent" \
            and _first_report_due(bot, now, grace)
    return False


def _reconcile_one(bot: Bot, snapshot: LiveSnapshot, now, grace, actor: str,
                   report: ReconcileReport, archives: dict[str, str | None]) -> None:
    if bot.status == "deploying":
        live = _deployed_as(bot, snapshot)
        if live is not None:
            bot.status, bot.instance_name, bot.last_error = "running", live.name, None
            forget_last_report(bot)
            bot.live_state = live_word(live)
            record_event(bot, "deploy_settled", actor, from_status="deploying",
                         to_status="running", details={"instance_name": live.name})
            report.settled.append(bot.id)
        elif bot.deploy_requested_at is None or now - bot.deploy_requested_at > grace:
            bot.status = "deploy_failed"
            bot.last_error = (f"The deploy did not appear in Hummingbot within "
                              f"{int(grace.total_seconds())} s.")
            record_event(bot, "deploy_failed", actor, from_status="deploying",
                         to_status="deploy_failed", details={"error": bot.last_error})
            report.failed.append(bot.id)
    elif bot.status == "stopping":
        outcome = archives.get(bot.id)
        bot.status = "stopped"
        if outcome == "back":
            live = match_live(bot, snapshot.bots)
            bot.last_error = (
                f"{ARCHIVE_UNCONFIRMED}: Hummingbot accepted it, then listed the bot again as "
                f"{live.name if live else bot.instance_name}, and no bot-run says ARCHIVED. A "
                "bot with no container on that server (MQTT only, started elsewhere) survives "
                "stop-and-archive: stop it where it runs.")
            record_event(bot, "archive_failed", actor, from_status="stopping",
                         to_status="stopped",
                         details={"archive_confirmed": False, "listed_again": True})
        else:
            confirmed = outcome == "archived"
            bot.last_error = None if confirmed else (
                f"{ARCHIVE_UNCONFIRMED}: Hummingbot no longer lists the bot, but no bot-run "
                "says ARCHIVED.")
            # What was seen last is that it is gone, not the status it had before.
            bot.last_seen_status, bot.last_seen_at = "absent", now
            bot.live_state = "absent"
            record_event(bot, "stop_settled", actor, from_status="stopping",
                         to_status="stopped", details={"archive_confirmed": confirmed})
            # Asked to archive the definition too: Hummingbot has let the bot go.
            request = _archive_request(bot)
            if request is not None and request.details.get("archive_definition"):
                mark_archived(bot, actor, details={"after": "stop and archive"})
        report.settled.append(bot.id)
    elif bot.status == "running":
        # Recorded once; the badge says Missing. `last_seen_at` keeps when it was last heard.
        bot.last_seen_status = "absent"
        bot.live_state = "crashed" if seen_in(bot, snapshot) == "crashed" else "absent"
        record_event(bot, "went_missing", actor, from_status="running", to_status="running",
                     details={"looked_for": live_names_for(bot),
                              "reported_since_deploy": heard_since_deploy(bot)})
