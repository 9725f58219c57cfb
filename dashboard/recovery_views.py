"""The recovery desk pages (admins only; 404 for clients). Views read input, call one service
function in `recovery.py`, and render."""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from . import lifecycle, pickers, recovery
from .access import admin_only, get_bot_or_404
from .bots import wants_fragment
from .fleet import fleet
from .models import Bot
from .registry import StateError, actor_name
from .servers import DEFAULT_SERVER, NAME_RULE
from .transfer import ImportFileError
from .validation import BOT_FIELDS, ValidationError, is_instance_name

bp = Blueprint("recovery", __name__, url_prefix="/recovery")


@bp.context_processor
def recovery_helpers():
    return {"live_badge": recovery.live_badge}


def _back():
    return redirect(url_for("recovery.index"))


# The desk looks at one Hummingbot server at a time (`?server=`, default `default`); its own
# links keep the server chosen.
SERVER_ENDPOINTS = {"recovery.index", "recovery.adopt_form", "recovery.adopt"}


@bp.url_defaults
def keep_server(endpoint: str, values: dict) -> None:
    server = g.get("recovery_server")
    if server and server != DEFAULT_SERVER and endpoint in SERVER_ENDPOINTS:
        values.setdefault("server", server)


def _server() -> str | None:
    server = request.args.get("server") or None
    if server is not None and not NAME_RULE.match(server):
        abort(404)
    g.recovery_server = server
    return server


@bp.route("")
@admin_only
def index():
    fragment = wants_fragment()
    # A poll keeps the adopt forms already on the page (hx-preserve) and loads new ones
    # on demand, so it costs one shared status call, not two calls per orphan.
    server = _server()
    try:
        overview = recovery.overview(prefill=0 if fragment else recovery.PREFILL_INLINE,
                                     server=server)
    except recovery.RecoveryError:
        abort(404)
    context = {"server": server or DEFAULT_SERVER, "servers": list(fleet().names().values()),
               "overview": overview, "snapshot": overview.snapshot,
               "as_of": overview.snapshot.fetched_at,
               "poll_seconds": current_app.config["STATUS_POLL_SECONDS"]}
    if fragment:
        return render_template("recovery/_sections.html", **context)
    return render_template("recovery/index.html", **context)


def _instance_name_or_404(instance_name: str) -> str:
    if not is_instance_name(instance_name):
        abort(404)
    return instance_name


@bp.route("/orphans/<instance_name>")
@admin_only
def adopt_form(instance_name: str):
    instance_name = _instance_name_or_404(instance_name)
    try:
        form = recovery.orphan_adopt_form(instance_name, _server())
    except recovery.RecoveryError as exc:
        if wants_fragment():  # a form loading into the page: say why in its place
            return render_template("recovery/_adopt_gone.html", instance_name=instance_name,
                                   message=str(exc))
        flash(str(exc), "error")
        return _back()
    template = "recovery/_adopt_form.html" if wants_fragment() else "recovery/adopt.html"
    return render_template(template, form=form, errors={})


@bp.route("/orphans/<instance_name>/adopt", methods=["POST"])
@admin_only
def adopt(instance_name: str):
    instance_name = _instance_name_or_404(instance_name)
    try:
        outcome = recovery.adopt(instance_name, request.form, actor_name(current_user),
                                 _server())
    except recovery.AdoptRejected as exc:
        return render_template("recovery/adopt.html", form=exc.form, errors=exc.errors), 422
    except recovery.RecoveryError as exc:
        flash(str(exc), "error")
        return _back()
    bot = outcome.bot
    if outcome.created:
        flash(f"Adopted {instance_name}: the definition {bot.name} is stored, for account "
              f"{bot.account_identifier}.", "success")
    else:
        flash(f"{instance_name} already belongs to the definition {bot.name}; nothing new "
              "was stored.", "info")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/bots/<bot_id>/redeploy", methods=["GET", "POST"])
@admin_only
def redeploy(bot_id: str):
    """The deploy form's own confirmation, filled in from the stored settings; POST deploys
    what the operator confirmed there, and comes back to the desk."""
    bot = get_bot_or_404(bot_id)
    context = {"bot": bot, "form_action": url_for("recovery.redeploy", bot_id=bot.id),
               "verb": "Redeploy", "back_url": url_for("recovery.index")}
    if request.method == "GET":
        return render_template("bots/deploy.html", values=recovery.redeploy_form(bot),
                               errors={}, stored_invalid=recovery.stored_settings_invalid(bot),
                               **context)
    values = request.form.to_dict()
    try:
        bot = recovery.redeploy(bot.id, values, actor_name(current_user))
    except ValidationError as exc:
        return render_template("bots/deploy.html", values=values, errors=exc.errors,
                               **context), 422
    except recovery.RecoveryError as exc:
        flash(str(exc), "error")
        return _back()
    flash(*lifecycle.deploy_outcome(bot, "Redeploy"))
    return _back()


