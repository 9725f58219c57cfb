"""Bot Management pages: the list, a bot's detail, the admin forms and lifecycle actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from . import lifecycle, pickers
from .access import admin_only, get_bot_or_404, is_htmx
from .alerts.pages import open_alerts_box, open_alerts_for_bot, remember_firing_count
from .disclosure import viewer_redaction
from .edit_merge import base_values, merge_edit, saved_values
from .fleet import fleet
from .history.views import (
    bot_performance,
    landing_url_for,
    list_history,
    now_to_the_minute,
    shared_render,
    viewer_page_state,
    viewer_scope,
)
from .models import Bot, db
from .registry import (
    NEEDS_ATTENTION,
    BotFilters,
    ConflictError,
    StateError,
    actor_name,
    bot_history,
    create_bot,
    filtered_bots,
    known_accounts,
    last_edit,
    list_summary,
    restore_bot,
    update_bot,
)
from .rows_cache import list_figures
from .servers_views import chosen_server_id
from .status import BADGES, merge_rows
from .validation import BOT_FIELDS, ValidationError

bp = Blueprint("bots", __name__)


@bp.app_template_filter("epoch_utc")
def epoch_utc(value: float | None) -> str:
    """A Hummingbot log timestamp (seconds since the epoch) as UTC; '' when absent or absurd."""
    try:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


@bp.app_context_processor
def picker_helpers():
    # Functions, not values: only the forms that show a picker ask Hummingbot (cached).
    return {"picker_choices": pickers.choices, "new_account_url": pickers.new_account_url}


def wants_fragment() -> bool:
    """An htmx poll or swap, not a boosted navigation or a history restore."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _page_number() -> int:
    raw = request.args.get("page", "1")
    # isascii: "²".isdigit() is True but int("²") raises.
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


@bp.route("/")
def home():
    return redirect(landing_url_for(current_user) or url_for("bots.index"))


@bp.route("/bots")
def index():
    filters = BotFilters.from_args(request.args)
    if not current_user.is_admin:
        filters = replace(filters, server="")  # clients never see server names
    # The figures before the status: the servers' rows are the snapshot's look at the
    # servers, and a key read before the rows it keys is never newer than they are (a refresh
    # recorded meanwhile moves the generation: the next view renders again).
    generation, firing, servers = list_figures(
        firing=current_user.is_admin and not wants_fragment())
    if firing is not None:
        remember_firing_count(firing)
    snapshot = fleet().snapshot(rows=servers)  # every server's, fetched concurrently
    scope = (current_user.role, current_user.account_identifier)
    key = (*scope, tuple(sorted(request.args.items(multi=True))), snapshot.cache_key,
           generation)

    def render_rows() -> str:
        summary = list_summary(filters)
        page = db.paginate(filtered_bots(filters), page=_page_number(),
                           per_page=current_app.config["PAGE_SIZE"], error_out=False,
                           count=False)
        page.total = summary.matching  # counted with the totals, in the same statement
        return Markup(render_template(  # noqa: S704 - Jinja output, escaped already
            "bots/_rows.html", page=page, rows=merge_rows(page.items, snapshot),
            snapshot=snapshot, as_of=snapshot.fetched_at, filters=filters, summary=summary,
            badges=BADGES, attention=NEEDS_ATTENTION, server_names=server_names,
            # Sparklines and account totals: their samples are written with a fresh snapshot,
            # which changes the key, and an entry lives no longer than one status period.
            **list_history(page.items)))

    server_names = fleet().names(refresh=False)
    cache = current_app.extensions["rows_cache"]
    rows_html = cache.get_or_render(key, render_rows)
    if wants_fragment():
        return rows_html
    filters_html = cache.get_or_render(
        ("filters", *scope, filters, generation, tuple(server_names.items())),
        lambda: Markup(render_template(  # noqa: S704 - Jinja output, escaped already
            "bots/_filters.html", accounts=known_accounts(), filters=filters,
            badges=BADGES, attention=NEEDS_ATTENTION,
            server_names=server_names if current_user.is_admin else {})))
    return render_template("bots/index.html", rows_html=rows_html, filters_html=filters_html,
                           filters=filters, poll_seconds=current_app.config["STATUS_POLL_SECONDS"])


