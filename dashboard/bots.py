"""Bot Management pages: the list, a bot's detail, and the admin forms."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .access import admin_only, get_bot_or_404, is_htmx
from .models import BOT_STATUSES, db
from .registry import (
    BotFilters,
    ConflictError,
    StateError,
    actor_name,
    archive_bot,
    bot_history,
    create_bot,
    filtered_bots,
    known_accounts,
    restore_bot,
    update_bot,
)
from .validation import BOT_FIELDS, ValidationError

bp = Blueprint("bots", __name__)


def wants_fragment() -> bool:
    """An htmx poll or swap, not a boosted navigation or a history restore."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


@bp.route("/")
def home():
    return redirect(url_for("bots.index"))


@bp.route("/bots")
def index():
    filters = BotFilters.from_args(request.args)
    page = db.paginate(
        filtered_bots(filters),
        page=_page_number(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
        count=True,
    )
    context = {"page": page, "filters": filters, "statuses": BOT_STATUSES}
    if wants_fragment():
        response = render_template("bots/_rows.html", **context)
    else:
        response = render_template("bots/index.html", accounts=known_accounts(), **context)
    return response


@bp.route("/bots/<bot_id>")
def detail(bot_id: str):
    bot = get_bot_or_404(bot_id)
    return render_template("bots/detail.html", bot=bot, events=bot_history(bot))


def _form_input() -> dict[str, str]:
    return {field: request.form.get(field, "") for field in BOT_FIELDS}


@bp.route("/bots/new", methods=["GET", "POST"])
@admin_only
def new():
    if request.method == "GET":
        return render_template("bots/form.html", bot=None, values={"config": "{}"}, errors={})
    values = _form_input()
    try:
        bot = create_bot(values, actor_name(current_user))
    except ValidationError as exc:
        return render_template("bots/form.html", bot=None, values=values, errors=exc.errors), 422
    flash(f"Bot {bot.name} created.", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(bot_id: str):
    bot = get_bot_or_404(bot_id)
    if request.method == "GET":
        return render_template("bots/form.html", bot=bot, values=None, errors={})
    values = _form_input()
    try:
        update_bot(bot, values, actor_name(current_user),
                   expected_version=request.form.get("version"))
    except ValidationError as exc:
        return render_template("bots/form.html", bot=bot, values=values, errors=exc.errors), 422
    except ConflictError:
        db.session.rollback()
        bot = get_bot_or_404(bot_id)
        conflict = ("Someone else saved this bot while you were editing. Your changes were not "
                    "saved: the form shows them beside the current values; review and save again.")
        return render_template("bots/form.html", bot=bot, values=values, errors={},
                               conflict=conflict), 409
    flash(f"Bot {bot.name} saved.", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/archive", methods=["POST"])
@admin_only
def archive(bot_id: str):
    bot = get_bot_or_404(bot_id)
    try:
        archive_bot(bot, actor_name(current_user))
        flash(f"Bot {bot.name} archived. Restore it from its page at any time.", "success")
    except StateError as exc:
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
