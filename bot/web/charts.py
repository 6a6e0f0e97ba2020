"""Geometry for small server-side SVG charts (bars, horizontal bars, a line).

These functions only compute coordinates and labels as plain dicts; the SVG itself is written
by Jinja macros in ``templates/console/_charts.html`` (autoescaped, no inline styles, so the
console's strict Content-Security-Policy holds, and no JavaScript or CDN is needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 34, 8, 10, 22


def nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 5 x 10^n), at least 1."""
    if value <= 1:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _ticks(top: float, height: float) -> list[dict[str, Any]]:
    ticks = []
    for fraction in (0, 0.5, 1):
        value = top * fraction
        label = f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
        ticks.append({"y": round(PAD_TOP + height * (1 - fraction), 1), "label": label})
    return ticks


def _label_every(n: int, width: float, min_gap: float = 42) -> int:
    return max(1, math.ceil(n / max(width / min_gap, 1)))


def bar_chart(
    points: Sequence[tuple[str, float]], width: int = 640, height: int = 180
) -> dict[str, Any]:
    """Vertical bars, one per (label, value), with a y axis and thinned x labels."""
    inner_w = width - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM
    top = nice_max(max((v for _, v in points), default=0))
    n = max(len(points), 1)
    slot = inner_w / n
    every = _label_every(n, inner_w)
    bars = []
    for i, (label, value) in enumerate(points):
        h = inner_h * (value / top) if top else 0
        bars.append(
            {
                "x": round(PAD_LEFT + i * slot + slot * 0.15, 1),
                "y": round(PAD_TOP + inner_h - h, 1),
                "w": round(max(slot * 0.7, 1), 1),
                "h": round(h, 1),
                "cx": round(PAD_LEFT + (i + 0.5) * slot, 1),
                "label": label,
                "value": value,
                "show_label": i % every == 0,
            }
        )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "ticks": _ticks(top, inner_h),
        "x0": PAD_LEFT,
        "x1": width - PAD_RIGHT,
        "base": PAD_TOP + inner_h,
        "label_y": height - 6,
    }


def hbars(items: Sequence[tuple[str, float]], width: int = 420, row: int = 22) -> dict[str, Any]:
    """Horizontal bars: a label column, a bar scaled to the largest value, the value."""
    label_w, value_w = 150, 44
    bar_w = width - label_w - value_w
    top = max((v for _, v in items), default=0) or 1
    rows = [
        {
            "y": i * row,
            "text_y": i * row + row * 0.68,
            "label": label,
            "value": value,
            "w": round(max(bar_w * value / top, 1 if value else 0), 1),
        }
        for i, (label, value) in enumerate(items)
    ]
    return {
        "width": width,
        "height": max(len(rows), 1) * row,
        "rows": rows,
        "bar_x": label_w,
        "value_x": width - value_w + 6,
        "bar_h": row - 8,
    }


def line_chart(
    points: Sequence[tuple[str, float]], width: int = 640, height: int = 160
) -> dict[str, Any]:
    """A line (with dots) through the values, same axes as :func:`bar_chart`."""
    inner_w = width - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM
    top = nice_max(max((v for _, v in points), default=0))
    n = len(points)
    step = inner_w / (n - 1) if n > 1 else 0
    every = _label_every(n, inner_w)
    dots = []
    for i, (label, value) in enumerate(points):
        x = PAD_LEFT + (i * step if n > 1 else inner_w / 2)
        dots.append(
            {
                "x": round(x, 1),
                "y": round(PAD_TOP + inner_h * (1 - value / top), 1),
                "label": label,
                "value": value,
                "show_label": i % every == 0,
            }
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{d['x']},{d['y']}" for i, d in enumerate(dots))
    return {
        "width": width,
        "height": height,
        "dots": dots,
        "path": path,
        "ticks": _ticks(top, inner_h),
        "x0": PAD_LEFT,
        "x1": width - PAD_RIGHT,
        "base": PAD_TOP + inner_h,
        "label_y": height - 6,
    }


def sparkline(values: Sequence[float], width: int = 96, height: int = 24) -> dict[str, Any]:
    """A tiny line of ``values`` (oldest first) on a 0-100 scale, as SVG polyline points."""
    if len(values) < 2:
        return {"points": "", "width": width, "height": height, "last": None}
    pad = 2.0
    step = (width - 2 * pad) / (len(values) - 1)
    span = height - 2 * pad

    def y(v: float) -> float:
        return pad + span * (1 - max(0.0, min(100.0, v)) / 100)

    points = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    last = {"x": round(pad + (len(values) - 1) * step, 1), "y": round(y(values[-1]), 1)}
    return {"points": points, "width": width, "height": height, "last": last}
