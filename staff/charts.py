"""Charts drawn on the server as inline SVG: no script, nothing from another origin.

Each chart is an `<svg role="img">` named by its `<title>` and described by its
`<desc>`; the page prints the same numbers in a table below it, for screen readers and
for anyone who wants the exact figures. Colours come from classes styled in
`newsroom/dashboard.css` (series s0, s1, ...), never from inline styles, which the
Content Security Policy forbids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
PAD_TOP, PAD_BOTTOM, PAD_START, PAD_END = 16, 28, 64, 8


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _svg(slug: str, title: str, desc: str, height: int, body: str) -> SafeString:
    return format_html(
        '<svg class="dash-chart" role="img" viewBox="0 0 {w} {h}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" aria-labelledby="{s}-title {s}-desc">'
        '<title id="{s}-title">{title}</title><desc id="{s}-desc">{desc}</desc>{body}</svg>',
        w=WIDTH,
        h=height,
        s=slug,
        title=title,
        desc=desc,
        body=mark_safe(body),  # built from format_html pieces only
    )


def _n(value: float) -> str:
    return f"{value:.1f}"


def _nice_max(value: float) -> float:
    """A round number at or above `value` for the top of an axis."""
    if value <= 2:
        return 2  # an axis of 0, 1, 2: a middle line at 0.5 would print as 0 or 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _y_axis(top: float, height: int, fmt: Callable[[float], str]) -> str:
    plot = height - PAD_TOP - PAD_BOTTOM
    lines = []
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot * (1 - fraction)
        lines.append(
            format_html(
                '<line class="dash-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="dash-axis" x="{}" y="{}" text-anchor="end">{}</text>',
                PAD_START,
                WIDTH - PAD_END,
                _n(y),
                _n(y),
                PAD_START - 6,
                _n(y + 4),
                fmt(top * fraction),
            )
        )
    return "".join(lines)


def stacked_columns(
    *,
    slug: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    tick_every: int = 15,
    height: int = 220,
) -> SafeString:
    """One column per label, each series stacked on the previous one."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_h = height - PAD_TOP - PAD_BOTTOM
    step = (WIDTH - PAD_START - PAD_END) / max(len(labels), 1)
    bar_w = max(step * 0.8, 1)
    parts = [_y_axis(top, height, fmt)]
    for i, label in enumerate(labels):
        x = PAD_START + i * step + (step - bar_w) / 2
        base = 0.0
        for index, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y = PAD_TOP + plot_h * (1 - (base + value) / top)
            parts.append(
                format_html(
                    '<rect class="s{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}: {} {}</title></rect>",
                    index,
                    _n(x),
                    _n(y),
                    _n(bar_w),
                    _n(h),
                    label,
                    s.name,
                    fmt(value),
                )
            )
            base += value
        last = i == len(labels) - 1
        if (i % tick_every == 0 and len(labels) - i > tick_every / 2) or last:
            # The last label ends at its column, so it is not cut off at the edge.
            parts.append(
                format_html(
                    '<text class="dash-axis" x="{}" y="{}" text-anchor="{}">{}</text>',
                    _n(x + bar_w if last else x + bar_w / 2),
                    height - 8,
                    "end" if last else "middle",
                    label,
                )
            )
    return _svg(slug, title, desc, height, "".join(parts))


def lines(
    *,
    slug: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    height: int = 220,
) -> SafeString:
    """One line per series across the labels, with a dot at each point."""
    top = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_h = height - PAD_TOP - PAD_BOTTOM
    count = max(len(labels) - 1, 1)
    span = WIDTH - PAD_START - PAD_END - 16

    def point(i: int, value: float) -> tuple[float, float]:
        return PAD_START + 8 + span * i / count, PAD_TOP + plot_h * (1 - value / top)

    parts = [_y_axis(top, height, fmt)]
    for index, s in enumerate(series):
        points = [point(i, v) for i, v in enumerate(s.values)]
        parts.append(
            format_html(
                '<polyline class="dash-line s{}" fill="none" points="{}"/>',
                index,
                " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
            )
        )
        parts.append(
            format_html_join(
                "",
                '<circle class="s{}" cx="{}" cy="{}" r="3"><title>{}: {} {}</title></circle>',
                (
                    (index, _n(x), _n(y), labels[i], s.name, fmt(s.values[i]))
                    for i, (x, y) in enumerate(points)
                ),
            )
        )
    for i, label in enumerate(labels):
        last = i == len(labels) - 1
        if (i % 2 == 0 and i < len(labels) - 2) or last:
            x, _ = point(i, 0)
            parts.append(
                format_html(
                    '<text class="dash-axis" x="{}" y="{}" text-anchor="{}">{}</text>',
                    _n(x + 4 if last else x),
                    height - 8,
                    "end" if last else "middle",
                    label,
                )
            )
    return _svg(slug, title, desc, height, "".join(parts))


def grouped_bars(
    *,
    slug: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    top: float | None = None,
) -> SafeString:
    """Horizontal bars: a group per label (an appeal, an edition), a bar per series."""
    bar_h, gap = 12, 14
    group_h = bar_h * len(series) + gap
    label_w = 200
    height = PAD_TOP + group_h * max(len(labels), 1) + 8
    top = top or _nice_max(max((v for s in series for v in s.values), default=0))
    span = WIDTH - label_w - PAD_END - 70
    parts = []
    for i, label in enumerate(labels):
        y0 = PAD_TOP + i * group_h
        parts.append(
            format_html(
                '<text class="dash-label" x="{}" y="{}" text-anchor="end">{}</text>',
                label_w - 8,
                _n(y0 + bar_h * len(series) / 2 + 4),
                label[:32],
            )
        )
        for index, s in enumerate(series):
            value = s.values[i]
            w = span * min(value, top) / top if value > 0 else 0
            y = y0 + index * bar_h
            parts.append(
                format_html(
                    '<rect class="s{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}: {} {}</title></rect>"
                    '<text class="dash-value" x="{}" y="{}">{}</text>',
                    index,
                    label_w,
                    y,
                    _n(w),
                    bar_h - 2,
                    label,
                    s.name,
                    fmt(value),
                    _n(label_w + w + 4),
                    y + bar_h - 3,
                    fmt(value),
                )
            )
    return _svg(slug, title, desc, height, "".join(parts))