def _act(bot_id: str, action: Callable[[Bot], tuple[str, str]]):
    """One desk action on one bot: `action` returns the flash (message, category); a
    refusal is flashed instead. The desk comes back either way."""
    bot = get_bot_or_404(bot_id)
    try:
        flash(*action(bot))
    except (StateError, recovery.RecoveryError) as exc:
        flash(str(exc), "error")
    return _back()


@bp.route("/bots/<bot_id>/relink/<instance_name>", methods=["POST"])
@admin_only
def relink(bot_id: str, instance_name: str):
    instance_name = _instance_name_or_404(instance_name)

    def action(bot: Bot) -> tuple[str, str]:
        bot = recovery.relink(bot.id, instance_name, actor_name(current_user))
        return (f"{bot.name} is re-linked to {instance_name}: the same definition, id and "
                "history, now matched to the bot Hummingbot runs.", "success")
    return _act(bot_id, action)


@bp.route("/bots/<bot_id>/mark-stopped", methods=["POST"])
@admin_only
def mark_stopped(bot_id: str):
    def action(bot: Bot) -> tuple[str, str]:
        recovery.mark_missing_stopped(bot.id, actor_name(current_user))
        return f"{bot.name} is marked stopped.", "success"
    return _act(bot_id, action)


@bp.route("/bots/<bot_id>/settle", methods=["POST"])
@admin_only
def settle(bot_id: str):
    def action(bot: Bot) -> tuple[str, str]:
        outcome = recovery.settle(bot.id, actor_name(current_user))
        return outcome.message, "success" if outcome.changed else "info"
    return _act(bot_id, action)


@bp.route("/bots/<bot_id>/restore", methods=["POST"])
@admin_only
def restore(bot_id: str):
    def action(bot: Bot) -> tuple[str, str]:
        recovery.restore(bot.id, actor_name(current_user))
        return f"{bot.name} is restored (stopped).", "success"
    return _act(bot_id, action)


@bp.route("/recreate", methods=["GET", "POST"])
@admin_only
def recreate():
    if request.method == "GET":
        return render_template("recovery/recreate.html", values={"config": "{}"}, errors={})
    values = {name: request.form.get(name, "") for name in BOT_FIELDS}
    then_deploy = request.form.get("then_deploy") == "1"
    try:
        pickers.validate_form(values)
        bot = recovery.recreate(values, actor_name(current_user))
    except ValidationError as exc:
        return render_template("recovery/recreate.html", values=values, errors=exc.errors,
                               then_deploy=then_deploy), 422
    if then_deploy:
        flash(f"Bot {bot.name} is saved; nothing is deployed until you send this form.",
              "success")
        return redirect(url_for("bots.deploy", bot_id=bot.id))
    flash(f"Bot {bot.name} is saved (stopped, not deployed).", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


@bp.route("/import", methods=["GET", "POST"])
@admin_only
def import_file():
    """GET: the upload form. POST: the preview of an uploaded file; nothing is written."""
    if request.method == "GET":
        return render_template("recovery/import.html", preview=None, error=None)
    upload = request.files.get("file")
    try:
        preview = recovery.preview_import(upload.read() if upload else b"",
                                          upload.filename if upload else None)
    except ImportFileError as exc:
        return render_template("recovery/import.html", preview=None, error=str(exc),
                               problems=exc.problems), 422
    return render_template("recovery/import.html", preview=preview, error=None)


@bp.route("/import/confirm", methods=["POST"])
@admin_only
def import_confirm():
    try:
        plan, filename = recovery.confirm_import(request.form.get("token", ""),
                                                 actor_name(current_user))
    except recovery.PreviewChanged as exc:
        return render_template("recovery/import.html", preview=exc.preview,
                               error=str(exc)), 409
    except ImportFileError as exc:
        return render_template("recovery/import.html", preview=None, error=str(exc)), 422
    flash(f"Imported {filename}: {plan.summary()}.", "success")
    return redirect(url_for("bots.index"))
