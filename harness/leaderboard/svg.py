"""The page's figures as inline SVG strings, drawn here rather than by a plotting library so
that the same numbers give the same bytes (matplotlib embeds versions and ids) and the page
needs no file or network request. No xmlns: inline SVG in HTML needs none, and the page
then holds no URL at all.
"""

from __future__ import annotations

import math
from html import escape

CHAR = 6.0  # a label character's width in the figure's units (12 px sans-serif, about)


def _f(x: float) -> str:
    """Coordinates with one decimal: stable text, sub-pixel precision."""
    return f"{x:.1f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + 1e-9 * step:
        ticks.append(round(first + k * step, 10))
        k += 1
    return ticks


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 0.01)
    return lo - pad, hi + pad


def _tick_text(v: float, step: float) -> str:
    """As many decimals as the tick step needs (0.25 -> 2, 0.005 -> 3)."""
    digits = next((d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * step), 6)
    return f"{v:.{digits}f}"


def pareto_svg(figure: dict, x_label: str, y_label: str, width: int = 640, height: int = 440
               ) -> str:
    """Scatter of figure["points"] (x lower is better, y higher is better); the front's
    points are filled and joined by a line, the others hollow. Each point has a label (moved
    off its neighbours', with a leader line back to the point when moved) and a <title>
    with its values (hover)."""
    points = figure["points"]
    left, right, top, bottom = 62, 150, 16, 46
    xs, ys = [p["x"] for p in points], [p["y"] for p in points]
    (x0, x1), (y0, y1) = _span(xs), _span(ys)
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg class="pareto" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(y_label)} against '
           f'{escape(x_label)}">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot-bg"/>']
    xt, yt = nice_ticks(x0, x1), nice_ticks(y0, y1)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for v in xt:
        if x0 <= v <= x1:
            out.append(f'<line class="grid" x1="{_f(sx(v))}" x2="{_f(sx(v))}" y1="{top}" '
                       f'y2="{top + ph}"/><text class="tick" x="{_f(sx(v))}" '
                       f'y="{top + ph + 14}" text-anchor="middle">{_tick_text(v, xstep)}</text>')
    for v in yt:
        if y0 <= v <= y1:
            out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{_f(sy(v))}" '
                       f'y2="{_f(sy(v))}"/><text class="tick" x="{left - 6}" '
                       f'y="{_f(sy(v) + 3)}" text-anchor="end">{_tick_text(v, ystep)}</text>')
    out.append(f'<text class="axis" x="{_f(left + pw / 2)}" y="{height - 8}" '
               f'text-anchor="middle">{escape(x_label)} (lower is better)</text>')
    out.append(f'<text class="axis" transform="translate(14 {_f(top + ph / 2)}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)} (higher is better)</text>')
    front = sorted((p for p in points if p["front"]), key=lambda p: (p["x"], -p["y"]))
    if len(front) > 1:
        path = " ".join(f"{_f(sx(p['x']))},{_f(sy(p['y']))}" for p in front)
        out.append(f'<polyline class="front" points="{path}"/>')
    # a label that would leave the plot on the right (into the legend) goes left of its point
    to_left = [sx(p["x"]) + 7 + CHAR * len(p["method"]) > left + pw for p in points]
    label_y = _label_positions([(sx(p["x"]) - 7 - CHAR * len(p["method"]) if back
                                 else sx(p["x"]) + 7, sy(p["y"]) + 3.5, len(p["method"]))
                                for p, back in zip(points, to_left)],
                               markers=[(sx(p["x"]), sy(p["y"])) for p in points])
    order = sorted(range(len(points)), key=lambda i: points[i]["method"])
    # leader lines from a moved label back to its point, under every point and label (the
    # labels' halo hides where a line or the front runs beneath one)
    leaders = [f'<line class="leader" x1="{_f(sx(points[i]["x"]) + 3 * side)}" '
               f'y1="{_f(sy(points[i]["y"]) + 2)}" x2="{_f(sx(points[i]["x"]) + 7 * side)}" '
               f'y2="{_f(label_y[i] - 4)}"/>'
               for i in order if label_y[i] - (sy(points[i]["y"]) + 3.5) > 6
               for side in [-1 if to_left[i] else 1]]
    out.append(f'<g class="leaders">{"".join(leaders)}</g>')
    for i in order:
        p = points[i]
        cls = "pt front-pt" if p["front"] else "pt"
        name, cx, cy = escape(p["method"]), sx(p["x"]), sy(p["y"])
        side = -1 if to_left[i] else 1
        anchor = ' text-anchor="end"' if to_left[i] else ""
        out.append(f'<g class="{cls}" data-method="{name}"><title>{name}: {escape(x_label)} '
                   f'{p["x"]:.4f}, {escape(y_label)} {p["y"]:.4f}'
                   f'{" (Pareto front)" if p["front"] else ""}</title>'
                   f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="4.5"/>'
                   f'<text x="{_f(cx + 7 * side)}" y="{_f(label_y[i])}"{anchor}>{name}</text></g>')
    out.append(f'<g class="legend" transform="translate({left + pw + 14} {top + 10})">'
               '<circle class="front-dot" cx="5" cy="0" r="4.5"/><text x="14" y="4">Pareto '
               'front</text><circle class="other-dot" cx="5" cy="18" r="4.5"/>'
               '<text x="14" y="22">dominated</text></g>')
    out.append("</svg>")
    return "".join(out)


def _label_positions(labels: list[tuple[float, float, int]], line: float = 11.0,
                     char: float = CHAR, markers: list[tuple[float, float]] = ()) -> list[float]:
    """Baselines for point labels (x, y, length in characters), moved down a line at a time,
    top to bottom, until they clear the points' markers (centres in `markers`) and the labels
    already placed: readable, deterministic."""
    placed = [(cx - 5, cy + 3.5, 10.0) for cx, cy in markers]  # a marker as a label's box
    out = [0.0] * len(labels)
    for i in sorted(range(len(labels)), key=lambda i: (labels[i][1], labels[i][0], i)):
        x, y, n = labels[i]
        width = n * char
        while any(abs(y - py) < line and x < px + pw and px < x + width for px, py, pw in placed):
            y += line
        placed.append((x, y, width))
        out[i] = y
    return out


def sparkline(values: list, width: int = 96, height: int = 26) -> str:
    """A probe's values over the rows of R (base, after task 1, ...) as a small line; null
    values are gaps. The <title> lists the values."""
    finite = [v for v in values if isinstance(v, (int, float))]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    step = (width - 8) / max(1, len(values) - 1)
    pts = [(4 + i * step, height - 4 - (v - lo) / span * (height - 8))
           for i, v in enumerate(values) if isinstance(v, (int, float))]
    line = " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)
    dots = "".join(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="1.8"/>' for x, y in pts)
    title = ", ".join("null" if v is None else f"{v:.4f}" for v in values)
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}"><title>{title}</title><polyline points="{line}"/>{dots}</svg>')
