"""Small charts as inline SVG, written by hand: line, step and bar charts with axes and legends.

No scripts, fonts or external references: each chart is a ``<figure>`` holding an ``<svg>``
(axes, ticks, grid, units in the axis labels) and an HTML legend. Every string is escaped with
:func:`html.escape`, in text and attributes alike. Numbers are written with few digits so
the page stays small; long series should be downsampled before (see :mod:`.series`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from attrs import field, frozen

from .._text import printable
from ..records import tuple_of
from ._format import fmt_sig

__all__ = ["PALETTE", "Bars", "Line", "Steps", "bar_chart", "line_chart", "nice_ticks", "time_unit"]

#: Okabe and Ito's colour-blind-safe palette (with grey), in order of use.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#666666", "#000000", "#F0E442")

WIDTH = 540
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 70, 18, 14, 46


def esc(text: object) -> str:
    """Escape for HTML text and attribute values; control characters and escape sequences are
    removed first (HTML forbids most of them, and they mean nothing on a page)."""
    return escape(printable(str(text)), quote=True)


@frozen(kw_only=True)
class Line:
    """A polyline through ``points`` (x, y)."""

    label: str
    points: tuple[tuple[float, float], ...] = field(converter=tuple_of)
    color: str = PALETTE[0]
    dashed: bool = False
    markers: bool = False


@frozen(kw_only=True)
class Steps:
    """Horizontal segments ``(x0, x1, y)``: a value held over an interval."""

    label: str
    segments: tuple[tuple[float, float, float], ...] = field(converter=tuple_of)
    color: str = PALETTE[0]
    dashed: bool = False


@frozen(kw_only=True)
class Bars:
    """One value per category."""

    label: str
    values: tuple[float, ...] = field(converter=tuple_of)
    color: str = PALETTE[0]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) from at or below ``lo`` to at or above ``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def time_unit(span_s: float) -> tuple[str, float]:
    """A unit for a time axis spanning ``span_s`` seconds: (name, seconds per unit)."""
    if span_s <= 180:
        return "s", 1.0
    if span_s <= 3 * 3600:
        return "min", 60.0
    if span_s <= 3 * 86400:
        return "h", 3600.0
    return "days", 86400.0


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class _Frame:
    """Maps data to pixels and draws axes, grid and labels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], width: int, height: int) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1.0
        self.left, self.right = LEFT, width - RIGHT
        self.top, self.bottom = TOP, height - BOTTOM

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float) -> float:
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def axes(
        self, x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[float]
    ) -> list[str]:
        out = []
        for y in y_ticks:
            yy = _num(self.py(y))
            out.append(f'<line class="grid" x1="{self.left}" y1="{yy}" x2="{self.right}" y2="{yy}"/>')
            out.append(
                f'<text class="tick" x="{self.left - 6}" y="{yy}" text-anchor="end" dy="0.32em">'
                f"{esc(fmt_sig(y, 3))}</text>"
            )
        for x, label in x_ticks:
            xx = _num(self.px(x))
            out.append(f'<line class="tickmark" x1="{xx}" y1="{self.bottom}" x2="{xx}" y2="{self.bottom + 4}"/>')
            out.append(f'<text class="tick" x="{xx}" y="{self.bottom + 16}" text-anchor="middle">{esc(label)}</text>')
        out.append(f'<line class="axis" x1="{self.left}" y1="{self.bottom}" x2="{self.right}" y2="{self.bottom}"/>')
        out.append(f'<line class="axis" x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{self.bottom}"/>')
        cx = _num((self.left + self.right) / 2)
        out.append(f'<text class="label" x="{cx}" y="{self.height - 8}" text-anchor="middle">{esc(x_label)}</text>')
        cy = _num((self.top + self.bottom) / 2)
        out.append(
            f'<text class="label" x="14" y="{cy}" text-anchor="middle" transform="rotate(-90 14 {cy})">'
            f"{esc(y_label)}</text>"
        )
        return out


def _legend(items: Sequence[tuple[str, str, bool]]) -> str:
    if not items:
        return ""
    lis = "".join(
        f'<li><span class="swatch{" dashed" if dashed else ""}" style="border-color:{esc(color)};'
        f'background:{"transparent" if dashed else esc(color)}"></span>{esc(label)}</li>'
        for label, color, dashed in items
    )
    return f'<ul class="legend">{lis}</ul>'


def _figure(title: str, svg: str, legend: str, note: str = "") -> str:
    caption = esc(title) + (f' <span class="note">{esc(note)}</span>' if note else "")
    return f'<figure class="chart"><figcaption>{caption}</figcaption>{svg}{legend}</figure>'


def _svg(title: str, body: Sequence[str], width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img"><title>{esc(title)}</title>' + "".join(body) + "</svg>"
    )


