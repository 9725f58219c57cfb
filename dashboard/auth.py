"""Login, logout and password change; how a request finds its user (session cookie or HTTP
Basic); and how long a session lives.

Sessions are Flask's signed cookie holding "<user id>:<generation>" plus two timestamps:
`_auth_at` (login) and `_seen_at` (last activity). `load_user` is the one place a session is
accepted: the generation must match the user's (logout, deactivation and a password change
bump it), the login must be younger than SESSION_MAX_HOURS and the last activity younger than
SESSION_IDLE_MINUTES. Background polls do not count as activity. A session without the
timestamps, which is what Flask-Login's remember-me cookie would produce, is never accepted.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import AnonymousUserMixin, current_user, login_user, logout_user
from sqlalchemy.exc import OperationalError

from . import mfa, throttle
from .access import public
from .audit import loggable_username, security_event
from .extensions import login_manager
from .models import User, db
from .users import UserError, authenticate, check_password_rules, revoke_sessions, set_password

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Invalid username or password."
THROTTLED = "Too many login attempts. Wait {minutes} and try again."
SESSION_EXPIRED = "Your session has expired; please log in again."
MFA_FAILED = "Invalid or expired code."
MFA_PENDING_EXPIRED = "Your sign-in took too long; please log in again."
MFA_PENDING = "_mfa_pending"
MFA_PENDING_SECONDS = 300  # between a right password and the code
AUTH_AT = "_auth_at"
SEEN_AT = "_seen_at"
SEEN_GRANULARITY_SECONDS = 30  # rewrite the cookie at most this often for activity
SESSION_ID = re.compile(r"^([0-9]{1,12}):([0-9]{1,12})$")


# ------------------------------------------------------------------------------ sessions
def stamp_session(target=None, now: int | None = None) -> None:
    """Mark a session as authenticated now (login; the test helper uses it too)."""
    target = session if target is None else target
    now = int(time.time()) if now is None else now
    target[AUTH_AT] = now
    target[SEEN_AT] = now


def begin_session(user: User) -> None:
    """A fresh session for `user`: nothing from before the login survives (no fixation)."""
    session.clear()
    login_user(user, remember=False)
    stamp_session()


def session_age_problem(now: int | None = None) -> str | None:
    """Why the current session may no longer be used ("idle", "absolute", "unstamped")."""
    now = int(time.time()) if now is None else now
    auth_at, seen_at = session.get(AUTH_AT), session.get(SEEN_AT)
    if not isinstance(auth_at, int) or not isinstance(seen_at, int):
        return "unstamped"
    if now - auth_at > current_app.config["SESSION_MAX_HOURS"] * 3600:
        return "absolute"
    if now - seen_at > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return "idle"
    return None


def is_background_poll() -> bool:
    """An htmx fragment refresh, not something the person did."""
    return (
        request.method == "GET"
        and request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
    )


def note_activity() -> None:
    """Called for every request that passed the access check: keep an active session alive."""
    if AUTH_AT not in session or is_background_poll():
        return
    now = int(time.time())
    if now - session.get(SEEN_AT, 0) >= SEEN_GRANULARITY_SECONDS:
        session[SEEN_AT] = now


def _end_session(reason: str, user_id: str) -> None:
    security_event("session_ended", level=logging.WARNING if reason == "revoked" else
                   logging.INFO, actor="anonymous", reason=reason, user_id=user_id)
    session.clear()
    if reason in ("idle", "absolute"):
        flash(SESSION_EXPIRED, "info")


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session cookie, if the session is still good (see the module docstring)."""
    match = SESSION_ID.match(session_id or "")
    if match is None:
        return None
    user_id, generation = (int(part) for part in match.groups())
    problem = session_age_problem()
    if problem is not None:
        _end_session(problem, str(user_id))
        return None
    try:
        user = db.session.get(User, user_id)
    except OperationalError:
        # Database down: the error handler answers 503. Pin an anonymous user for the rest of
        # this request so error pages, logs and audit do not ask the database again.
        g.database_down = True
        g._login_user = AnonymousUserMixin()
        raise
    if user is None or not user.active or user.session_generation != generation:
        _end_session("revoked", str(user_id))
        return None
    return user


