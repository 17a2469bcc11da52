"""Speed of carbonkit.scheduling: evaluation over a year of history, and single plans.

``run()`` returns rows ``{"figure", "value", "unit", "note"}``; ``python benchmarks/bench_scheduling.py``
prints them. Every time is the median of ``repeats`` runs (after one warm-up run) of
``time.perf_counter``, on this machine, single process.

The history is synthetic (no intensity history ships with carbonkit): one year of 5-minute values
(105,120 points), 300 g/kWh with a +-120 daily swing, a +-40 weekly swing and Gaussian noise of
sd 20 (seed 0). Timings do not depend on the values; the savings printed alongside are those of
this synthetic series only, not of any grid.

The paper's grid (Dodge et al. 2022, section 6.1 and tables 4-13): the 11 jobs of its table 2
(6, 36, 192, 0.3, 0.3, 0.4, 19, 19, 21, 90 and 216 hours), 8 windows (6, 12, 18, 24 hours; 25,
50, 75, 100 % of the job) and 60 start times (the paper's 5 per month over a year): 5,280 plans
per algorithm.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from carbonkit.scheduling import (
    IntensitySeries,
    evaluate,
    flexible_start,
    pause_and_resume,
)

PAPER_HOURS = (6, 36, 192, 0.3, 0.3, 0.4, 19, 19, 21, 90, 216)
PAPER_LABELS = (
    "BERT finetune", "BERT LM", "6B Transf.", "Dense 121", "Dense 169", "Dense 201",
    "ViT Tiny", "ViT Small", "ViT Base", "ViT Large", "ViT Huge",
)
PAPER_WINDOWS = ("6h", "12h", "18h", "24h", "25%", "50%", "75%", "100%")
YEAR_START = datetime(2023, 1, 1, tzinfo=timezone.utc)


def synthetic_year(seed: int = 0, step_s: float = 300.0) -> IntensitySeries:
    """One year of synthetic 5-minute intensity (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = int(365 * 86400 / step_s)
    hours = np.arange(n) * step_s / 3600
    values = 300 + 120 * np.sin(2 * np.pi * (hours - 9) / 24) + 40 * np.sin(2 * np.pi * hours / 168)
    values = np.clip(values + rng.normal(0, 20, n), 0, None)
    return IntensitySeries.from_arrays(YEAR_START.timestamp() + np.arange(n) * step_s, values)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def forecast_48h(step_s: float) -> IntensitySeries:
    """A 48-hour slice of the synthetic year, as a forecast at ``step_s`` resolution."""
    year = synthetic_year()
    edges = YEAR_START.timestamp() + 100 * 86400 + np.arange(int(48 * 3600 / step_s) + 1) * step_s
    return IntensitySeries.from_arrays(edges[:-1], year.slot_means(edges))


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure and return the rows."""
    year = synthetic_year()
    rows: list[dict[str, Any]] = []

    def row(figure: str, value: float, unit: str, note: str) -> None:
        rows.append({"figure": figure, "value": value, "unit": unit, "note": note})

    secs, table = timed(
        lambda: evaluate(year, ["6h"], ["24h"], starts="all", algorithms=("flexible_start",)), repeats
    )
    row(
        "Flexible Start, every start time of a year of 5-min data, 6 h job, 24 h window",
        secs * 1000, "ms",
        f"{table.starts:,} start times x 289 candidate starts; mean saving {100 * table.cells[0].flexible_start_saving:.1f}% (synthetic)",
    )
    secs, table = timed(
        lambda: evaluate(year, ["216h"], ["100%"], starts="all", algorithms=("flexible_start",)), repeats
    )
    row(
        "Flexible Start, every start time of a year of 5-min data, 216 h job, 100% window",
        secs * 1000, "ms",
        f"{table.starts:,} start times x 2,593 candidate starts (O(n) sliding minimum)",
    )
    labels = list(PAPER_LABELS)
    durations = [h * 3600 for h in PAPER_HOURS]
    secs, _ = timed(
        lambda: evaluate(year, durations, PAPER_WINDOWS, starts=60, algorithms=("pause_and_resume",), labels=labels),
        repeats,
    )
    row(
        "Pause and Resume over the paper's grid (60 starts x 8 windows x 11 jobs)",
        secs, "s", "5,280 plans on a year of 5-min data; horizons of up to 5,184 slots",
    )
    secs, table = timed(lambda: evaluate(year, durations, PAPER_WINDOWS, starts=60, labels=labels), repeats)
    cell = table.cell(216 * 3600, "100%")
    row(
        "Both algorithms over the paper's grid (the full tables 6-13)",
        secs, "s",
        f"e.g. ViT Huge, +100%: FS {100 * cell.flexible_start_saving:.1f}%, P&R {100 * cell.pause_and_resume_saving:.1f}% (synthetic)",
    )
    fc30 = forecast_48h(1800)
    fc5 = forecast_48h(300)
    now = fc5.start
    for label, fn, note in (
        ("one Flexible Start plan, 48 h forecast at 30 min, 3 h job, 24 h window",
         lambda: flexible_start(fc30, "3h", "24h", now), "exact over continuous start times"),
        ("one Pause and Resume plan, 48 h forecast at 5 min, 3 h job, 24 h window",
         lambda: pause_and_resume(fc5, "3h", "24h", now), "the paper's method (cleanest slots)"),
        ("one Pause and Resume plan with min_run=1h, 48 h forecast at 5 min, 3 h job, 24 h window",
         lambda: pause_and_resume(fc5, "3h", "24h", now, min_run="1h"), "dynamic programme over 324 slots"),
    ):
        secs, _ = timed(fn, repeats)
        row(label, secs * 1000, "ms", note)
    return rows


def _main() -> None:
    began = datetime.now(timezone.utc)
    rows = run()
    width = max(len(r["figure"]) for r in rows)
    for r in rows:
        print(f"{r['figure']:<{width}}  {r['value']:>10.3f} {r['unit']:<3}  {r['note']}")
    print(f"(median of 5 runs each; took {(datetime.now(timezone.utc) - began) / timedelta(seconds=1):.0f} s)")


if __name__ == "__main__":
    _main()
