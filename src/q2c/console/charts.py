"""Small inline SVG charts, drawn on the server: no chart library, no script, no network.

Each chart is a self-contained ``<svg>`` with a ``<title>`` per mark (the browser shows it as
a tooltip) and a ``role="img"`` label, so it reads in a screen reader too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

__all__ = ["bar_chart", "stacked_bars", "timeline_strip"]

COLORS = {
    "completed": "#2e7d32",
    "failed": "#c62828",
    "in_progress": "#90a4ae",
    "parked": "#c62828",
    "dismissed": "#8d6e63",
    "pending": "#90a4ae",
    "retry_wait": "#ef6c00",
    "running": "#1565c0",
}


def _fmt_time(moment: datetime, width: timedelta) -> str:
    if width >= timedelta(days=1):
        return moment.strftime("%d %b")
    if width >= timedelta(minutes=1):
        return moment.strftime("%H:%M")
    return moment.strftime("%H:%M:%S")


def stacked_bars(
    label: str,
    starts: Sequence[datetime],
    width: timedelta,
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    px_width: int = 360,
    px_height: int = 90,
) -> Markup:
    """Stacked columns over time, one column per bucket; ``series`` bottom to top."""
    count = len(starts)
    totals = [sum(values[i] for _, values in series) for i in range(count)]
    peak = max(totals, default=0) or 1
    plot_h = px_height - 18
    step = (px_width - 30) / max(count, 1)
    bar = max(1.0, step * 0.8)
    parts = [
        f'<svg class="chart" viewBox="0 0 {px_width} {px_height}" width="{px_width}" '
        f'height="{px_height}" role="img" aria-label="{escape(label)}">',
        f'<text x="{px_width - 2}" y="10" class="axis" text-anchor="end">{peak}</text>',
        f'<line x1="30" y1="{plot_h}" x2="{px_width}" y2="{plot_h}" class="baseline"/>',
    ]
    for i in range(count):
        y = float(plot_h)
        x = 30 + i * step
        for name, values in series:
            value = values[i]
            if not value:
                continue
            h = value / peak * (plot_h - 12)
            y -= h
            tip = f"{_fmt_time(starts[i], width)}: {value} {name.replace('_', ' ')}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS.get(name, "#607d8b")}"><title>{escape(tip)}</title></rect>'
            )
    if count:
        parts.append(
            f'<text x="30" y="{px_height - 3}" class="axis">'
            f"{escape(_fmt_time(starts[0], width))}</text>"
        )
        parts.append(
            f'<text x="{px_width}" y="{px_height - 3}" class="axis" text-anchor="end">'
            f"{escape(_fmt_time(starts[-1] + width, width))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    label: str,
    rows: Sequence[tuple[str, float, str]],
    *,
    unit: str = "",
    px_width: int = 460,
    row_height: int = 20,
) -> Markup:
    """Horizontal bars: (label, value, css color) per row."""
    peak = max((v for _, v, _ in rows), default=0) or 1
    height = row_height * len(rows) + 4
    left = 170
    parts = [
        f'<svg class="chart" viewBox="0 0 {px_width} {height}" width="{px_width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}">'
    ]
    for i, (name, value, color) in enumerate(rows):
        y = i * row_height + 2
        w = value / peak * (px_width - left - 60)
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="{left - 6}" y="{y + row_height * 0.7:.1f}" class="axis" '
            f'text-anchor="end">{escape(name)}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row_height - 6}" '
            f'fill="{color}"><title>{escape(name)}: {escape(shown)}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + row_height * 0.7:.1f}" class="axis">'
            f"{escape(shown)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline_strip(
    lanes: Sequence[tuple[str, Sequence[tuple[datetime, datetime, str, str]]]],
    *,
    px_width: int = 900,
    lane_height: int = 26,
) -> Markup:
    """A Gantt-like strip: one lane per flow, one bar per transaction
    (start, end, status, tooltip), on one shared time axis."""
    moments = [m for _, bars in lanes for s, e, _, _ in bars for m in (s, e)]
    if not moments:
        return Markup("")
    first, last = min(moments), max(moments)
    span = max((last - first).total_seconds(), 1.0)
    left, right = 190, 10
    plot_w = px_width - left - right
    height = lane_height * len(lanes) + 22
    parts = [
        f'<svg class="chart strip" viewBox="0 0 {px_width} {height}" width="{px_width}" '
        f'height="{height}" role="img" aria-label="transactions over time, by flow">'
    ]
    for i, (name, bars) in enumerate(lanes):
        y = i * lane_height
        parts.append(
            f'<text x="{left - 8}" y="{y + lane_height * 0.65:.1f}" class="axis" '
            f'text-anchor="end">{escape(name)}</text>'
            f'<line x1="{left}" y1="{y + lane_height - 1}" x2="{px_width - right}" '
            f'y2="{y + lane_height - 1}" class="gridline"/>'
        )
        for start, end, status, tip in bars:
            x = left + (start - first).total_seconds() / span * plot_w
            w = max(3.0, (end - start).total_seconds() / span * plot_w)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{lane_height - 12}" '
                f'rx="2" fill="{COLORS.get(status, "#607d8b")}"><title>{escape(tip)}</title></rect>'
            )
    axis_y = lane_height * len(lanes) + 16
    unit = timedelta(seconds=span)
    parts.append(
        f'<text x="{left}" y="{axis_y}" class="axis">{escape(first.strftime("%d %b %H:%M:%S"))}'
        f'</text><text x="{px_width - right}" y="{axis_y}" class="axis" text-anchor="end">'
        f"{escape(last.strftime('%d %b %H:%M:%S'))} (span {escape(_span(unit))})</text></svg>"
    )
    return Markup("".join(parts))


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
