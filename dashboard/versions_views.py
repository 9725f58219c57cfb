"""Pages and JSON for configuration versions: list, view and compare, restore (admins)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from .access import admin_only, get_bot_or_404
from .edit_merge import merge_edit, saved_values
from .models import db
from .registry import ConflictError, actor_name, last_edit
from .validation import ValidationError
from .versions import (
    definition,
    diff,
    event_changes,
    get_version,
    restore_version,
    shown_actor,
    shown_definitions,
    to_json,
    versions,
)

bp = Blueprint("versions", __name__)
# The history on a bot's page shows diffs and actors the way this module does.
bp.add_app_template_global(event_changes, "event_changes")
bp.add_app_template_global(shown_actor, "shown_actor")



def _int(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        return -1


@bp.route("/bots/<bot_id>/versions")
def index(bot_id: str):
    bot = get_bot_or_404(bot_id)
    return render_template("bots/versions.html", bot=bot, versions=versions(bot))


@bp.route("/bots/<bot_id>/versions/<int:number>")
def show(bot_id: str, number: int):
    bot = get_bot_or_404(bot_id)
    stored = None if number == bot.version else get_version(bot, number)
    if stored is None and number != bot.version:
        abort(404)
    fields, current = shown_definitions(bot, [stored or bot, bot])
    return render_template("bots/version.html", bot=bot, number=number, fields=fields,
                           stored=stored, changes=diff(fields, current))


@bp.route("/bots/<bot_id>/versions/<int:number>/restore", methods=["POST"])
@admin_only
def restore(bot_id: str, number: int):
    bot = get_bot_or_404(bot_id)
    stored = get_version(bot, number)
    if stored is None:
        if number == bot.version:
            flash(f"Version {number} is the current one; nothing to restore.", "info")
            return redirect(url_for("versions.index", bot_id=bot.id))
        abort(404)
    values = {**definition(stored), "id": bot.id}
    values["config"] = _pretty(values["config"])
    try:
        restore_version(bot, stored, actor_name(current_user),
                        expected_version=request.form.get("version"))
    except ValidationError as exc:
        db.session.rollback()
        bot = get_bot_or_404(bot_id)
        return render_template("bots/form.html", bot=bot, values=values, errors=exc.errors,
                               base=saved_values(bot), version=bot.version), 422
    except ConflictError:
        # The edit form's three-way merge: based on the definition as it was when the version
        # page was opened (kept in bot_versions), against what is saved now.
        db.session.rollback()
        bot = get_bot_or_404(bot_id)
        opened = get_version(bot, _int(request.form.get("version")))
        base = saved_values(opened) if opened is not None else None
        theirs = saved_values(bot)
        merge = merge_edit(theirs, base, {**saved_values(stored), "id": bot.id})
        return render_template("bots/form.html", bot=bot, values={**values, **merge.values},
                               errors={}, merge=merge, saved_by=last_edit(bot), base=theirs,
                               version=bot.version), 409
    flash(f"Version {number} of {bot.name} restored as version {bot.version}.", "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


def _pretty(config) -> str:
    import json

    return json.dumps(config, indent=2)


@bp.route("/api/bots/<bot_id>/versions")
def api_list(bot_id: str):
    bot = get_bot_or_404(bot_id)
    return jsonify(bot_id=bot.id, current_version=bot.version,
                   versions=[to_json(view) for view in versions(bot)])
