"""Who may see what: the one place every view goes through.

Every endpoint is logged-in only unless marked `@public`; `@admin_only` endpoints answer 404 to
clients (they learn nothing about what exists). With REQUIRE_ADMIN_MFA on, an admin without a
TOTP second factor is confined to the enrolment page. `visible_bots` is the single query helper that
scopes bots to the current user's account; `get_bot_or_404` builds on it, and
`account_or_404` does the same for an account's history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, abort, g, jsonify, make_response, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import Select, select

from .models import Bot, User, db

F = TypeVar("F", bound=Callable)

PUBLIC = "public"
ADMIN = "admin"
LOGGED_IN = "logged_in"


def public(view: F) -> F:
    view.access_level = PUBLIC  # type: ignore[attr-defined]
    return view


def admin_only(view: F) -> F:
    view.access_level = ADMIN  # type: ignore[attr-defined]
    return view


def access_level(app: Flask, endpoint: str | None) -> str:
    if endpoint is None:
        return PUBLIC  # 404 for unknown URLs is handled by routing itself
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "access_level", LOGGED_IN)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _login_required_response():
    login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    retry_after = g.get("login_retry_after")
    if wants_json() and retry_after:  # HTTP Basic credentials tried too often
        response = jsonify(error="too many login attempts", retry_after=retry_after)
        response.status_code = 429
        response.headers["Retry-After"] = str(retry_after)
        return response
    if wants_json():
        response = jsonify(error="authentication required")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="Bot Management"'
        return response
    if is_htmx():
        # htmx follows neither 302 nor 401 for swaps; HX-Redirect makes it navigate.
        response = make_response("", 200)
        response.headers["HX-Redirect"] = login_url
        return response
    return redirect(login_url)


# What an admin without a second factor may use while REQUIRE_ADMIN_MFA is on (logout and the
# other public routes are open anyway).
MFA_ENROLMENT_ENDPOINTS = frozenset({"auth.account_mfa"})


def _mfa_enrolment_required_response():
    enrol_url = url_for("auth.account_mfa")
    if wants_json():
        response = jsonify(error="two-factor enrolment required")
        response.status_code = 403
        return response
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = enrol_url
        return response
    return redirect(enrol_url)


def enforce_access(app: Flask):
    """`before_request` hook: refuse before the view runs."""
    level = access_level(app, request.endpoint)
    if level == PUBLIC:
        return None
    if not current_user.is_authenticated:
        from .audit import security_event

        security_event("access_denied", reason="login required", endpoint=request.endpoint)
        return _login_required_response()
    if (app.config.get("REQUIRE_ADMIN_MFA") and current_user.is_admin
            and not current_user.mfa_enabled and request.endpoint not in MFA_ENROLMENT_ENDPOINTS):
        from .audit import security_event

        security_event("access_denied", level=logging.WARNING, reason="mfa enrolment required",
                       endpoint=request.endpoint)
        return _mfa_enrolment_required_response()
    if level == ADMIN and not current_user.is_admin:
        from .audit import security_event

        security_event("access_denied", level=logging.WARNING, reason="admin only",
                       endpoint=request.endpoint, target=request.view_args)
        abort(404)
    return None


def visible_bots(user: User | None = None) -> Select[tuple[Bot]]:
    """`SELECT bots` limited to what `user` may see: everything for admins, one account else."""
    user = user or current_user
    query = select(Bot)
    if not user.is_admin:
        # Clients see their own account's live definitions; archived ones are admin business.
        query = query.where(
            Bot.account_identifier == user.account_identifier, Bot.archived_at.is_(None)
        )
    return query


def get_bot_or_404(bot_id: str, user: User | None = None, *, for_update: bool = False) -> Bot:
    query = visible_bots(user).where(Bot.id == bot_id)
    if for_update:
        query = query.with_for_update()
    bot = db.session.scalars(query).first()
    if bot is None:
        user = user or current_user
        if not user.is_admin:
            from .audit import security_event

            # Same 404 as an unknown id; only the log says whether the bot exists elsewhere.
            exists = db.session.get(Bot, bot_id) is not None
            security_event("access_denied", level=logging.WARNING if exists else logging.INFO,
                           reason="bot not visible to this account", bot_id=bot_id,
                           exists_elsewhere=exists)
        abort(404)
    return bot


def account_or_404(account: str, user: User | None = None, *,
                   exists: bool | None = None) -> str:
    """An account whose history `user` may see: admins any account that has bots, clients
    only their own. Anything else is the same 404 as an account that does not exist.
    `exists`: whether it has bots, when the page read that with its figures."""
    from .history.services import account_exists

    user = user or current_user
    if not user.is_admin and account != user.account_identifier:
        from .audit import security_event

        security_event("access_denied", level=logging.WARNING,
                       reason="account not visible to this user", account=account[:64])
        abort(404)
    if user.is_admin and not (account_exists(account) if exists is None else exists):
        abort(404)
    return account


def account_scope(user: User | None = None) -> str | None:
    """The one account a client is confined to; None for an admin (every account)."""
    user = user or current_user
    return None if user.is_admin else user.account_identifier


def owns_account(account: str | None, user: User | None = None) -> bool:
    """May `user` manage things owned by `account` (None: the operator's, admins only)?
    Alert destinations, rules and mutes go through this (alerts/service.py)."""
    user = user or current_user
    return user.is_admin or (account is not None and account == user.account_identifier)
