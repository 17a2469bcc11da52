"""The intensity series, a step function of time, and the time conversions it rests on."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Union, cast

import numpy as np
from attrs import field, frozen

from ..errors import ConfigError
from ..records import IntensitySample, _utc

__all__ = ["IntensitySeries", "SeriesLike", "as_series"]

_EPS = 1e-6  # seconds: times closer than this are the same time
_HOUR = 3600.0

SeriesLike = Union["IntensitySeries", Sequence[IntensitySample], tuple[Any, Any]]




def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _opt_utc(value: Any) -> datetime | None:
    return None if value is None else _utc(value)


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


def _as_time(value: datetime | float, what: str) -> float:
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
        return cast(np.ndarray, out)

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
