"""/alerts: destinations, rules, mutes and the delivery log. Admins see everything; a client
sees and manages its own account's only. Every read and write goes through the core's service
(service.py), which checks access itself (access.owns_account / account_scope): another
account's id is the same 404 as one that does not exist.

Views read input, call one service function, render. Every change is a plain form POST with
its CSRF token; a refused form comes back (422) with its message and the input, and nothing
is stored.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..bots import _page_number
from ..models import db
from ..sealed import hint
from ..validation import ValidationError
from . import forms, pages, service

bp = Blueprint("alerts", __name__)
bp.add_app_template_global(pages.condition_label, "condition_label")
# Ids in URLs are numbers within their columns' range: anything else is a 404 from routing,
# never a database error.
INT_ID = "int(max=2147483647)"
BIGINT_ID = "int(max=9223372036854775807)"


@bp.app_template_global("firing_alerts")
def firing_alerts() -> int:
    """The header's bell (base.html asks for admins only)."""
    return pages.firing_count(current_user)


def _confirmed() -> bool:
    """A delete or a retry says what it confirms: a bare POST (a stray or replayed form)
    changes nothing."""
    return request.form.get("confirm") == "1"


def _require_confirmation() -> None:
    if not _confirmed():
        abort(400, "Nothing was changed: the form did not confirm it.")


def _back(anchor: str = ""):
    return redirect(url_for("alerts.index") + anchor, 303)


@bp.route("/alerts")
def index():
    user = current_user
    filters = pages.parse_log_filters(request.args)
    destinations = pages.destinations(user)
    return render_template(
        "alerts/index.html", destinations=destinations, rules=pages.rules(user),
        mutes=pages.mutes(user), log=pages.delivery_log(user, filters, _page_number()),
        filters=filters, secrets=pages.destination_secrets(destinations),
        by_id={d.id: d for d in destinations}, pages=pages, hint=hint,
        redacted=pages.redacted, duration=forms.duration)


# ------------------------------------------------------------------------------ destinations
def _destination_form(row, values: dict, errors: dict, status: int = 200):
    return render_template("alerts/destination_form.html", row=row, values=values,
                           errors=errors, pages=pages,
                           target_hint=hint(row.target) if row else None,
                           signing_hint=hint(row.signing_secret) if row else None), status


def _save_destination(row):
    try:
        saved = service.save_destination(forms.destination_data(request.form), current_user,
                                         row.id if row else None)
    except ValidationError as exc:
        db.session.rollback()
        return _destination_form(row, forms.submitted_destination_values(request.form),
                                 exc.errors, 422)
    flash(f"Destination {saved.name} saved." + ("" if row else
                                                 " Send a test message to check it."), "success")
    return _back()


@bp.route("/alerts/destinations/new", methods=["GET", "POST"])
def new_destination():
    if request.method == "POST":
        return _save_destination(None)
    values = forms.destination_values(None)
    kind = request.args.get("kind", "webhook")
    values["kind"] = kind if kind in pages.KIND_LABELS else "webhook"
    return _destination_form(None, values, {})


@bp.route(f"/alerts/destinations/<{INT_ID}:destination_id>/edit", methods=["GET", "POST"])
def edit_destination(destination_id: int):
    row = service.get_destination_or_404(destination_id, current_user)
    if request.method == "POST":
        return _save_destination(row)
    return _destination_form(row, forms.destination_values(row), {})


@bp.route(f"/alerts/destinations/<{INT_ID}:destination_id>/delete", methods=["POST"])
def delete_destination(destination_id: int):
    row = service.get_destination_or_404(destination_id, current_user)
    _require_confirmation()
    name = row.name
    service.delete_destination(destination_id, current_user)
    flash(f"Destination {name} deleted, with its rules and its delivery log.", "success")
    return _back()


@bp.route(f"/alerts/destinations/<{INT_ID}:destination_id>/test", methods=["POST"])
def test_destination(destination_id: int):
    delivery = service.test_send(destination_id, current_user)
    flash("Test message queued: its delivery shows in the log below.", "success")
    return redirect(url_for("alerts.index", destination=delivery.destination_id,
                            condition="test") + "#log", 303)


# ------------------------------------------------------------------------------ rules
def _rule_form(row, values: dict, errors: dict, status: int = 200):
    return render_template(
        "alerts/rule_form.html", row=row, values=values, errors=errors, pages=pages,
        destinations=pages.destinations(current_user),
        fleet_conditions=service.FLEET_CONDITIONS,
        hold_choices=forms.choices(forms.HOLD_CHOICES, values.get("hold_seconds"), "none"),
        repeat_choices=forms.choices(forms.REPEAT_CHOICES, values.get("repeat_seconds"),
                                     "never")), status


def _save_rule(row):
    try:
        saved = service.save_rule(forms.rule_data(request.form), current_user,
                                  row.id if row else None)
    except ValidationError as exc:
        db.session.rollback()
        return _rule_form(row, forms.submitted_rule_values(request.form), exc.errors, 422)
    flash(f"Rule {saved.name} saved.", "success")
    return _back()


@bp.route("/alerts/rules/new", methods=["GET", "POST"])
def new_rule():
    if request.method == "POST":
        return _save_rule(None)
    return _rule_form(None, forms.rule_values(None, current_user), {})


@bp.route(f"/alerts/rules/<{INT_ID}:rule_id>/edit", methods=["GET", "POST"])
def edit_rule(rule_id: int):
    row = service.get_rule_or_404(rule_id, current_user)
    if request.method == "POST":
        return _save_rule(row)
    return _rule_form(row, forms.rule_values(row, current_user), {})


@bp.route(f"/alerts/rules/<{INT_ID}:rule_id>/delete", methods=["POST"])
def delete_rule(rule_id: int):
    row = service.get_rule_or_404(rule_id, current_user)
    _require_confirmation()
    name = row.name
    service.delete_rule(rule_id, current_user)
    flash(f"Rule {name} deleted.", "success")
    return _back()


# ------------------------------------------------------------------------------ mutes
@bp.route("/alerts/mutes/new", methods=["GET", "POST"])
def new_mute():
    if request.method == "GET":
        return render_template("alerts/mute_form.html", errors={},
                               values=forms.mute_values(request.args))
    try:
        service.create_mute(forms.mute_data(request.form), current_user)
    except ValidationError as exc:
        db.session.rollback()
        return render_template("alerts/mute_form.html", errors=exc.errors,
                               values=forms.mute_data(request.form)), 422
    flash("Mute saved.", "success")
    return _back()


@bp.route(f"/alerts/mutes/<{INT_ID}:mute_id>/delete", methods=["POST"])
def delete_mute(mute_id: int):
    pages.mute_or_404(mute_id, current_user)  # another account's: 404 before anything else
    _require_confirmation()
    service.delete_mute(mute_id, current_user)
    flash("Mute ended.", "success")
    return _back()


# ------------------------------------------------------------------------------ the log
@bp.route(f"/alerts/deliveries/<{BIGINT_ID}:delivery_id>/retry", methods=["POST"])
def retry_delivery(delivery_id: int):
    pages.delivery_or_404(delivery_id, current_user)
    _require_confirmation()
    try:
        service.retry_delivery(delivery_id, current_user)
    except ValidationError as exc:
        db.session.rollback()
        flash("Not retried: " + "; ".join(exc.errors.values()) + ".", "error")
    else:
        flash("Delivery queued again.", "success")
    return _back("#log")
