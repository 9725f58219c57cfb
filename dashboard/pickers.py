"""Account and connector pickers for the bot forms: chosen from what Hummingbot knows.

A typo in an account is expensive: Hummingbot fails the deploy with a 500 and leaves files
behind. So the create, edit and recreate forms offer Hummingbot's accounts and connectors
(cached in `gateway.Catalog`), and refuse a value it does not know, unless it is the value
already stored. A new account is created on purpose (`accounts.py`). While Hummingbot cannot
be asked the lists are unknown and the forms take free text, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, url_for
from sqlalchemy import exists, select

from .gateway import hummingbot
from .models import Bot, User, db
from .validation import HUMMINGBOT_NAME, ValidationError, validate_bot


@dataclass(frozen=True)
class Choices:
    accounts: list[str] | None  # Hummingbot's credentials profiles; None: not known now
    connectors: list[str] | None

    @property
    def known(self) -> bool:
        return self.accounts is not None


def choices() -> Choices:
    """The lists for a form (templates call this only where a picker is shown)."""
    catalog = hummingbot().catalog
    return Choices(accounts=catalog.get("accounts"), connectors=catalog.get("connectors"))


def _known_here(account: str) -> bool:
    """A bot definition or a client login uses the account: not a typo, even where
    Hummingbot lacks it (the deploy form then says so)."""
    return bool(db.session.scalar(select(
        exists().where(Bot.account_identifier == account)
        | exists().where(User.account_identifier == account))))


def unknown_choices(values: Mapping[str, Any], stored: Any = None) -> dict[str, str]:
    """Field errors for an account or connector nobody knows: a typo. An account is known
    when Hummingbot has it, or a definition or client login here uses it; a connector when
    Hummingbot lists it. A value equal to the stored one is never refused (an edit must not
    fail on a field it does not change)."""
    found = choices()
    errors: dict[str, str] = {}
    account = str(values.get("account_identifier") or "").strip()
    if (found.accounts is not None and account and account not in found.accounts
            and account != getattr(stored, "account_identifier", None)
            and not _known_here(account)):
        errors["account_identifier"] = (
            "is not an account Hummingbot knows. Pick one from the list, or create it in "
            "Hummingbot first (the link below the field).")
    connector = str(values.get("connector") or "").strip()
    if (found.connectors is not None and connector and connector not in found.connectors
            and connector != getattr(stored, "connector", None)):
        errors["connector"] = "is not a connector Hummingbot knows; pick one from the list."
    return errors


def validate_form(values: Mapping[str, Any], stored: Any = None) -> None:
    """The definition's own rules, then the pickers', reported together (ValidationError)."""
    errors: dict[str, str] = {}
    try:
        validate_bot({**values, "id": getattr(stored, "id", None) or values.get("id")},
                     max_config_bytes=current_app.config["MAX_CONFIG_BYTES"])
    except ValidationError as exc:
        errors.update(exc.errors)
    for name, message in unknown_choices(values, stored).items():
        errors.setdefault(name, message)
    if errors:
        raise ValidationError(errors)


def new_account_url(name: str, back: str) -> str | None:
    """Where to create `name` in Hummingbot on purpose, coming back to `back` afterwards."""
    if not name or len(name) > 64 or not HUMMINGBOT_NAME.match(name):
        return None
    return url_for("accounts.new_account", name=name, next=back)


def account_for_login(account: str) -> tuple[bool, bool]:
    """For a new client login: (known, Hummingbot could be asked). Known when a bot uses the
    account or Hummingbot has it."""
    used = db.session.scalar(select(exists().where(Bot.account_identifier == account)))
    if used:
        return True, True
    accounts = hummingbot().catalog.get("accounts")
    return (accounts is not None and account in accounts), accounts is not None
