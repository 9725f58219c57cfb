"""TOTP second factor (RFC 6238, ASVS 6.3.2): secrets, codes, replay refusal, enrolment and reset.

Codes are 6 digits over 30-second steps (what every authenticator app does), checked with
pyotp with one step of clock drift either way (`valid_window=1`). The step a code matched is
stored in `users.totp_last_step` with a conditional UPDATE, so a code (or an older one) is never
accepted twice, even by two workers racing with the same code.

The secret is stored as base32 in `users.totp_secret`; see SECURITY.md for why it is not
encrypted. It is shown once, on the enrolment page, and never logged.
"""

from __future__ import annotations

import hmac
import re
import time
from datetime import UTC, datetime

import pyotp
import segno
from sqlalchemy import or_, update

from .audit import security_event
from .models import User, db

ISSUER = "Bot Management"
STEP_SECONDS = 30
SECRET_PATTERN = re.compile(r"^[A-Z2-7]{32}$")  # 160 bits, RFC 4226's recommended length
CODE_PATTERN = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def is_valid_secret(secret: str) -> bool:
    return bool(SECRET_PATTERN.match(secret or ""))


def normalize_code(raw: str) -> str:
    """What people type: "123 456" or "123-456" are fine."""
    return re.sub(r"[\s-]", "", raw or "")[:16]


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a data: URI (the CSP allows img-src data:)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step `code` belongs to (current one, or one either side), or None."""
    if not is_valid_secret(secret) or not CODE_PATTERN.match(code or ""):
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    if not totp.verify(code, for_time=now, valid_window=1):
        return None
    current = int(now) // STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def consume_code(user: User, code: str) -> bool:
    """Check `user`'s code and use it up: a replayed or older step is refused. Commits."""
    if not user.mfa_enabled:
        return False
    step = matching_step(user.totp_secret, code)
    if step is None:
        return False
    result = db.session.execute(
        update(User)
        .where(User.id == user.id,
               or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return result.rowcount == 1


def enable(user: User, secret: str, step: int) -> None:
    """Confirmed enrolment: store the secret; every other session of the user ends."""
    user.totp_secret = secret
    user.totp_enabled_at = datetime.now(UTC).replace(tzinfo=None)
    user.totp_last_step = step  # the confirming code cannot be replayed at login
    user.session_generation += 1
    db.session.commit()
    security_event("mfa_enabled", username=user.username)


def disable(user: User, *, event: str = "mfa_disabled", **details) -> None:
    """Forget the second factor and end every session of the user."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.session_generation += 1
    db.session.commit()
    security_event(event, username=user.username, **details)
