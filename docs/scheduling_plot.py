"""Draw docs/scheduling.svg: the worked example of docs/scheduling.md.

A synthetic 30-hour forecast (every 30 minutes, from 2024-05-01 10:00 UTC: a midday solar dip
and a night-time wind trough on a diurnal swing; not measured data), a 3-hour job, a 16-hour
window, and the plans of Flexible Start and Pause and Resume. Plain SVG written by hand, so the
docs need no plotting library. Run: ``python docs/scheduling_plot.py`` (prints the plans too).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

from carbonkit.scheduling import IntensitySeries, flexible_start, pause_and_resume

START = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
DURATION, WINDOW = "3h", "16h"


def example_forecast() -> IntensitySeries:
    """The synthetic forecast of the worked example (g/kWh every 30 minutes, 60 values)."""
    values = []
    for i in range(60):
        h = 10 + i / 2
        v = (
            230
            + 60 * math.cos(2 * math.pi * (h - 18.5) / 24)
            - 110 * math.exp(-0.5 * ((h - 12.5) / 1.0) ** 2)
            - 130 * math.exp(-0.5 * ((h - 26.5) / 0.8) ** 2)
        )
        values.append(float(round(v)))
    times = [START + timedelta(minutes=30 * i) for i in range(60)]
    return IntensitySeries.from_arrays(times, values)


def svg(series: IntensitySeries) -> str:
    """Render the forecast, the windows and both plans as an SVG document."""
    fs = flexible_start(series, DURATION, WINDOW)
    pr = pause_and_resume(series, DURATION, WINDOW)
    width, height = 900, 400
    left, right, top, bottom = 60, 20, 40, 110
    t0, hours, ymax = START.timestamp(), 30.0, 320.0
    pw, ph = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / 3600 / hours * pw

    def y(v: float) -> float:
        return top + ph - v / ymax * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">Synthetic forecast, a 3 h job, a 16 h window '
        "(Flexible Start) or 16 h of extra time (Pause and Resume)</text>",
    ]
    win_end = t0 + 16 * 3600
    horizon_end = win_end + 3 * 3600
    out.append(f'<rect x="{x(t0):.1f}" y="{top}" width="{x(win_end) - x(t0):.1f}" height="{ph}" fill="#dbe9f6"/>')
    out.append(f'<rect x="{x(win_end):.1f}" y="{top}" width="{x(horizon_end) - x(win_end):.1f}" height="{ph}" fill="#eeeeee"/>')
    out.append(f'<text x="{x(t0) + 6:.1f}" y="{top + 16}" fill="#2a5d8f">start window: now to now + 16 h</text>')
    out.append(f'<text x="{x(win_end) + 4:.1f}" y="{top + 16}" fill="#555">+ 3 h</text>')
    for v in range(0, int(ymax) + 1, 50):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ccc" stroke-width="0.5"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for hh in range(0, int(hours) + 1, 3):
        t = t0 + hh * 3600
        label = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M")
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="black"/>')
        out.append(f'<text x="{x(t):.1f}" y="{top + ph + 17}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 33}" text-anchor="middle">time (UTC), 1-2 May 2024</text>')
    out.append(
        f'<text x="16" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {top + ph / 2})">gCO2eq/kWh</text>'
    )
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    # The forecast as a step function.
    points = []
    bounds = list(series.times) + [series.end]
    for i, v in enumerate(series.values):
        points.append(f"{x(bounds[i]):.1f},{y(v):.1f}")
        points.append(f"{x(bounds[i + 1]):.1f},{y(v):.1f}")
    out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#222" stroke-width="1.8"/>')
    # The plans, as bars under the axis.
    rows = [
        (fs, "#e07b00", f"Flexible Start: {fs.g_per_kwh:.1f} g/kWh, saving {100 * fs.saving:.1f}%"),
        (pr, "#2e8b57", f"Pause and Resume: {pr.g_per_kwh:.1f} g/kWh, saving {100 * pr.saving:.1f}%"),
    ]
    for k, (plan, colour, label) in enumerate(rows):
        yy = top + ph + 45 + 22 * k
        for a, b in plan.intervals:
            xa, xb = x(a.timestamp()), x(b.timestamp())
            out.append(f'<rect x="{xa:.1f}" y="{yy}" width="{xb - xa:.1f}" height="12" fill="{colour}"/>')
            out.append(
                f'<rect x="{xa:.1f}" y="{top}" width="{xb - xa:.1f}" height="{ph}" fill="{colour}" fill-opacity="0.12"/>'
            )
        out.append(f'<text x="{x(t0 + 3.4 * 3600):.1f}" y="{yy + 10}" fill="{colour}">{label}</text>')
    now_label = f"started now: {fs.now_g_per_kwh:.1f} g/kWh"
    out.append(f'<text x="{x(t0 + 3.4 * 3600):.1f}" y="{top + ph + 99}" fill="#222">{now_label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    """Write docs/scheduling.svg next to this script and print both plans."""
    series = example_forecast()
    for plan in (
        flexible_start(series, DURATION, WINDOW),
        pause_and_resume(series, DURATION, WINDOW),
        pause_and_resume(series, DURATION, WINDOW, min_run="1h30m"),
    ):
        runs = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in plan.intervals)
        print(f"{plan.algorithm}: runs {runs}; {plan.g_per_kwh:.1f} g/kWh (now {plan.now_g_per_kwh:.1f}); saving {100 * plan.saving:.1f}%")
    target = Path(__file__).with_name("scheduling.svg")
    target.write_text(svg(series), encoding="utf-8")
    print(f"wrote {target.name}")


if __name__ == "__main__":
    main()