@login_manager.request_loader
def load_user_from_basic_auth(req) -> User | None:
    """Scripts may call the JSON API with a dashboard user's credentials; throttled and logged
    exactly like the login form."""
    if not req.path.startswith("/api/") or req.authorization is None:
        return None
    if req.authorization.type != "basic":
        return None
    username = req.authorization.username or ""
    return _check_credentials(username, req.authorization.password or "", "basic")[0]


def _check_credentials(username: str, password: str, method: str):
    """(user or None, the throttle's verdict), with the security events logged."""
    verdict = throttle.begin_attempt(username)
    if not verdict.allowed:
        g.login_retry_after = verdict.retry_after
        security_event("login_throttled", level=logging.WARNING, actor="anonymous",
                       username=loggable_username(username), method=method,
                       limited_by=verdict.limited_by, retry_after=verdict.retry_after)
        return None, verdict
    user = authenticate(username, password)
    if user is None:
        throttle.attempt_failed(username)
        security_event("login_failed", level=logging.WARNING, actor="anonymous",
                       username=loggable_username(username), method=method)
        return None, verdict
    if method == "basic" and second_factor_expected(user):
        # Basic cannot carry a second factor: the password alone must not open the API.
        # A refused login, so it counts as a failure.
        throttle.attempt_failed(username)
        security_event("login_refused", level=logging.WARNING, actor="anonymous",
                       username=user.username, method=method, reason="second factor required")
        return None, verdict
    if user.mfa_enabled:
        # Half a login: nothing is cleared until the code is right, so a known password cannot
        # be used to reset the username's count between guesses of the code.
        throttle.end_attempt()
        security_event("login_password_accepted", actor="anonymous", username=user.username,
                       method=method)
        return user, verdict
    throttle.attempt_succeeded(username)
    security_event("login_succeeded", actor=user.username,
                   account=user.account_identifier or "*all*", method=method)
    return user, verdict


def second_factor_expected(user: User) -> bool:
    return user.mfa_enabled or (user.is_admin and current_app.config.get("REQUIRE_ADMIN_MFA"))


def _throttled_page(template: str, retry_after: int, **context):
    flash(throttled_message(retry_after), "error")
    response = make_response(render_template(template, **context), 429)
    response.headers["Retry-After"] = str(retry_after)
    return response


# ------------------------------------------------------------------------------ second factor
def _begin_pending(user: User, next_target: str) -> None:
    """The password was right; the code is still to come. Nothing of a login yet."""
    session.clear()
    target = safe_next(next_target)
    session[MFA_PENDING] = {
        "user": user.id,
        "generation": user.session_generation,
        "at": int(time.time()),
        "next": target if len(target) <= 1000 else url_for("bots.index"),
    }


def _pending_user() -> tuple[User | None, str]:
    """(the user half-way through logging in, where to go next), if the marker is still good:
    younger than MFA_PENDING_SECONDS, same session generation, account active, TOTP on."""
    marker = session.get(MFA_PENDING)
    if not isinstance(marker, dict):
        return None, ""
    user_id, generation, at = marker.get("user"), marker.get("generation"), marker.get("at")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (user_id, generation, at)):
        return None, ""
    if not 0 <= time.time() - at <= MFA_PENDING_SECONDS:
        return None, ""
    user = db.session.get(User, user_id)
    if (user is None or not user.active or user.session_generation != generation
            or not user.mfa_enabled):
        return None, ""
    return user, str(marker.get("next") or "")


