"""The recovery desk: where definitions and Hummingbot drifted apart, and how to put them back.

- **Orphans**: live in Hummingbot, no definition. `adopt` stores one, prefilled from bot-runs
  (account, strategy, deploy body) and the live controller configs (connector, pair, config).
- **Missing**: the definition says running, Hummingbot runs nothing: `redeploy` (through
  `lifecycle.deploy`, with the stored deploy settings) or `mark_missing_stopped`.
- **Stuck**: `deploying` / `stopping` past the grace period: `settle` reconciles that one row.
- **Archived**: `restore`.
Plus `recreate` (a definition written by hand) and the page import (`preview_import` /
`confirm_import`, the CLI's `plan_import` / `apply_import` underneath).

Nothing the browser sends is trusted for a live fact: `adopt` re-reads Hummingbot when it
saves, and one instance name can only ever belong to one definition (a unique column).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, or_, select, true
from sqlalchemy.exc import IntegrityError
from werkzeug.utils import secure_filename

from . import lifecycle
from .fleet import fleet
from .gateway import Hummingbot, link_for
from .hummingbot import BotRun, HummingbotClient, HummingbotError, LiveBot
from .models import Bot, BotEvent, db
from .registry import TRANSITIONAL, create_bot, record_event, restore_bot, utcnow
from .relink import Known, pair_up, same_bot
from .servers import DEFAULT_SERVER
from .status import (
    ARCHIVE_UNCONFIRMED,
    BADGES,
    BotRow,
    LiveSnapshot,
    live_word,
    match_live,
    merge_rows,
    orphans,
)
from .transfer import ImportFileError, ImportPlan, apply_import, not_running, plan_import
from .validation import (
    BOT_FIELDS,
    HUMMINGBOT_NAME,
    MAX_NAME_LENGTH,
    ValidationError,
    is_instance_name,
    validate_bot,
)

TIMESTAMP_SUFFIX = re.compile(r"-\d{8}-\d{6}$")
LEGACY_PREFIX = "hummingbot-"
PREFILL_INLINE = 10  # orphans whose adopt form the full page fills in at once (2 calls each)
ARCHIVED_SHOWN = 50
BOT_RUNS_LOOKED_AT = 5
IMPORT_SALT = "recovery-import"
IMPORT_MAX_AGE = 3600  # seconds a preview may wait for its confirmation


class RecoveryError(Exception):
    """The action was refused or could not be done; nothing was stored. For the operator."""


class OrphanGone(RecoveryError):
    """The live bot is no longer in Hummingbot."""


# ------------------------------------------------------------------------------- orphans
@dataclass(frozen=True)
class OrphanFacts:
    """What Hummingbot knows about one live bot without a definition."""

    live: LiveBot
    run: BotRun | None
    controller_configs: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def name(self) -> str:
        return self.live.name

    @property
    def deployment_config(self) -> dict[str, Any]:
        return (self.run.deployment_config if self.run else None) or {}

    @property
    def account(self) -> str | None:
        """The credentials profile it runs with: a fact, not a suggestion."""
        for value in (self.run.account_name if self.run else None,
                      self.deployment_config.get("credentials_profile")):
            if isinstance(value, str) and HUMMINGBOT_NAME.match(value):
                return value
        return None

    @property
    def deploy_settings(self) -> dict[str, Any]:
        """The deploy body bot-runs recorded, as our deploy settings ({} when unknown), so a
        later Redeploy sends what Hummingbot was sent."""
        config = self.deployment_config
        if not config:
            return {}
        controllers = config.get("controllers_config")
        image = config.get("image") or (self.run.image_version if self.run else None)
        if isinstance(controllers, list) and controllers:
            settings = settings_from({
                "mode": "controllers", "image": image, "controllers": controllers,
                "max_global_drawdown_quote": config.get("max_global_drawdown_quote"),
                "max_controller_drawdown_quote": config.get("max_controller_drawdown_quote"),
            })
        else:
            settings = settings_from({"mode": "script", "image": image,
                                      "script": config.get("script"),
                                      "script_config": config.get("script_config")})
        return settings.as_dict() if settings is not None else {}


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def settings_from(raw: Mapping[str, Any]) -> lifecycle.DeploySettings | None:
    """Deploy settings from a stored or recorded dict, checked by the deploy form's own rules
    (`lifecycle.parse_deploy_settings`); None when anything in it does not pass."""
    controllers = raw.get("controllers") or []
    if not isinstance(controllers, list | tuple) or not all(isinstance(c, str)
                                                           for c in controllers):
        return None
    form = {key: _str(raw.get(key)) for key in (
        "mode", "image", "script", "script_config", "max_global_drawdown_quote",
        "max_controller_drawdown_quote")}
    form["controllers"] = ", ".join(controllers)
    try:
        return lifecycle.parse_deploy_settings(form)
    except ValidationError:
        return None


@dataclass
class AdoptForm:
    """The adopt form of one orphan: values to show, and where each prefilled one came from."""

    facts: OrphanFacts
    values: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def instance_name(self) -> str:
        return self.facts.name


def base_name(instance_name: str) -> str:
    """The name an operator gave the bot: without Hummingbot's `-YYYYmmdd-HHMMSS` and without
    the `hummingbot-` older servers put in front."""
    name = TIMESTAMP_SUFFIX.sub("", instance_name)
    if name.startswith(LEGACY_PREFIX) and len(name) > len(LEGACY_PREFIX):
        name = name[len(LEGACY_PREFIX):]
    return name[:MAX_NAME_LENGTH].rstrip("-_") or instance_name[:MAX_NAME_LENGTH]


def read_orphan_facts(client: HummingbotClient, live: LiveBot, *, strict: bool) -> OrphanFacts:
    """Ask Hummingbot about one bot: its newest bot-run and its live controller configs.

    `strict` (when saving) raises on any failure; otherwise what failed is noted and the
    form is prefilled from what could be read."""
    problems: list[str] = []
    run: BotRun | None = None
    try:
        runs = client.bot_runs(bot_name=live.name, limit=BOT_RUNS_LOOKED_AT)
        run = next((r for r in runs if r.bot_name == live.name), None)
        if run is None:
            problems.append("Hummingbot has no bot-run for it (deployed by an older server?): "
                            "account and strategy are not known.")
    except HummingbotError as exc:
        if strict:
            raise RecoveryError(f"Hummingbot could not be asked how {live.name} was deployed "
                                f"({exc}); nothing was saved. Try again.") from exc
        problems.append(f"Its bot-runs could not be read: {exc}")
    configs: list[dict[str, Any]] = []
    if live.controllers or (run is not None and run.strategy_type == "controller"):
        try:
            configs = client.bot_controller_configs(live.name) or []
        except HummingbotError as exc:
            if strict:
                raise RecoveryError(f"Hummingbot could not be asked for the controller configs "
                                    f"of {live.name} ({exc}); nothing was saved.") from exc
            problems.append(f"Its live controller configs could not be read: {exc}")
    return OrphanFacts(live=live, run=run, controller_configs=configs, problems=problems)


def _clean_config(config: dict[str, Any]) -> dict[str, Any]:
    """A live controller config without the bookkeeping keys Hummingbot adds (`_config_name`)."""
    return {key: value for key, value in config.items() if not str(key).startswith("_")}


def _find_market(value: Any, depth: int = 0) -> tuple[str, str]:
    """The first (connector_name, trading_pair) found in a performance report."""
    if depth > 4:
        return "", ""
    if isinstance(value, dict):
        connector, pair = value.get("connector_name"), value.get("trading_pair")
        if isinstance(connector, str) and isinstance(pair, str):
            return connector, pair
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return "", ""
    for child in children:
        found = _find_market(child, depth + 1)
        if found[0]:
            return found
    return "", ""


def _market(facts: OrphanFacts) -> tuple[str, str, str]:
    """(connector, pair, where they came from)."""
    markets = [(c.get("connector_name"), c.get("trading_pair")) for c in facts.controller_configs]
    markets = [(c, p) for c, p in markets if isinstance(c, str) and isinstance(p, str)]
    if markets:
        others = len({m for m in markets}) - 1
        note = "from the live controller config" + (
            f" (its {others} other market{'s' if others > 1 else ''} stay in the configuration)"
            if others else "")
        return markets[0][0], markets[0][1].upper(), note
    for controller in facts.live.controllers.values():
        connector, pair = _find_market(controller.raw)
        if connector:
            return connector, pair.upper(), "from the live performance report"
    return "", "", ""


def _free_id(base: str) -> str:
    """`base`, or `base-2`, `base-3`... whichever no definition uses as id or active name."""
    for n in range(1, 100):
        suffix = "" if n == 1 else f"-{n}"
        candidate = base[:MAX_NAME_LENGTH - len(suffix)].rstrip("-_") + suffix
        if db.session.get(Bot, candidate) is None and not _name_taken(candidate):
            return candidate
    return base


def _name_taken(name: str) -> bool:
    query = select(func.count()).select_from(Bot).where(
        func.lower(Bot.name) == name.lower(), Bot.archived_at.is_(None))
    return db.session.scalar(query) > 0


def draft_adopt_form(facts: OrphanFacts) -> AdoptForm:
    """Everything Hummingbot reveals, as the values of the adopt form."""
    sources: dict[str, str] = {}
    suggested = _free_id(base_name(facts.name))
    values = {"id": suggested, "name": suggested}
    sources["name"] = "the instance name without its timestamp"
    if suggested != base_name(facts.name):
        sources["name"] += f" ({base_name(facts.name)} is taken)"

    values["account_identifier"] = facts.account or ""
    if facts.account:
        sources["account_identifier"] = "from bot-runs: the credentials profile it runs with"

    strategy = ""
    if facts.run is not None and facts.run.strategy_name:
        strategy = facts.run.strategy_name.removesuffix(".py")
        sources["strategy"] = "from bot-runs"
    elif facts.live.controllers:
        strategy = "v2_with_controllers"
        sources["strategy"] = "it reports controllers"
    values["strategy"] = strategy

    connector, pair, where = _market(facts)
    values["connector"], values["pair"] = connector, pair
    if connector:
        sources["connector"] = sources["pair"] = where

    config: dict[str, Any] = {}
    if facts.controller_configs:
        config = {"controllers": [_clean_config(c) for c in facts.controller_configs]}
        sources["config"] = "the live controller configs"
    else:
        deployed = {key: facts.deployment_config[key] for key in ("script", "script_config")
                    if facts.deployment_config.get(key)}
        if deployed:
            config = deployed
            sources["config"] = "the deploy body in bot-runs"
    values["config"] = json.dumps(config, indent=2, sort_keys=True)
    return AdoptForm(facts=facts, values=values, sources=sources)


def _on_server(server_id: int | None):
    """Bots of one server (None: the `default` server before any row exists: every bot)."""
    return true() if server_id is None else Bot.server_id == server_id


def _server_link(server: str | None) -> Hummingbot:
    """The link to the server the recovery desk looks at (`?server=`; default `default`)."""
    try:
        return fleet().by_name(server or DEFAULT_SERVER)
    except LookupError as exc:
        raise RecoveryError(f"No Hummingbot server is named {server!r}.") from exc


def _claimer(instance_name: str, server_id: int | None) -> Bot | None:
    """The definition (archived ones too) Hummingbot's `instance_name` already belongs to,
    on that server: the same name on another server is another bot."""
    query = select(Bot).where(_on_server(server_id), or_(
        Bot.instance_name == instance_name,
        Bot.instance_name.is_(None) & or_(
            Bot.name == instance_name,
            func.concat(LEGACY_PREFIX, Bot.name) == instance_name,
        ),
    )).order_by(Bot.instance_name.is_(None), Bot.id)
    return db.session.scalars(query).first()


def _claimers_of(names: list[str], server_id: int | None) -> list[Bot]:
    """Only the definitions on that server that could claim one of these live names (not
    the whole table)."""
    if not names:
        return []
    plain = [n for n in names] + [n[len(LEGACY_PREFIX):] for n in names
                                  if n.startswith(LEGACY_PREFIX)]
    return list(db.session.scalars(select(Bot).where(
        _on_server(server_id), or_(Bot.instance_name.in_(names), Bot.name.in_(plain)))))


def _live_snapshot(link: Hummingbot, *, fresh: bool = False) -> LiveSnapshot:
    return link.feed.snapshot(max_age=0 if fresh else None)


def orphan_adopt_form(instance_name: str, server: str | None = None) -> AdoptForm:
    """The prefilled adopt form of one orphan (GET /recovery/orphans/<name>?server=)."""
    link = _server_link(server)
    snapshot = _live_snapshot(link)
    if not snapshot.reachable:
        raise RecoveryError(f"Hummingbot is unreachable ({snapshot.error}).")
    claimer = _claimer(instance_name, link.server_id)
    if claimer is not None:
        raise RecoveryError(f"{instance_name} already belongs to the definition {claimer.name}.")
    live = snapshot.bots.get(instance_name)
    if live is None:
        raise OrphanGone(f"{instance_name} is not running in Hummingbot (any more).")
    facts = read_orphan_facts(link.require_client(), live, strict=False)
    return draft_adopt_form(facts)


@dataclass
class AdoptOutcome:
    bot: Bot
    created: bool  # False: it was adopted already (a double click, another admin)


class AdoptRejected(RecoveryError):
    """The form has errors; `form` carries the submitted values for re-rendering."""

    def __init__(self, form: AdoptForm, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.form, self.errors = form, errors


def adopt(instance_name: str, data: Mapping[str, Any], actor: str,
          server: str | None = None) -> AdoptOutcome:
    """Store a definition for a live bot, on the server that runs it. Idempotent per
    instance name and server; re-reads Hummingbot now for every live fact (that it runs, its
    account, its deploy body) and writes nothing when the bot is gone."""
    link = _server_link(server)
    claimer = _claimer(instance_name, link.server_id)
    if claimer is not None:
        return AdoptOutcome(bot=claimer, created=False)
    snapshot = _live_snapshot(link, fresh=True)
    if not snapshot.reachable:
        raise RecoveryError(f"Hummingbot is unreachable, so it cannot be confirmed that "
                            f"{instance_name} still runs; nothing was saved.")
    live = snapshot.bots.get(instance_name)
    if live is None:
        raise OrphanGone(f"{instance_name} is no longer running in Hummingbot (it went away "
                         "after the page was loaded). Nothing was saved.")
    facts = read_orphan_facts(link.require_client(), live, strict=True)

    submitted = {name: _str(data.get(name)) for name in BOT_FIELDS}
    form = AdoptForm(facts=facts, values=submitted, sources=draft_adopt_form(facts).sources)
    errors: dict[str, str] = {}
    try:
        fields = validate_bot(submitted, max_config_bytes=current_app.config["MAX_CONFIG_BYTES"])
    except ValidationError as exc:
        errors, fields = dict(exc.errors), None
    if fields is not None and db.session.get(Bot, fields.id) is not None:
        errors["id"] = "is already used by another bot."
    if fields is not None and _name_taken(fields.name):
        errors["name"] = "is already used by another bot."
    account = submitted["account_identifier"].strip()
    if facts.account and "account_identifier" not in errors and account != facts.account:
        errors["account_identifier"] = (f"must be {facts.account}: Hummingbot runs this bot "
                                        "with that credentials profile.")
    if errors or fields is None:
        raise AdoptRejected(form, errors)

    deploy_settings = facts.deploy_settings
    bot = Bot(**fields.as_dict(), status="running", instance_name=instance_name,
              deploy_settings=deploy_settings, last_seen_status=live_word(live),
              last_seen_at=snapshot.fetched_at)
    if link.server_id is not None:
        bot.server_id = link.server_id
    db.session.add(bot)
    try:
        db.session.flush()
    except IntegrityError as exc:  # another request adopted it (or took the id) meanwhile
        db.session.rollback()
        claimer = _claimer(instance_name, link.server_id)
        if claimer is not None:
            return AdoptOutcome(bot=claimer, created=False)
        raise AdoptRejected(form, {"id": "is already used by another bot."}) from exc
    record_event(bot, "adopted", actor, to_status="running", details={
        "instance_name": instance_name,
        "live_status": live_word(live),
        "bot_run_id": facts.run.id if facts.run else None,
        "deployment_config": facts.deployment_config or None,
        "deploy_settings": deploy_settings,
        "after": fields.as_dict(),
    })
    db.session.commit()
    link.feed.invalidate()
    return AdoptOutcome(bot=bot, created=True)


# ------------------------------------------------------------------------------ overview
LIVE_BADGES = {"trading_stopped": "stopped_container_up", "stopped": "stopped_container_up"}


def live_badge(live: LiveBot) -> dict[str, Any]:
    """The badge of a live bot seen without a definition, shaped like a BotRow for the
    `badge` macro."""
    word = live_word(live)
    if word == "stopped_active":
        status = "stopped_container_up" if live.controllers else "running_script"
    else:
        status = LIVE_BADGES.get(word, word)
    return {"display_status": status, "label": BADGES.get(status, status), "stale": False,
            "seen_at": None}


@dataclass(frozen=True)
class OrphanRow:
    live: LiveBot
    form: AdoptForm | None  # None: the page loads it on demand, or it cannot be adopted

    @property
    def adoptable(self) -> bool:
        """A name that breaks Hummingbot's own rule is shown as text only: no link, no form."""
        return is_instance_name(self.live.name)


