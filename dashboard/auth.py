"""Login and logout pages, and how a request finds its user (session cookie or HTTP Basic)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from .access import public
from .extensions import login_manager
from .models import User, db
from .users import authenticate, revoke_sessions

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Invalid username or password."


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Session ids are "<user id>:<generation>"; a bumped generation revokes old cookies."""
    user_id, _, generation = session_id.partition(":")
    if not user_id.isdigit() or not generation.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return user


@login_manager.request_loader
def load_user_from_basic_auth(req) -> User | None:
    """Scripts may call the JSON API with a dashboard user's credentials."""
    if not req.path.startswith("/api/") or req.authorization is None:
        return None
    if req.authorization.type != "basic":
        return None
    return authenticate(req.authorization.username or "", req.authorization.password or "")


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would make phishing links look like ours."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("bots.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        user = authenticate(username, request.form.get("password", ""))
        if user is not None:
            session.clear()  # a fresh session on login: no fixation
            login_user(user)
            return redirect(safe_next(request.form.get("next")))
        flash(LOGIN_FAILED, "error")
        return render_template("auth/login.html", username=username,
                               next=request.form.get("next", "")), 401
    return render_template("auth/login.html", username="", next=request.args.get("next", ""))


@bp.route("/logout", methods=["POST"])
@public
def logout():
    if current_user.is_authenticated:
        revoke_sessions(current_user)  # a copied cookie is worthless after logout
    logout_user()
    session.clear()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
