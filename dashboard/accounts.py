"""Creating a Hummingbot account (credentials profile) on purpose: admins only, CSRF, a
confirmation page, an audit event. A deploy for an account Hummingbot lacks fails with a 500
and leaves files behind on its server, so the forms refuse unknown accounts and link here."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request

from .access import admin_only
from .audit import security_event
from .auth import safe_next
from .gateway import hummingbot
from .hummingbot import HummingbotError, HummingbotRejected
from .validation import HUMMINGBOT_NAME, MAX_FIELD_LENGTH

bp = Blueprint("accounts", __name__, url_prefix="/hummingbot/accounts")


def _name_error(name: str) -> str | None:
    if not name:
        return "is required."
    if len(name) > MAX_FIELD_LENGTH or not HUMMINGBOT_NAME.match(name):
        return f"may contain only letters, digits, '-' and '_' (at most {MAX_FIELD_LENGTH})."
    return None


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new_account():
    """GET: the confirmation, with the name to create; POST: create it in Hummingbot."""
    source = request.args if request.method == "GET" else request.form
    name = (source.get("name") or "").strip()
    back = safe_next(source.get("next"))
    existing = hummingbot().catalog.get("accounts")
    context = {"name": name, "back": back, "existing": existing}
    if request.method == "GET":
        return render_template("accounts/new.html", errors={}, **context)
    error = _name_error(name)
    if error is None and existing is not None and name in existing:
        error = "already exists in Hummingbot; pick it from the list instead."
    if error is None:
        try:
            hummingbot().require_client().add_account(name)
        except HummingbotRejected as exc:
            error = f"was refused by Hummingbot: {exc}"
        except HummingbotError as exc:
            error = f"could not be created: Hummingbot did not answer ({exc}). Nothing changed."
    if error is not None:
        return render_template("accounts/new.html", errors={"name": error}, **context), 422
    hummingbot().catalog.invalidate("accounts")
    security_event("hummingbot_account_created", hummingbot_account=name)
    flash(f"Account {name} is created in Hummingbot; it can be chosen now.", "success")
    return redirect(back)