@dataclass(frozen=True)
class StuckRow:
    row: BotRow
    since: datetime | None
    live: LiveBot | None  # what Hummingbot reports for it, if anything


@dataclass(frozen=True)
class ArchivedRow:
    bot: Bot
    live: LiveBot | None  # an archived definition whose bot still runs


@dataclass(frozen=True)
class Overview:
    snapshot: LiveSnapshot
    orphans: list[OrphanRow]
    missing: list[BotRow]
    back: list[BotRow]  # stopped by an archive Hummingbot accepted, yet listed again
    stuck: list[StuckRow]
    archived: list[ArchivedRow]
    archived_total: int
    grace_seconds: int
    archived_running: list[ArchivedRow] = field(default_factory=list)  # they still trade
    relinks: dict[str, tuple[str, str]] = field(default_factory=dict)  # bot id -> orphan, why

    @property
    def relink_of_orphan(self) -> dict[str, BotRow]:
        """orphan name -> the missing definition it is."""
        rows = {row.bot.id: row for row in self.missing}
        return {name: rows[bot_id] for bot_id, (name, _) in self.relinks.items()}

    @property
    def attention(self) -> int | None:
        """None while Hummingbot cannot be asked: orphans and missing bots are unknown then,
        and an unknown count is never shown as a number."""
        if not self.snapshot.reachable:
            return None
        return (len(self.orphans) + len(self.missing) + len(self.back) + len(self.stuck)
                + len(self.archived_running))