def throttled_message(retry_after: int) -> str:
    minutes = max(1, -(-retry_after // 60))
    return THROTTLED.format(minutes=f"{minutes} minute{'s' if minutes != 1 else ''}")


# ------------------------------------------------------------------------------ redirects
def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would make phishing links look like ours.

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    "/\\t/evil.example" would become "//evil.example": any control character, backslash or
    a second leading slash disqualifies the target.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)
        and not urlsplit(target).netloc
    ):
        return target
    from .history.views import landing_url_for

    # Clients land on their account's page, everyone else on the list.
    landing = landing_url_for(current_user) if current_user.is_authenticated else None
    return landing or url_for("bots.index")


# ------------------------------------------------------------------------------ views
@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    if request.method == "GET":
        return render_template("auth/login.html", username="", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    next_target = request.form.get("next", "")
    user, verdict = _check_credentials(username, request.form.get("password", ""), "form")
    if user is not None and user.mfa_enabled:
        _begin_pending(user, next_target)
        return redirect(url_for("auth.login_verify"))
    if user is not None:
        begin_session(user)
        return redirect(safe_next(next_target))
    if not verdict.allowed:
        return _throttled_page("auth/login.html", verdict.retry_after, username=username,
                               next=next_target)
    flash(LOGIN_FAILED, "error")
    return render_template("auth/login.html", username=username, next=next_target), 401


@bp.route("/login/verify", methods=["GET", "POST"])
@public
def login_verify():
    """Second step of a login with TOTP on: the 6-digit code, throttled like the password."""
    user, next_target = _pending_user()
    if user is None:
        if MFA_PENDING in session:
            session.pop(MFA_PENDING)
            flash(MFA_PENDING_EXPIRED, "info")
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/verify.html")
    verdict = throttle.begin_attempt(user.username)
    if not verdict.allowed:
        g.login_retry_after = verdict.retry_after
        security_event("login_throttled", level=logging.WARNING, actor="anonymous",
                       username=user.username, method="totp", limited_by=verdict.limited_by,
                       retry_after=verdict.retry_after)
        return _throttled_page("auth/verify.html", verdict.retry_after)
    if not mfa.consume_code(user, mfa.normalize_code(request.form.get("code", ""))):
        throttle.attempt_failed(user.username)
        security_event("mfa_failed", level=logging.WARNING, actor="anonymous",
                       username=user.username, method="totp")
        flash(MFA_FAILED, "error")
        return render_template("auth/verify.html"), 401
    throttle.attempt_succeeded(user.username)
    security_event("mfa_succeeded", actor=user.username,
                   account=user.account_identifier or "*all*", method="totp")
    security_event("login_succeeded", actor=user.username,
                   account=user.account_identifier or "*all*", method="form+totp")
    begin_session(user)
    return redirect(safe_next(next_target))


@bp.route("/logout", methods=["POST"])
@public
def logout():
    if current_user.is_authenticated:
        security_event("logout")
        revoke_sessions(current_user)  # a copied cookie is worthless after logout
    logout_user()
    session.clear()
    flash("You have been logged out.", "info")
    response = redirect(url_for("auth.login"))
    # Drop cached pages and any browser storage of this origin (ASVS 14.3.1).
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    """Any logged-in user changes their own password: current one first (ASVS 6.2.2, 6.2.3).
    Every other session of the account ends; this one continues in a fresh session."""
    if request.method == "GET":
        return render_template("auth/password.html", errors={})
    user = db.session.get(User, current_user.id)
    verdict = throttle.begin_attempt(user.username)  # guessing the current one is throttled too
    if not verdict.allowed:
        security_event("password_change_throttled", level=logging.WARNING,
                       retry_after=verdict.retry_after)
        flash(throttled_message(verdict.retry_after), "error")
        response = make_response(render_template("auth/password.html", errors={}), 429)
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response
    errors: dict[str, str] = {}
    current, new, confirm = "current_password", "new_password", "confirm_password"
    new_password = request.form.get(new, "")
    if authenticate(user.username, request.form.get(current, "")) is None:
        throttle.attempt_failed(user.username)
        errors[current] = "is not right."
    elif new_password != request.form.get(confirm, ""):
        errors[confirm] = "does not match the new password."
    else:
        try:
            check_password_rules(new_password, user.username)
        except UserError as exc:
            errors[new] = str(exc)
    if errors:
        throttle.end_attempt()  # a no-op after attempt_failed; releases the locks otherwise
        security_event("password_change_failed", level=logging.WARNING, fields=sorted(errors))
        return render_template("auth/password.html", errors=errors), 422
    throttle.attempt_succeeded(user.username)
    set_password(user, new_password)
    begin_session(user)
    security_event("password_changed")
    flash("Password changed. Every other session of this login has been logged out.", "success")
    return redirect(url_for("bots.index"))


@bp.route("/account/mfa", methods=["GET", "POST"])
def account_mfa():
    """Any logged-in user turns the TOTP second factor on (a code confirms the secret first)
    or off (password and a current code). Both end every other session of the login.

    The secret of an enrolment in progress travels in the form (it is on the page anyway, as
    text and QR); it is stored only once a code made from it is confirmed, and never shown
    again after that."""
    user = db.session.get(User, current_user.id)
    if request.method == "GET":
        return _mfa_page(user)
    action = request.form.get("action", "")
    if action == "enable" and not user.mfa_enabled:
        secret = request.form.get("secret", "")
        if not mfa.is_valid_secret(secret):
            flash("The enrolment form was not valid; start again.", "error")
            return _mfa_page(user, status=422)
        step = mfa.matching_step(secret, mfa.normalize_code(request.form.get("code", "")))
        if step is None:
            security_event("mfa_enrolment_failed", level=logging.WARNING)
            return _mfa_page(user, secret=secret, errors={"code": "is not right."},
                             status=422)
        mfa.enable(user, secret, step)
        begin_session(user)
        flash("Two-factor authentication is on. Every other session of this login has been "
              "logged out.", "success")
        return redirect(url_for("auth.account_mfa"))
    if action == "disable" and user.mfa_enabled:
        verdict = throttle.begin_attempt(user.username)
        if not verdict.allowed:
            security_event("mfa_disable_throttled", level=logging.WARNING,
                           retry_after=verdict.retry_after)
            flash(throttled_message(verdict.retry_after), "error")
            response = make_response(_mfa_page(user), 429)
            response.headers["Retry-After"] = str(verdict.retry_after)
            return response
        errors: dict[str, str] = {}
        password_field = "password"  # noqa: S105 - a form field name
        if authenticate(user.username, request.form.get(password_field, "")) is None:
            errors[password_field] = "is not right."
        elif not mfa.consume_code(user, mfa.normalize_code(request.form.get("code", ""))):
            errors["code"] = "is not right."
        if errors:
            throttle.attempt_failed(user.username)
            security_event("mfa_disable_failed", level=logging.WARNING, fields=sorted(errors))
            return _mfa_page(user, errors=errors, status=422)
        throttle.attempt_succeeded(user.username)
        mfa.disable(user)
        begin_session(user)
        flash("Two-factor authentication is off. Every other session of this login has been "
              "logged out.", "success")
        return redirect(url_for("auth.account_mfa"))
    flash("Nothing to do: reload the page and try again.", "error")
    return _mfa_page(user, status=422)


def _mfa_page(user: User, *, secret: str | None = None, errors: dict | None = None,
              status: int = 200):
    context: dict = {"errors": errors or {}, "enabled": user.mfa_enabled,
                     "required": second_factor_expected(user)}
    if not user.mfa_enabled:
        secret = secret or mfa.new_secret()
        uri = mfa.provisioning_uri(secret, user.username)
        context.update(secret=secret, qr=mfa.qr_data_uri(uri),
                       secret_groups=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)))
    return make_response(render_template("auth/mfa.html", **context), status)
