"""Tiny dependency-free SVG line charts for the self-contained HTML report.

``line_chart`` turns a few (x, y) series into one inline ``<svg>`` string with axes,
tick labels, axis titles, a legend and an optional dashed reference line (an SLO
target). Gaps (``None`` y values) break the line. All text is XML-escaped here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

from reporting.formatting import as_float

Point = tuple[float, float | None]

_MARGIN_LEFT = 64
_MARGIN_RIGHT = 20
_MARGIN_TOP = 40
_MARGIN_BOTTOM = 46
_MAX_MARKERS = 150  # draw hoverable point markers only for short series


@dataclass(frozen=True)
class Series:
    """One line: legend label, points ordered by x, and a CSS colour."""

    label: str
    points: Sequence[Point]
    color: str


@dataclass(frozen=True)
class Reference:
    """A horizontal dashed line, e.g. an SLO target."""

    label: str
    value: float
    color: str = "#b91c1c"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] with about ``count`` steps (1/2/2.5/5 x 10^n)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = int(round((last - first) / step))
    return [round(first + i * step, 10) for i in range(n + 1)]


def _decimals(step: float) -> int:
    """Fewest decimals (max 4) that show ``step`` exactly."""
    for digits in range(5):
        if abs(round(step, digits) - step) < 1e-9:
            return digits
    return 4


def _label(value: float, step: float) -> str:
    return f"{value:.{_decimals(step)}f}"


def _clean(points: Sequence[Point]) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    for x, y in points:
        fx = as_float(x)
        if fx is not None:
            out.append((fx, as_float(y)))
    out.sort(key=lambda p: p[0])
    return out


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split a series at ``None`` values into runs of drawable points."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    reference: Reference | None = None,
    width: int = 760,
    height: int = 260,
) -> str | None:
    """Render an SVG line chart, or ``None`` when no series has any finite y value."""
    cleaned = [(s, _clean(s.points)) for s in series]
    ys = [y for _, pts in cleaned for _, y in pts if y is not None]
    if not ys:
        return None
    xs = [x for _, pts in cleaned for x, y in pts if y is not None]

    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1.0, x_hi + 1.0
    y_candidates = ys + ([reference.value] if reference else [])
    y_ticks = nice_ticks(min(0.0, min(y_candidates)), max(y_candidates) * 1.05 or 1.0)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, 6) if x_lo - 1e-9 <= t <= x_hi + 1e-9]

    left, top = _MARGIN_LEFT, _MARGIN_TOP
    plot_w = width - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = height - _MARGIN_TOP - _MARGIN_BOTTOM
    bottom = top + plot_h

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return bottom - (y - y_lo) / (y_hi - y_lo) * plot_h

    e = lambda s: escape(str(s), quote=True)  # noqa: E731
    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
        f'<text class="chart-title" x="{left}" y="18" font-size="14" font-weight="600">{e(title)}</text>',
    ]
    # grid + y ticks
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        y = py(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_label(t, y_step)}</text>')
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for t in x_ticks:
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#6b7280"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" font-size="11" text-anchor="middle">{_label(t, x_step)}</text>')
    # axes
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#6b7280"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#6b7280"/>')
    parts.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" '
        f'text-anchor="middle">{e(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis-label" x="14" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{e(y_label)}</text>'
    )
    if reference is not None:
        y = py(reference.value)
        parts.append(
            f'<line class="reference" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{e(reference.color)}" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{left + plot_w - 4}" y="{y - 5:.1f}" font-size="11" text-anchor="end" '
            f'fill="{e(reference.color)}">{e(reference.label)}</text>'
        )
    # series
    total_points = sum(len(pts) for _, pts in cleaned)
    for s, pts in cleaned:
        color = e(s.color)
        for run in _segments(pts):
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>')
                continue
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        if total_points <= _MAX_MARKERS:
            for x, y in pts:
                if y is not None:
                    parts.append(
                        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}" fill-opacity="0">'
                        f"<title>{e(s.label)} at {x:.1f} s: {y:.1f}</title></circle>"
                    )
    # legend (top right, right-to-left)
    cursor = left + plot_w
    for s, _ in reversed(cleaned):
        label_w = 7 * len(s.label) + 8
        cursor -= label_w
        parts.append(f'<text x="{cursor:.0f}" y="18" font-size="12">{e(s.label)}</text>')
        parts.append(
            f'<line x1="{cursor - 22:.0f}" y1="14" x2="{cursor - 4:.0f}" y2="14" stroke="{e(s.color)}" stroke-width="3"/>'
        )
        cursor -= 34
    parts.append("</svg>")
    return "\n".join(parts)
