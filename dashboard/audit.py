"""Security events: who did what, to which account, when, from where, under which request id.

One logger, `dashboard.security`, one call, `security_event(...)`. Every field is chosen here
or passed by name, so a password, a cookie or an Authorization header can only reach the log
if a caller names it, and none does (tests/test_security_logging.py checks the whole log).

The message is one line: values are JSON-encoded, so a username with a newline in it cannot
forge a second entry (log injection). The same fields ride along as `extra`, which the JSON
formatter in observability.py turns into top-level keys.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy.exc import OperationalError

SECURITY_LOG = "dashboard.security"
log = logging.getLogger(SECURITY_LOG)

_USERNAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_VALUE_LENGTH = 200


def loggable_username(attempted: str) -> str:
    """The attempted username if it looks like one; otherwise a marker (a password typed into
    the username box must not end up in the log)."""
    return attempted if _USERNAME.match(attempted or "") else "<not a username>"


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k)[:64]: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return str(value)[:MAX_VALUE_LENGTH]


def _who() -> tuple[str, str | None]:
    """(actor, account) of the current request: the logged-in user, or anonymous."""
    if not has_request_context():
        return "cli", None
    from flask_login import current_user

    try:
        user = current_user._get_current_object() if current_user else None
    except OperationalError:  # database down: logging must not turn a 400 into a 500
        return "unknown (database unavailable)", None
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous", None
    return user.username, (user.account_identifier or "*all*")


def security_event(event: str, *, level: int = logging.INFO, actor: str | None = None,
                   account: str | None = None, **details: Any) -> None:
    """Log one security event. `details` are names and plain values, never secrets."""
    who, whose = (actor, account) if actor is not None else _who()
    fields: dict[str, Any] = {
        "event": event,
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "actor": who,
        "account": whose if account is None else account,
    }
    if has_request_context():
        fields.update({
            "request_id": g.get("request_id"),
            "client_ip": request.remote_addr,
            "method": request.method,
            "path": request.path,
        })
    fields.update({key: _clean(value) for key, value in details.items()})
    message = "security " + " ".join(
        f"{key}={json.dumps(value, default=str)}" for key, value in fields.items()
    )
    log.log(level, message, extra={"security": True, **fields})
