"""Both algorithms evaluated over a history, as the paper's tables 4 to 13: mean savings and pauses per hour."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np
from attrs import field, frozen

from ..errors import ConfigError
from ..records import _Record, _utc, tuple_of
from .durations import DurationLike, _window_label, format_duration, parse_duration, parse_window
from .plans import ALGORITHMS, _Job, _job, _step_s
from .series import _EPS, _HOUR, IntensitySeries, SeriesLike, _dt, _to_seconds, as_series

__all__ = ["EvaluationCell", "EvaluationTable", "evaluate"]


def _sliding_min(a: np.ndarray, w: int) -> np.ndarray:
    """``out[i] = min(a[i : i + w])`` for every full window, in O(len(a)) (van Herk/Gil-Werman)."""
    n = a.size
    if w <= 1:
        copied: np.ndarray = a.copy()  # numpy types ndarray.copy() as Any
        return copied
    if w > n:
        return np.empty(0)
    pad = (-n) % w
    blocks = np.concatenate([a, np.full(pad, np.inf)]).reshape(-1, w)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[: n - w + 1], prefix[w - 1 : n])


@frozen(kw_only=True)
class EvaluationCell(_Record):
    """One job duration and one window, averaged over the start times.

    ``flexible_start_saving`` and ``pause_and_resume_saving`` are mean fractions (0.12 = 12 %);
    ``pauses_per_hour`` is the mean number of Pause and Resume pauses per hour of the job's
    running time. A value is None when its algorithm was not evaluated.
    """

    duration_s: float
    window: str
    window_s: float
    starts: int
    flexible_start_saving: float | None
    pause_and_resume_saving: float | None
    pauses_per_hour: float | None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


@frozen(kw_only=True)
class EvaluationTable(_Record):
    """Mean savings of both algorithms over a history, one cell per (window, duration).

    :param durations_s: The job durations (columns), in seconds.
    :param windows: The windows (one table each), as given: ``"24h"``, ``"100%"``.
    :param cells: One :class:`EvaluationCell` per window and duration.
    :param step_s: The slot length the history was averaged onto.
    :param starts: Start times per cell (the same ones for every cell).
    :param series_start: The history's first time.
    :param series_end: The history's end.
    :param labels: Column labels (default: the formatted durations).
    """

    durations_s: tuple[float, ...] = field(converter=tuple_of)
    windows: tuple[str, ...] = field(converter=tuple_of)
    cells: tuple[EvaluationCell, ...] = field(converter=tuple_of)
    step_s: float
    starts: int
    series_start: datetime = field(converter=_utc)
    series_end: datetime = field(converter=_utc)
    labels: tuple[str, ...] = field(converter=tuple_of, default=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationTable:
        """Build the table from ``to_dict()`` output."""
        fields = dict(data)
        fields["cells"] = [c if isinstance(c, EvaluationCell) else EvaluationCell.from_dict(c) for c in data["cells"]]
        table: EvaluationTable = super().from_dict(fields)
        return table

    def cell(self, duration_s: float, window: str) -> EvaluationCell:
        """The cell for a duration (seconds) and a window label."""
        for c in self.cells:
            if math.isclose(c.duration_s, duration_s) and c.window == window:
                return c
        raise KeyError(f"no cell for duration {duration_s!r} s and window {window!r}")

    def to_markdown(self) -> str:
        """One Markdown table per window, shaped like the paper's tables 4 to 13: a column per
        job duration, rows FS, P&R and pauses per hour."""
        labels = self.labels or tuple(format_duration(d) for d in self.durations_s)
        out: list[str] = []
        for w in self.windows:
            row = [self.cell(d, w) for d in self.durations_s]
            out.append(f"Window {w} (mean over {self.starts} start times)")
            out.append("")
            out.append("| Job | " + " | ".join(labels) + " |")
            out.append("| --- |" + " ---: |" * len(labels))
            out.append("| FS | " + " | ".join(_pct(c.flexible_start_saving) for c in row) + " |")
            out.append("| P&R | " + " | ".join(_pct(c.pause_and_resume_saving) for c in row) + " |")
            pauses = ["" if c.pauses_per_hour is None else f"{c.pauses_per_hour:.2f}" for c in row]
            out.append("| Pauses / hr | " + " | ".join(pauses) + " |")
            out.append("")
        return "\n".join(out).rstrip() + "\n"


def _resolve_starts(starts: int | str | Sequence[Any], usable: int, grid0: float, step: float) -> np.ndarray:
    if isinstance(starts, bool):
        raise ConfigError(f"starts must be a number of start times, 'all', or a list of times; got {starts!r}")
    if isinstance(starts, str):
        if starts != "all":
            raise ConfigError(f"starts must be a number of start times, 'all', or a list of times; got {starts!r}")
        return np.arange(usable)
    if isinstance(starts, (int, np.integer)):
        if starts < 1:
            raise ConfigError(f"starts must be >= 1, got {starts!r}")
        return np.unique(np.round(np.linspace(0, usable - 1, min(int(starts), usable))).astype(np.int64))
    times = _to_seconds(list(starts), "starts")
    idx = np.round((times - grid0) / step).astype(np.int64)
    bad = (idx < 0) | (idx >= usable)
    if np.any(bad):
        raise ConfigError(
            f"start time {_dt(times[np.flatnonzero(bad)[0]]).isoformat()} leaves too little history after it "
            "for the longest duration + window"
        )
    return np.unique(idx)


def _pr_batch(
    x: np.ndarray, starts: np.ndarray, n_full: int, tail: float, step: float, d: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pause and Resume cost ((g/kWh) x s) and pauses for each start: :func:`_pr_greedy` on
    grid slots, one row per start, with the same placement of the partly used piece (a piece
    being a run of equal slots), so both count the same pauses."""
    width = np.full(n_full + (1 if tail > _EPS else 0), step)
    if tail > _EPS:
        width[-1] = tail
    h = width.size
    cw = np.concatenate([[0.0], np.cumsum(width)])
    costs = np.empty(starts.size)
    pauses = np.empty(starts.size, dtype=np.int64)
    chunk = max(1, 2_000_000 // max(h, 1))
    cols = np.arange(h)
    for a in range(0, starts.size, chunk):
        rows = starts[a : a + chunk]
        ri = np.arange(rows.size)
        xs = x[np.minimum(rows[:, None] + cols[None, :], x.size - 1)]
        order = np.argsort(xs, axis=1, kind="stable")  # ties: the earliest slot first
        wo = width[order]
        cum = np.cumsum(wo, axis=1)
        k = np.minimum((cum < d - _EPS).sum(axis=1), h - 1)
        xo = np.take_along_axis(xs, order, axis=1)
        before = np.where(k > 0, cum[ri, np.maximum(k - 1, 0)], 0.0)
        taken = cols[None, :] < k[:, None]
        used = d - before
        costs[a : a + chunk] = np.sum(np.where(taken, xo * wo, 0.0), axis=1) + used * xo[ri, k]
        sel = np.zeros_like(taken)
        np.put_along_axis(sel, order, taken, axis=1)
        last = order[ri, k]
        sel[ri, last] = True
        runs = sel[:, 0].astype(np.int64) + np.sum(sel[:, 1:] & ~sel[:, :-1], axis=1)
        # The piece (run of equal slots) holding the last slot taken, and how much of it is used.
        change = xs[:, 1:] != xs[:, :-1]
        first_mark = np.concatenate([np.ones((rows.size, 1), bool), change], axis=1)
        last_mark = np.concatenate([change, np.ones((rows.size, 1), bool)], axis=1)
        p0 = np.maximum.accumulate(np.where(first_mark, cols, 0), axis=1)[ri, last]
        p1 = np.minimum.accumulate(np.where(last_mark, cols, h)[:, ::-1], axis=1)[:, ::-1][ri, last] + 1
        piece_used = cw[last] - cw[p0] + used
        partial = piece_used < cw[p1] - cw[p0] - _EPS
        prev_sel = np.where(p0 > 0, sel[ri, np.maximum(p0 - 1, 0)], False)
        next_sel = np.where(p1 < h, sel[ri, np.minimum(p1, h - 1)], False)
        all_slots = last == p1 - 1  # every slot of the piece is marked, the last one partly used
        at_end = next_sel & ~prev_sel
        runs = runs + (partial & ~at_end & all_slots & next_sel) - (partial & at_end & ~all_slots)
        pauses[a : a + chunk] = runs - 1
    return costs, pauses


def _profile_cell(
    slots: IntensitySeries,
    shape: np.ndarray,
    d: float,
    n: float,
    k: int,
    span: int,
    idx: np.ndarray,
    grid: np.ndarray,
    st: float,
    algos: tuple[str, ...],
) -> dict[str, float | None]:
    """One cell with a power profile: FS over every slot start, P&R planned start by start."""
    from .flexible import _fs_costs
    from .pause_resume import pause_and_resume

    job = _Job(d, float(shape.sum()), shape)
    out: dict[str, float | None] = {
        "flexible_start_saving": None, "pause_and_resume_saving": None, "pauses_per_hour": None,
    }
    straight = _fs_costs(slots, grid[:span], job)  # grams of a straight run from each slot
    if "flexible_start" in algos:
        best = _sliding_min(straight, k + 1)[idx]
        base = straight[idx]
        out["flexible_start_saving"] = float(
            np.mean(np.where(base > 0, 1 - best / np.where(base > 0, base, 1), 0.0))
        )
    if "pause_and_resume" in algos:
        plans = [pause_and_resume(slots, d, n, float(grid[i]), step=st, profile=shape.tolist()) for i in idx]
        out["pause_and_resume_saving"] = float(np.mean([p.saving for p in plans]))
        out["pauses_per_hour"] = float(np.mean([p.pauses for p in plans]) / (d / _HOUR))
    return out


def evaluate(
    series: SeriesLike,
    durations: Sequence[DurationLike],
    windows: Sequence[DurationLike],
    *,
    starts: int | str | Sequence[Any] = 60,
    step: DurationLike | None = None,
    algorithms: Sequence[str] = ALGORITHMS,
    labels: Sequence[str] | None = None,
    profile: Sequence[float] | None = None,
) -> EvaluationTable:
    """Evaluate both algorithms on a history, as the paper did (section 6.1): for each job
    duration and window, the mean saving over many start times, and the pauses per hour.

    The history is first averaged onto slots of ``step`` (exact when its own times fall on that
    grid, as 5-minute data on a 5-minute step). Start times are slot starts; both algorithms use
    the same ones for every cell: all those that leave room for the longest ``duration +
    window`` (``starts="all"``), ``starts`` of them evenly spaced (default 60, as the paper's 5
    per month over a year), or the given times. Flexible Start considers every slot start in the
    window (the paper's 5-minute increments); Pause and Resume is :func:`pause_and_resume`
    without ``min_run``, on the slots. Power is taken as uniform unless a ``profile`` is given.
    Uses cumulative sums and an O(n) sliding minimum, so Flexible Start over every start of a
    year of 5-minute data takes milliseconds.

    With a ``profile`` (a job's power shape: energy per equal interval of its running time, in
    any unit, stretched to each duration; a measured run's, for example), each run is priced
    interval by interval with that shape: Flexible Start still considers every slot start (the
    emissions of a straight run from each slot, then the same sliding minimum), and Pause and
    Resume is :func:`pause_and_resume` with the profile at each start time (a dynamic programme
    per start: seconds rather than milliseconds for long jobs). A uniform profile gives exactly
    the even-power table.

    :param durations: Job durations (``"6h"``, seconds...).
    :param windows: Windows: durations (``"24h"``) or percentages of each duration (``"100%"``).
    :param labels: Column names for the durations (e.g. model names), default the durations.
    :param profile: The job's power shape (see above); None: uniform power.
    :raises ConfigError: bad input, or a history too short for the longest duration + window.
    """
    s = as_series(series)
    shape = None if profile is None else _job(1.0, None, profile).profile  # None when uniform
    algos = tuple(algorithms)
    unknown = [a for a in algos if a not in ALGORITHMS]
    if unknown or not algos:
        raise ConfigError(f"algorithms must be among {', '.join(ALGORITHMS)}; got {list(algorithms)!r}")
    ds = [parse_duration(d) for d in durations]
    if not ds or any(d <= 0 for d in ds):
        raise ConfigError(f"durations must be one or more durations > 0, got {list(durations)!r}")
    if not windows:
        raise ConfigError("windows must hold at least one window, e.g. ['24h', '100%']")
    wlabels = [_window_label(w) for w in windows]
    if len(set(wlabels)) != len(wlabels):
        raise ConfigError(f"windows must be distinct, got {wlabels!r}")
    if labels is not None and len(labels) != len(ds):
        raise ConfigError(f"labels must name each of the {len(ds)} durations, got {len(labels)}")
    st = _step_s(s, step)
    g = math.floor((s.end - s.start) / st + 1e-9)
    grid = s.start + np.arange(g + 1) * st
    f_grid = s.integral(grid)
    x = s.slot_means(grid)  # mean g/kWh of each slot

    def integral(t: np.ndarray) -> np.ndarray:  # of the slot-averaged history
        return cast(np.ndarray, np.interp(t, grid, f_grid))

    spans = [(d, parse_window(w, d)) for w in windows for d in ds]
    longest = max(d + n for d, n in spans)
    usable = math.floor((grid[-1] - longest - s.start) / st + 1e-9) + 1
    if usable < 1:
        raise ConfigError(
            f"the history covers {format_duration(grid[-1] - s.start)}, less than the longest duration + window "
            f"({format_duration(longest)}); give a longer history or shorter jobs and windows"
        )
    idx = _resolve_starts(starts, usable, s.start, st)
    slots = None if shape is None else IntensitySeries.from_arrays(grid[:-1], x, end=grid[-1])
    cells = []
    for w, wl in zip(windows, wlabels):
        for d in ds:
            n = parse_window(w, d)
            k = math.floor(n / st + 1e-9)  # later slot starts Flexible Start may choose
            span = min(usable + k, grid.size)
            straight = integral(grid[:span] + d) - f_grid[:span]  # (g/kWh) x h of a run from each slot
            if slots is not None and shape is not None:
                figures = _profile_cell(slots, shape, d, n, k, span, idx, grid, st, algos)
                cells.append(
                    EvaluationCell(duration_s=d, window=wl, window_s=n, starts=int(idx.size), **figures)
                )
                continue
            fs = pr = pph = None
            if "flexible_start" in algos:
                best = _sliding_min(straight, k + 1)[idx]
                base = straight[idx]
                fs = float(np.mean(np.where(base > 0, 1 - best / np.where(base > 0, base, 1), 0.0)))
            if "pause_and_resume" in algos:
                total = n + d
                n_full = math.floor(total / st + 1e-9)
                tail = total - n_full * st
                cost, pauses = _pr_batch(x, idx, n_full, tail, st, d)
                base = straight[idx] * _HOUR
                pr = float(np.mean(np.where(base > 0, np.maximum(0.0, 1 - cost / np.where(base > 0, base, 1)), 0.0)))
                pph = float(np.mean(pauses) / (d / _HOUR))
            cells.append(
                EvaluationCell(
                    duration_s=d, window=wl, window_s=n, starts=int(idx.size),
                    flexible_start_saving=fs, pause_and_resume_saving=pr, pauses_per_hour=pph,
                )
            )
    return EvaluationTable(
        durations_s=ds,
        windows=wlabels,
        cells=cells,
        step_s=st,
        starts=int(idx.size),
        series_start=_dt(s.start),
        series_end=_dt(s.end),
        labels=tuple(labels) if labels is not None else (),
    )
