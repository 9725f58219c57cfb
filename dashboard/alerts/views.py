"""/alerts: destinations, rules, mutes and the delivery log. Admins see everything; a client
sees and manages its own account's only (dashboard/access.py: `owned_or_404`).

Views read input, call one form or service function, render. Every change is a plain form
POST with its CSRF token; a refused form comes back (422) with its message and the input, and
nothing is stored.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..access import owned_or_404
from ..bots import _page_number
from ..models import db
from ..sealed import hint
from ..validation import ValidationError
from . import forms, pages
from .models import AlertDelivery, AlertDestination, AlertMute, AlertRule

bp = Blueprint("alerts", __name__)
bp.add_app_template_global(pages.condition_label, "condition_label")


@bp.app_template_global("firing_alerts")
def firing_alerts() -> int:
    """The header's bell, for admins (base.html asks only for them)."""
    return pages.firing_count()


def _confirmed() -> bool:
    """A delete or a retry says what it confirms: a bare POST (a stray or replayed form)
    changes nothing."""
    return request.form.get("confirm") == "1"


def _back():
    return redirect(url_for("alerts.index"), 303)


@bp.route("/alerts")
def index():
    user = current_user
    filters = pages.parse_log_filters(request.args)
    destinations = pages.destinations(user)
    log = pages.delivery_log(user, filters, _page_number())
    secrets = pages.destination_secrets(destinations)
    return render_template(
        "alerts/index.html", destinations=destinations, rules=pages.rules(user),
        mutes=pages.mutes(user), log=log, filters=filters, secrets=secrets,
        by_id={d.id: d for d in destinations}, pages=pages, hint=hint,
        redacted=pages.redacted)


# ------------------------------------------------------------------------------ destinations
def _destination_form(row: AlertDestination | None, values: dict, errors: dict,
                      status: int = 200):
    return render_template("alerts/destination_form.html", row=row, values=values,
                           errors=errors, pages=pages,
                           target_hint=hint(row.target) if row else None,
                           signing_hint=hint(row.signing_secret) if row else None), status


@bp.route("/alerts/destinations/new", methods=["GET", "POST"])
def new_destination():
    if request.method == "GET":
        values = forms.form_values_of_destination(None)
        values["kind"] = request.args.get("kind", "webhook")
        if values["kind"] not in pages.KIND_LABELS:
            values["kind"] = "webhook"
        return _destination_form(None, values, {})
    try:
        parsed = forms.parse_destination(request.form, current_user, None)
    except ValidationError as exc:
        return _destination_form(None, forms.submitted_destination_values(request.form),
                                 exc.errors, 422)
    row = forms.save_destination(parsed, current_user)
    flash(f"Destination {row.name} saved. Send a test message to check it.", "success")
    return _back()


@bp.route("/alerts/destinations/<destination_id>/edit", methods=["GET", "POST"])
def edit_destination(destination_id: str):
    row = owned_or_404(AlertDestination, destination_id)
    if request.method == "GET":
        return _destination_form(row, forms.form_values_of_destination(row), {})
    try:
        parsed = forms.parse_destination(request.form, current_user, row)
    except ValidationError as exc:
        db.session.rollback()
        return _destination_form(row, forms.submitted_destination_values(request.form),
                                 exc.errors, 422)
    forms.save_destination(parsed, current_user, row)
    flash(f"Destination {row.name} saved.", "success")
    return _back()


@bp.route("/alerts/destinations/<destination_id>/delete", methods=["POST"])
def delete_destination(destination_id: str):
    row = owned_or_404(AlertDestination, destination_id)
    if not _confirmed():
        abort(400, "Nothing was deleted: the form did not confirm it.")
    name = row.name
    db.session.delete(row)  # its rules and deliveries go with it (ON DELETE CASCADE)
    db.session.commit()
    flash(f"Destination {name} deleted, with its rules and its delivery log.", "success")
    return _back()


@bp.route("/alerts/destinations/<destination_id>/test", methods=["POST"])
def test_destination(destination_id: str):
    row = owned_or_404(AlertDestination, destination_id)
    forms.enqueue_test(row, current_user)
    flash(f"Test message to {row.name} queued: its delivery shows in the log below.", "success")
    return redirect(url_for("alerts.index", destination=row.id, condition="test") + "#log", 303)


# ------------------------------------------------------------------------------ rules
def _rule_form(row: AlertRule | None, values: dict, errors: dict, status: int = 200):
    return render_template("alerts/rule_form.html", row=row, values=values, errors=errors,
                           destinations=pages.destinations(current_user), pages=pages,
                           operator_conditions=forms.OPERATOR_CONDITIONS), status


@bp.route("/alerts/rules/new", methods=["GET", "POST"])
def new_rule():
    if request.method == "GET":
        return _rule_form(None, forms.form_values_of_rule(None, current_user), {})
    return _save_rule(None)


@bp.route("/alerts/rules/<rule_id>/edit", methods=["GET", "POST"])
def edit_rule(rule_id: str):
    row = owned_or_404(AlertRule, rule_id)
    if request.method == "GET":
        return _rule_form(row, forms.form_values_of_rule(row, current_user), {})
    return _save_rule(row)


def _save_rule(row: AlertRule | None):
    try:
        values = forms.parse_rule(request.form, current_user, pages.destinations(current_user))
    except ValidationError as exc:
        return _rule_form(row, forms.submitted_rule_values(request.form), exc.errors, 422)
    row = forms.save_rule(values, current_user, row)
    flash(f"Rule {row.name} saved.", "success")
    return _back()


@bp.route("/alerts/rules/<rule_id>/delete", methods=["POST"])
def delete_rule(rule_id: str):
    row = owned_or_404(AlertRule, rule_id)
    if not _confirmed():
        abort(400, "Nothing was deleted: the form did not confirm it.")
    name = row.name
    db.session.delete(row)
    db.session.commit()
    flash(f"Rule {name} deleted.", "success")
    return _back()


# ------------------------------------------------------------------------------ mutes
@bp.route("/alerts/mutes/new", methods=["GET", "POST"])
def new_mute():
    if request.method == "GET":
        return render_template("alerts/mute_form.html", errors={},
                               values=forms.default_mute_values(request.args))
    try:
        values = forms.parse_mute(request.form, current_user)
    except ValidationError as exc:
        submitted = {key: forms._text(request.form, key, 1000)
                     for key in ("bot_id", "account_identifier", "until", "reason")}
        return render_template("alerts/mute_form.html", errors=exc.errors,
                               values=submitted), 422
    forms.save_mute(values, current_user)
    flash("Mute saved.", "success")
    return _back()


@bp.route("/alerts/mutes/<mute_id>/delete", methods=["POST"])
def delete_mute(mute_id: str):
    row = owned_or_404(AlertMute, mute_id, query=pages.visible_mutes(current_user))
    if not _confirmed():
        abort(400, "Nothing was deleted: the form did not confirm it.")
    db.session.delete(row)
    db.session.commit()
    flash("Mute ended.", "success")
    return _back()


# ------------------------------------------------------------------------------ the log
@bp.route("/alerts/deliveries/<delivery_id>/retry", methods=["POST"])
def retry_delivery(delivery_id: str):
    row = owned_or_404(AlertDelivery, delivery_id,
                       query=pages.visible_deliveries(current_user))
    if not _confirmed():
        abort(400, "Nothing was retried: the form did not confirm it.")
    if row.status != "dead":
        flash("Only a dead delivery can be retried; this one is " + row.status + ".", "error")
    else:
        forms.retry(row)
        flash("Delivery queued again.", "success")
    return redirect(url_for("alerts.index") + "#log", 303)
