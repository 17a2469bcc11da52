"""The plan (:class:`SchedulePlan`) and what both planners share: the job, the frame of the
problem (series, times, warnings), the emissions of a set of run intervals, and the plan built from them."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from attrs import field, frozen

from ..errors import ConfigError
from ..records import _Record, _utc, tuple_of
from .durations import DurationLike, format_duration, parse_duration, parse_window
from .series import _EPS, _HOUR, IntensitySeries, SeriesLike, _as_time, _dt, _opt_utc, as_series

__all__ = ["ALGORITHMS", "BACKFILL_S", "DEFAULT_STEP_S", "SchedulePlan"]

# Records keep the logger name they had when scheduling was one module.
_logger = logging.getLogger("carbonkit.scheduling")

ALGORITHMS = ("flexible_start", "pause_and_resume")
#: Default slot length: the paper's 5-minute resolution.
DEFAULT_STEP_S = 300.0
#: How far before ``now`` a series may start without an error (its first value is held back).
BACKFILL_S = 900.0


def _intervals(value: Any) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((_utc(a), _utc(b)) for a, b in value)


@frozen(kw_only=True)
class SchedulePlan(_Record):
    """When to run a job, and what it would emit then and if started now.

    :param algorithm: ``"flexible_start"`` or ``"pause_and_resume"``.
    :param now: The time planned from (the earliest possible start).
    :param start: When the job starts.
    :param finish: When it finishes (end of its last run).
    :param intervals: The ``(start, end)`` intervals it runs in, in order.
    :param pauses: Number of pauses (``len(intervals) - 1``).
    :param duration_s: The job's running time.
    :param window_s: The window actually planned within (shorter than asked when the forecast
        ends early).
    :param requested_window_s: The window asked for.
    :param energy_kwh: The job's energy.
    :param emissions_g: Grams CO2eq if run as planned.
    :param now_emissions_g: Grams CO2eq if started at ``now`` and run straight through.
    :param g_per_kwh: The job's mean intensity as planned (``emissions_g / energy_kwh``).
    :param now_g_per_kwh: The same, started now.
    :param saving: ``1 - emissions_g / now_emissions_g`` (0 when that is 0).
    :param min_run_s: The minimum run length asked for (Pause and Resume), or None.
    :param step_s: The slot length used.
    :param forecast_end: When the series stops (the last value's end).
    :param truncated: The series ends before ``now + window + duration``.
    :param zone: The zone, when planned from providers.
    :param provider: The provider whose forecast was used, when planned from providers.
    :param warnings: What the plan relies on that the caller should know.
    :param signal: The signal of the forecast planned on (``"average"`` or ``"marginal"``), when
        planned from providers.
    :param kind: The kind of the values planned on (``"forecast"``, or ``"live"`` for the
        values a provider gave for the first hours), when planned from providers.
    :param source: Where the forecast came from (the first value's ``source``).
    :param factors: The emission-factor set of the forecast's values, when the provider says.
    :param estimated: Whether the service says its values are estimated (True when any is).
    """

    algorithm: str
    now: datetime = field(converter=_utc)
    start: datetime = field(converter=_utc)
    finish: datetime = field(converter=_utc)
    intervals: tuple[tuple[datetime, datetime], ...] = field(converter=_intervals)
    pauses: int
    duration_s: float
    window_s: float
    requested_window_s: float
    energy_kwh: float
    emissions_g: float
    now_emissions_g: float
    g_per_kwh: float
    now_g_per_kwh: float
    saving: float
    min_run_s: float | None = None
    step_s: float = DEFAULT_STEP_S
    forecast_end: datetime | None = field(default=None, converter=_opt_utc)
    truncated: bool = False
    zone: str | None = None
    provider: str | None = None
    warnings: tuple[str, ...] = field(default=(), converter=tuple_of)
    signal: str | None = None
    kind: str | None = None
    source: str | None = None
    factors: str | None = None
    estimated: bool | None = None

    @property
    def delay_s(self) -> float:
        """Seconds from ``now`` to the start."""
        return (self.start - self.now).total_seconds()



# -- shared planning helpers ------------------------------------------------------------------


@frozen
class _Job:
    duration_s: float
    energy_kwh: float
    profile: np.ndarray | None  # kWh per equal interval of running time; None: uniform


def _job(duration: DurationLike, energy_kwh: float | None, profile: Sequence[float] | None) -> _Job:
    d = parse_duration(duration)
    if d <= 0:
        raise ConfigError(f"duration must be > 0, got {duration!r}")
    if profile is not None:
        p = np.asarray(profile, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ConfigError(
                "profile must be a non-empty sequence of energies >= 0 "
                "(kWh per equal interval of the job's running time)"
            )
        total = float(p.sum())
        if total <= 0:
            raise ConfigError("profile must have some energy (its sum is 0 kWh)")
        if energy_kwh is not None and not math.isclose(energy_kwh, total, rel_tol=1e-9):
            raise ConfigError(
                f"energy_kwh={energy_kwh!r} differs from the profile's sum {total!r} kWh; give one or the other"
            )
        uniform = bool(np.all(p == p[0]))
        return _Job(d, total, None if uniform else p)
    energy = 1.0 if energy_kwh is None else energy_kwh
    if not isinstance(energy, (int, float)) or isinstance(energy, bool) or not math.isfinite(energy) or energy <= 0:
        raise ConfigError(f"energy_kwh must be a number > 0 (kWh), got {energy_kwh!r}")
    return _Job(d, float(energy), None)


def _emissions(series: IntensitySeries, starts: np.ndarray, ends: np.ndarray, job: _Job) -> float:
    """Grams CO2eq of ``job`` run in the intervals ``[starts[k], ends[k])`` (in order)."""
    if job.profile is None:
        total = float(np.sum(series.integral(ends) - series.integral(starts)))
        return job.energy_kwh * total / (job.duration_s / _HOUR)
    m = job.profile.size
    seg_len = job.duration_s / m
    lengths = ends - starts
    tau0 = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    taus = np.unique(np.concatenate([[0.0, job.duration_s], np.arange(1, m) * seg_len, tau0[1:]]))
    taus = taus[(taus >= 0) & (taus <= job.duration_s)]
    mids = (taus[:-1] + taus[1:]) / 2
    k = np.clip(np.searchsorted(tau0, mids, side="right") - 1, 0, len(starts) - 1)
    seg = np.clip((mids // seg_len).astype(np.int64), 0, m - 1)
    wa = starts[k] + (taus[:-1] - tau0[k])
    wb = starts[k] + (taus[1:] - tau0[k])
    power_kw = job.profile[seg] / (seg_len / _HOUR)
    return float(np.sum(power_kw * (series.integral(wb) - series.integral(wa))))


@frozen
class _Frame:
    """What both planners share: the series, the job, the times, the notes."""

    series: IntensitySeries
    job: _Job
    now: float
    window_s: float  # requested
    latest_end: float  # now + window + duration, cut to the series' end
    step_s: float
    truncated: bool
    fits: bool  # the series covers at least one straight run from now
    warnings: list[str]


def _step_s(series: IntensitySeries, step: DurationLike | None) -> float:
    """The planning step: as given, else the series' finest spacing, at most the default, at least 1 s."""
    if step is None:
        st = DEFAULT_STEP_S
        if len(series.times) > 1:
            st = min(st, float(np.min(np.diff(series.times))))
        return max(st, 1.0)
    st = parse_duration(step, what="step")
    if st <= 0:
        raise ConfigError(f"step must be > 0, got {step!r}")
    return st


def _frame(
    series: SeriesLike,
    duration: DurationLike,
    window: DurationLike,
    now: datetime | float | None,
    step: DurationLike | None,
    energy_kwh: float | None,
    profile: Sequence[float] | None,
) -> _Frame:
    s = as_series(series)
    job = _job(duration, energy_kwh, profile)
    n = s.start if now is None else _as_time(now, "now")
    w = parse_window(window, job.duration_s)
    st = _step_s(s, step)
    warnings: list[str] = []
    if n >= s.end:
        raise ConfigError(
            f"the series ends at {_dt(s.end).isoformat()}, at or before now = {_dt(n).isoformat()}: "
            "nothing is known about the time to plan"
        )
    if n < s.start - _EPS:
        gap = s.start - n
        if gap > BACKFILL_S:
            raise ConfigError(
                f"the series starts at {_dt(s.start).isoformat()}, {format_duration(gap)} after now = "
                f"{_dt(n).isoformat()}; give a series that covers now (or now >= its first time)"
            )
        if gap > 60:
            warnings.append(f"the series starts {format_duration(gap)} after now: its first value is assumed since now")
    wanted_end = n + w + job.duration_s
    truncated = bool(s.end < wanted_end - _EPS)
    fits = bool(s.end >= n + job.duration_s - _EPS)
    if not fits:
        warnings.append(
            f"the forecast ends at {_dt(s.end).isoformat()}, "
            f"before a {format_duration(job.duration_s)} job started now "
            "would finish: planned to start now, its emissions after the forecast hold the last value"
        )
    elif truncated:
        warnings.append(
            f"the forecast ends at {_dt(s.end).isoformat()}, before now + window + duration "
            f"({_dt(wanted_end).isoformat()}): planned within the {format_duration(s.end - n)} known"
        )
    latest_end = min(wanted_end, s.end) if fits else n + job.duration_s
    for message in warnings:
        _logger.info("carbonkit scheduling: %s", message)
    return _Frame(s, job, n, w, latest_end, st, truncated, fits, warnings)


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge intervals (sorted) that touch."""
    if starts.size == 0:
        return starts, ends
    keep = np.ones(starts.size, dtype=bool)
    keep[1:] = starts[1:] > ends[:-1] + _EPS
    group = np.cumsum(keep) - 1
    new_ends = np.zeros(int(group[-1]) + 1)
    np.maximum.at(new_ends, group, ends)
    return starts[keep], new_ends


def _plan(
    frame: _Frame,
    algorithm: str,
    starts: np.ndarray,
    ends: np.ndarray,
    min_run_s: float | None = None,
) -> SchedulePlan:
    series, job = frame.series, frame.job
    starts, ends = _merge(np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64))
    emissions = _emissions(series, starts, ends, job)
    now_emissions = _emissions(series, np.array([frame.now]), np.array([frame.now + job.duration_s]), job)
    saving = 0.0 if now_emissions <= 0 else max(0.0, 1.0 - emissions / now_emissions)
    if saving < 1e-12:
        saving = 0.0
    return SchedulePlan(
        algorithm=algorithm,
        now=_dt(frame.now),
        start=_dt(starts[0]),
        finish=_dt(ends[-1]),
        intervals=[(_dt(a), _dt(b)) for a, b in zip(starts, ends)],
        pauses=int(starts.size - 1),
        duration_s=job.duration_s,
        window_s=max(0.0, frame.latest_end - frame.now - job.duration_s),
        requested_window_s=frame.window_s,
        energy_kwh=job.energy_kwh,
        emissions_g=emissions,
        now_emissions_g=now_emissions,
        g_per_kwh=emissions / job.energy_kwh,
        now_g_per_kwh=now_emissions / job.energy_kwh,
        saving=saving,
        min_run_s=min_run_s,
        step_s=frame.step_s,
        forecast_end=_dt(series.end),
        truncated=frame.truncated,
        warnings=tuple(frame.warnings),
    )


def _first_min(cost: np.ndarray) -> int:
    """Index of the first minimum, with a tolerance so rounding does not pick a later tie."""
    best = float(np.min(cost))
    return int(np.flatnonzero(cost <= best + 1e-9 * abs(best) + 1e-12)[0])
