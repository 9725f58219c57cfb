"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

Logged-in only, like the API it describes (ASVS 13.4.5: documentation endpoints are exposed
only on purpose): it names no secret, but nobody outside needs it. tests/test_fuzz_api.py
checks that every /api/ route is described here and lets Schemathesis loose on it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from .models import BOT_STATUSES
from .registry import NEEDS_ATTENTION, SORTS
from .status import BADGES
from .validation import MAX_ID_LENGTH

bp = Blueprint("openapi", __name__)

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "retry_after": {"type": "integer"},
    },
}

# A bot's settings: what a bot and each of its stored versions both carry.
SETTINGS = {
    "name": {"type": "string"},
    "account_identifier": {"type": "string"},
    "strategy": {"type": "string"},
    "connector": {"type": "string"},
    "pair": {"type": "string"},
    "config": {"type": "object"},
}

BOT = {
    "type": "object",
    "required": ["id", "name", "account_identifier", "strategy", "connector", "pair", "config",
                 "status", "version", "display_status", "status_is_stale", "live"],
    "properties": {
        "id": {"type": "string"},
        **SETTINGS,
        "status": {"type": ["string", "null"], "enum": [*BOT_STATUSES, None]},
        "created_at": NULLABLE_TIME,
        "updated_at": NULLABLE_TIME,
        "instance_name": NULLABLE_STRING,
        "version": {"type": "integer"},
        "archived_at": NULLABLE_TIME,
        "last_error": NULLABLE_STRING,
        "last_seen_status": NULLABLE_STRING,
        "last_seen_at": NULLABLE_TIME,
        "display_status": {"type": "string", "enum": list(BADGES),
                           "description": "The badge the pages show (the merged status)."},
        "status_is_stale": {"type": "boolean"},
        "needs_attention": {"type": "boolean", "description": "Missing, crashed, deploy failed, "
                            "error, stuck, archived but still running, or an error line in "
                            "the latest report of a bot Hummingbot reports."},
        "error_log": {**NULLABLE_STRING, "description": "The latest error log line (untrusted "
                                                       "text from Hummingbot)."},
        "pnl_quote": {"type": ["number", "null"], "description": "Global PnL, quote currency."},
        "volume_quote": {"type": ["number", "null"],
                         "description": "Volume traded, quote currency."},
        "quote_currency": {"type": "string", "description": "The pair's quote (ETH-USDT: USDT)."},
        "live": {"type": ["object", "null"], "description": "What Hummingbot reports, as is."},
    },
}

BOT_ID_PARAMETER = {
    "name": "bot_id", "in": "path", "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH,
               "pattern": "^[A-Za-z0-9_-]+$"},
}

CHANGE = {
    "type": "object",
    "required": ["path", "kind", "before", "after"],
    "properties": {
        "path": {"type": "string", "description": "e.g. config.levels[1].spread"},
        "kind": {"type": "string", "enum": ["added", "removed", "changed"]},
        "before": {"description": "Any JSON value (null when added)."},
        "after": {"description": "Any JSON value (null when removed)."},
    },
}

