"""Pure pieces of the history: amounts, coarser buckets that keep totals, SVG that escapes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard.formatting import amount_text
from dashboard.history.charts import amount, line_chart, sign_class, sparkline
from dashboard.history.services import MAX_POINTS, Series, _coarsen, _cumulate


def test_amounts_have_one_rule():
    """The history's amounts read as the list's (formatting.amount_text): two decimals from 1
    up, four below, '+' or '-' in front, no sign on what rounds to nothing."""
    assert amount(1234.5, "USDT") == "+1,234.50 USDT"
    assert amount(-0.004, "USDT") == "-0.0040 USDT"  # a small loss is not 0.00
    assert amount(-0.00001, "USDT") == "0.0000 USDT"  # never "-0.0000"
    assert amount(-2.5, "BTC") == "-2.50 BTC"
    assert amount(99.999, "USDT", signed=False) == "100.00 USDT"
    assert amount(None) == "\u2013"
    for value in (1234.5, -0.004, 0.0042, -0.00001, 99.999, 0.0):
        assert amount(value, "USDT") == f"{amount_text(value, signed=True)} USDT"
    assert [sign_class(v) for v in (0.004, -0.004, -0.00001, None)] == \
        ["up", "down", "flat", "flat"]


def test_coarser_buckets_keep_every_total():
    start = datetime(2026, 1, 1)
    rows = [(start + timedelta(days=i), (i % 7) - 3.1, float(i)) for i in range(400)]
    merged = _coarsen(rows)
    assert len(merged) <= MAX_POINTS
    assert sum(r[1] for r in merged) == pytest.approx(sum(r[1] for r in rows))
    assert sum(r[2] for r in merged) == pytest.approx(sum(r[2] for r in rows))
    series = _cumulate(rows, total_pnl=100.0, total_volume=0.0)
    assert series.points[-1][1] == pytest.approx(100.0)  # ends at the running total
    assert series.change == pytest.approx(sum(r[1] for r in rows))


def test_svg_escapes_its_labels():
    now = datetime(2026, 1, 2)
    series = Series(points=[(now - timedelta(hours=1), 1.0, 2.0)], runs=[now - timedelta(hours=2)],
                    start=0.0, total_pnl=1.0, total_volume=2.0)
    svg = str(line_chart(series, "USDT", since=now - timedelta(days=1), now=now,
                         label='<script>"x"</script>'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<title>Run started 2026-01-01 22:00 UTC</title>" in svg
    assert 'aria-label="24 h: +1.00 USDT"' in str(sparkline([0.0, 1.0], "USDT"))


def test_no_bar_or_hover_strip_reaches_past_the_right_edge():
    """Each bucket is drawn from its start: today's daily bucket, 23 minutes after midnight,
    reached most of a slot past `now`, outside the chart and past a phone's screen (seen in
    Chromium at 390 px on the 'all' range, just after midnight UTC)."""
    import re

    now = datetime(2026, 12, 1, 0, 23)
    days = [datetime(2026, 11, 1) + timedelta(days=d) for d in (0, 6, 15, 27, 29, 30)]
    series = Series(points=[(day, float(i), 10.0) for i, day in enumerate(days)], runs=[],
                    start=0.0, total_pnl=5.0, total_volume=60.0)
    svg = str(line_chart(series, "USDT", since=None, now=now, with_time=False, label="all"))
    strips = [(float(x), float(w)) for x, w in
              re.findall(r'<rect class="hit" x="([\d.]+)" y="0" width="([\d.]+)"', svg)]
    assert len(strips) == len(days)
    assert all(x + w <= 720.05 for x, w in strips), strips
    bars = re.findall(r"M([\d.]+) 200v-[\d.]+h([\d.]+)V200z", svg)
    assert len(bars) == len(days)
    assert all(float(x) + float(w) <= 720.05 for x, w in bars), bars
