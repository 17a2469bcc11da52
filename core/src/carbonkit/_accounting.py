"""Streaming energy and carbon accounting: the one engine behind live runs and ``load_run``.

Readings arrive tick by tick (all sources read at the same time ``t``, seconds since the run
started). The accountant keeps, in memory bounded by the run's minutes and epochs (never by its
samples):

- cumulative joules per device (machine level) and per component (machine and attributed);
- the attributed cumulative energy at every minute boundary (wall clock, UTC) and at every
  epoch mark, interpolated inside the sampling interval: energy counters linearly, power
  readings exactly as the trapezoid rule integrates them (power linear between two samples).

CO2eq is computed afterwards from those points: the energy of each minute times the intensity
in force for that minute (``resolve_intensity``), so forecast values can be replaced by live
ones that arrive later.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

from attrs import define, field

from .records import IntensitySample

BUCKET_S = 60.0
J_PER_KWH = 3.6e6
#: A live value is held for this long after its start when nothing newer covers the time (a
#: provider declaring a longer ``max_lag_s`` holds its values longer: see ``IntensityTimeline``).
STALE_LIVE_S = 3600.0
_KIND_RANK = {"live": 0, "forecast": 1, "average": 2}


@define
class SourceState:
    name: str
    component: str
    kind: str
    devices: tuple[str, ...]
    method: str
    last: list[float] | None = None
    last_t: float | None = None  # when ``last`` was read (a source can miss ticks)
    base: list[float] | None = None
    cum_j: list[float] = field(factory=list)
    alive: bool = True
    resets: int = 0
    _share_keys: list[str] | None = None

    def __attrs_post_init__(self) -> None:
        self.cum_j = [0.0] * len(self.devices)

    def share_keys(self) -> list[str]:
        """The keys of this source's per-device shares in a tick's shares: ``"<name>#<i>"``."""
        if self._share_keys is None:
            self._share_keys = [f"{self.name}#{i}" for i in range(len(self.devices))]
        return self._share_keys


@define
class Accountant:
    """Accumulate readings into energy per device, component, minute and epoch mark."""

    sources: list[SourceState]
    start_wall: float  # unix seconds at t = 0
    bucket_s: float = BUCKET_S
    t_last: float | None = None
    e_attr_j: float = 0.0  # attributed cumulative energy at t_last
    component_j: dict[str, float] = field(factory=dict)  # machine level
    component_attr_j: dict[str, float] = field(factory=dict)
    bucket_start_j: dict[int, float] = field(factory=dict)  # bucket index -> cumulative J at its start
    mark_t: list[float] = field(factory=list)
    mark_j: list[float] = field(factory=list)
    _pending_marks: list[float] = field(factory=list)
    _sorted: tuple[list[int], list[float], int] | None = None

    @classmethod
    def for_sources(
        cls, meta: Iterable[Mapping[str, object]], start_wall: float, bucket_s: float = BUCKET_S
    ) -> Accountant:
        states = [
            SourceState(
                name=str(m["name"]),
                component=str(m["component"]),
                kind=str(m["kind"]),
                devices=tuple(m["devices"]),  # type: ignore[arg-type]
                method=str(m["method"]),
            )
            for m in meta
        ]
        acc = cls(sources=states, start_wall=start_wall, bucket_s=bucket_s)
        for s in states:
            acc.component_j.setdefault(s.component, 0.0)
            acc.component_attr_j.setdefault(s.component, 0.0)
        return acc

    # -- input ------------------------------------------------------------------------------

    def mark(self, t: float) -> None:
        """Ask for the attributed cumulative energy at time ``t`` (an epoch boundary)."""
        if self.t_last is not None and t <= self.t_last:
            # Already past: take the energy at the last tick (the mark came late).
            self.mark_t.append(t)
            self.mark_j.append(self.e_attr_j)
        else:
            self._pending_marks.append(t)

    def add(
        self,
        t: float,
        readings: Sequence[Sequence[float] | None],
        shares: Mapping[str, float] | None = None,
    ) -> None:
        """Add one tick: ``readings[i]`` for ``sources[i]`` (None when that source was not read).

        ``shares`` scales the attributed figures: ``{component: share}`` for every device of a
        component, and ``{"<source name>#<device index>": share}`` for one device (a GPU
        shared with other jobs), which wins over its component's.
        """
        lin = 0.0  # attributed joules from energy counters in (t_last, t]
        p0 = 0.0  # attributed watts at t_last from power sources
        p1 = 0.0
        dt = None if self.t_last is None else t - self.t_last
        if dt is not None and dt < 0:
            return  # a tick older than the last one: ignore it
        for state, values in zip(self.sources, readings):
            if values is None or not state.alive:
                continue
            if state.last is None:
                state.last = list(values)
                state.last_t = t
                continue
            share = 1.0 if shares is None else shares.get(state.component, 1.0)
            dev = None  # per-device shares ("<source>#<i>"), where the source gave them
            if shares is not None:
                keys = state.share_keys()
                if any(k in shares for k in keys):
                    dev = [shares.get(k, share) for k in keys]
            comp_j = 0.0
            attr_j = 0.0
            cum = state.cum_j
            last = state.last
            if state.kind == "energy":
                for i, v in enumerate(values):
                    d = v - last[i]
                    if d < 0 or not math.isfinite(d):
                        state.resets += 1
                        d = 0.0
                    cum[i] += d
                    comp_j += d
                    if dev is not None:
                        attr_j += d * dev[i]
                if dev is None:
                    attr_j = comp_j * share
                lin += attr_j
            else:
                gap = 0.0 if state.last_t is None else t - state.last_t
                for i, v in enumerate(values):
                    d = (last[i] + v) * 0.5 * gap
                    cum[i] += d
                    comp_j += d
                    if dev is not None:
                        attr_j += d * dev[i]
                if dev is None:
                    attr_j = comp_j * share
                if dt is not None and state.last_t is not None and state.last_t < (self.t_last or 0.0) - 1e-9:
                    lin += attr_j  # bridging missed ticks: spread over this interval
                elif dev is not None:
                    p0 += sum(w * s for w, s in zip(last, dev))
                    p1 += sum(w * s for w, s in zip(values, dev))
                else:
                    p0 += sum(last) * share
                    p1 += sum(values) * share
            state.last = list(values)
            state.last_t = t
            self.component_j[state.component] += comp_j
            self.component_attr_j[state.component] += attr_j
        if dt is None:
            self.t_last = t
            self._bucket_cross(t, t, 0.0, 0.0, 0.0, 0.0)
            self._resolve_marks(t, 0.0, 0.0, 0.0, 0.0)
            return
        self._bucket_cross(self.t_last, t, lin, p0, p1, dt)  # type: ignore[arg-type]
        self._resolve_marks(t, lin, p0, p1, dt)
        self.e_attr_j += lin + (p0 + p1) * 0.5 * dt
        self.t_last = t

    def rebase(self, index: int, values: Sequence[float], t: float) -> None:
        """Restart source ``index`` from ``values`` at ``t`` without counting the jump to them."""
        state = self.sources[index]
        state.last = list(values)
        state.last_t = t
        state.resets += 1

    # -- interpolation ----------------------------------------------------------------------

    @staticmethod
    def _partial(tau: float, lin: float, p0: float, p1: float, dt: float) -> float:
        """Energy from the interval's start to ``tau`` seconds into it."""
        if dt <= 0:
            return 0.0
        return lin * tau / dt + p0 * tau + (p1 - p0) * tau * tau / (2.0 * dt)

    def _bucket_cross(self, t0: float, t1: float, lin: float, p0: float, p1: float, dt: float) -> None:
        w0 = self.start_wall + t0
        w1 = self.start_wall + t1
        first = math.floor(w0 / self.bucket_s)
        if first not in self.bucket_start_j:
            self.bucket_start_j[first] = self.e_attr_j
        k = first + 1
        while k * self.bucket_s <= w1:
            tau = k * self.bucket_s - w0
            self.bucket_start_j[k] = self.e_attr_j + self._partial(tau, lin, p0, p1, dt)
            k += 1

    def _resolve_marks(self, t: float, lin: float, p0: float, p1: float, dt: float) -> None:
        if not self._pending_marks:
            return
        keep = []
        for tm in self._pending_marks:
            if tm <= t:
                tau = 0.0 if self.t_last is None or tm <= self.t_last else tm - self.t_last
                self.mark_t.append(tm)
                self.mark_j.append(self.e_attr_j + self._partial(tau, lin, p0, p1, dt))
            else:
                keep.append(tm)
        self._pending_marks = keep

    # -- carbon -----------------------------------------------------------------------------

    def buckets(self) -> list[tuple[int, float]]:
        """Return (bucket index, attributed joules in it) for every minute the run touched."""
        keys = sorted(self.bucket_start_j)
        out = []
        for i, k in enumerate(keys):
            end = self.bucket_start_j[keys[i + 1]] if i + 1 < len(keys) else self.e_attr_j
            out.append((k, end - self.bucket_start_j[k]))
        return out

    def interval_buckets(self, j0: float, j1: float) -> list[tuple[int, float]]:
        """Split the attributed energy between cumulative values ``j0`` and ``j1`` by minute."""
        if self._sorted is None or self._sorted[2] != len(self.bucket_start_j):
            keys = sorted(self.bucket_start_j)
            self._sorted = (keys, [self.bucket_start_j[k] for k in keys], len(keys))
        keys, starts, _ = self._sorted
        out = []
        i = max(bisect.bisect_right(starts, j0) - 1, 0)
        while i < len(keys) and starts[i] < j1:
            hi = starts[i + 1] if i + 1 < len(keys) else self.e_attr_j
            part = min(hi, j1) - max(starts[i], j0)
            if part > 0:
                out.append((keys[i], part))
            i += 1
        return out