def _grace() -> timedelta:
    return timedelta(seconds=current_app.config["DEPLOY_GRACE_SECONDS"])


def overview(*, prefill: int = PREFILL_INLINE, server: str | None = None) -> Overview:
    """Every section of the recovery page, for one Hummingbot server. The first `prefill`
    orphans get their adopt form filled in (two Hummingbot calls each); the page loads the
    others' when shown. Polls pass 0: one status call (the shared, cached one) and a few
    queries."""
    link = _server_link(server)
    on_server = _on_server(link.server_id)
    snapshot = _live_snapshot(link)
    orphan_rows: list[OrphanRow] = []
    missing: list[BotRow] = []
    back: list[BotRow] = []
    archived_running: list[ArchivedRow] = []
    relinks: dict[str, tuple[str, str]] = {}
    if snapshot.reachable:
        claimers = _claimers_of(list(snapshot.bots), link.server_id)
        live_orphans = orphans(claimers, snapshot)
        archived_running = [ArchivedRow(bot=bot, live=live) for bot in claimers
                            if bot.archived_at is not None
                            and (live := match_live(bot, snapshot.bots)) is not None]
        client = link.require_client() if prefill else None
        for index, live in enumerate(live_orphans):
            form = None
            if client is not None and index < prefill and is_instance_name(live.name):
                form = draft_adopt_form(read_orphan_facts(client, live, strict=False))
            orphan_rows.append(OrphanRow(live=live, form=form))
        running = db.session.scalars(select(Bot).where(
            on_server, Bot.archived_at.is_(None), Bot.status == "running")
            .order_by(Bot.name, Bot.id))
        missing = [row for row in merge_rows(running, snapshot)
                   if row.display_status in ("missing", "crashed")]
        unconfirmed = db.session.scalars(select(Bot).where(
            on_server, Bot.archived_at.is_(None), Bot.status == "stopped",
            Bot.last_error.startswith(ARCHIVE_UNCONFIRMED, autoescape=True),
        ).order_by(Bot.name, Bot.id))
        back = [row for row in merge_rows(unconfirmed, snapshot) if row.back_after_archive]
        # What bot-runs said about the orphans whose forms were filled in; a poll has none,
        # and Re-link checks again with Hummingbot when it is clicked.
        known = {row.live.name: _known(row.form.facts) for row in orphan_rows if row.form}
        relinks = pair_up([row.bot for row in missing],
                          [o.name for o in live_orphans if HUMMINGBOT_NAME.match(o.name)], known)

    archived_query = select(Bot).where(on_server, Bot.archived_at.is_not(None))
    archived = [ArchivedRow(bot=bot, live=match_live(bot, snapshot.bots))
                for bot in db.session.scalars(
                    archived_query.order_by(Bot.archived_at.desc(), Bot.id).limit(ARCHIVED_SHOWN))]
    archived_total = db.session.scalar(
        select(func.count()).select_from(archived_query.subquery()))
    return Overview(snapshot=snapshot, orphans=orphan_rows, missing=missing, back=back,
                    stuck=_stuck(snapshot, on_server), archived=archived,
                    archived_total=archived_total,
                    grace_seconds=int(_grace().total_seconds()),
                    archived_running=sorted(archived_running, key=lambda r: r.bot.name),
                    relinks=relinks)


