"""Pause and Resume: run the job in the cleanest parts of its horizon, pausing in between
(the paper's exact greedy method, or a dynamic programme with ``min_run`` or a power profile)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from ..errors import ConfigError
from .durations import DurationLike, format_duration, parse_duration
from .flexible import _fs_starts
from .plans import SchedulePlan, _Frame, _frame, _plan
from .series import _EPS, SeriesLike

__all__ = ["pause_and_resume"]

#: The dynamic programme keeps one byte per (slot, slots used, run state); above this it refuses.
_DP_MAX_CELLS = 200_000_000


def _place_partial(
    sel: np.ndarray, partial: int, used: float, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run intervals for selected pieces; the partial piece runs ``used`` seconds at its start
    when the piece before it runs, else at its end when the piece after it runs, else at its start."""
    starts, ends = bounds[:-1][sel].copy(), bounds[1:][sel].copy()
    if partial >= 0:
        before = partial > 0 and sel[partial - 1]
        after = partial + 1 < sel.size and sel[partial + 1]
        a, b = bounds[partial], bounds[partial + 1]
        if after and not before:
            a = b - used
        else:
            b = a + used
        starts = np.append(starts, a)
        ends = np.append(ends, b)
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
    return starts, ends


def _pr_greedy(frame: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """The paper's method, exact for a step function and uniform power: run in the cleanest
    pieces of the horizon until the job's duration is covered (the last one partly)."""
    bounds, vals = frame.series.pieces(frame.now, frame.latest_end)
    widths = np.diff(bounds)
    order = np.argsort(vals, kind="stable")  # ties: the earliest piece first
    cum = np.cumsum(widths[order])
    d = frame.job.duration_s
    k = int(np.searchsorted(cum, d - _EPS, side="left"))
    k = min(k, order.size - 1)
    sel = np.zeros(vals.size, dtype=bool)
    sel[order[:k]] = True
    last = int(order[k])
    used = d - (cum[k - 1] if k > 0 else 0.0)
    if used >= widths[last] - _EPS:
        sel[last] = True
        return _place_partial(sel, -1, 0.0, bounds)
    return _place_partial(sel, last, used, bounds)


def _pr_dp(frame: _Frame, min_run_s: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic programme over slots of ``step`` from ``now``: the cheapest choice of slots with
    every run at least ``min_run`` slots long (the whole job may be one shorter run), each run
    slot priced with the energy the job uses at that point of its running time."""
    series, job, step = frame.series, frame.job, frame.step_s
    d = job.duration_s
    horizon = frame.latest_end - frame.now
    n = max(1, math.ceil(d / step - 1e-9))
    frac = d / step - (n - 1)  # share of the last run slot used, in (0, 1]
    n_full = math.floor(horizon / step + 1e-9)
    m = n_full + 1  # the last slot may host only the final, partial run slot
    r = 1 if not min_run_s else max(1, math.ceil(min_run_s / step - 1e-9))
    if m * (n + 1) * (r + 1) > _DP_MAX_CELLS:
        raise ConfigError(
            f"Pause and Resume with min_run or a profile on {m} slots of {format_duration(step)} for a job of "
            f"{n} slots is too large to plan; give a larger step"
        )
    edges = frame.now + np.arange(m + 1) * step
    x_full = series.slot_means(edges)  # mean g/kWh of each slot
    # Mean over the part of each slot the job's last, partial run slot would use.
    x_frac = series.slot_means(np.stack([edges[:-1], edges[:-1] + frac * step], axis=1).ravel())[::2]
    full_ok = np.arange(m) < n_full
    frac_ok = np.arange(m) * step + frac * step <= horizon + _EPS
    # Energy of each run slot j (its share of the job's running time).
    tau = np.minimum(np.arange(n + 1) * step, d)
    if job.profile is None:
        energy = np.diff(tau) / d * job.energy_kwh
    else:
        seg = d / job.profile.size
        cum_e = np.concatenate([[0.0], np.cumsum(job.profile)])
        energy = np.diff(np.interp(tau, np.arange(job.profile.size + 1) * seg, cum_e))
    inf = np.inf
    value = np.full((n + 1, r + 1), inf)
    value[0, 0] = 0.0
    pred = np.zeros((m, n + 1, r + 1), dtype=np.int8)
    accept = min(n, r)
    best, best_i = inf, -1
    grow_codes = np.arange(1, r, dtype=np.int8)
    for i in range(m):
        cost = energy * x_full[i] if full_ok[i] else np.full(n, inf)
        cost[n - 1] = energy[n - 1] * x_frac[i] if frac_ok[i] else inf
        new = np.full_like(value, inf)
        p = pred[i]
        from_run = value[:, r] < value[:, 0]
        new[:, 0] = np.where(from_run, value[:, r], value[:, 0])
        p[:, 0] = np.where(from_run, r, 0)
        new[1:, 1] = value[:-1, 0] + cost  # start (or resume) a run
        if r >= 2:
            new[1:, 2:] = value[:-1, 1:r] + cost[:, None]
            p[1:, 2:] = grow_codes
        cont = value[:-1, r] + cost
        keep_on = cont <= new[1:, r]  # ties: keep running rather than pause
        new[1:, r] = np.where(keep_on, cont, new[1:, r])
        p[1:, r] = np.where(keep_on, r, p[1:, r])
        value = new
        done = value[n, accept]
        if done < best - 1e-12 * max(1.0, abs(best) if math.isfinite(best) else 1.0):
            best, best_i = float(done), i
    if best_i < 0:
        raise ConfigError("no plan satisfies min_run within the window; give a longer window or a shorter min_run")
    slots: list[int] = []
    j, c = n, accept
    for i in range(best_i, -1, -1):
        prev = int(pred[i, j, c])
        if c > 0:
            slots.append(i)
            j -= 1
        c = prev
    slots.reverse()
    idx = np.array(slots)
    starts = edges[idx]
    ends = edges[idx] + step
    ends[-1] = starts[-1] + frac * step
    return starts, ends


def pause_and_resume(
    series: SeriesLike,
    duration: DurationLike,
    window: DurationLike,
    now: datetime | float | None = None,
    *,
    min_run: DurationLike | None = None,
    step: DurationLike | None = None,
    energy_kwh: float | None = None,
    profile: Sequence[float] | None = None,
) -> SchedulePlan:
    """Plan Pause and Resume: run the job during the cleanest parts of ``[now, now + window +
    duration)`` (so it finishes at most ``window`` later than if run at once), pausing between.

    Without ``min_run`` and with uniform power this is the paper's method, and exact: the
    horizon is cut into pieces of constant intensity, the job runs in the cleanest ones (ties:
    the earliest) until its duration is covered, the last of them partly.

    With ``min_run`` (every run, between a resume and the next pause, lasts at least this long;
    a job shorter than ``min_run`` runs in one go), or with a ``profile``, a dynamic programme
    over slots of ``step`` from ``now`` chooses the slots: optimal for the slots' mean
    intensities, each run slot priced with the energy the job uses at that point of its running
    time; the job's last run slot may be partial. The Flexible Start plan, a valid single run,
    is also evaluated and kept if it emits less (it can, by a fraction of a slot, when the
    intensity changes inside a slot).

    :param min_run: Minimum length of each run (counted in slots of ``step``), or None.
    :param step: Slot length for the dynamic programme (default 5 minutes, or the series'
        spacing when finer).
    Other parameters as in :func:`flexible_start`.
    :raises ConfigError: for bad input, or a problem too large for the dynamic programme.
    """
    frame = _frame(series, duration, window, now, step, energy_kwh, profile)
    min_run_s = None if min_run is None else parse_duration(min_run, what="min_run")
    d = frame.job.duration_s
    if not frame.fits or frame.latest_end - frame.now <= d + _EPS:
        return _plan(frame, "pause_and_resume", np.array([frame.now]), np.array([frame.now + d]), min_run_s)
    if not min_run_s and frame.job.profile is None:
        starts, ends = _pr_greedy(frame)
        return _plan(frame, "pause_and_resume", starts, ends, min_run_s)
    starts, ends = _pr_dp(frame, min_run_s)
    plan = _plan(frame, "pause_and_resume", starts, ends, min_run_s)
    fs_start, fs_cost = _fs_starts(frame)
    if fs_cost < plan.emissions_g * (1 - 1e-12):
        plan = _plan(frame, "pause_and_resume", np.array([fs_start]), np.array([fs_start + d]), min_run_s)
    return plan
