"""One message to one destination: the JSON webhook (HMAC-signed), Slack- and Discord-compatible
webhooks, Telegram's Bot API `sendMessage`, and email over SMTP.

Every send is checked against the outbound policy first (policy.py) and connects only to the
addresses it checked (pinned.py), uses short timeouts and never follows a redirect. A failure
raises SendError with a reason that names no secret: the webhook URL and the Telegram bot
token are secrets (the URL carries the token), so errors are described by their kind and
status code, never by the library's text, which quotes the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

import requests

from . import pinned, policy

CONDITION_LABELS = {
    "missing": "missing (Hummingbot no longer reports it)",
    "crashed": "crashed (container exited)",
    "deploy_failed": "deploy failed",
    "stuck": "stuck deploying or stopping",
    "archived_running": "archived, but still running",
    "error_lines": "error lines in its log",
    "drawdown": "PnL drawdown over the threshold",
    "hummingbot_unreachable": "Hummingbot unreachable",
}
SIGNATURE_HEADER = "X-BotManagement-Signature"
TIMESTAMP_HEADER = "X-BotManagement-Timestamp"
MAX_TEXT = 1800  # under Discord's 2,000 and Telegram's 4,096 characters


class _QuietWhileSending(logging.Filter):
    """urllib3 logs each request's URL at DEBUG: for an alert that URL is a secret (a
    webhook's path, Telegram's bot token). Its records are dropped while this thread sends."""

    sending = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.sending, "on", False)


_QUIET = _QuietWhileSending()
logging.getLogger("urllib3.connectionpool").addFilter(_QUIET)


class SendError(RuntimeError):
    """The send failed; `str()` is safe to store and show (no secret in it)."""


def message_text(payload: Mapping[str, Any]) -> str:
    """The human message: one line of what happened, then the detail (untrusted text, sent as
    plain text: no markup mode is asked of Slack, Discord or Telegram)."""
    event = payload.get("event")
    if event == "test":
        return "Bot Management: test message. This destination works."
    condition = CONDITION_LABELS.get(payload.get("condition"), payload.get("condition"))
    subject = payload.get("bot_name") or payload.get("bot_id") or "Fleet"
    if payload.get("account"):
        subject = f"{subject} ({payload['account']})"
    head = {"fired": "ALERT", "repeat": "STILL", "resolved": "RESOLVED"}.get(event, "ALERT")
    line = f"[{head}] {subject}: {condition}"
    if payload.get("detail"):
        line += f"\n{payload['detail']}"
    return line[:MAX_TEXT]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): what the receiver checks
    (and refuses a timestamp too old, so a captured message cannot be replayed later)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str], config: Mapping) -> None:
    # At send time too (DNS may have changed since it was saved), and only to what it checked.
    addresses = policy.check_url(url, config)
    timeout = config.get("ALERT_SEND_TIMEOUT", 5.0)
    _QUIET.sending.on = True
    try:
        response = pinned.post(url, addresses, data=body, headers=headers,
                               timeout=(timeout, timeout), allow_redirects=False)
    except requests.Timeout:
        raise SendError("timed out") from None
    except requests.ConnectionError:
        raise SendError("could not connect") from None
    except requests.RequestException as exc:
        raise SendError(f"request failed ({exc.__class__.__name__})") from None
    finally:
        _QUIET.sending.on = False
    if 300 <= response.status_code < 400:
        raise SendError(f"HTTP {response.status_code}: redirects are not followed")
    if response.status_code >= 400:
        raise SendError(f"HTTP {response.status_code}")


def _json_headers(key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Idempotency-Key": key,
            "User-Agent": "BotManagement-Alerts/1"}


def send_webhook(destination, payload: dict, key: str, config: Mapping) -> None:
    body = json.dumps({**payload, "idempotency_key": key}, sort_keys=True).encode()
    headers = _json_headers(key)
    if destination.signing_secret:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(destination.signing_secret, timestamp, body)
    _post(destination.target or "", body, headers, config)


def slack_escape(text: str) -> str:
    """Slack reads `<!channel>`, `<@U123>` and `<url|label>` in text as markup: an error line
    from Hummingbot must not ping a channel or dress up a link. Its escaping, per Slack."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_slack(destination, payload: dict, key: str, config: Mapping) -> None:
    body = json.dumps({"text": slack_escape(message_text(payload))}).encode()
    _post(destination.target or "", body, _json_headers(key), config)


def send_discord(destination, payload: dict, key: str, config: Mapping) -> None:
    # No mentions from the text: an error line saying @everyone pings nobody.
    body = json.dumps({"content": message_text(payload),
                       "allowed_mentions": {"parse": []}}).encode()
    _post(destination.target or "", body, _json_headers(key), config)


def send_telegram(destination, payload: dict, key: str, config: Mapping) -> None:
    base = config.get("ALERTS_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
    url = f"{base}/bot{destination.target or ''}/sendMessage"
    body = json.dumps({"chat_id": (destination.settings or {}).get("chat_id"),
                       "text": message_text(payload),
                       "disable_web_page_preview": True}).encode()
    _post(url, body, _json_headers(key), config)


def send_email(destination, payload: dict, key: str, config: Mapping) -> None:
    settings = destination.settings or {}
    host, port = settings.get("host", ""), int(settings.get("port") or 587)
    addresses = policy.check_host(host, port, config)
    message = EmailMessage()
    message["From"] = settings.get("from", "")
    message["To"] = settings.get("to", "")
    text = message_text(payload)
    message["Subject"] = text.splitlines()[0][:200]
    # The same message id for every retry: mail systems drop a duplicate by it.
    message["Message-ID"] = f"<{key}@bot-management.alerts>"
    message["Idempotency-Key"] = key
    message.set_content(text)
    timeout = config.get("ALERT_SEND_TIMEOUT", 5.0)
    try:
        with pinned.PinnedSMTP(host, port, addresses, timeout) as smtp:
            if settings.get("starttls", True):
                smtp.starttls(context=ssl.create_default_context())
            if settings.get("username"):
                smtp.login(settings["username"], destination.target or "")
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise SendError("the SMTP server refused the username or password") from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP failed ({exc.__class__.__name__})") from None


SENDERS = {"webhook": send_webhook, "slack": send_slack, "discord": send_discord,
           "telegram": send_telegram, "email": send_email}


def send(destination, payload: dict, key: str, config: Mapping) -> None:
    """Send one message; raises SendError (or policy.PolicyError) when it did not go."""
    SENDERS[destination.kind](destination, payload, key, config)