def _since(bots: list[Bot]) -> dict[str, datetime | None]:
    """When each transitional bot entered its status: the deploy request, or the event that
    moved it to `stopping`."""
    since: dict[str, datetime | None] = {b.id: b.deploy_requested_at for b in bots
                                         if b.status == "deploying"}
    stopping = [b.id for b in bots if b.status == "stopping"]
    if stopping:
        entered = select(BotEvent.bot_id, func.max(BotEvent.occurred_at)).where(
            BotEvent.bot_id.in_(stopping), BotEvent.to_status == "stopping",
            BotEvent.from_status.is_distinct_from("stopping"),
        ).group_by(BotEvent.bot_id)
        since.update({bot_id: at for bot_id, at in db.session.execute(entered)})
    for bot in bots:
        if since.get(bot.id) is None:
            since[bot.id] = bot.updated_at
    return since


def live_for_transition(bot: Bot, snapshot: LiveSnapshot) -> LiveBot | None:
    """What Hummingbot reports for a deploying or stopping bot: its instance, or for a deploy
    whose answer never came, the `<name>-<request tag>-<timestamp>` it would have made."""
    live = match_live(bot, snapshot.bots)
    if live is None and bot.status == "deploying" and bot.deploy_request_id:
        prefix = lifecycle.sent_instance_name(bot, bot.deploy_request_id) + "-"
        found = [b for name, b in snapshot.bots.items() if name.startswith(prefix)]
        live = found[0] if len(found) == 1 else None
    return live


