"""Carbon-aware scheduling: when to run a job, and when to pause it.

The two algorithms of Dodge et al. (2022), "Measuring the Carbon Intensity of AI in Cloud
Instances", section 6, planned on an intensity forecast (or a historical series), plus their
evaluation over history (the paper's tables 4 to 13) and a pause policy for training loops.

- :func:`flexible_start`: start the job at the time, within the next ``window``, that minimises
  its emissions; once started it runs to completion.
- :func:`pause_and_resume`: run the job during the cleanest parts of ``[now, now + window +
  duration)``, pausing in between; with ``min_run``, every run lasts at least that long.
- :func:`evaluate`: the mean saving of both over many start times of a history, and the pauses
  per hour of Pause and Resume, as an :class:`EvaluationTable`.
- :class:`PausePolicy`: inside a training loop, whether to sleep now and for how long.
- :func:`plan_from_providers`, :func:`wait_for_best_start`: plan on the forecast of the intensity
  providers, and sleep until the planned start (cancellable with Ctrl-C).

Conventions (see ``docs/scheduling.md``):

- An intensity series is a step function: each value holds from its time until the next time;
  the last value holds until the series' ``end`` (its sample's ``period_s``, else the median
  spacing). Times are timezone-aware, or numbers of seconds since the Unix epoch (UTC).
- A job has a duration (seconds of running time) and an energy: ``energy_kwh`` in total (default
  1 kWh, spread evenly over the running time), or a ``profile`` of kWh per equal interval of its
  running time. Emissions are the integral of power x intensity over the intervals it runs in,
  in grams CO2eq; ``g_per_kwh`` is emissions / energy. The saving is relative to running from
  ``now`` straight through, so it does not depend on the energy.
- A forecast shorter than ``window + duration`` is planned within what is known: the plan says
  so in ``truncated`` and ``warnings``. If it does not even cover the job, the plan is "start now"
  and the emissions beyond the forecast hold its last value (also said in ``warnings``).

Everything here is pure computation on numpy arrays except :func:`plan_from_providers` (which
asks the intensity providers) and the waiting functions (which sleep, through an injectable
``sleep`` and ``clock``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Union

import attrs
import numpy as np
from attrs import field, frozen

from .errors import ConfigError, IntensityUnavailable
from .records import IntensitySample, _Record, _utc

if TYPE_CHECKING:
    import httpx
    import pluggy

    from .config import Config
    from .protocols import IntensityProvider

__all__ = [
    "ALGORITHMS",
    "EvaluationCell",
    "EvaluationTable",
    "IntensitySeries",
    "NoForecastError",
    "PauseDecision",
    "PauseOutcome",
    "PausePolicy",
    "ProviderForecast",
    "SchedulePlan",
    "WaitResult",
    "evaluate",
    "flexible_start",
    "forecast_from_providers",
    "format_duration",
    "parse_duration",
    "parse_window",
    "pause_and_resume",
    "plan_from_providers",
    "plan_start_within",
    "wait_for_best_start",
]

_logger = logging.getLogger(__name__)

ALGORITHMS = ("flexible_start", "pause_and_resume")
#: Default slot length: the paper's 5-minute resolution.
DEFAULT_STEP_S = 300.0
#: How far before ``now`` a series may start without an error (its first value is held back).
BACKFILL_S = 900.0
_EPS = 1e-6  # seconds: times closer than this are the same time
_HOUR = 3600.0
#: The dynamic programme keeps one byte per (slot, slots used, run state); above this it refuses.
_DP_MAX_CELLS = 200_000_000

SeriesLike = Union["IntensitySeries", Sequence[IntensitySample], tuple[Any, Any]]
DurationLike = Union[float, int, timedelta, str]


class NoForecastError(IntensityUnavailable):
    """No intensity provider has a forecast (varying in time) for the zone.

    Planning on a yearly average is meaningless (every start time looks the same), so the
    planners refuse rather than recommend "start now" with a saving of zero.
    """


# -- durations --------------------------------------------------------------------------------

_DURATION_RE = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_DURATION_HELP = "a duration such as 90m, 3h, 1h30m, 2d, 45s or a plain number of seconds"


def parse_duration(value: DurationLike, *, what: str = "duration") -> float:
    """Return ``value`` in seconds: ``"90m"``, ``"3h"``, ``"1h30m"``, ``"2d"``, ``"45s"``,
    ``"5400"``, a number of seconds or a :class:`~datetime.timedelta`.

    :raises ConfigError: for anything else, or a negative or non-finite value.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION_RE.match(text)
            if not text or match is None or not any(match.groupdict().values()):
                raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}") from None
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            seconds = (
                parts.get("d", 0.0) * 86400 + parts.get("h", 0.0) * 3600 + parts.get("m", 0.0) * 60 + parts.get("s", 0.0)
            )
    else:
        raise ConfigError(f"{what} must be {_DURATION_HELP}; got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{what} must be a finite duration >= 0, got {value!r}")
    return seconds


