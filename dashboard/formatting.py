"""How numbers and times read on every page: one precision rule, one time format.

Amounts are in the pair's quote currency (ETH-USDT: USDT), with thousands separators; two
decimals from 1 up, four below (a 0.0042 USDT PnL must not read as 0.00). Signed amounts (PnL)
carry a sign character as well as a colour class. Times are UTC, with the date when it is not
today; the full ISO time is in `datetime` and the title, and static/app.js adds the local time.
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup

from .registry import quote_currency, utcnow


def amount_text(value: float | None, *, signed: bool = False) -> str:
    """The one precision rule: '1,234.57', '0.0042'; '+'/'-' in front when `signed`."""
    if value is None:
        return "\u2013"  # an en dash: no amount
    digits = 2 if abs(value) >= 1 or value == 0 else 4
    text = f"{abs(value):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return f"{0:.{digits}f}"  # no sign on an amount that rounds to nothing
    if signed:
        return ("+" if value > 0 else "-") + text
    return text if value >= 0 else "-" + text


def money(value: float | None, pair: str | None = None, *, quote: str | None = None,
          signed: bool = False) -> Markup:
    """An amount with its currency, for a table cell: `<span class="pos">+12.30</span> USDT`."""
    if value is None:
        return Markup('<span class="muted">&ndash;</span>')
    text = amount_text(value, signed=signed)
    tone = ""
    if signed and text[0] in "+-":
        tone = " pos" if text[0] == "+" else " neg"
    currency = quote if quote is not None else quote_currency(pair)
    unit = Markup(" <small>{}</small>").format(currency) if currency else ""
    return Markup('<span class="amount{}">{}</span>{}').format(tone, text, unit)


def pnl(value: float | None, pair: str | None = None, *, quote: str | None = None) -> Markup:
    return money(value, pair, quote=quote, signed=True)


def when_text(value: datetime, now: datetime | None = None) -> str:
    """'14:03:22 UTC' today, '2026-11-29 14:03 UTC' on another day (naive UTC in)."""
    if value.date() == (now or utcnow()).date():
        return value.strftime("%H:%M:%S UTC")
    return value.strftime("%Y-%m-%d %H:%M UTC")


def when(value: datetime | None) -> Markup:
    """A `<time>` element: UTC text, the full time in `datetime` and the title; app.js
    puts the viewer's local time in the title too."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    iso = value.isoformat(timespec="seconds") + "Z"
    full = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}" data-local>{}</time>').format(
        iso, full, when_text(value))


def init_app(app) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["pnl"] = pnl
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["quote_currency"] = quote_currency