def _stuck(snapshot: LiveSnapshot, on_server) -> list[StuckRow]:
    bots = list(db.session.scalars(select(Bot).where(
        on_server, Bot.archived_at.is_(None), Bot.status.in_(TRANSITIONAL))
        .order_by(Bot.name, Bot.id)))
    since = _since(bots)
    cutoff = utcnow() - _grace()
    stuck = [bot for bot in bots if since[bot.id] is None or since[bot.id] < cutoff]
    rows = merge_rows(stuck, snapshot)
    return [StuckRow(row=row, since=since[row.bot.id],
                     live=live_for_transition(row.bot, snapshot) if snapshot.reachable else None)
            for row in rows]


# ------------------------------------------------------------------- missing, stuck, archived
def redeploy_form(bot: Bot) -> dict[str, str]:
    """The deploy form's values for a redeploy: the settings stored from the last deploy."""
    return lifecycle.deploy_form_defaults(bot)


def stored_settings_invalid(bot: Bot) -> bool:
    return bool(bot.deploy_settings) and settings_from(bot.deploy_settings) is None


def redeploy(bot_id: str, form: Mapping[str, Any], actor: str) -> Bot:
    """Deploy a missing bot again with the settings the operator confirmed, through the
    lifecycle (intent first, one remote call, never retried). ValidationError for a bad
    form."""
    bot = _bot(bot_id)
    settings = lifecycle.parse_deploy_settings(dict(form))
    try:
        return lifecycle.deploy(bot.id, settings, actor)
    except lifecycle.LifecycleError as exc:
        raise RecoveryError(str(exc)) from exc


