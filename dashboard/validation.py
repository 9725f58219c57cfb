"""The rules a bot definition must meet, shared by the forms, the JSON API and the importer."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Hummingbot's own pattern for instance names and credentials profiles.
HUMMINGBOT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
STRATEGY = re.compile(r"^[A-Za-z0-9_.:-]+$")
CONNECTOR = re.compile(r"^[A-Za-z0-9_.-]+$")
PAIR = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")

MAX_INSTANCE_NAME_LENGTH = 200  # what we accept from Hummingbot as a live bot's name
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 48  # leaves room for the "-YYYYmmdd-HHMMSS" Hummingbot appends
MAX_INSTANCE_NAME_LENGTH = MAX_NAME_LENGTH + len("-YYYYmmdd-HHMMSS")
MAX_FIELD_LENGTH = 64
MAX_CONFIG_DEPTH = 32  # nesting levels; deeper JSON is refused, never a RecursionError
BOT_FIELDS = ("id", "name", "account_identifier", "strategy", "connector", "pair", "config")


def is_instance_name(value) -> bool:
    """A name Hummingbot reports passes its own rule. Only such a name may go into a URL, a
    form or an attribute; any other is shown as text and nothing is offered for it."""
    return isinstance(value, str) and len(value) <= MAX_INSTANCE_NAME_LENGTH \
        and HUMMINGBOT_NAME.match(value) is not None


class ValidationError(ValueError):
    """Field name -> message. The form re-renders with these beside the user's input."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class BotFields:
    id: str
    name: str
    account_identifier: str
    strategy: str
    connector: str
    pair: str
    config: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in BOT_FIELDS}


def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _check(value: str, pattern: re.Pattern[str], max_length: int, allowed: str) -> str | None:
    if not value:
        return "is required."
    if len(value) > max_length:
        return f"must be at most {max_length} characters."
    if not pattern.match(value):
        return f"may contain only {allowed}."
    return None


def parse_config(raw: Any, max_bytes: int) -> dict[str, Any]:
    """A JSON object, given as text (forms) or already decoded (API, import)."""
    if isinstance(raw, dict):
        value = raw
    elif raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    elif isinstance(raw, str):
        if problem := _text_problem(raw):  # first: encoding a lone surrogate would raise
            raise ValueError(problem)
        if len(raw.encode()) > max_bytes:
            raise ValueError(f"must be at most {max_bytes // 1024} KiB.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
        except RecursionError as exc:
            raise ValueError(f"is nested more than {MAX_CONFIG_DEPTH} levels deep.") from exc
    else:
        raise ValueError("must be a JSON object.")
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object, like {\"order_amount\": 0.01}.")
    _check_storable(value)
    if len(json.dumps(value).encode()) > max_bytes:
        raise ValueError(f"must be at most {max_bytes // 1024} KiB.")
    return value


def _text_problem(text: str) -> str | None:
    """PostgreSQL refuses a NUL character in JSONB text, and UTF-8 has no lone surrogate (the
    driver cannot encode one): both would end in a 500."""
    if "\x00" in text:
        return "must not contain NUL characters (\\u0000)."
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "must not contain lone surrogates (\\ud800-\\udfff): they are not text."
    return None


def _check_storable(value: Any) -> None:
    """Refuse, as a field error instead of a 500, what JSONB cannot store (NUL, lone
    surrogates, NaN and infinities, which JSON itself has no way to write) and a deeply nested
    document, which is no configuration."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"is nested more than {MAX_CONFIG_DEPTH} levels deep.")
        if isinstance(item, str) and (problem := _text_problem(item)):
            raise ValueError(problem)
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must hold only finite numbers (not NaN or Infinity, and not "
                             "beyond about 1.8e308).")
        if isinstance(item, dict):
            for key, child in item.items():
                if problem := _text_problem(key):
                    raise ValueError(problem)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def instance_name_problem(value: Any) -> str | None:
    """What is wrong with a name Hummingbot runs a bot under, from outside (an import file):
    it must pass Hummingbot's own name rule, so it is safe in a URL, a path and a log."""
    if not isinstance(value, str):
        return "must be text."
    return _check(value, HUMMINGBOT_NAME, MAX_INSTANCE_NAME_LENGTH, "letters, digits, '-' and '_'")


def validate_bot(data: Mapping[str, Any], *, max_config_bytes: int) -> BotFields:
    """Clean and check every field; raise ValidationError naming each bad one."""
    values = {field: _text(data.get(field)) for field in BOT_FIELDS if field != "config"}
    values["pair"] = values["pair"].upper()
    names = "letters, digits, '-' and '_'"
    problems = {
        "id": _check(values["id"], HUMMINGBOT_NAME, MAX_ID_LENGTH, names),
        "name": _check(values["name"], HUMMINGBOT_NAME, MAX_NAME_LENGTH, names),
        "account_identifier": _check(
            values["account_identifier"], HUMMINGBOT_NAME, MAX_FIELD_LENGTH, names
        ),
        "strategy": _check(
            values["strategy"], STRATEGY, MAX_FIELD_LENGTH, "letters, digits and _ . : -"
        ),
        "connector": _check(
            values["connector"], CONNECTOR, MAX_FIELD_LENGTH, "letters, digits and _ . -"
        ),
        "pair": _check(values["pair"], PAIR, MAX_FIELD_LENGTH, "BASE-QUOTE, like BTC-USDT"),
    }
    errors = {field: message for field, message in problems.items() if message}
    config: dict[str, Any] = {}
    try:
        config = parse_config(data.get("config"), max_config_bytes)
    except ValueError as exc:
        errors["config"] = str(exc)
    if errors:
        raise ValidationError(errors)
    return BotFields(config=config, **values)