@bp.route("/bots/<bot_id>")
def detail(bot_id: str):
    # The keys first, then the rows: a block shared under them is never older than the table.
    state = None if wants_fragment() else viewer_page_state(bot_id=bot_id)
    bot = get_bot_or_404(bot_id)
    snapshot = fleet().server_snapshot(bot.server_id, rows=state and state.servers)
    [row] = merge_rows([bot], snapshot)
    context = {"bot": bot, "row": row, "snapshot": snapshot, "as_of": snapshot.fetched_at,
               "poll_seconds": current_app.config["STATUS_POLL_SECONDS"]}
    if state is None:
        return render_template("bots/_live.html", **context)
    # What Hummingbot reports: the same for every viewer of one scope until the next status
    # snapshot or change to the bot.
    live = shared_render(
        ("bot-live", bot.id, *viewer_scope(), snapshot.cache_key, state.generation),
        lambda: Markup(render_template("bots/_live.html", **context)))  # noqa: S704 - escaped
    minute = now_to_the_minute()
    # Its definition, history and open alerts: keyed by the generation (a change to the bot or
    # a new event bumps it) and the open alerts' fingerprint.
    stored = shared_render(
        ("bot-stored", bot.id, *viewer_scope(), state.generation, state.open_alerts, minute),
        lambda: _render_stored(bot, minute))
    return render_template("bots/detail.html", live=live, stored=stored,
                           perf=bot_performance(bot, request.args.get("range"), state),
                           **context)


def _render_stored(bot: Bot, now: datetime) -> dict[str, Markup]:
    """What the bot's page shows from PostgreSQL alone, as the viewer may read it."""
    events = bot_history(bot)
    last_error = bot.last_error
    redaction = viewer_redaction(current_user, [bot], events)
    if redaction is not None:
        events = [redaction.event(bot, event) for event in events]
        last_error = redaction.text(bot, last_error)
    alerts = open_alerts_for_bot(bot.id, current_user)
    return {"alerts": open_alerts_box(alerts, {"bot_id": bot.id}, now=now),
            "definition": Markup(render_template(  # noqa: S704 - Jinja output, escaped
                "bots/_stored.html", bot=bot, events=events, last_error=last_error, now=now))}


def _form_input() -> dict[str, str]:
    return {field: request.form.get(field, "") for field in BOT_FIELDS}


