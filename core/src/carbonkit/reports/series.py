"""Time series of one run, read from its log's raw records, for the HTML report's plots.

- Power per device: ``sample`` records of ``kind: power`` sources give watts directly; of
  ``kind: energy`` sources, the difference of cumulative joules over the time between two
  samples (a decrease is a counter reset and gives no point).
- Cumulative energy (after PUE): the same accounting as the run itself
  (:class:`carbonkit.accounting.Accountant`, attributed energy with ``attribution="process"``).
- Cumulative CO2eq: each accounting interval (``bucket_s``, one minute by default) priced at the
  intensity in force for it, as the run's report does; so its last point is the report's CO2eq.
- Intensity: the ``intensity`` records per provider and kind (live, forecast, average), each
  value held until the next one of its series (or for its ``period_s``), clipped to the run.

The log is read with :meth:`carbonkit.runlog.RunLogReader.checked`: records that do not match
the schema (a broken line, a NaN) are skipped as :func:`carbonkit.load_run` skips them.

Long runs are downsampled while reading (:class:`Envelope`: per time bin the lowest and highest
value, so short peaks stay visible), so memory stays bounded by the number of bins, not samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from attrs import define, field, frozen

from ..accounting import J_PER_KWH, Accountant, IntensityTimeline, carbon
from ..errors import RunLogError
from ..runlog import RunLogReader, read_header
from .aggregate import RunLog

__all__ = ["Envelope", "RunSeries", "run_series"]


@define
class Envelope:
    """Streaming downsampler: at most ``2 * max_bins`` bins of equal width, widened as needed.

    Each bin keeps its lowest and highest point and its last point.
    """

    max_bins: int = 300
    width: float = 1e-3
    bins: dict[int, list[float]] = field(factory=dict)

    def add(self, t: float, v: float) -> None:
        if not (math.isfinite(t) and math.isfinite(v)):
            return
        k = math.floor(t / self.width)
        b = self.bins.get(k)
        if b is None:
            self.bins[k] = [t, v, t, v, t, v]
            if len(self.bins) > 2 * self.max_bins:
                self._widen()
            return
        if v < b[1]:
            b[0], b[1] = t, v
        if v > b[3]:
            b[2], b[3] = t, v
        if t >= b[4]:
            b[4], b[5] = t, v

    def _widen(self) -> None:
        while len(self.bins) > self.max_bins:
            self.width *= 2
            merged: dict[int, list[float]] = {}
            for k, b in self.bins.items():
                m = merged.get(k // 2)
                if m is None:
                    merged[k // 2] = list(b)
                    continue
                if b[1] < m[1]:
                    m[0], m[1] = b[0], b[1]
                if b[3] > m[3]:
                    m[2], m[3] = b[2], b[3]
                if b[4] >= m[4]:
                    m[4], m[5] = b[4], b[5]
            self.bins = merged

    def envelope(self) -> list[tuple[float, float]]:
        """The lowest and highest point of each bin, in time order."""
        out: list[tuple[float, float]] = []
        for k in sorted(self.bins):
            b = self.bins[k]
            out.extend(sorted({(b[0], b[1]), (b[2], b[3])}))
        return out

    def last(self) -> list[tuple[float, float]]:
        """The last point of each bin (for cumulative series)."""
        return [(self.bins[k][4], self.bins[k][5]) for k in sorted(self.bins)]


@frozen(kw_only=True)
class RunSeries:
    """What the plots of one run need; times are seconds since the run started."""

    duration_s: float
    power_w: Mapping[str, list[tuple[float, float]]] = field(factory=dict)
    energy_kwh: list[tuple[float, float]] = field(factory=list)
    co2eq_g: list[tuple[float, float]] = field(factory=list)
    intensity: Mapping[tuple[str, str], list[tuple[float, float, float]]] = field(factory=dict)
    samples: int = 0
    bucket_s: float = 60.0


def _intensity_segments(
    raw: Mapping[tuple[str, str], dict[float, tuple[float, float | None]]], start_unix: float, end_s: float
) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    out: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for key in sorted(raw):
        points = sorted(raw[key].items())
        segs = []
        for i, (ts, (g, period)) in enumerate(points):
            t0 = ts - start_unix
            t1 = points[i + 1][0] - start_unix if i + 1 < len(points) else end_s
            if period:
                t1 = min(t1, t0 + period) if i + 1 < len(points) else t0 + period
            t0, t1 = max(t0, 0.0), min(t1, end_s)
            if t1 > t0:
                segs.append((t0, t1, g))
        if segs:
            out[key] = segs
    return out


def run_series(run: RunLog, max_points: int = 300) -> RunSeries:
    """Read ``run``'s log once and build its plot series (see the module docstring).

    A run whose file cannot be read as a run log (it was built in memory, or the file changed)
    gets no series: no points, and its report's duration.
    """
    try:
        header = read_header(run.file)
    except RunLogError:
        return RunSeries(duration_s=run.report.duration_s)
    sources: list[Mapping[str, Any]] = list(header.get("sources") or [])
    names = [str(s["name"]) for s in sources]
    kinds = {str(s["name"]): str(s.get("kind", "power")) for s in sources}
    labels = {str(s["name"]): [str(d) for d in s.get("devices", ())] for s in sources}
    start_unix = float(header.get("start_unix", run.report.start_time.timestamp()))
    bucket_s = float(header.get("bucket_s", 60.0))
    pue = float(run.report.pue)
    acc = Accountant.for_sources(sources, start_unix, bucket_s)
    timeline = IntensityTimeline()
    power: dict[tuple[str, int], Envelope] = {}
    energy = Envelope(max_points)
    last: dict[str, tuple[float, list[float]]] = {}
    raw_intensity: dict[tuple[str, str], dict[float, tuple[float, float | None]]] = {}
    shares: dict[str, float] | None = None
    n = 0
    t_end = 0.0
    for kind, value in RunLogReader(run.file).checked(header):
        if kind == "sample":
            t, readings = value
            for name, values in zip(names, readings):
                if values is None:
                    continue
                if kinds[name] == "energy":
                    prev = last.get(name)
                    if prev is not None and t > prev[0]:
                        dt = t - prev[0]
                        mid = (t + prev[0]) / 2
                        for i, v in enumerate(values):
                            if i < len(prev[1]) and v >= prev[1][i]:
                                power.setdefault((name, i), Envelope(max_points)).add(mid, (v - prev[1][i]) / dt)
                    last[name] = (t, list(values))
                else:
                    for i, v in enumerate(values):
                        power.setdefault((name, i), Envelope(max_points)).add(t, float(v))
            acc.add(t, readings, shares)
            energy.add(t, acc.e_attr_j / J_PER_KWH * pue)
            n += 1
            t_end = max(t_end, t)
        elif kind == "shares":
            shares = value
        elif kind == "intensity":
            sample, provider = value
            timeline.add(sample, provider)
            raw_intensity.setdefault((provider, sample.kind), {})[sample.time.timestamp()] = (
                sample.g_per_kwh,
                sample.period_s,
            )
    duration = max(run.report.duration_s, t_end)
    co2_env = Envelope(max_points)
    grams = 0.0
    for k, joules in acc.buckets():
        grams += carbon([(k, joules)], timeline, bucket_s, pue)[0]
        co2_env.add(min(max((k + 1) * bucket_s - start_unix, 0.0), duration), grams)
    co2 = [(0.0, 0.0), *co2_env.last()]
    power_w = {}
    for (name, i), env in sorted(power.items()):
        device = labels[name][i] if i < len(labels[name]) else f"device {i}"
        power_w[f"{name} / {device}"] = env.envelope()
    return RunSeries(
        duration_s=duration,
        power_w=power_w,
        energy_kwh=[(0.0, 0.0), *energy.last()] if n else [],
        co2eq_g=co2 if n else [],
        intensity=_intensity_segments(raw_intensity, start_unix, duration),
        samples=n,
        bucket_s=bucket_s,
    )