def parse_window(value: DurationLike, duration_s: float) -> float:
    """Return the window in seconds: a duration (see :func:`parse_duration`), or a percentage of
    the job's duration (``"50%"``: the job may finish up to 50 % later than if run at once).

    :raises ConfigError: for anything else.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()[:-1]
        try:
            percent = float(text)
        except ValueError:
            raise ConfigError(
                f"window must be a duration such as 12h or a percentage of the job's duration such as 50%; got {value!r}"
            ) from None
        if not math.isfinite(percent) or percent < 0:
            raise ConfigError(f"window must be a percentage >= 0, got {value!r}")
        return duration_s * percent / 100.0
    return parse_duration(value, what="window")


def format_duration(seconds: float) -> str:
    """Format seconds compactly: ``5400`` -> ``"1h30m"``, ``86400`` -> ``"1d"``, ``1080`` -> ``"18m"``."""
    seconds = float(seconds)
    if seconds <= 0:
        return "0s"
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        return f"{seconds:g}s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _window_label(value: DurationLike) -> str:
    parse_window(value, 1.0)  # validates
    if isinstance(value, str):
        return value.strip()
    return format_duration(parse_duration(value, what="window"))


# -- the series -------------------------------------------------------------------------------


def _to_seconds(values: Any, what: str) -> np.ndarray:
    """Convert aware datetimes, datetime64 (UTC) or numbers to float Unix seconds."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a one-dimensional sequence of times, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if arr.dtype.kind in "iuf":
        out = arr.astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise ConfigError(f"{what} must be finite numbers of seconds since the Unix epoch")
        return out
    out = np.empty(len(arr), dtype=np.float64)
    for i, item in enumerate(arr):
        if isinstance(item, datetime):
            if item.tzinfo is None or item.utcoffset() is None:
                raise ConfigError(
                    f"{what}[{i}] = {item!r} is a naive datetime; give timezone-aware times "
                    "(e.g. datetime(..., tzinfo=timezone.utc)) or Unix seconds"
                )
            out[i] = item.timestamp()
        elif isinstance(item, (int, float, np.integer, np.floating)) and not isinstance(item, bool):
            out[i] = float(item)
        else:
            raise ConfigError(f"{what}[{i}] = {item!r} is not an aware datetime or a number of Unix seconds")
    return out


def _as_time(value: datetime | float | int, what: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(f"{what} = {value!r} is a naive datetime; give a timezone-aware datetime (UTC)")
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ConfigError(f"{what} must be a timezone-aware datetime or Unix seconds, got {value!r}")


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(float(seconds), 6), tz=timezone.utc)


