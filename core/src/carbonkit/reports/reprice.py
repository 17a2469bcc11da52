"""What if: a measured run re-priced in another zone or at another time, and what scheduling
would have saved for its own power profile.

The run's **measured power profile** is rebuilt from its log's raw samples by the same
accountant as a live run (:mod:`carbonkit._accounting`): the attributed energy of every
accounting interval (``bucket_s`` of wall-clock time, 60 s by default, aligned to UTC; the first
and last are cut to the run), not an even spread of the total. Each interval is then priced at
the time-weighted mean of the other intensity over that interval (power is taken as constant
inside an interval)::

    co2eq_g = sum_i  joules_i / 3.6e6 x pue x mean intensity over [a_i + shift, b_i + shift)

``shift`` is 0 when the run keeps its own times, ``at - start`` with ``--at``. The intensity is,
in this order of preference: a series file (``time,g_per_kwh``, the format ``carbonkit schedule
--series`` reads), a provider's history (an optional ``history(zone, start, end)`` method
returning past :class:`~carbonkit.IntensitySample`, called under the provider deadline and the
overall deadline of the command), or the zone's yearly average (flat: said so, and no schedule
can save anything on it). A series or history that does not cover the run is refused, naming the
gap.

Flexible Start and Pause and Resume are planned by :mod:`carbonkit.scheduling` on the same
intensity, from the run's (shifted) start, fed the measured profile as kWh per equal interval of
running time; the same plans for an even power (the same energy spread evenly) are given next to
them, so the difference the profile makes is visible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from attrs import field, frozen

from ..accounting import J_PER_KWH, Accountant
from ..errors import ConfigError
from ..records import _Record, tuple_of
from ..runlog import RunLogReader, read_header
from ..scheduling import IntensitySeries, SchedulePlan, flexible_start, format_duration, pause_and_resume
from ..scheduling.durations import parse_window
from ..scheduling.history import coverage_gap, history_from_providers, read_series_csv

__all__ = [
    "PowerProfile",
    "PricingSource",
    "Repriced",
    "ScheduleWhatIf",
    "coverage_gap",
    "intensity_for",
    "measured_profile",
    "price_profile",
    "reprice",
]

SIGNALS = ("average", "marginal")
#: Most equal intervals a profile is cut into for the planners.
MAX_PROFILE_SEGMENTS = 2000
#: Default bound on the whole intensity look-up (seconds).
DEFAULT_TIMEOUT_S = 30.0


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(round(float(ts), 6), tz=timezone.utc)


# -- the measured profile -----------------------------------------------------------------


@frozen(kw_only=True, eq=False)
class PowerProfile:
    """Attributed IT energy of each accounting interval of a run.

    :param edges: Interval bounds, Unix seconds (``n + 1`` of them, increasing).
    :param joules: IT energy (before PUE) of each of the ``n`` intervals.
    :param pue: The run's PUE.
    :param bucket_s: The accounting interval of the log.
    """

    edges: np.ndarray
    joules: np.ndarray
    pue: float
    bucket_s: float

    @property
    def start(self) -> float:
        return float(self.edges[0])

    @property
    def end(self) -> float:
        return float(self.edges[-1])

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def it_energy_kwh(self) -> float:
        return float(np.sum(self.joules)) / J_PER_KWH

    @property
    def energy_kwh(self) -> float:
        return self.it_energy_kwh * self.pue

    def equal_segments(self, m: int | None = None) -> np.ndarray:
        """kWh after PUE per equal interval of the running time (the planners' ``profile``),
        ``m`` intervals (default: one per accounting interval, at most
        :data:`MAX_PROFILE_SEGMENTS`); power constant inside each measured interval."""
        if m is None:
            m = min(MAX_PROFILE_SEGMENTS, max(1, round(self.duration_s / self.bucket_s)))
        cum = np.concatenate([[0.0], np.cumsum(self.joules)]) / J_PER_KWH * self.pue
        cuts = self.start + np.arange(m + 1) * (self.duration_s / m)
        return np.diff(np.interp(cuts, self.edges, cum))


def measured_profile(path: str | os.PathLike[str]) -> PowerProfile:
    """Rebuild a run's power profile from its log's raw samples.

    :raises RunLogError: the log cannot be read (see :func:`carbonkit.runlog.read_header`).
    :raises ConfigError: the log holds fewer than two samples (no energy to replay).
    """
    header = read_header(path)
    start = float(header["start_unix"])
    bucket = float(header["bucket_s"])
    acc = Accountant.for_sources(header["sources"], start, bucket)
    shares: dict[str, float] | None = None
    first: float | None = None
    last = 0.0
    for kind, value in RunLogReader(path).checked(header):
        if kind == "sample":
            t, readings = value
            acc.add(t, readings, shares)
            first = t if first is None else min(first, t)
            last = max(last, t)
        elif kind == "shares":
            shares = value
    buckets = acc.buckets()
    if first is None or last <= first or not buckets:
        raise ConfigError(f"{os.fspath(path)!r} holds fewer than two samples: there is no measured energy to re-price")
    lo, hi = start + first, start + last
    edges = [max(buckets[0][0] * bucket, lo)]
    joules = []
    for k, j in buckets:
        edges.append(min((k + 1) * bucket, hi))
        joules.append(max(j, 0.0))
    e = np.asarray(edges, dtype=np.float64)
    keep = np.diff(e) > 0
    kept_j = np.asarray(joules)[keep]
    kept_e = np.concatenate([[e[0]], e[1:][keep]])
    return PowerProfile(edges=kept_e, joules=kept_j, pue=float(header["pue"]), bucket_s=bucket)


# -- pricing ------------------------------------------------------------------------------


def price_profile(profile: PowerProfile, series: IntensitySeries, shift_s: float = 0.0) -> float:
    """Grams CO2eq of ``profile`` moved by ``shift_s`` seconds, each interval priced at the mean
    of ``series`` over it."""
    a = profile.edges[:-1] + shift_s
    b = profile.edges[1:] + shift_s
    width_h = (b - a) / 3600.0
    integral = series.integral(b) - series.integral(a)
    mean = np.where(width_h > 0, integral / np.where(width_h > 0, width_h, 1.0), series.value_at(a))
    return float(np.sum(profile.joules / J_PER_KWH * profile.pue * mean))


# -- where the intensity comes from -------------------------------------------------------


@frozen(kw_only=True)
class PricingSource(_Record):
    """The intensity a run was re-priced with.

    :param kind: ``"series"`` (a file), ``"history"`` (a provider's past values) or
        ``"average"`` (a yearly average: flat).
    :param zone: The zone asked for.
    :param signal: ``"average"`` or ``"marginal"``.
    :param description: Where the values come from, in words.
    :param provider: The provider, for history and averages.
    :param year: The data year of an average.
    :param start_time: First time of the intensity.
    :param end_time: When it stops.
    """

    kind: str
    zone: str
    signal: str
    description: str
    provider: str | None = None
    year: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


def _check_zone(zone: Any) -> str:
    code = zone.strip().upper() if isinstance(zone, str) else ""
    if not code or any(c.isspace() for c in code):
        raise ConfigError(f"--zone must be a zone code such as 'FR', 'DK-DK2' or 'US-CAL-CISO', got {zone!r}")
    return code


def _check_signal(signal: Any) -> str:
    if signal not in SIGNALS:
        raise ConfigError(f"--signal must be 'average' or 'marginal', got {signal!r}")
    return str(signal)


def intensity_for(
    zone: str,
    start: float,
    end: float,
    *,
    series_file: str | os.PathLike[str] | None = None,
    signal: str = "average",
    providers: Sequence[Any] | None = None,
    http_client: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    ask_until: float | None = None,
) -> tuple[IntensitySeries, PricingSource, list[str]]:
    """The intensity of ``zone`` over ``[start, end)`` (Unix seconds): a series file, else a
    provider's history, else the yearly average. Returns the series, its source and notes (what
    each provider said).

    :param providers: Ask these (in this order) instead of the installed ones.
    :param http_client: For the providers (default: one made and closed here).
    :param timeout_s: Bound on every HTTP request of the look-up together.
    :param ask_until: Ask providers for history until this time (room for a scheduling window);
        only ``[start, end)`` must be covered.
    :raises ConfigError: a bad zone or signal, a zone no provider knows (closest codes named), a
        series file that cannot be read or does not cover the run (the gap named), or a
        marginal signal with no provider giving one.
    """
    code = _check_zone(zone)
    signal = _check_signal(signal)
    if series_file is not None:
        series = read_series_csv(series_file)
        gap = coverage_gap(series, start, end)
        if gap:
            raise ConfigError(f"--series {os.fspath(series_file)!r} does not cover the run: {gap}")
        source = PricingSource(
            kind="series", zone=code, signal=signal,
            description=f"series file {os.path.basename(os.fspath(series_file))} (values taken as the {signal} signal)",
            start_time=_dt(series.start), end_time=_dt(series.end),
        )
        return series, source, []
    notes: list[str] = []
    found = history_from_providers(
        code, start, end, signal=signal, providers=providers, http_client=http_client, timeout_s=timeout_s,
        notes=notes, ask_until=ask_until,
    )
    if found is not None:
        sources = sorted({s.source for s in found.samples})
        return found.series, PricingSource(
            kind="history", zone=code, signal=signal, provider=found.provider,
            description=f"past values of {found.provider} ({'; '.join(sources[:3])})",
            start_time=_dt(found.series.start), end_time=_dt(found.series.end),
        ), notes
    chain = list(providers) if providers is not None else None
    if signal == "marginal":
        raise ConfigError(
            f"no installed provider gives a marginal history for {code} over the run "
            f"({'; '.join(notes) or 'none has history()'}); give --series FILE of marginal values, or --signal average"
        )
    from .estimate import zone_intensity

    averages = None if chain is None else [p for p in chain if getattr(p, "signal", "average") == "average"]
    try:
        zi = zone_intensity(code, averages)
    except ConfigError as exc:
        said = "; ".join(notes) or "no provider has history()"
        raise ConfigError(
            f"nothing to price {code} with: no history covering the run ({said}) and no yearly average "
            f"({str(exc).split('; give')[0]}); give --series FILE"
        ) from None
    notes.append(
        f"no history covering the run for {code}: priced at the yearly average "
        f"({zi.g_per_kwh:g} g/kWh, {zi.source}{f', {zi.year}' if zi.year else ''}), flat in time"
    )
    if zi.fallback:
        notes.append(f"no value of its own for {code}: the world average stands in")
    flat = IntensitySeries.from_arrays([start - 1.0], [zi.g_per_kwh], end=max(end, start) + 365.25 * 86400)
    return flat, PricingSource(
        kind="average", zone=code, signal="average", provider=zi.provider, year=zi.year,
        description=f"yearly average of {zi.used_zone or code}: {zi.source}",
    ), notes


# -- the what-if --------------------------------------------------------------------------


@frozen(kw_only=True)
class ScheduleWhatIf(_Record):
    """What one scheduling algorithm would have saved, for the measured profile and for an even
    power of the same energy.

    :param algorithm: ``"flexible_start"`` or ``"pause_and_resume"``.
    :param window: The window as given (``"24h"``, ``"100%"``).
    :param window_s: In seconds.
    :param baseline_g: Grams CO2eq run straight through from the (re-priced) start, as measured.
    :param emissions_g: Grams CO2eq as planned, with the measured profile.
    :param saving: ``1 - emissions_g / baseline_g``.
    :param start_time: When the plan starts the run.
    :param pauses: Pauses of the plan.
    :param intervals: The run intervals of the plan.
    :param even_baseline_g: The same, for an even power.
    :param even_emissions_g: The same, for an even power.
    :param even_saving: The same, for an even power.
    :param warnings: What the plan relies on.
    """

    algorithm: str
    window: str
    window_s: float
    baseline_g: float
    emissions_g: float
    saving: float
    start_time: datetime
    pauses: int
    intervals: tuple[tuple[str, str], ...] = field(converter=tuple_of, default=())
    even_baseline_g: float = 0.0
    even_emissions_g: float = 0.0
    even_saving: float = 0.0
    warnings: tuple[str, ...] = field(converter=tuple_of, default=())


@frozen(kw_only=True)
class Repriced(_Record):
    """One run, as measured and re-priced.

    ``original`` holds the run's own figures (its report: zone, times, energy, CO2eq, the
    intensity kinds that priced it); ``co2eq_g`` and ``intensity_g_per_kwh`` are the re-priced
    ones, for the same energy (``energy_kwh``, after the run's PUE) in ``zone`` from
    ``start_time``. ``intervals`` counts the measured intervals replayed.
    """

    file: str
    original: dict[str, Any]
    zone: str
    start_time: datetime
    end_time: datetime
    moved_s: float
    duration_s: float
    it_energy_kwh: float
    energy_kwh: float
    pue: float
    co2eq_g: float
    intensity_g_per_kwh: float
    intervals: int
    bucket_s: float
    source: PricingSource
    schedules: tuple[ScheduleWhatIf, ...] = field(converter=tuple_of, default=())
    notes: tuple[str, ...] = field(converter=tuple_of, default=())

    @property
    def change(self) -> float | None:
        """``co2eq_g / original co2eq_g - 1`` (None when the original is 0)."""
        before = float(self.original.get("co2eq_g") or 0.0)
        return None if before <= 0 else self.co2eq_g / before - 1.0

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["change"] = self.change
        data["method"] = (
            "measured power profile (IT energy per accounting interval of the run log) x PUE, each interval "
            "priced at the mean intensity over it"
        )
        return data


def _window_label(window: Any) -> str:
    return window.strip() if isinstance(window, str) else format_duration(float(window))


def _what_if(
    algorithm: str, window: Any, profile: PowerProfile, series: IntensitySeries, start: float
) -> ScheduleWhatIf:
    d = profile.duration_s
    w = parse_window(window, d)
    plan_fn = flexible_start if algorithm == "flexible_start" else pause_and_resume
    segments = profile.equal_segments()
    measured: SchedulePlan = plan_fn(series, d, w, start, profile=segments.tolist())
    even: SchedulePlan = plan_fn(series, d, w, start, energy_kwh=float(np.sum(segments)))
    return ScheduleWhatIf(
        algorithm=algorithm,
        window=_window_label(window),
        window_s=w,
        baseline_g=measured.now_emissions_g,
        emissions_g=measured.emissions_g,
        saving=measured.saving,
        start_time=measured.start,
        pauses=measured.pauses,
        intervals=[(a.isoformat().replace("+00:00", "Z"), b.isoformat().replace("+00:00", "Z"))
                   for a, b in measured.intervals],
        even_baseline_g=even.now_emissions_g,
        even_emissions_g=even.emissions_g,
        even_saving=even.saving,
        warnings=measured.warnings,
    )


def _original(report: Any) -> dict[str, Any]:
    kinds: dict[str, float] = {}
    for u in report.intensity.used:
        kinds[u.kind] = kinds.get(u.kind, 0.0) + u.energy_share
    return {
        "zone": report.location,
        "start_time": report.start_time.isoformat().replace("+00:00", "Z"),
        "end_time": report.end_time.isoformat().replace("+00:00", "Z"),
        "duration_s": report.duration_s,
        "it_energy_kwh": report.it_energy_kwh,
        "energy_kwh": report.energy_kwh,
        "co2eq_g": report.co2eq_g,
        "intensity_g_per_kwh": report.intensity_g_per_kwh,
        "intensity_kinds": kinds,
        "intensity_sources": [f"{u.source} ({u.kind}, {u.zone}{f', {u.year}' if u.year else ''})"
                              for u in report.intensity.used],
        "completed": report.completed,
        "methods": dict(report.methods),
    }


def reprice(
    path: str | os.PathLike[str],
    zone: str,
    *,
    at: datetime | float | None = None,
    series_file: str | os.PathLike[str] | None = None,
    signal: str = "average",
    flexible_start_window: Any = None,
    pause_resume_window: Any = None,
    providers: Sequence[Any] | None = None,
    http_client: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Repriced:
    """Re-price the run logged at ``path`` in ``zone`` (at its own times, or starting ``at``).

    :param at: Move the run to start at this time (aware datetime or Unix seconds).
    :param series_file: A CSV of ``time,g_per_kwh`` to price with.
    :param signal: ``"average"`` or ``"marginal"``.
    :param flexible_start_window: Also plan Flexible Start within this window (``"24h"``, ``"100%"``).
    :param pause_resume_window: Also plan Pause and Resume within this window.
    :raises RunLogError: the log cannot be read.
    :raises ConfigError: bad input, an unknown zone, an intensity that does not cover the run.
    """
    from .aggregate import read_run

    run = read_run(path)
    profile = measured_profile(path)
    if at is None:
        shift = 0.0
    elif isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ConfigError(f"--at {at!r} has no UTC offset; give e.g. 2024-03-01T00:00:00Z")
        shift = at.timestamp() - profile.start
    elif isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at):
        shift = float(at) - profile.start
    else:
        raise ConfigError(f"--at must be a time such as 2024-03-01T00:00:00Z, got {at!r}")
    start, end = profile.start + shift, profile.end + shift
    windows = [w for w in (flexible_start_window, pause_resume_window) if w is not None]
    horizon = max((parse_window(w, profile.duration_s) for w in windows), default=0.0)
    series, source, notes = intensity_for(
        zone, start, end, series_file=series_file, signal=signal, providers=providers,
        http_client=http_client, timeout_s=timeout_s, ask_until=end + horizon,
    )
    if horizon > 0 and source.kind != "average":
        gap = coverage_gap(series, start, end + horizon)
        if gap:
            notes.append(f"the scheduling window reaches past the intensity known ({gap}): planned within it")
    grams = price_profile(profile, series, shift)
    schedules = []
    if windows and source.kind == "average":
        notes.append("a yearly average is flat in time: Flexible Start and Pause and Resume cannot save anything on it")
    elif windows:
        if flexible_start_window is not None:
            schedules.append(_what_if("flexible_start", flexible_start_window, profile, series, start))
        if pause_resume_window is not None:
            schedules.append(_what_if("pause_and_resume", pause_resume_window, profile, series, start))
    kwh = profile.energy_kwh
    recorded = run.report.it_energy_kwh
    if recorded > 0 and abs(profile.it_energy_kwh - recorded) > 1e-6 * max(recorded, 1e-9) + 1e-9:
        notes.append(
            f"the profile replayed from the samples holds {profile.it_energy_kwh:.6g} kWh IT energy; the run's report "
            f"says {recorded:.6g} kWh"
        )
    if not run.report.completed:
        notes.append("the run did not stop: its profile covers what it logged")
    return Repriced(
        file=str(path),
        original=_original(run.report),
        zone=source.zone,
        start_time=_dt(start),
        end_time=_dt(end),
        moved_s=shift,
        duration_s=profile.duration_s,
        it_energy_kwh=profile.it_energy_kwh,
        energy_kwh=kwh,
        pue=profile.pue,
        co2eq_g=grams,
        intensity_g_per_kwh=grams / kwh if kwh > 0 else 0.0,
        intervals=int(profile.joules.size),
        bucket_s=profile.bucket_s,
        source=source,
        schedules=schedules,
        notes=notes,
    )

