"""Server-rendered SVG charts and the one way amounts are written.

No JavaScript and no inline styles (the CSP allows neither): shapes carry classes that
static/history.css colours from Pico's variables, so both themes work. Values show on hover
through <title> elements, and every chart has a table beside it (templates/history/).
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from .services import Series

MINUS = "\u2212"
UNKNOWN = "\u2013"  # an en dash


def amount(value: float | None, quote: str = "", *, signed: bool = True) -> str:
    """'+1,234.56 USDT': two decimals, thousands separators, a sign character."""
    if value is None:
        return UNKNOWN
    value = round(value, 2) + 0.0  # no "-0.00"
    sign = ("+" if value > 0 else MINUS if value < 0 else "") if signed else \
        (MINUS if value < 0 else "")
    text = f"{sign}{abs(value):,.2f}"
    return f"{text} {quote}" if quote else text


def sign_class(value: float | None) -> str:
    if value is None or round(value, 2) == 0:
        return "flat"
    return "up" if value > 0 else "down"


def _fmt_time(value: datetime, with_time: bool) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def sparkline(values: list[float], quote: str, label: str = "24 h") -> Markup:
    """A 24-hour line for a list row, its change in the title."""
    width, height, pad = 96, 24, 2
    change = values[-1] - values[0] if values else 0.0
    low, high = min([*values, 0.0]), max([*values, 0.0])
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{pad + (high - v) / span * (height - 2 * pad):.1f}"
        for i, v in enumerate(values))
    zero = pad + high / span * (height - 2 * pad)
    title = f"{label}: {amount(change, quote)}"
    return Markup(  # noqa: S704 - numbers and escaped text only
        f'<svg class="spark {sign_class(change)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<line class="zero" x1="0" x2="{width}" y1="{zero:.1f}" y2="{zero:.1f}"/>'
        f'<polyline points="{points}"/></svg>')


def line_chart(series: Series, quote: str, *, since: datetime | None, now: datetime,
               label: str, with_time: bool = True) -> Markup:
    """Cumulative PnL (a line) over volume per period (bars), run starts marked."""
    width, height, left, right, top, bottom = 720, 240, 80, 12, 12, 28
    volume_height = 50
    plot_h = height - top - bottom - volume_height - 8
    points = series.points
    start_t = since or (points[0][0] if points else now)
    span_t = max((now - start_t).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return left + (t - start_t).total_seconds() / span_t * (width - left - right)

    values = [series.start] + [p[1] for p in points]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    span_v = (high - low) or 1.0

    def y(v: float) -> float:
        return top + (high - v) / span_v * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="none">',
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>',
        f'<text class="tick" x="{left - 6}" y="{y(high) + 4:.1f}" text-anchor="end">'
        f"{escape(amount(high, signed=False))}</text>",
        f'<text class="tick" x="{left - 6}" y="{y(low) + 4:.1f}" text-anchor="end">'
        f"{escape(amount(low, signed=False))}</text>",
        f'<text class="tick" x="{left}" y="{height - 6}">{escape(_fmt_time(start_t, with_time))}'
        "</text>",
        f'<text class="tick" x="{width - right}" y="{height - 6}" text-anchor="end">'
        f"{escape(_fmt_time(now, with_time))}</text>",
    ]
    if points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in points)
        parts.append(f'<polyline class="line {sign_class(series.change)}" points="{path}"/>')
        base = height - bottom
        top_volume = max((p[2] for p in points), default=0.0) or 1.0
        bar_w = max((width - left - right) / max(len(points), 1) - 1, 1)
        for t, v, volume in points:
            bar_h = volume / top_volume * volume_height
            title = f"{_fmt_time(t, with_time)}: PnL {amount(v, quote)}, volume " \
                    f"{amount(volume, quote, signed=False)}"
            parts.append(
                f'<g class="point"><title>{escape(title)}</title>'
                f'<rect class="bar" x="{x(t):.1f}" y="{base - bar_h:.1f}" width="{bar_w:.1f}" '
                f'height="{bar_h:.1f}"/>'
                f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5"/></g>')
    for run in series.runs:
        if run >= start_t:
            parts.append(
                f'<g class="run"><title>Run started {escape(_fmt_time(run, True))}</title>'
                f'<line x1="{x(run):.1f}" x2="{x(run):.1f}" y1="{top}" y2="{height - bottom}"/>'
                f'<text class="tick" x="{x(run) + 3:.1f}" y="{top + 10}">run</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only