@bp.route("/bots/new", methods=["GET", "POST"])
@admin_only
def new():
    if request.method == "GET":
        return render_template("bots/form.html", bot=None, values={"config": "{}"}, errors={})
    values = _form_input()
    values["server"] = request.form.get("server", "")
    try:
        pickers.validate_form(values)
        server_id = chosen_server_id(values["server"], values["account_identifier"])
        bot = create_bot(values, actor_name(current_user), server_id=server_id)
    except ValidationError as exc:
        return render_template("bots/form.html", bot=None, values=values, errors=exc.errors), 422
    flash(f"Bot {bot.name} created.", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(bot_id: str):
    """The form carries the version and the values it was loaded from, so a conflict is a
    three-way merge (edit_merge) instead of a choice between two whole forms."""
    bot = get_bot_or_404(bot_id)
    if request.method == "GET":
        return render_template("bots/form.html", bot=bot, values=None, errors={},
                               base=saved_values(bot), version=bot.version)
    values = _form_input()
    base = base_values(request.form)
    try:
        pickers.validate_form(values, stored=bot)
        update_bot(bot, values, actor_name(current_user),
                   expected_version=request.form.get("version"))
    except ValidationError as exc:
        # Still based on what the form was loaded from: a later save must still conflict.
        return render_template("bots/form.html", bot=bot, values=values, errors=exc.errors,
                               base=base or saved_values(bot),
                               version=request.form.get("version", bot.version)), 422
    except ConflictError:
        db.session.rollback()
        bot = get_bot_or_404(bot_id)
        theirs = saved_values(bot)
        merge = merge_edit(theirs, base, values)
        # The next save is based on what is saved now, with the merged values in the form.
        return render_template("bots/form.html", bot=bot, values={**values, **merge.values},
                               errors={}, merge=merge, saved_by=last_edit(bot), base=theirs,
                               version=bot.version), 409
    flash(f"Bot {bot.name} saved.", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/archive", methods=["POST"])
@admin_only
def archive(bot_id: str):
    bot = get_bot_or_404(bot_id)
    try:
        lifecycle.archive(bot.id, actor_name(current_user))
        flash(f"Bot {bot.name} archived. Restore it from its page at any time.", "success")
    except lifecycle.StillRunning as exc:
        db.session.rollback()
        # Refused; offered instead: stop and archive it in Hummingbot, then here.
        return _confirm_page(get_bot_or_404(bot_id), "stop-archive", refusal=str(exc),
                             archive_definition=True, live=exc.live), 409
    except lifecycle.LifecycleError as exc:
        flash(str(exc), "error")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/restore", methods=["POST"])
@admin_only
def restore(bot_id: str):
    bot = get_bot_or_404(bot_id)
    try:
        restore_bot(bot, actor_name(current_user))
        flash(f"Bot {bot.name} restored.", "success")
    except StateError as exc:
        flash(str(exc), "error")
    return redirect(url_for("bots.detail", bot_id=bot.id))


# ------------------------------------------------------------------------------ lifecycle
@bp.route("/bots/<bot_id>/deploy", methods=["GET", "POST"])
@admin_only
def deploy(bot_id: str):
    bot = get_bot_or_404(bot_id)
    if request.method == "GET":
        return render_template("bots/deploy.html", bot=bot,
                               values=lifecycle.deploy_form_defaults(bot), errors={},
                               bot_server=fleet().names().get(bot.server_id))
    values = request.form.to_dict()
    try:
        settings = lifecycle.parse_deploy_settings(values)
        server_id = chosen_server_id(values["server"]) if values.get("server") else None
        bot = lifecycle.deploy(bot.id, settings, actor_name(current_user), server_id=server_id)
    except ValidationError as exc:
        return render_template("bots/deploy.html", bot=bot, values=values,
                               errors=exc.errors), 422
    except lifecycle.LifecycleError as exc:
        flash(str(exc), "error")
        return redirect(url_for("bots.detail", bot_id=bot_id))
    flash(*lifecycle.deploy_outcome(bot))
    return redirect(url_for("bots.detail", bot_id=bot.id))


ACTIONS = {
    # action: (title, explanation, asks about open orders, button class)
    "start": ("Start", "Hummingbot resumes trading in the running container.", False, ""),
    "stop": ("Stop", "Trading stops; the container stays up and can be started again.",
             True, "danger"),
    "stop-archive": ("Stop and archive in Hummingbot",
                     "Trading stops, then Hummingbot removes the container and archives its "
                     "files. The definition stays here unless you archive it too: you can "
                     "deploy it again later.",
                     True, "danger"),
}


def _confirm_page(bot, action: str, **extra) -> str:
    title, explanation, asks_orders, style = ACTIONS[action]
    return render_template("bots/confirm.html", bot=bot, action=action, title=title,
                           explanation=explanation, asks_orders=asks_orders, style=style,
                           **extra)


@bp.route("/bots/<bot_id>/<any(start, stop, 'stop-archive'):action>", methods=["GET", "POST"])
@admin_only
def lifecycle_action(bot_id: str, action: str):
    """GET shows a confirmation (it works without JavaScript); POST does it."""
    bot = get_bot_or_404(bot_id)
    if request.method == "GET":
        return _confirm_page(bot, action,
                             archive_definition=request.args.get("archive_definition") == "1")
    actor = actor_name(current_user)
    # Leaving orders on the exchange must be asked for: Hummingbot's own default leaves them.
    cancel_orders = request.form.get("cancel_orders") != "0"
    try:
        if action == "start":
            lifecycle.start(bot.id, actor)
            flash(f"Start sent to {bot.name}.", "success")
        elif action == "stop":
            lifecycle.stop(bot.id, actor, cancel_orders=cancel_orders)
            flash(f"Stop sent to {bot.name}.", "success")
        else:
            also = request.form.get("archive_definition") == "1" and not bot.is_archived
            bot = lifecycle.stop_and_archive(bot.id, actor, cancel_orders=cancel_orders,
                                             archive_definition=also)
            flash(f"{bot.name} is stopping; Hummingbot archives it in the background"
                  + ("; the definition is archived once it has stopped." if also else "."),
                  "info")
    except lifecycle.LifecycleError as exc:
        flash(str(exc), "error")
    return redirect(url_for("bots.detail", bot_id=bot_id))