def _known(facts: OrphanFacts) -> Known:
    strategy = facts.run.strategy_name if facts.run is not None else None
    return Known(account=facts.account, strategy=strategy or None)


def relink(bot_id: str, instance_name: str, actor: str) -> Bot:
    """Store the orphan's instance name on the missing definition that it is (same deploy
    request, or same name, account and strategy): the definition keeps its id and history,
    instead of an adopt creating `<name>-2`. Checked again with Hummingbot now."""
    bot = db.session.scalars(select(Bot).where(Bot.id == bot_id).with_for_update()).first()
    if bot is None:
        raise RecoveryError("That bot no longer exists.")
    if bot.archived_at is not None or bot.status in TRANSITIONAL:
        raise RecoveryError(f"{bot.name} is {bot.status}; nothing was re-linked.")
    # Not recorded: that would commit, and end the row lock taken above.
    link = link_for(bot)
    snapshot = link.feed.snapshot(max_age=0, record=False)
    if not snapshot.reachable:
        raise RecoveryError("Hummingbot is unreachable, so the re-link cannot be checked; "
                            "nothing was changed.")
    current = match_live(bot, snapshot.bots)
    if current is not None:
        raise RecoveryError(f"{bot.name} runs as {current.name}; nothing was re-linked.")
    live = snapshot.bots.get(instance_name)
    if live is None:
        raise OrphanGone(f"{instance_name} is not running in Hummingbot (any more); nothing "
                         "was re-linked.")
    claimer = _claimer(instance_name, bot.server_id)
    if claimer is not None:
        raise RecoveryError(f"{instance_name} already belongs to the definition "
                            f"{claimer.name}; nothing was re-linked.")
    facts = read_orphan_facts(link.require_client(), live, strict=True)
    reason = same_bot(bot, instance_name, _known(facts))
    if reason is None:
        raise RecoveryError(f"{instance_name} does not look like {bot.name} (its name, account "
                            "or strategy differ); adopt it instead. Nothing was re-linked.")
    before, before_name = bot.status, bot.instance_name
    bot.instance_name = instance_name
    bot.status = "running"
    bot.last_error = None
    bot.last_seen_status, bot.last_seen_at = live_word(live), snapshot.fetched_at
    record_event(bot, "relinked", actor, from_status=before, to_status="running", details={
        "from_instance": before_name, "instance_name": instance_name, "reason": reason,
        "live_status": live_word(live), "bot_run_id": facts.run.id if facts.run else None})
    try:
        db.session.commit()
    except IntegrityError as exc:  # adopted by someone else meanwhile
        db.session.rollback()
        raise RecoveryError(f"{instance_name} was just claimed by another definition; "
                            "nothing was re-linked.") from exc
    link.feed.invalidate()
    return bot


