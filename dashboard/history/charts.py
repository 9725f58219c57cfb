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
    """Cumulative PnL (a line) over volume per period (bars), run starts marked (dashed).

    The SVG stretches to the box's width (preserveAspectRatio none, strokes that do not
    scale), so it holds no text: the scale and the dates are HTML around it (chart_labels)."""
    width, height, plot_h, volume_h = 720, 200, 140, 44
    points = series.points
    start_t = since or (points[0][0] if points else now)
    span_t = max((now - start_t).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return (t - start_t).total_seconds() / span_t * width

    low, high = _bounds(series)
    span_v = (high - low) or 1.0

    def y(v: float) -> float:
        return 4 + (high - v) / span_v * (plot_h - 8)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="none">',
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="0" x2="{width}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'vector-effect="non-scaling-stroke"/>',
    ]
    if points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in points)
        parts.append(f'<polyline class="line {sign_class(series.change)}" points="{path}" '
                     'vector-effect="non-scaling-stroke"/>')
        top_volume = max((p[2] for p in points), default=0.0) or 1.0
        slot = width / max(len(points), 1)
        for t, v, volume in points:
            bar_h = max(volume, 0.0) / top_volume * volume_h
            title = f"{_fmt_time(t, with_time)}: PnL {amount(v, quote)}, volume " \
                    f"{amount(volume, quote, signed=False)}"
            parts.append(
                f'<g class="point"><title>{escape(title)}</title>'
                f'<rect class="hit" x="{x(t):.1f}" y="0" width="{slot:.2f}" height="{height}"/>'
                f'<rect class="bar" x="{x(t):.1f}" y="{height - bar_h:.1f}" '
                f'width="{max(slot - 1, 0.5):.2f}" height="{bar_h:.1f}"/></g>')
    for run in series.runs:
        if run >= start_t:
            parts.append(
                f'<g class="run"><title>Run started {escape(_fmt_time(run, True))}</title>'
                f'<line x1="{x(run):.1f}" x2="{x(run):.1f}" y1="0" y2="{height}" '
                'vector-effect="non-scaling-stroke"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only


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