def line_chart(
    lines: Sequence[Line] = (),
    steps: Sequence[Steps] = (),
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    x_tick_labels: Sequence[tuple[float, str]] | None = None,
    y_from_zero: bool = True,
    note: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """A chart of lines and step segments sharing one x and one y axis; returns a ``<figure>``.

    :param x_range: The x extent (default: the data's).
    :param x_tick_labels: Tick positions and labels (default: round numbers).
    :param y_from_zero: Start the y axis at 0 (energy, power) rather than at the data's minimum.
    """
    xs = [p[0] for ln in lines for p in ln.points] + [x for st in steps for seg in st.segments for x in seg[:2]]
    ys = [p[1] for ln in lines for p in ln.points] + [seg[2] for st in steps for seg in st.segments]
    if not xs:
        return _figure(title, '<p class="empty">no data</p>', "", note)
    lo_x, hi_x = x_range if x_range is not None else (min(xs), max(xs))
    lo_y = 0.0 if y_from_zero else min(ys)
    hi_y = max(ys)
    if hi_y <= lo_y:
        hi_y = lo_y + (abs(lo_y) or 1.0)
    y_ticks = nice_ticks(lo_y, hi_y)
    frame = _Frame((lo_x, hi_x), (min(y_ticks[0], lo_y), max(y_ticks[-1], hi_y)), width, height)
    if x_tick_labels is None:
        x_tick_labels = [(x, fmt_sig(x, 3)) for x in nice_ticks(lo_x, hi_x, 6) if lo_x <= x <= hi_x]
    body = frame.axes(x_label, y_label, x_tick_labels, y_ticks)
    legend: list[tuple[str, str, bool]] = []
    for st in steps:
        d = " ".join(
            f"M{_num(frame.px(max(x0, lo_x)))} {_num(frame.py(y))}H{_num(frame.px(min(x1, hi_x)))}"
            for x0, x1, y in st.segments
            if x1 > lo_x and x0 < hi_x
        )
        if d:
            dash = ' stroke-dasharray="6 4"' if st.dashed else ""
            body.append(
                f'<path class="series" d="{d}" stroke="{esc(st.color)}"{dash}><title>{esc(st.label)}</title></path>'
            )
        legend.append((st.label, st.color, st.dashed))
    for ln in lines:
        inside = [(x, y) for x, y in ln.points if lo_x <= x <= hi_x]
        pts = " ".join(f"{_num(frame.px(x))},{_num(frame.py(y))}" for x, y in inside)
        dash = ' stroke-dasharray="6 4"' if ln.dashed else ""
        if len(inside) == 1:
            x, y = inside[0]
            body.append(f'<circle cx="{_num(frame.px(x))}" cy="{_num(frame.py(y))}" r="3" fill="{esc(ln.color)}"/>')
        elif pts:
            body.append(
                f'<polyline class="series" points="{pts}" stroke="{esc(ln.color)}"{dash}>'
                f"<title>{esc(ln.label)}</title></polyline>"
            )
        if ln.markers:
            body += [
                f'<circle cx="{_num(frame.px(x))}" cy="{_num(frame.py(y))}" r="2.5" fill="{esc(ln.color)}"/>'
                for x, y in inside
            ]
        legend.append((ln.label, ln.color, ln.dashed))
    return _figure(title, _svg(title, body, width, height), _legend(legend), note)


def _short(label: str, n: int = 14) -> str:
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def bar_chart(
    categories: Sequence[str],
    bars: Sequence[Bars],
    *,
    title: str,
    x_label: str,
    y_label: str,
    ref_lines: Sequence[Line] = (),
    note: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Grouped bars, one group per category; ``ref_lines`` are drawn over them with x in
    category positions (0 for the first category's centre). Returns a ``<figure>``."""
    n = len(categories)
    if n == 0 or not bars:
        return _figure(title, '<p class="empty">no data</p>', "", note)
    values = [v for b in bars for v in b.values] + [p[1] for ln in ref_lines for p in ln.points]
    hi = max(values + [0.0])
    y_ticks = nice_ticks(0.0, hi if hi > 0 else 1.0)
    frame = _Frame((-0.5, n - 0.5), (0.0, y_ticks[-1]), width, height)
    every = max(1, math.ceil(n / 12))
    ticks = [(float(i), _short(c)) for i, c in enumerate(categories) if i % every == 0]
    body = frame.axes(x_label, y_label, ticks, y_ticks)
    slot = (frame.right - frame.left) / n
    bar_w = slot * 0.8 / len(bars)
    legend = []
    for j, b in enumerate(bars):
        for i, v in enumerate(b.values):
            x = frame.px(i) - slot * 0.4 + j * bar_w
            y = frame.py(max(v, 0.0))
            h = frame.bottom - y
            tip = f"{categories[i]}: {fmt_sig(v, 4)}"
            body.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(bar_w - 1, 0.5))}" height="{_num(h)}" '
                f'fill="{esc(b.color)}"><title>{esc(tip)}</title></rect>'
            )
        legend.append((b.label, b.color, False))
    for ln in ref_lines:
        pts = " ".join(f"{_num(frame.px(x))},{_num(frame.py(y))}" for x, y in ln.points)
        dash = ' stroke-dasharray="6 4"' if ln.dashed else ""
        body.append(
            f'<polyline class="series" points="{pts}" stroke="{esc(ln.color)}"{dash}>'
            f"<title>{esc(ln.label)}</title></polyline>"
        )
        legend.append((ln.label, ln.color, ln.dashed))
    return _figure(title, _svg(title, body, width, height), _legend(legend), note)