@define
class IntensityTimeline:
    """Intensity samples of a run, deduplicated by (provider, kind, time), newest wins.

    ``signal`` is the signal the run asked for: its values are preferred to the other signal's
    at every step of :meth:`at`. ``lags`` maps a provider's name to its ``max_lag_s``: how long
    after the end of its period one of its live values may still price the run, until a newer
    one arrives.
    """

    samples: dict[tuple[str, str, float], tuple[IntensitySample, str]] = field(factory=dict)
    signal: str = "average"
    lags: dict[str, float] = field(factory=dict)
    _index: dict[tuple[bool, str], tuple[list[float], list[tuple[IntensitySample, str]]]] | None = None

    def add(self, sample: IntensitySample, provider: str) -> None:
        self.samples[(provider, sample.kind, sample.time.timestamp())] = (sample, provider)
        self._index = None

    def __len__(self) -> int:
        return len(self.samples)

    def _build(self) -> dict[tuple[bool, str], tuple[list[float], list[tuple[IntensitySample, str]]]]:
        if self._index is None:
            by_kind: dict[tuple[bool, str], list[tuple[float, tuple[IntensitySample, str]]]] = {}
            for (_, kind, ts), entry in self.samples.items():
                by_kind.setdefault((entry[0].signal == self.signal, kind), []).append((ts, entry))
            self._index = {}
            for key, rows in by_kind.items():
                rows.sort(key=lambda r: r[0])
                self._index[key] = ([r[0] for r in rows], [r[1] for r in rows])
        return self._index

    def held_until(self, entry: tuple[IntensitySample, str]) -> float:
        """Until when (unix time) a live value may price the run when nothing newer covers it:
        an hour after its start, or its provider's ``max_lag_s`` after the end of its period,
        whichever is later."""
        sample, provider = entry
        start = sample.time.timestamp()
        lag = self.lags.get(provider)
        end = start + STALE_LIVE_S
        if lag is not None:
            end = max(end, start + (sample.period_s or 0.0) + lag)
        return end

    def at(self, wall: float) -> tuple[IntensitySample, str] | None:
        """Return the sample in force at unix time ``wall``, and its provider.

        In order, first among the values of the signal the run asked for, then among the other
        signal's: a live value whose period covers the time; a forecast covering it; the latest
        live value, while it is held (:meth:`held_until`: an hour, or the provider's declared
        publication lag after its period); the first live value of the next hour (a live value
        that arrived a moment after the run started prices its start, rather than the static
        value the run began with). Then a yearly average (of the signal asked for first); the
        latest value of any kind before it; the earliest after it.
        """
        index = self._build()
        if not index:
            return None

        def latest(preferred: bool, kind: str) -> tuple[IntensitySample, str] | None:
            if (preferred, kind) not in index:
                return None
            times, entries = index[(preferred, kind)]
            i = bisect.bisect_right(times, wall) - 1
            return entries[i] if i >= 0 else None

        def covers(entry: tuple[IntensitySample, str] | None) -> bool:
            if entry is None or entry[0].period_s is None:
                return False
            start = entry[0].time.timestamp()
            return start <= wall < start + entry[0].period_s

        for preferred in (True, False):
            live = latest(preferred, "live")
            if covers(live):
                return live
            forecast = latest(preferred, "forecast")
            if covers(forecast):
                return forecast
            if live is not None and wall <= self.held_until(live):
                return live
            if (preferred, "live") in index:  # the run's first live value describes its first minutes better
                times, entries = index[(preferred, "live")]
                i = bisect.bisect_right(times, wall)
                if i < len(times) and times[i] - wall <= STALE_LIVE_S:
                    return entries[i]
        for preferred in (True, False):
            average = latest(preferred, "average")
            if average is not None:
                return average
        candidates = [e for e in (latest(p, k) for p in (True, False) for k in ("live", "forecast")) if e is not None]
        if candidates:
            return max(candidates, key=lambda e: e[0].time)
        firsts = [entries[0] for _, entries in index.values()]
        return min(firsts, key=lambda e: (e[0].time, _KIND_RANK[e[0].kind]))


