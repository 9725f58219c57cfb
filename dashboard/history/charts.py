"""Server-rendered SVG charts, and amounts with their currency for them.

No JavaScript and no inline styles (the CSP allows neither): shapes carry classes that
static/history.css colours from Pico's variables, so both themes work. Values show on hover
through <title> elements, and every chart has a table beside it (templates/history/).
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from ..formatting import amount_text
from .services import Series


def amount(value: float | None, quote: str = "", *, signed: bool = True) -> str:
    """'+1,234.56 USDT', '-0.0042 USDT': the one precision rule (formatting.amount_text)
    with the quote currency after it."""
    text = amount_text(value, signed=signed)
    return f"{text} {quote}" if quote and value is not None else text


def sign_class(value: float | None) -> str:
    """'up', 'down' or 'flat', as the amount reads: an amount that rounds to nothing is flat."""
    return {"+": "up", "-": "down"}.get(amount_text(value, signed=True)[:1], "flat")


def _minute(value: datetime) -> str:
    """'2026-11-30 14:00' (naive UTC): isoformat costs about a third of strftime per call,
    and a chart writes hundreds."""
    return value.isoformat(" ", "minutes")[:16]


def _day(value: datetime) -> str:
    return value.isoformat()[:10]


def _fmt_time(value: datetime, with_time: bool) -> str:
    """A point's or a run's time (naive UTC): digits only, nothing to escape."""
    return f"{_minute(value)} UTC" if with_time else _day(value)


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
    """Cumulative PnL (a line) over volume per period (bars), run starts marked (dashed).

    The SVG stretches to the box's width (preserveAspectRatio none, strokes that do not
    scale), so it holds no text: the scale and the dates are HTML around it (chart_labels).
    Few elements whatever the range: one line, every bar in one path, and per point one
    transparent hover strip whose <title> gives its values."""
    width, height, plot_h, volume_h = 720, 200, 140, 44
    points = series.points
    start_t = since or (points[0][0] if points else now)
    span_t = max((now - start_t).total_seconds(), 1.0)
    x_scale = width / span_t

    low, high = _bounds(series)
    y_scale = (plot_h - 8) / ((high - low) or 1.0)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="none">',
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="0" x2="{width}" y1="{4 + high * y_scale:.1f}" '
        f'y2="{4 + high * y_scale:.1f}" vector-effect="non-scaling-stroke"/>',
    ]
    if points:
        xs = [(t - start_t).total_seconds() * x_scale for t, _, _ in points]
        path = " ".join(f"{x:.1f},{4 + (high - v) * y_scale:.1f}"
                        for x, (_, v, _) in zip(xs, points, strict=True))
        parts.append(f'<polyline class="line {sign_class(series.change)}" points="{path}" '
                     'vector-effect="non-scaling-stroke"/>')
        bar_scale = volume_h / (max(p[2] for p in points) or 1.0)
        slot = width / len(points)
        bar_w = max(slot - 1, 0.5)
        # A bucket starts at its point: the last one (today's day, this hour) would reach past
        # `now`, outside the chart (and the phone's screen), so widths end at the right edge.
        room = [max(width - x, 0.0) for x in xs]
        parts.append('<path class="bars" d="' + "".join(
            f"M{x:.1f} {height}v-{max(volume, 0.0) * bar_scale:.1f}h{min(bar_w, r):.2f}"
            f"V{height}z"
            for x, r, (_, _, volume) in zip(xs, room, points, strict=True)) + '"/>')
        unit = _unit(quote)
        for x, r, (t, v, volume) in zip(xs, room, points, strict=True):
            parts.append(
                f'<rect class="hit" x="{x:.1f}" y="0" width="{min(slot, r):.2f}" '
                f'height="{height}">'
                f"<title>{_fmt_time(t, with_time)}: PnL {amount_text(v, signed=True)}{unit}, "
                f"volume {amount_text(volume)}{unit}</title></rect>")
    for run in series.runs:
        if run >= start_t:
            x = (run - start_t).total_seconds() * x_scale
            parts.append(
                f'<g class="run"><title>Run started {_fmt_time(run, True)}</title>'
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" '
                'vector-effect="non-scaling-stroke"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers, dates and escaped text only


def chart_table(series: Series, quote: str, *, with_time: bool) -> Markup:
    """The chart's figures as table rows, newest first: the accessible alternative to the
    SVG (built here, not in a template loop: it is most of a chart page's rendering)."""
    if not series.points:
        return Markup('<tr><td colspan="3" class="muted">No samples in this period.</td></tr>')
    when, unit = (_minute if with_time else _day), _unit(quote)
    return Markup("".join(  # noqa: S704 - numbers, dates and escaped text only
        f'<tr><td>{when(t)}</td><td class="num {sign_class(v)}">'
        f"{amount_text(v, signed=True)}{unit}</td>"
        f'<td class="num">{amount_text(volume)}{unit}</td></tr>'
        for t, v, volume in reversed(series.points)))


def _unit(quote: str) -> str:
    return f" {escape(quote)}" if quote else ""


def _bounds(series: Series) -> tuple[float, float]:
    values = [series.start, 0.0] + [p[1] for p in series.points]
    return min(values), max(values)


def chart_labels(series: Series, quote: str, *, since: datetime | None, now: datetime,
                 with_time: bool) -> dict[str, str]:
    """The text around a line_chart: its scale and its first and last dates."""
    low, high = _bounds(series)
    start_t = since or (series.points[0][0] if series.points else now)
    return {"high": amount(high, quote), "low": amount(low, quote),
            "start": _fmt_time(start_t, with_time), "end": _fmt_time(now, with_time)}