VERSIONS = {
    "type": "object",
    "required": ["bot_id", "current_version", "versions"],
    "properties": {
        "bot_id": {"type": "string"},
        "current_version": {"type": "integer"},
        "versions": {"type": "array", "items": {
            "type": "object",
            "required": ["version", "current", "name", "account_identifier", "strategy",
                         "connector", "pair", "config", "replaced_at", "replaced_by",
                         "changes_to_next"],
            "properties": {
                "version": {"type": "integer"},
                "current": {"type": "boolean"},
                **SETTINGS,
                "replaced_at": NULLABLE_TIME,
                "replaced_by": {"type": ["string", "null"],
                                "description": "An operator's login; \"operator\" for clients."},
                "changes_to_next": {"type": "array", "items": CHANGE},
            },
        }},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _refusals(*extra: str) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    responses = {
        "400": _json(error, "Unusable input (e.g. a NUL character), or an htmx request "
                           "(HX-Request): the API serves data, never page fragments."),
        "401": _json(error, "Not logged in: send HTTP Basic credentials or the session cookie."),
        "429": _json(error, "Too many login attempts from this address or for this username; "
                            "see Retry-After."),
    }
    if "404" in extra:
        responses["404"] = _json(error, "No such bot or account, or not one this login may "
                                        "see (the same answer either way).")
    return responses


HISTORY = {
    "type": "object",
    "required": ["account", "bot_id", "first_day", "last_day", "rows", "totals"],
    "properties": {
        "account": {"type": "string"},
        "bot_id": NULLABLE_STRING,
        "first_day": {"type": "string", "format": "date"},
        "last_day": {"type": "string", "format": "date"},
        "rows": {"type": "array", "items": {
            "type": "object",
            "description": "One UTC day of one controller of one bot; amounts in `quote`.",
            "required": ["date", "account", "bot_id", "bot_name", "controller", "quote",
                         "realized_pnl", "unrealized_pnl_change", "global_pnl", "volume"],
            "properties": {
                "date": {"type": "string", "format": "date"},
                "account": {"type": "string"}, "bot_id": {"type": "string"},
                "bot_name": {"type": "string"}, "controller": {"type": "string"},
                "quote": {"type": "string"}, "realized_pnl": {"type": "number"},
                "unrealized_pnl_change": {"type": "number"}, "global_pnl": {"type": "number"},
                "volume": {"type": "number"},
            },
        }},
        "totals": {"type": "object", "description": "Sums of the rows per quote currency.",
                   "additionalProperties": {"type": "object"}},
    },
}


def _period() -> list[dict[str, Any]]:
    return [
        _query("from", "First UTC day, YYYY-MM-DD (default: 29 days before today).",
               format="date", maxLength=10),
        _query("to", "Last UTC day, YYYY-MM-DD (default: today); at most 3660 days in all.",
               format="date", maxLength=10),
    ]


def _history_path(operation: str, summary: str, name: str, description: str,
                  pattern: str) -> dict[str, Any]:
    return {"get": {
        "operationId": operation,
        "summary": summary,
        "parameters": [{"name": name, "in": "path", "required": True, "description": description,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256,
                                   "pattern": pattern}}, *_period()],
        "responses": {
            "200": _json(HISTORY, "Daily rows per bot and controller, and their totals."),
            **_refusals("404"),
        },
    }}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string", **schema}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bot Management API",
            "version": "1",
            "description": "Bot definitions from PostgreSQL merged with Hummingbot's live status. "
                           "Clients see only their own account's bots; admins see every account.",
        },
        "security": [{"basicAuth": []}, {"sessionCookie": []}],
        "paths": {
            "/api/bots": {"get": {
                "operationId": "listBots",
                "summary": "The bots this login may see, with their merged status.",
                "parameters": [
                    _query("account", "Admins only: one account (ignored for clients).",
                           maxLength=256),
                    _query("status", "One merged status (the badge: display_status), or "
                                     "needs_attention (archived bots that still run "
                                     "included); anything else means any.",
                           enum=[*BADGES, NEEDS_ATTENTION]),
                    _query("q", "Part of a name or id (first 64 characters are used).",
                           maxLength=256),
                    _query("sort", "Order of the list; a leading '-' reverses it. Names "
                                   "sort naturally (bot-2 before bot-10); bots without "
                                   "PnL, volume or a last-seen time come last.",
                           enum=list(SORTS)),
                    _query("attention", "first: bots needing attention first, then the sort.",
                           enum=["first"]),
                    _query("archived", "1 to include archived bots (admins).", enum=["0", "1"]),
                    _query("page", "Page number, from 1.", pattern="^[0-9]{1,6}$"),
                    _query("per_page", "Bots per page: default 100, at most 500.",
                           pattern="^[0-9]{1,4}$"),
                ],
                "responses": {
                    "200": _json({
                        "type": "object",
                        "required": ["bots", "hummingbot", "page", "per_page", "total"],
                        "properties": {
                            "page": {"type": "integer"},
                            "per_page": {"type": "integer"},
                            "total": {"type": "integer"},
                            "bots": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Bot"}},
                            "hummingbot": {
                                "type": "object",
                                "required": ["reachable", "error"],
                                "properties": {"reachable": {"type": "boolean"},
                                               "error": NULLABLE_STRING},
                            },
                        },
                    }, "One page of the bots (100 by default, at most 500)."),
                    **_refusals(),
                },
            }},
            "/api/bots/{bot_id}": {"get": {
                "operationId": "getBot",
                "summary": "One bot with its merged status.",
                "parameters": [BOT_ID_PARAMETER],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Bot"}, "The bot."),
                    **_refusals("404"),
                },
            }},
            "/api/bots/{bot_id}/versions": {"get": {
                "operationId": "listBotVersions",
                "summary": "A bot's configuration versions, current first, each with what "
                           "the next version changed (nested paths such as config.levels[0]).",
                "parameters": [BOT_ID_PARAMETER],
                "responses": {
                    "200": _json(VERSIONS, "The versions."),
                    **_refusals("404"),
                },
            }},
            "/api/accounts/{account}/history": _history_path(
                "accountHistory", "An account's performance, day by day (the statement).",
                "account", "An account identifier: clients only their own.",
                "^[A-Za-z0-9_-]+$"),
            "/api/bots/{bot_id}/history": _history_path(
                "botHistory", "One bot's performance across its runs, day by day.",
                "bot_id", "A bot this login may see.", "^[A-Za-z0-9_-]+$"),
            "/api/openapi.json": {"get": {
                "operationId": "openapiDocument",
                "summary": "This document.",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1."), **_refusals()},
            }},
        },
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic",
                              "description": "A dashboard login; throttled like the login form."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "The browser session (__Host-session in "
                                                 "production)."},
            },
            "schemas": {"Bot": BOT, "Error": ERROR},
        },
    }


@bp.route("/api/openapi.json", endpoint="document")
def openapi_document():
    return jsonify(document())