def age_s(sample: IntensitySample, wall: float) -> float:
    """How long after the end of the period it covers ``sample`` prices unix time ``wall``
    (0 inside its period, and always 0 for a yearly average)."""
    if sample.kind == "average":
        return 0.0
    return max(0.0, wall - sample.time.timestamp() - (sample.period_s or 0.0))


#: Key of one intensity source used: (provider, source, kind, zone, year, signal).
UseKey = tuple[str, str, str, str, int | None, str]


def carbon(
    parts: Iterable[tuple[int, float]], timeline: IntensityTimeline, bucket_s: float, pue: float
) -> tuple[float, float, dict[UseKey, list[float]]]:
    """Price attributed joules by interval: return (grams CO2eq, kWh incl. PUE, uses).

    ``uses`` maps (provider, source, kind, zone, year, signal) to [kWh priced, grams, the
    largest age in seconds of a value used] for provenance.
    """
    grams = 0.0
    kwh_total = 0.0
    uses: dict[UseKey, list[float]] = {}
    for k, joules in parts:
        if joules <= 0:
            continue
        kwh = joules / J_PER_KWH * pue
        wall = (k + 0.5) * bucket_s
        entry = timeline.at(wall)
        if entry is None:
            continue
        sample, provider = entry
        g = kwh * sample.g_per_kwh
        grams += g
        kwh_total += kwh
        key = (provider, sample.source, sample.kind, sample.zone, sample.year, sample.signal)
        acc = uses.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += kwh
        acc[1] += g
        acc[2] = max(acc[2], age_s(sample, wall))
    return grams, kwh_total, uses


def utc_from_unix(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
