"""The run engine: accounting, epochs, prediction and the report, with no threads and no I/O.

The tracker drives it from its sampler thread with the real clock; ``load_run`` drives it from
a run log; benchmarks drive it with a fake clock. One engine, so a recovered run is computed
exactly like a live one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import define, field

from ._accounting import J_PER_KWH, Accountant, IntensityTimeline, carbon, utc_from_unix
from .equivalents import car_factor
from .records import (
    METHODS,
    BudgetReport,
    ComponentReport,
    DroppedSource,
    EpochRecord,
    Fallback,
    IntensityProvenance,
    IntensitySample,
    IntensityUse,
    Prediction,
    Report,
    signal_shares,
)


@define
class Engine:
    """State of one run between its start (t = 0) and its end."""

    accountant: Accountant
    location: str
    pue: float
    pue_source: str
    provider: str
    epochs_planned: int | None = None
    tags: Mapping[str, str] = field(factory=dict)
    dropped: list[DroppedSource] = field(factory=list)
    timeline: IntensityTimeline = field(factory=IntensityTimeline)
    fallbacks: list[Fallback] = field(factory=list)
    warnings: list[str] = field(factory=list)
    marks: list[tuple[str, float]] = field(factory=list)  # ("start" | "end", t)
    epochs: list[EpochRecord] = field(factory=list)
    prediction: Prediction | None = None
    predictions: list[Prediction] = field(factory=list)
    budget: BudgetReport | None = None
    paused_s: float = 0.0
    pauses: list[tuple[float, float]] = field(factory=list)
    attribution: str = "machine"
    source_info: Mapping[str, Mapping[str, str]] = field(factory=dict)
    #: How each component's share is obtained (``attribution`` other than ``"machine"``).
    attribution_notes: Mapping[str, str] = field(factory=dict)
    signal: str = "average"
    provider_lags: Mapping[str, float] = field(factory=dict)
    _epoch_j: list[tuple[float, float]] = field(factory=list)
    _resolved: int = 0  # marks already turned into epochs
    _open_start: float | None = None
    _open_start_j: float | None = None
    _last_end: tuple[float, float] = (0.0, 0.0)
    _priced: tuple[int, int, float] | None = None  # (timeline size, buckets, grams of all but the last)

    def __attrs_post_init__(self) -> None:
        self.timeline.signal = self.signal
        self.timeline.lags = dict(self.provider_lags)

    @property
    def start_wall(self) -> float:
        return self.accountant.start_wall

    # -- marks and epochs -------------------------------------------------------------------

    def add_mark(self, kind: str, t: float) -> None:
        self.marks.append((kind, t))
        self.accountant.mark(t)

    def add_pause(self, t0: float, t1: float) -> None:
        """Record a pause (seconds since start): not training time, kept in the totals."""
        self.pauses.append((t0, t1))
        self.paused_s += t1 - t0

    def new_epochs(self) -> list[EpochRecord]:
        """Turn every mark whose energy is known into epochs; return the epochs completed."""
        acc = self.accountant
        done: list[EpochRecord] = []
        while self._resolved < len(acc.mark_t):
            kind, t = self.marks[self._resolved]
            j = acc.mark_j[self._resolved]
            self._resolved += 1
            if kind == "start":
                self._open_start, self._open_start_j = t, j
                continue
            start, start_j = (
                (self._open_start, self._open_start_j)
                if self._open_start is not None and self._open_start_j is not None
                else self._last_end
            )
            self._open_start = self._open_start_j = None
            epoch = self._epoch(len(self.epochs), start, t, start_j, j)
            self.epochs.append(epoch)
            self._epoch_j.append((start_j, j))
            self._last_end = (t, j)
            done.append(epoch)
        return done

    def _epoch(self, index: int, t0: float, t1: float, j0: float, j1: float) -> EpochRecord:
        it_kwh = max(j1 - j0, 0.0) / J_PER_KWH
        grams, _, _ = carbon(
            self.accountant.interval_buckets(j0, j1), self.timeline, self.accountant.bucket_s, self.pue
        )
        paused = sum(max(0.0, min(t1, b) - max(t0, a)) for a, b in self.pauses)
        return EpochRecord(
            index=index,
            start_s=t0,
            end_s=t1,
            duration_s=t1 - t0 - paused,
            paused_s=paused,
            it_energy_kwh=it_kwh,
            energy_kwh=it_kwh * self.pue,
            co2eq_g=grams,
        )

    # -- prediction -------------------------------------------------------------------------

    def complete_prediction(self, raw: Prediction, now_t: float) -> Prediction:
        """Add PUE and CO2eq to a predictor's output, pricing the predicted energy over time.

        The predicted energy is spread evenly over the predicted duration from the run's start;
        each minute is priced at the intensity in force then (live where known, the provider's
        forecast ahead, else the latest value). The interval's ends (when the predictor gave
        one) are priced at the point prediction's mean intensity.
        """
        energy_kwh = raw.it_energy_kwh * self.pue
        duration = max(raw.duration_s, 1e-9)
        bucket = self.accountant.bucket_s
        w0 = self.start_wall
        first = int(w0 // bucket)
        last = int((w0 + duration) // bucket)
        if last - first > 200_000:  # a prediction years long: price it in coarser steps
            bucket *= (last - first) / 200_000
            first, last = int(w0 // bucket), int((w0 + duration) // bucket)
        parts = []
        for k in range(first, last + 1):
            lo = max(k * bucket, w0)
            hi = min((k + 1) * bucket, w0 + duration)
            if hi > lo:
                parts.append((k, raw.it_energy_kwh * J_PER_KWH * (hi - lo) / duration))
        grams, kwh, uses = carbon(parts, self.timeline, bucket, self.pue)
        if uses:
            main = max(uses.items(), key=lambda kv: kv[1][0])[0]
            kinds = sorted({key[2] for key in uses})
            kind = "forecast" if "forecast" in kinds else main[2]
            source = main[1]
        else:
            kind, source = "unknown", "no intensity"
        def priced(it_end: float | None) -> tuple[float | None, float | None]:
            # The interval's ends are priced at the point prediction's mean intensity.
            if it_end is None:
                return None, None
            return it_end * self.pue, grams * it_end / raw.it_energy_kwh if raw.it_energy_kwh > 0 else 0.0

        energy_low, co2_low = priced(raw.it_energy_low_kwh)
        energy_high, co2_high = priced(raw.it_energy_high_kwh)
        # Rounding must not put the point outside its own interval.
        energy_low = None if energy_low is None else min(energy_low, energy_kwh)
        co2_low = None if co2_low is None else min(co2_low, grams)
        energy_high = None if energy_high is None else max(energy_high, energy_kwh)
        co2_high = None if co2_high is None else max(co2_high, grams)
        return attrs.evolve(
            raw,
            energy_low_kwh=energy_low,
            energy_high_kwh=energy_high,
            co2eq_low_g=co2_low,
            co2eq_high_g=co2_high,
            energy_kwh=energy_kwh,
            co2eq_g=grams,
            intensity_g_per_kwh=grams / kwh if kwh else 0.0,
            intensity_kind=kind,
            intensity_source=source,
        )

    def add_prediction(self, prediction: Prediction) -> bool:
        """Record a (completed) prediction; return True when it is the run's first."""
        self.predictions.append(prediction)
        if self.prediction is None:
            self.prediction = prediction
            return True
        return False

    # -- figures so far ---------------------------------------------------------------------

    def energy_so_far_kwh(self) -> float:
        """Energy used so far, PUE included (attributed, like the report's)."""
        return self.accountant.e_attr_j / J_PER_KWH * self.pue

    def co2_so_far_g(self) -> float:
        """CO2eq so far, priced like the report (each interval at the intensity in force for it).

        Every interval but the last is priced once and kept until a new intensity sample arrives,
        so calling this every tick costs about one interval's pricing.
        """
        acc = self.accountant
        starts = acc.bucket_start_j
        if not starts:
            return 0.0
        size = len(self.timeline)
        if self._priced is None or self._priced[0] != size or self._priced[1] != len(starts):
            closed = carbon(acc.buckets()[:-1], self.timeline, acc.bucket_s, self.pue)[0]
            self._priced = (size, len(starts), closed)
        last_k = next(reversed(starts))  # buckets are added in time order
        last = carbon([(last_k, acc.e_attr_j - starts[last_k])], self.timeline, acc.bucket_s, self.pue)[0]
        return self._priced[2] + last

    # -- intensity --------------------------------------------------------------------------

    def add_intensity(self, sample: IntensitySample, provider: str) -> None:
        self.timeline.add(sample, provider)

    def warn(self, message: str) -> bool:
        """Record a warning once; return True when it is new."""
        if message in self.warnings:
            return False
        self.warnings.append(message)
        return True

    # -- report -----------------------------------------------------------------------------

    def report(self, t_end: float, *, version: str, completed: bool = True) -> Report:
        acc = self.accountant
        it_kwh = acc.e_attr_j / J_PER_KWH
        grams, priced_kwh, uses = carbon(acc.buckets(), self.timeline, acc.bucket_s, self.pue)
        energy_kwh = it_kwh * self.pue
        used = [
            IntensityUse(
                provider=key[0],
                source=key[1],
                kind=key[2],
                zone=key[3],
                year=key[4],
                energy_share=(v[0] / priced_kwh) if priced_kwh else 0.0,
                mean_g_per_kwh=v[1] / v[0] if v[0] else 0.0,
                signal=key[5],
                max_age_s=round(v[2], 3),
            )
            for key, v in sorted(uses.items(), key=lambda kv: -kv[1][0])
        ]
        shares = signal_shares(used)
        other = sum(v for k, v in shares.items() if k != self.signal)
        if other > 0:
            took = ", ".join(sorted({u.signal for u in used if u.signal != self.signal}))
            self.warn(
                f"the run asked for the {self.signal} signal, but {other:.0%} of its energy was priced with "
                f"{took} values (no {self.signal} value was available for that time; see the fallbacks)"
            )
        components: dict[str, ComponentReport] = {}
        for comp in acc.component_j:
            states = [s for s in acc.sources if s.component == comp]
            methods = sorted({s.method for s in states}, key=METHODS.index)
            components[comp] = ComponentReport(
                energy_kwh=acc.component_attr_j[comp] / J_PER_KWH * self.pue,
                it_energy_kwh=acc.component_attr_j[comp] / J_PER_KWH,
                machine_it_energy_kwh=acc.component_j[comp] / J_PER_KWH,
                devices=[d for s in states for d in s.devices],
                method=methods[0] if methods else "measured",
                sources=[s.name for s in states],
                details=[
                    *(
                        f"{s.name}: " + "; ".join(f"{k} {v}" for k, v in self.source_info[s.name].items())
                        for s in states
                        if self.source_info.get(s.name)
                    ),
                    *([f"{self.attribution} attribution: {self.attribution_notes[comp]}"]
                      if comp in self.attribution_notes else []),
                ],
            )
        g_per_km, cite = car_factor()
        return Report(
            carbonkit_version=version,
            start_time=utc_from_unix(self.start_wall),
            end_time=utc_from_unix(self.start_wall + t_end),
            duration_s=t_end,
            it_energy_kwh=it_kwh,
            energy_kwh=energy_kwh,
            co2eq_g=grams,
            pue=self.pue,
            pue_source=self.pue_source,
            intensity_g_per_kwh=grams / priced_kwh if priced_kwh else 0.0,
            location=self.location,
            intensity=IntensityProvenance(
                zone=self.location, provider=self.provider, used=used, fallbacks=self.fallbacks,
                signal=self.signal, signal_shares=shares,
            ),
            components=components,
            epochs=[
                attrs.evolve(e, co2eq_g=carbon(acc.interval_buckets(*js), self.timeline, acc.bucket_s, self.pue)[0])
                for e, js in zip(self.epochs, self._epoch_j)
            ],
            epochs_planned=self.epochs_planned,
            prediction=self.prediction,
            predictions=self.predictions,
            budget=self.budget,
            dropped_sources=self.dropped,
            warnings=self.warnings,
            tags=self.tags,
            completed=completed,
            attribution=self.attribution,
            paused_s=self.paused_s,
            car_km=grams / g_per_km,
            car_g_per_km=g_per_km,
            car_source=cite,
        )


def source_meta(sources: Sequence[Any]) -> list[dict[str, Any]]:
    """Describe sources as plain dicts (for the run log and reporters)."""
    return [
        {
            "name": s.name,
            "component": s.component,
            "method": s.method,
            "kind": s.kind,
            "devices": [str(d) for d in s.devices()],
            "info": {str(k): str(v) for k, v in (getattr(s, "info", None) or {}).items()},
        }
        for s in sources
    ]