@frozen(eq=False)
class IntensitySeries:
    """Carbon intensity as a step function of time.

    ``times`` (float Unix seconds, strictly increasing) and ``values`` (g/kWh, finite, >= 0) have
    the same length; value ``i`` holds on ``[times[i], times[i + 1])``, the last one on
    ``[times[-1], end)``. Outside, the first value is held before the series and the last one
    after it (planners say when they rely on that). Build it with :meth:`from_samples` or
    :meth:`from_arrays`.
    """

    times: np.ndarray
    values: np.ndarray
    end: float
    _cum: np.ndarray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        bounds = np.append(self.times, self.end)
        # Integral of the step function from times[0], in (g/kWh) x hours, at each bound.
        cum = np.concatenate([[0.0], np.cumsum(self.values * np.diff(bounds) / _HOUR)])
        object.__setattr__(self, "_cum", cum)

    @classmethod
    def from_arrays(cls, times: Any, values: Any, *, end: datetime | float | None = None) -> IntensitySeries:
        """Build a series from times (aware datetimes, ``datetime64`` taken as UTC, or Unix
        seconds) and values in g/kWh. Unsorted input is sorted.

        :param end: When the last value stops holding (default: the last time plus the median
            spacing of the times).
        :raises ConfigError: empty input, lengths that differ, naive datetimes, repeated
            times, values that are negative or not finite, or a single time with no ``end``.
        """
        t = _to_seconds(times, "times")
        try:
            v = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"values must be numbers (g/kWh): {exc}") from None
        if v.ndim != 1 or len(v) != len(t):
            raise ConfigError(f"times and values must have the same length, got {len(t)} times and {v.size} values")
        if len(t) == 0:
            raise ConfigError("the intensity series is empty: give at least one time and value")
        bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
        if bad.size:
            i = int(bad[0])
            raise ConfigError(f"values[{i}] = {v[i]!r} is not a finite intensity >= 0 (g/kWh)")
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        if len(t) > 1:
            dup = np.flatnonzero(np.diff(t) <= 0)
            if dup.size:
                raise ConfigError(f"time {_dt(t[dup[0]]).isoformat()} appears twice in the series; give each time once")
        if end is None:
            if len(t) < 2:
                raise ConfigError(
                    "a series of one value needs end= (or the sample's period_s): how long does it hold?"
                )
            last = t[-1] + float(np.median(np.diff(t)))
        else:
            last = _as_time(end, "end")
            if last <= t[-1]:
                raise ConfigError(f"end = {end!r} must be after the last time {_dt(t[-1]).isoformat()}")
        return cls(times=t, values=v, end=last)

    @classmethod
    def from_samples(cls, samples: Iterable[IntensitySample]) -> IntensitySeries:
        """Build a series from :class:`~carbonkit.IntensitySample` objects; the last sample's
        ``period_s``, when known, says when its value stops holding."""
        items = sorted(samples, key=lambda s: s.time)
        if not items:
            raise ConfigError("the intensity series is empty: give at least one IntensitySample")
        for i, s in enumerate(items):
            if not isinstance(s, IntensitySample):
                raise ConfigError(f"item {i} of the series is {s!r}, not an IntensitySample")
        last = items[-1]
        end = last.time.timestamp() + last.period_s if last.period_s else None
        return cls.from_arrays([s.time for s in items], [s.g_per_kwh for s in items], end=end)

    @property
    def start(self) -> float:
        """The first time (Unix seconds)."""
        return float(self.times[0])

    def integral(self, at: Any) -> np.ndarray:
        """Integral of the intensity from the first time to each of ``at`` (Unix seconds), in
        (g/kWh) x hours; the first value is held before the series and the last after it."""
        x = np.asarray(at, dtype=np.float64)
        bounds_t = self.times
        out = np.interp(x, np.append(bounds_t, self.end), self._cum)
        after = x > self.end
        if np.any(after):
            out = np.where(after, self._cum[-1] + self.values[-1] * (x - self.end) / _HOUR, out)
        before = x < bounds_t[0]
        if np.any(before):
            out = np.where(before, self.values[0] * (x - bounds_t[0]) / _HOUR, out)
        return out

    def value_at(self, at: Any) -> np.ndarray:
        """The value in force at each of ``at`` (Unix seconds)."""
        idx = np.searchsorted(self.times, np.asarray(at, dtype=np.float64), side="right") - 1
        return self.values[np.clip(idx, 0, len(self.values) - 1)]

    def mean(self, start: float, end: float) -> float:
        """Time-weighted mean intensity over ``[start, end)``."""
        if end <= start:
            return float(self.value_at(start))
        a, b = self.integral([start, end])
        return float((b - a) * _HOUR / (end - start))

    def slot_means(self, edges: np.ndarray) -> np.ndarray:
        """Mean intensity over each ``[edges[i], edges[i + 1])``; exactly the value in force
        where no change of intensity falls inside the slot (so equal slots compare equal)."""
        edges = np.asarray(edges, dtype=np.float64)
        f = self.integral(edges)
        widths = np.diff(edges)
        means = np.diff(f) * _HOUR / np.where(widths > 0, widths, 1.0)
        nxt = np.searchsorted(self.times, edges[:-1], side="right")
        nxt_t = np.where(nxt < self.times.size, self.times[np.minimum(nxt, self.times.size - 1)], np.inf)
        constant = (nxt_t >= edges[1:] - _EPS) | (edges[1:] <= self.times[0] + _EPS)
        return np.where(constant, self.value_at(edges[:-1]), means)

    def pieces(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The boundaries (``k + 1``) and values (``k``) of the maximal constant pieces over
        ``[start, end)`` (consecutive equal values make one piece)."""
        inner = self.times[(self.times > start + _EPS) & (self.times < end - _EPS)]
        bounds = np.concatenate([[start], inner, [end]])
        vals = self.value_at(bounds[:-1])
        keep = np.ones(vals.size, dtype=bool)
        keep[1:] = vals[1:] != vals[:-1]
        return np.append(bounds[:-1][keep], end), vals[keep]


def as_series(series: SeriesLike) -> IntensitySeries:
    """Accept an :class:`IntensitySeries`, a sequence of :class:`~carbonkit.IntensitySample`,
    or a pair ``(times, values)``."""
    if isinstance(series, IntensitySeries):
        return series
    if isinstance(series, (str, bytes)) or series is None:
        raise ConfigError(
            f"series must be an IntensitySeries, a sequence of IntensitySample or (times, values); got {series!r}"
        )
    items = list(series)
    if not items:
        raise ConfigError("the intensity series is empty: give at least one time and value")
    if all(isinstance(s, IntensitySample) for s in items):
        return IntensitySeries.from_samples(items)
    if len(items) == 2 and not any(isinstance(s, IntensitySample) for s in items):
        return IntensitySeries.from_arrays(items[0], items[1])
    raise ConfigError(
        "series must be an IntensitySeries, a sequence of IntensitySample or a pair (times, values); "
        f"got a sequence starting with {items[0]!r}"
    )


# -- the plan ---------------------------------------------------------------------------------


def _intervals(value: Any) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((_utc(a), _utc(b)) for a, b in value)


def _opt_utc(value: Any) -> datetime | None:
    return None if value is None else _utc(value)


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
    warnings: tuple[str, ...] = field(default=(), converter=tuple)

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
                "profile must be a non-empty sequence of energies >= 0 (kWh per equal interval of the job's running time)"
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
            f"the forecast ends at {_dt(s.end).isoformat()}, before a {format_duration(job.duration_s)} job started now "
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


# -- Flexible Start ---------------------------------------------------------------------------


def _fs_costs(series: IntensitySeries, cands: np.ndarray, job: _Job) -> np.ndarray:
    """Emissions (g) of a straight run starting at each candidate."""
    if job.profile is None:
        d = job.duration_s
        return job.energy_kwh * (series.integral(cands + d) - series.integral(cands)) / (d / _HOUR)
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
        k = np.arange(int(math.floor((latest - now) / frame.step_s + 1e-9)) + 1)
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


# -- Pause and Resume -------------------------------------------------------------------------


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
    n = max(1, int(math.ceil(d / step - 1e-9)))
    frac = d / step - (n - 1)  # share of the last run slot used, in (0, 1]
    n_full = int(math.floor(horizon / step + 1e-9))
    m = n_full + 1  # the last slot may host only the final, partial run slot
    r = 1 if not min_run_s else max(1, int(math.ceil(min_run_s / step - 1e-9)))
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


# -- evaluation over history ------------------------------------------------------------------


def _sliding_min(a: np.ndarray, w: int) -> np.ndarray:
    """``out[i] = min(a[i : i + w])`` for every full window, in O(len(a)) (van Herk/Gil-Werman)."""
    n = a.size
    if w <= 1:
        return a.copy()
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

    durations_s: tuple[float, ...] = field(converter=tuple)
    windows: tuple[str, ...] = field(converter=tuple)
    cells: tuple[EvaluationCell, ...] = field(converter=tuple)
    step_s: float
    starts: int
    series_start: datetime = field(converter=_utc)
    series_end: datetime = field(converter=_utc)
    labels: tuple[str, ...] = field(converter=tuple, default=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationTable:
        """Build the table from ``to_dict()`` output."""
        fields = dict(data)
        fields["cells"] = [c if isinstance(c, EvaluationCell) else EvaluationCell.from_dict(c) for c in data["cells"]]
        return super().from_dict(fields)  # type: ignore[no-any-return]

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


def evaluate(
    series: SeriesLike,
    durations: Sequence[DurationLike],
    windows: Sequence[DurationLike],
    *,
    starts: int | str | Sequence[Any] = 60,
    step: DurationLike | None = None,
    algorithms: Sequence[str] = ALGORITHMS,
    labels: Sequence[str] | None = None,
) -> EvaluationTable:
    """Evaluate both algorithms on a history, as the paper did (section 6.1): for each job
    duration and window, the mean saving over many start times, and the pauses per hour.

    The history is first averaged onto slots of ``step`` (exact when its own times fall on that
    grid, as 5-minute data on a 5-minute step). Start times are slot starts; both algorithms use
    the same ones for every cell: all those that leave room for the longest ``duration +
    window`` (``starts="all"``), ``starts`` of them evenly spaced (default 60, as the paper's 5
    per month over a year), or the given times. Flexible Start considers every slot start in the
    window (the paper's 5-minute increments); Pause and Resume is :func:`pause_and_resume`
    without ``min_run``, on the slots. Power is taken as uniform. Uses cumulative sums and an
    O(n) sliding minimum, so Flexible Start over every start of a year of 5-minute data takes
    milliseconds.

    :param durations: Job durations (``"6h"``, seconds...).
    :param windows: Windows: durations (``"24h"``) or percentages of each duration (``"100%"``).
    :param labels: Column names for the durations (e.g. model names), default the durations.
    :raises ConfigError: bad input, or a history too short for the longest duration + window.
    """
    s = as_series(series)
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
    g = int(math.floor((s.end - s.start) / st + 1e-9))
    grid = s.start + np.arange(g + 1) * st
    f_grid = s.integral(grid)
    x = s.slot_means(grid)  # mean g/kWh of each slot

    def integral(t: np.ndarray) -> np.ndarray:  # of the slot-averaged history
        return np.interp(t, grid, f_grid)

    spans = [(d, parse_window(w, d)) for w in windows for d in ds]
    longest = max(d + n for d, n in spans)
    usable = int(math.floor((grid[-1] - longest - s.start) / st + 1e-9)) + 1
    if usable < 1:
        raise ConfigError(
            f"the history covers {format_duration(grid[-1] - s.start)}, less than the longest duration + window "
            f"({format_duration(longest)}); give a longer history or shorter jobs and windows"
        )
    idx = _resolve_starts(starts, usable, s.start, st)
    cells = []
    for w, wl in zip(windows, wlabels):
        for d in ds:
            n = parse_window(w, d)
            k = int(math.floor(n / st + 1e-9))  # later slot starts Flexible Start may choose
            span = min(usable + k, grid.size)
            straight = integral(grid[:span] + d) - f_grid[:span]  # (g/kWh) x h of a run from each slot
            fs = pr = pph = None
            if "flexible_start" in algos:
                best = _sliding_min(straight, k + 1)[idx]
                base = straight[idx]
                fs = float(np.mean(np.where(base > 0, 1 - best / np.where(base > 0, base, 1), 0.0)))
            if "pause_and_resume" in algos:
                total = n + d
                n_full = int(math.floor(total / st + 1e-9))
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


# -- planning from the intensity providers ----------------------------------------------------


@frozen(kw_only=True)
class ProviderForecast:
    """A forecast obtained from the provider chain: the samples, who gave them, and notes on
    the providers that gave none."""

    zone: str
    provider: str
    samples: tuple[IntensitySample, ...] = field(converter=tuple)
    notes: tuple[str, ...] = field(converter=tuple, default=())


def forecast_from_providers(
    zone: str | None,
    start: datetime,
    end: datetime,
    *,
    providers: Sequence[IntensityProvider] | None = None,
    pm: pluggy.PluginManager | None = None,
    http_client: httpx.Client | None = None,
    config: Config | None = None,
) -> ProviderForecast:
    """Ask the providers for ``zone``, best first (as a tracker orders them), for a forecast of
    ``[start, end)``, and return the first one that varies in time.

    A forecast made only of ``"average"`` samples (a yearly average) is skipped: every start
    time would look the same.

    :param providers: Use these providers (in this order) instead of the plugins'.
    :param pm: Plugin manager (default :func:`carbonkit.plugins.make_plugin_manager`).
    :param http_client: HTTP client for the providers (default: one made and closed here).
    :param config: Configuration (default ``Config.from_env(location=zone)``).
    :raises NoForecastError: when no provider has one; the message lists what each said.
    """
    from . import plugins as _plugins
    from ._http import default_http_client
    from .config import Config

    config = config or Config.from_env(location=zone)
    zone_code = (config.location or zone or "").strip().upper()
    if not zone_code:
        raise ConfigError("a zone is needed to ask for a forecast: give --location or set CARBONKIT_LOCATION")
    own = http_client is None and providers is None
    client = default_http_client() if own else http_client
    try:
        if providers is None:
            pm = pm or _plugins.make_plugin_manager()
            offers = _plugins.collect_intensity_providers(pm, config, client)  # type: ignore[arg-type]
            chain = _plugins.ordered_providers(list(offers.objects), zone_code, config.intensity_provider)
        else:
            chain = list(providers)
        notes: list[str] = []
        for provider in chain:
            try:
                samples = list(provider.forecast(zone_code, start, end) or ())
            except Exception as exc:
                notes.append(f"{provider.name}: {type(exc).__name__}: {exc}")
                continue
            if not samples:
                notes.append(f"{provider.name}: no forecast")
                continue
            if all(s.kind == "average" for s in samples):
                notes.append(f"{provider.name}: only a yearly average ({samples[0].source})")
                continue
            first = min(s.time for s in samples)
            if first.timestamp() > start.timestamp() + BACKFILL_S:
                notes.append(f"{provider.name}: its forecast starts at {first.isoformat()}, too long after now")
                continue
            return ProviderForecast(zone=zone_code, provider=provider.name, samples=samples, notes=notes)
        tried = "; ".join(notes) if notes else "no provider covers the zone"
        raise NoForecastError(
            f"no intensity forecast for zone {zone_code!r} ({tried}). Planning on a yearly average would find "
            "no saving at all; run now, or plan on a series of your own (--series FILE)",
            zone=zone_code,
        )
    finally:
        if own and client is not None:
            client.close()


def plan_from_providers(
    zone: str | None,
    duration: DurationLike,
    window: DurationLike,
    *,
    pause_resume: bool = False,
    min_run: DurationLike | None = None,
    step: DurationLike | None = None,
    energy_kwh: float | None = None,
    now: datetime | None = None,
    providers: Sequence[IntensityProvider] | None = None,
    pm: pluggy.PluginManager | None = None,
    http_client: httpx.Client | None = None,
    config: Config | None = None,
) -> SchedulePlan:
    """Plan on the providers' forecast for ``[now, now + window + duration)``.

    ``now`` defaults to the current time (UTC). The plan carries the zone, the provider and, in
    ``warnings``, what the providers that gave no forecast said.

    :raises NoForecastError: when no provider has a forecast for the zone.
    """
    d = parse_duration(duration)
    w = parse_window(window, d)
    current = now or datetime.now(timezone.utc)
    _as_time(current, "now")
    got = forecast_from_providers(
        zone, current, current + timedelta(seconds=w + d),
        providers=providers, pm=pm, http_client=http_client, config=config,
    )
    kwargs: dict[str, Any] = {"step": step, "energy_kwh": energy_kwh}
    if pause_resume:
        plan = pause_and_resume(got.samples, d, w, current, min_run=min_run, **kwargs)
    else:
        plan = flexible_start(got.samples, d, w, current, **kwargs)
    return attrs.evolve(plan, zone=got.zone, provider=got.provider, warnings=(*plan.warnings, *got.notes))


def plan_start_within(
    window: DurationLike,
    duration_estimate: DurationLike,
    zone: str | None = None,
    **kwargs: Any,
) -> SchedulePlan:
    """Flexible Start for a job of about ``duration_estimate`` to start within ``window``, on the
    providers' forecast: what ``carbonkit run --start-within`` uses. Keyword arguments go to
    :func:`plan_from_providers`.

    :raises NoForecastError: when no provider has a forecast for the zone.
    """
    return plan_from_providers(zone, duration_estimate, window, pause_resume=False, **kwargs)


# -- waiting ----------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@frozen(kw_only=True)
class WaitResult(_Record):
    """How a wait ended: ``started`` (the start time came) or ``cancelled`` (Ctrl-C)."""

    start: datetime = field(converter=_utc)
    started: bool
    cancelled: bool
    waited_s: float


def wait_for_best_start(
    plan: SchedulePlan | datetime,
    *,
    clock: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
    chunk_s: float = 60.0,
) -> WaitResult:
    """Sleep until the plan's start (or the given time), in chunks of at most ``chunk_s`` so a
    clock change or a suspended machine does not oversleep.

    Ctrl-C (KeyboardInterrupt) while waiting cancels the wait cleanly: the function returns a
    :class:`WaitResult` with ``cancelled=True`` and ``started=False``; the caller decides what
    follows (``carbonkit run --start-within`` then exits 130 without running the command).

    :param clock: Returns the current time, timezone-aware (injectable for tests).
    :param sleep: Sleeps for a number of seconds (injectable for tests).
    """
    start = plan.start if isinstance(plan, SchedulePlan) else _utc(plan)
    if not chunk_s > 0:
        raise ConfigError(f"chunk_s must be > 0, got {chunk_s!r}")
    began = clock()
    try:
        while True:
            left = (start - clock()).total_seconds()
            if left <= 0:
                break
            sleep(min(left, chunk_s))
    except KeyboardInterrupt:
        waited = (clock() - began).total_seconds()
        _logger.info("carbonkit scheduling: wait for %s cancelled after %.0f s", start.isoformat(), waited)
        return WaitResult(start=start, started=False, cancelled=True, waited_s=waited)
    return WaitResult(start=start, started=True, cancelled=False, waited_s=(clock() - began).total_seconds())


# -- pausing inside a training loop -----------------------------------------------------------

_PERCENTILE_RE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def _check_threshold(instance: Any, attribute: attrs.Attribute[Any], value: float | str) -> None:
    if isinstance(value, str):
        if value == "plan" or _PERCENTILE_RE.match(value):
            return
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return
    raise ConfigError(
        f"threshold must be an intensity in g/kWh (a number >= 0), a percentile of the forecast such as "
        f"'p25', or 'plan'; got {value!r}"
    )


def _check_positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{attribute.name} must be a number of seconds > 0, got {value!r}")


@frozen(kw_only=True)
class PauseDecision(_Record):
    """Whether to pause now, for how long, and why.

    :param pause: Sleep now (True) or go on running (False).
    :param sleep_s: How long to sleep before deciding again (0 when running).
    :param resume_at: ``now + sleep_s`` when pausing.
    :param reason: Why, in words.
    :param threshold_g_per_kwh: The threshold in force (None when unknown).
    :param current_g_per_kwh: The intensity now (None when unknown).
    :param slack_s: Seconds that can still be spent paused without missing the deadline.
    """

    pause: bool
    sleep_s: float
    resume_at: datetime | None = field(default=None, converter=_opt_utc)
    reason: str
    threshold_g_per_kwh: float | None = None
    current_g_per_kwh: float | None = None
    slack_s: float = 0.0


@frozen(kw_only=True)
class PauseOutcome(_Record):
    """What :meth:`PausePolicy.wait` did: seconds paused, sleeps, whether Ctrl-C cut it short,
    and every decision taken."""

    paused_s: float
    sleeps: int
    cancelled: bool
    decisions: tuple[PauseDecision, ...] = field(converter=tuple)


ForecastLike = Union[IntensitySeries, Sequence[IntensitySample], None]


@frozen(kw_only=True)
class PausePolicy:
    """Pause a running job while the intensity is high, and still finish by a deadline.

    Pure logic: :meth:`decide` takes the time, the intensity now, the forecast and the
    remaining work; :meth:`wait` loops on it with an injected clock and sleep.

    :param threshold: Run while the intensity is at or below this. A number (g/kWh); a
        percentile of the forecast until the deadline, time-weighted (``"p25"``: the cleanest
        quarter of the time); or ``"plan"``: follow a Pause and Resume plan of the remaining
        work until the deadline (pause until its next run starts).
    :param deadline: When the job must be done (timezone-aware).
    :param max_sleep_s: Longest sleep before deciding again (so a fresh forecast is taken into
        account), default 15 minutes.
    :param recheck_s: Sleep between checks when no forecast says when intensity will drop
        (absolute threshold only), default 5 minutes.
    :param min_sleep_s: Sleeps shorter than this are not worth it: run instead (default 1 s).

    The rules, in order: no slack left before the deadline (remaining work included) -> run;
    the intensity now is unknown or at or below the threshold -> run; the forecast shows it
    dropping to the threshold at time T -> sleep until T (at most the slack and
    ``max_sleep_s``); the forecast shows no drop before it ends -> run (pausing would not help
    within what is known); no forecast -> sleep ``recheck_s`` (at most the slack) and look again.
    """

    threshold: float | str = field(validator=_check_threshold)
    deadline: datetime = field(converter=_utc)
    max_sleep_s: float = field(default=900.0, validator=_check_positive)
    recheck_s: float = field(default=300.0, validator=_check_positive)
    min_sleep_s: float = field(default=1.0, validator=_check_positive)

    def _series(self, forecast: ForecastLike) -> IntensitySeries | None:
        if forecast is None:
            return None
        if isinstance(forecast, IntensitySeries):
            return forecast
        items = list(forecast)
        if not items:
            return None
        if all(isinstance(s, IntensitySample) and s.kind == "average" for s in items):
            return None  # a yearly average says nothing about when intensity drops
        return IntensitySeries.from_samples(items) if len(items) > 1 or items[0].period_s else None

    def threshold_for(self, now: datetime, forecast: ForecastLike) -> float | None:
        """The threshold in g/kWh at ``now`` (None for a percentile or plan with no forecast)."""
        if isinstance(self.threshold, (int, float)):
            return float(self.threshold)
        series = self._series(forecast)
        if series is None or self.threshold == "plan":
            return None
        q = float(self.threshold[1:]) / 100.0
        t0 = now.timestamp()
        t1 = min(self.deadline.timestamp(), series.end)
        if t1 <= t0:
            t1 = series.end
        if t1 <= t0:
            return None
        bounds, vals = series.pieces(t0, t1)
        order = np.argsort(vals, kind="stable")
        weights = np.cumsum(np.diff(bounds)[order])
        k = int(np.searchsorted(weights, q * weights[-1], side="left"))
        return float(vals[order[min(k, order.size - 1)]])

    def decide(
        self,
        *,
        now: datetime,
        current_g_per_kwh: float | None,
        remaining_s: float,
        forecast: ForecastLike = None,
    ) -> PauseDecision:
        """Decide whether to pause at ``now``.

        :param now: The current time (aware).
        :param current_g_per_kwh: The intensity in force now, or None when unknown.
        :param remaining_s: Estimated running time still needed to finish.
        :param forecast: Forecast samples (or a series), or None.
        """
        now = _utc(now)
        if not (isinstance(remaining_s, (int, float)) and math.isfinite(remaining_s) and remaining_s >= 0):
            raise ConfigError(f"remaining_s must be a number of seconds >= 0, got {remaining_s!r}")
        slack = (self.deadline - now).total_seconds() - remaining_s
        threshold = self.threshold_for(now, forecast)
        current = None if current_g_per_kwh is None else float(current_g_per_kwh)

        def run(reason: str) -> PauseDecision:
            return PauseDecision(
                pause=False, sleep_s=0.0, reason=reason, threshold_g_per_kwh=threshold,
                current_g_per_kwh=current, slack_s=max(0.0, slack),
            )

        def pause(seconds: float, reason: str) -> PauseDecision:
            seconds = min(seconds, slack, self.max_sleep_s)
            if seconds < self.min_sleep_s:
                return run(f"{reason}, but a pause of {seconds:.1f} s is too short to be worth it")
            return PauseDecision(
                pause=True, sleep_s=seconds, resume_at=now + timedelta(seconds=seconds), reason=reason,
                threshold_g_per_kwh=threshold, current_g_per_kwh=current, slack_s=slack,
            )

        if slack <= 0:
            return run("no slack: the remaining work needs all the time left before the deadline")
        series = self._series(forecast)
        if self.threshold == "plan":
            if series is None:
                return run("no forecast to plan with")
            try:
                plan = pause_and_resume(series, remaining_s, slack, now) if remaining_s > 0 else None
            except ConfigError as exc:
                return run(f"cannot plan on the forecast: {exc}")
            if plan is None or plan.delay_s <= self.min_sleep_s:
                return run("the plan runs now")
            return pause(plan.delay_s, f"the plan resumes at {plan.start.isoformat()}")
        if current is None:
            return run("the intensity now is unknown")
        if threshold is None:
            return run(f"no forecast to take the percentile {self.threshold} of")
        if current <= threshold:
            return run(f"intensity {current:.1f} g/kWh is at or below the threshold {threshold:.1f}")
        high = f"intensity {current:.1f} g/kWh is above the threshold {threshold:.1f}"
        if series is None:
            return pause(self.recheck_s, f"{high}; no forecast, looking again in {format_duration(self.recheck_s)}")
        t0 = now.timestamp()
        if series.end <= t0:
            return pause(self.recheck_s, f"{high}; the forecast is over, looking again in {format_duration(self.recheck_s)}")
        bounds, vals = series.pieces(t0, series.end)
        later = np.flatnonzero(vals[1:] <= threshold) + 1  # pieces after now at or below it
        if vals[0] <= threshold:
            # The live value is high though the forecast for now is not: look again soon.
            wait = self.recheck_s if later.size == 0 else min(self.recheck_s, float(bounds[later[0]]) - t0)
            return pause(wait, f"{high} (the forecast for now is below it); looking again in {format_duration(wait)}")
        if later.size == 0:
            return run(f"{high}, but the forecast shows no drop to it before it ends")
        when = float(bounds[later[0]])
        return pause(when - t0, f"{high}; the forecast drops to it at {_dt(when).isoformat()}")

    def wait(
        self,
        read: Callable[[datetime], tuple[float | None, ForecastLike]],
        *,
        remaining_s: float,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        max_decisions: int = 100_000,
    ) -> PauseOutcome:
        """Pause for as long as :meth:`decide` says, deciding again after each sleep.

        :param read: Called with the current time before each decision; returns the intensity
            now (g/kWh or None) and the forecast (samples, a series, or None).
        :param remaining_s: Estimated running time still needed (constant while paused).
        :param clock: Returns the current aware time (injectable).
        :param sleep: Sleeps a number of seconds (injectable).
        :returns: The outcome; ``paused_s`` is the wall time spent in this call. Ctrl-C while
            sleeping returns at once with ``cancelled=True`` (re-raise KeyboardInterrupt in the
            caller to stop the program).
        """
        began = clock()
        decisions: list[PauseDecision] = []
        sleeps = 0
        cancelled = False
        try:
            while len(decisions) < max_decisions:
                now = clock()
                current, forecast = read(now)
                decision = self.decide(now=now, current_g_per_kwh=current, remaining_s=remaining_s, forecast=forecast)
                decisions.append(decision)
                if not decision.pause:
                    break
                sleep(decision.sleep_s)
                sleeps += 1
        except KeyboardInterrupt:
            cancelled = True
        paused = (clock() - began).total_seconds() if sleeps or cancelled else 0.0
        return PauseOutcome(paused_s=paused, sleeps=sleeps, cancelled=cancelled, decisions=decisions)