def mark_missing_stopped(bot_id: str, actor: str) -> Bot:
    """Accept that a missing bot is not running, after checking Hummingbot again."""
    bot = _bot(bot_id)
    if bot.archived_at is not None or bot.status != "running":
        raise RecoveryError(f"{bot.name} is {bot.status}, not missing; nothing was changed.")
    snapshot = _live_snapshot(link_for(bot), fresh=True)
    if not snapshot.reachable:
        raise RecoveryError("Hummingbot is unreachable, so it cannot be checked that "
                            f"{bot.name} is really gone; nothing was changed.")
    live = match_live(bot, snapshot.bots)
    if live is not None:
        raise RecoveryError(f"{bot.name} is running in Hummingbot again (as {live.name}); "
                            "it was not marked stopped.")
    return lifecycle.mark_stopped(bot.id, actor)


@dataclass(frozen=True)
class SettleOutcome:
    bot: Bot
    before: str
    message: str
    changed: bool


def settle(bot_id: str, actor: str) -> SettleOutcome:
    """Reconcile this one row now; when nothing changes, say (and record) what Hummingbot
    reports instead."""
    bot = _bot(bot_id)
    before = bot.status
    if bot.archived_at is not None or before not in TRANSITIONAL:
        raise RecoveryError(f"{bot.name} is {before}; there is nothing to settle.")
    report = lifecycle.reconcile(actor=actor, only=bot.id)
    if not report.ran:
        raise RecoveryError(f"Nothing was settled: {report.reason}.")
    db.session.expire_all()
    bot = _bot(bot_id)
    if bot.status != before:
        where = f" as {bot.instance_name}" if bot.status == "running" else ""
        message = f"{bot.name} settled: {before} → {bot.status}{where}."
        if bot.last_error and bot.status == "deploy_failed":
            message += f" {bot.last_error}"
        return SettleOutcome(bot=bot, before=before, message=message, changed=True)
    live = live_for_transition(bot, _live_snapshot(link_for(bot)))
    seen = f"reports it as {live.name} ({live_word(live)})" if live else "does not report it"
    record_event(bot, "settle_checked", actor, from_status=before, to_status=before,
                 details={"hummingbot": live_word(live) if live else "absent",
                          "live_name": live.name if live else None})
    db.session.commit()
    message = f"{bot.name} is still {before}: Hummingbot {seen}."
    if before == "deploying":
        message += " It is marked failed once the grace period has passed."
    return SettleOutcome(bot=bot, before=before, message=message, changed=False)


