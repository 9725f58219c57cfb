"""The Hummingbot servers page (admins only): each server's health, and the forms to add,
edit and disable one. Credentials are write-only: a form never shows them back, and an empty
field keeps the stored value."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import servers
from .access import admin_only
from .fleet import fleet
from .validation import ValidationError

bp = Blueprint("servers", __name__, url_prefix="/servers")


@bp.app_context_processor
def server_helpers():
    # A function: only the forms that offer the choice read the servers.
    return {"server_choices": lambda: sorted(
        name for _, name, _ in fleet().enabled()) if current_user.is_admin else [],
        "bot_server": None}


def chosen_server_id(name: str | None, account: str | None = None) -> int | None:
    """The form's server: a name (ValidationError when unknown or disabled), or for ''
    the account's usual server; None: the `default` server."""
    if not name:
        return servers.usual_server_id(account)
    server = servers.find_server(name) if servers.NAME_RULE.match(name) else None
    if server is None or not server.enabled:
        raise ValidationError({"server": "is not an enabled Hummingbot server."})
    return server.id

FORM_FIELDS = ("name", "base_url", "username", "password", "extra_headers")


def _allow_http() -> bool:
    return current_app.config.get("APP_ENV") != "production" \
        or bool(current_app.config.get("HUMMINGBOT_ALLOW_HTTP"))


def _server_or_404(name: str):
    if not servers.NAME_RULE.match(name):
        abort(404)
    server = servers.find_server(name)
    if server is None:
        abort(404)
    return server


def _index(values: dict | None = None, errors: dict | None = None, status: int = 200):
    rows = servers.all_servers()  # credentials are not rendered: only names, URLs, states
    health = fleet().health()
    counts = servers.bots_per_server()
    last = {server_id: link.feed.peek() for server_id, _, link in fleet().enabled()}
    return render_template("servers/index.html", servers=rows, health=health, counts=counts,
                           last=last, values=values or {}, errors=errors or {}), status


@bp.route("")
@admin_only
def index():
    return _index()


@bp.route("", methods=["POST"])
@admin_only
def add():
    values = {field: request.form.get(field, "").strip() for field in FORM_FIELDS}
    try:
        servers.add_server(values["name"], values["base_url"], values["username"],
                           values["password"], values["extra_headers"] or None,
                           allow_http=_allow_http())
    except ValidationError as exc:
        values.pop("password")  # never sent back
        return _index(values, exc.errors, 422)
    flash(f"Server {values['name']} added.", "success")
    return redirect(url_for("servers.index"))


@bp.route("/<name>/edit", methods=["GET", "POST"])
@admin_only
def edit(name: str):
    server = _server_or_404(name)
    if request.method == "GET":
        return render_template("servers/edit.html", server=server,
                               values={"base_url": server.base_url or ""}, errors={})
    values = {field: request.form.get(field, "").strip() for field in FORM_FIELDS[1:]}
    try:
        servers.update_server(server, base_url=values["base_url"] or None,
                              username=values["username"] or None,
                              password=values["password"] or None,
                              extra_headers=values["extra_headers"] or None,
                              enabled=request.form.get("enabled") == "1",
                              allow_http=_allow_http())
    except ValidationError as exc:
        return render_template("servers/edit.html", server=server,
                               values={"base_url": values["base_url"]}, errors=exc.errors), 422
    flash(f"Server {server.name} saved.", "success")
    return redirect(url_for("servers.index"))


@bp.route("/<name>/<any(enable, disable):action>", methods=["POST"])
@admin_only
def toggle(name: str, action: str):
    server = _server_or_404(name)
    servers.update_server(server, enabled=action == "enable")
    flash(f"Server {server.name} {action}d.", "success")
    return redirect(url_for("servers.index"))
