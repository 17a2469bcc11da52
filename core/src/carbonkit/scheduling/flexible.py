"""Flexible Start: the start time within the window that minimises the job's emissions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from .durations import DurationLike
from .plans import SchedulePlan, _first_min, _Frame, _frame, _Job, _plan
from .series import _EPS, _HOUR, IntensitySeries, SeriesLike

__all__ = ["flexible_start"]


def _fs_costs(series: IntensitySeries, cands: np.ndarray, job: _Job) -> np.ndarray:
    """Emissions (g) of a straight run starting at each candidate."""
    if job.profile is None:
        d = job.duration_s
        costs: np.ndarray = job.energy_kwh * (series.integral(cands + d) - series.integral(cands)) / (d / _HOUR)
        return costs
    m = job.profile.size
    seg = job.duration_s / m
    offsets = np.arange(m + 1) * seg
    out = np.empty(cands.size)
    chunk = max(1, 1_000_000 // (m + 1))
    for i in range(0, cands.size, chunk):
        f = series.integral(cands[i : i + chunk, None] + offsets[None, :])
        out[i : i + chunk] = (np.diff(f, axis=1) @ job.profile) / (seg / _HOUR)
    return out


def _fs_starts(frame: _Frame) -> tuple[float, float]:
    """Best start and its emissions for the frame (start now when nothing else fits)."""
    series, job, now = frame.series, frame.job, frame.now
    latest = max(now, frame.latest_end - job.duration_s)
    if latest <= now + _EPS:
        return now, float(_fs_costs(series, np.array([now]), job)[0])
    if job.profile is None:
        # The cost is piecewise linear in the start time, with kinks where the start or the end
        # crosses a change of intensity: its minimum is at a kink or at either end of the window.
        bounds = np.append(series.times, series.end)
        kinks = np.concatenate([bounds, bounds - job.duration_s])
        cands = np.concatenate([[now, latest], kinks[(kinks > now) & (kinks < latest)]])
    else:
        k = np.arange(math.floor((latest - now) / frame.step_s + 1e-9) + 1)
        cands = np.concatenate([now + k * frame.step_s, [latest]])
    cands = np.unique(cands)
    cost = _fs_costs(series, cands, job)
    i = _first_min(cost)
    return float(cands[i]), float(cost[i])


def flexible_start(
    series: SeriesLike,
    duration: DurationLike,
    window: DurationLike,
    now: datetime | float | None = None,
    *,
    step: DurationLike | None = None,
    energy_kwh: float | None = None,
    profile: Sequence[float] | None = None,
) -> SchedulePlan:
    """Plan Flexible Start: the start time in ``[now, now + window]`` that minimises the job's
    emissions, the job then running straight through.

    With uniform power (no ``profile``) every start time is considered (the emissions are
    piecewise linear in the start time, so only the window's ends and the times where the start
    or the end of the run crosses a change of intensity need evaluating): the optimum is exact.
    With a ``profile``, start times are ``now + k * step``. Ties go to the earliest start.

    :param series: The intensity forecast (see :func:`as_series`).
    :param duration: The job's running time (``"3h"``, seconds, timedelta).
    :param window: How much later than ``now`` it may start (``"12h"``, or ``"50%"`` of the
        duration).
    :param now: The earliest start (default: the series' first time).
    :param step: Spacing of start times with a profile (default 5 minutes, or the series'
        spacing when finer).
    :param energy_kwh: The job's energy (default 1 kWh; the saving does not depend on it).
    :param profile: kWh per equal interval of the job's running time.
    :raises ConfigError: for bad input (the message names the value).
    """
    frame = _frame(series, duration, window, now, step, energy_kwh, profile)
    start, _ = _fs_starts(frame)
    return _plan(frame, "flexible_start", np.array([start]), np.array([start + frame.job.duration_s]))