def restore(bot_id: str, actor: str) -> Bot:
    """Restore an archived definition (StateError when its name is in use again)."""
    return restore_bot(_bot(bot_id), actor)


def _bot(bot_id: str) -> Bot:
    bot = db.session.get(Bot, bot_id)
    if bot is None:
        raise RecoveryError("That bot no longer exists.")
    return bot


# ------------------------------------------------------------------------- recreate by hand
def recreate(data: Mapping[str, Any], actor: str) -> Bot:
    """Write a definition from scratch; nothing is deployed (the page offers it next)."""
    return create_bot(data, actor)


# ---------------------------------------------------------------------------------- import
@dataclass(frozen=True)
class ImportPreview:
    plan: ImportPlan
    filename: str
    token: str  # the document, signed, for the confirmation
    warnings: list[str] = field(default_factory=list)


def running_warnings(plan: ImportPlan) -> list[str]:
    """What to say before writing entries that claim `running`: that nothing runs them (they
    would be Missing at once), or that Hummingbot cannot be asked. The shared status call."""
    claiming = [e for e in plan.entries if e.status == "running" and e.action == "create"]
    if not claiming:
        return []
    warnings = []
    for server in sorted({entry.server for entry in claiming}):
        entries = [entry for entry in claiming if entry.server == server]
        snapshot = _live_snapshot(_server_link(server))
        where = "Hummingbot" if server == DEFAULT_SERVER else f"Hummingbot server {server}"
        if not snapshot.reachable:
            warnings.append(f"{where} is unreachable ({snapshot.error}), so it cannot be "
                            f"checked that the {len(entries)} new entries marked running "
                            "really run.")
            continue
        warnings += [f"{entry.key}: marked running, but {where} runs "
                     f"nothing under {entry.instance_name or entry.fields.name}; it will show "
                     "as Missing (redeploy or mark it stopped from the recovery desk)."
                     for entry in not_running(
                         ImportPlan(plan.source_format, entries), set(snapshot.bots))]
    return warnings


class PreviewChanged(RecoveryError):
    """The bots changed between preview and confirmation: here is the new preview."""

    def __init__(self, preview: ImportPreview):
        super().__init__("The bots changed since the preview was made; review the new one. "
                         "Nothing was imported.")
        self.preview = preview


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=IMPORT_SALT)


def _plan_digest(plan: ImportPlan) -> str:
    decided = [[e.fields.id, e.action, e.reason, sorted(e.changes)] for e in plan.entries]
    return hashlib.sha256(json.dumps(decided).encode()).hexdigest()


def _preview(text: str, filename: str) -> ImportPreview:
    plan = plan_import(text)
    token = _serializer().dumps({"document": text, "filename": filename,
                                 "digest": _plan_digest(plan)})
    return ImportPreview(plan=plan, filename=filename, token=token,
                         warnings=running_warnings(plan))


def preview_import(data: bytes, filename: str | None) -> ImportPreview:
    """Read and check an uploaded file and decide every entry, writing nothing. Raises
    ImportFileError naming the bad entry."""
    if not data:
        raise ImportFileError("Choose a JSON file to upload (the one chosen was empty).")
    try:
        text = data.decode(json.detect_encoding(data))
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"The file is not valid JSON: {exc}") from exc
    return _preview(text, secure_filename(filename or "") or "upload.json")


def confirm_import(token: str, actor: str) -> tuple[ImportPlan, str]:
    """Apply a previewed file: its signature checked, the file checked and planned again
    against the table as it is now, and applied only if that plan is the one shown."""
    try:
        payload = _serializer().loads(token, max_age=IMPORT_MAX_AGE)
    except SignatureExpired as exc:
        raise ImportFileError("The preview is more than an hour old; upload the file again. "
                              "Nothing was imported.") from exc
    except BadSignature as exc:
        raise ImportFileError("The confirmation was not made by this preview; upload the "
                              "file again. Nothing was imported.") from exc
    text, filename = payload["document"], payload["filename"]
    preview = _preview(text, filename)
    if _plan_digest(preview.plan) != payload["digest"]:
        raise PreviewChanged(preview)
    return apply_import(preview.plan, actor, source=f"upload {filename}"), filename
