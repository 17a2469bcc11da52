"""Frozen value objects that plugins return and the core reports.

Units are in the field names: ``_s`` seconds, ``_kwh`` kilowatt-hours, ``_g`` grams of CO2eq,
``g_per_kwh`` grams CO2eq per kilowatt-hour. Datetimes are timezone-aware UTC.
Every record has ``to_dict()`` giving plain JSON types, and ``from_dict()`` reading it back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

if TYPE_CHECKING:
    from .reports.sci import SCI

__all__ = [
    "BUDGET_ACTIONS",
    "METHODS",
    "INTENSITY_KINDS",
    "SIGNALS",
    "BudgetExceeded",
    "BudgetReport",
    "ComponentReport",
    "DroppedSource",
    "EpochRecord",
    "Fallback",
    "HostReport",
    "IntensityProvenance",
    "IntensitySample",
    "IntensityUse",
    "Prediction",
    "Report",
    "ResolvedLocation",
    "Snapshot",
    "Unavailable",
]

#: How a figure was obtained, from best to worst.
METHODS = ("measured", "estimated", "simulated")
#: What an intensity value is: a live reading, a forecast, or a yearly average.
INTENSITY_KINDS = ("live", "forecast", "average")
#: Which signal an intensity value is: the average emissions of all generation in the zone, or
#: the marginal emissions of the generation that responds to a change in demand (Dodge et al.).
SIGNALS = ("average", "marginal")
#: What a tracker does when a run goes over its budget (or ``"callable"``: the user's function).
BUDGET_ACTIONS = ("warn", "stop", "callable")


def tuple_of(value: Iterable[Any]) -> tuple[Any, ...]:
    """attrs converter: any iterable to a tuple (typed, so type checkers accept lists)."""
    return tuple(value)


def dict_of(value: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """attrs converter: a mapping or pairs to a plain dict (typed, like :func:`tuple_of`)."""
    return dict(value)


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or ISO 8601 string, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value!r} is naive; pass a timezone-aware datetime (UTC)")
    return value.astimezone(timezone.utc)


def _finite_nonneg(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a finite number >= 0, got {value!r}"
        )


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"{type(instance).__name__}.{attribute.name} must be one of "
                f"{', '.join(map(repr, choices))}, got {value!r}"
            )

    return check


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if attrs.has(type(value)):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Record:
    """Shared ``to_dict`` / ``from_dict`` for the frozen records below."""

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON types (datetimes as ISO 8601 strings in UTC)."""
        return {a.name: _jsonable(getattr(self, a.name)) for a in attrs.fields(type(self))}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Build the record from ``to_dict()`` output; unknown keys are ignored."""
        names = {a.name for a in attrs.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@frozen(kw_only=True)
class IntensitySample(_Record):
    """Carbon intensity of electricity in one zone at one time.

    :param time: Start of the period the value covers (aware; stored in UTC).
    :param g_per_kwh: Grams CO2eq per kWh.
    :param zone: Zone code, Electricity Maps style (``"DK-DK1"``, ``"GB"``, ``"WORLD"``).
    :param source: Where the value came from, human readable (API and dataset, or table and year).
    :param kind: ``"live"``, ``"forecast"`` or ``"average"``.
    :param period_s: Length of the period the value covers, if known (300 for 5-minute data).
    :param year: Year of the data for yearly averages.
    :param signal: ``"average"`` (the emissions of all generation in the zone, the default) or
        ``"marginal"`` (the emissions of the generation that responds to a change in demand).
    :param factors: The emission-factor set that turned a generation mix into this value
        (``"IPCC 2014 AR5 lifecycle medians"``), None when the service computed it.
    :param estimated: Whether the service says the value is estimated rather than measured
        (Electricity Maps' ``isEstimated``); None when the service does not say.
    """

    time: datetime = field(converter=_utc)
    g_per_kwh: float = field(converter=float, validator=_finite_nonneg)
    zone: str
    source: str
    kind: str = field(default="live", validator=_one_of(INTENSITY_KINDS))
    period_s: float | None = None
    year: int | None = None
    signal: str = field(default="average", validator=_one_of(SIGNALS))
    factors: str | None = None
    estimated: bool | None = None


@frozen(kw_only=True)
class Unavailable(_Record):
    """A note a collector hook returns instead of an object it cannot offer on this machine.

    ``carbonkit plugins`` lists these with their reason; with ``warn=True`` a tracker also
    logs the reason once as a warning (use it when the user can fix it, e.g. a permission).

    :param plugin: The plugin's entry-point name.
    :param reason: Why nothing is offered, for example ``"no NVIDIA driver (libnvidia-ml.so)"``.
    :param hint: What the user can do about it.
    :param warn: Whether a tracker should warn about it.
    """

    plugin: str
    reason: str
    hint: str = ""
    warn: bool = False


def _text(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be non-empty text, got {value!r}")


@frozen
class ResolvedLocation(_Record):
    """A zone found by a ``resolve_location`` hook, and how it was found.

    A hook may return a plain zone code; returning this record instead lets the report and the
    run log say how the zone was found (``Report.location_source`` is :meth:`describe`).
    ``ResolvedLocation("IE", "cloud metadata", "aws eu-west-1")``, or by keyword.

    :param zone: Zone code, Electricity Maps style (``"IE"``, ``"US-MIDA-PJM"``).
    :param how: The method, short: ``"cloud metadata"``, ``"IP geolocation"``.
    :param detail: What the method found, e.g. ``"aws eu-west-1"`` (empty when nothing to add).
    """

    zone: str = field(validator=_text)
    how: str = field(validator=_text)
    detail: str = ""

    def describe(self) -> str:
        """Say how the zone was found, e.g. ``"cloud metadata: aws eu-west-1"``."""
        return f"{self.how}: {self.detail}" if self.detail else self.how


@frozen(kw_only=True)
class EpochRecord(_Record):
    """One epoch of a tracked run. Energy is the sum over every component and device."""

    index: int
    start_s: float
    end_s: float
    duration_s: float
    it_energy_kwh: float
    energy_kwh: float
    co2eq_g: float
    paused_s: float = 0.0


@frozen(kw_only=True)
class Prediction(_Record):
    """Predicted footprint of the whole run.

    A predictor fills ``epochs``, ``based_on``, ``duration_s``, ``it_energy_kwh`` and
    ``predictor``, and may fill an interval (``duration_low_s``/``duration_high_s``,
    ``it_energy_low_kwh``/``it_energy_high_kwh``) and say how it was computed (``interval``);
    the core adds PUE, intensity and CO2eq with :func:`attrs.evolve`, the interval's ends
    included (``energy_low_kwh``..., ``co2eq_low_g``/``co2eq_high_g``, priced like the point
    prediction). ``low`` and ``high`` are the CO2eq interval in grams.
    """

    epochs: int
    based_on: int
    duration_s: float = field(validator=_finite_nonneg)
    it_energy_kwh: float = field(validator=_finite_nonneg)
    predictor: str
    energy_kwh: float | None = None
    co2eq_g: float | None = None
    intensity_g_per_kwh: float | None = None
    intensity_kind: str | None = None
    intensity_source: str | None = None
    duration_low_s: float | None = None
    duration_high_s: float | None = None
    it_energy_low_kwh: float | None = None
    it_energy_high_kwh: float | None = None
    energy_low_kwh: float | None = None
    energy_high_kwh: float | None = None
    co2eq_low_g: float | None = None
    co2eq_high_g: float | None = None
    interval: str | None = None

    @property
    def epoch(self) -> int:
        """The number of completed epochs the prediction was made after (``based_on``)."""
        return self.based_on

    @property
    def low(self) -> float | None:
        """Low end of the CO2eq interval, grams (None when the predictor gave no interval)."""
        return self.co2eq_low_g

    @property
    def high(self) -> float | None:
        """High end of the CO2eq interval, grams (None when the predictor gave no interval)."""
        return self.co2eq_high_g

    def to_dict(self) -> dict[str, Any]:
        """The fields, and ``epoch``, ``low`` and ``high`` for readers of the JSON (ignored by
        :meth:`from_dict`)."""
        return {**super().to_dict(), "epoch": self.epoch, "low": self.low, "high": self.high}


@frozen(kw_only=True)
class BudgetExceeded(_Record):
    """The moment a run went over its budget: what was exceeded, by what, and by how much.

    :param budget: ``"co2eq_g"`` or ``"energy_kwh"``: which budget.
    :param limit: The budget (grams CO2eq, or kWh including PUE).
    :param value: The figure that exceeded it, in the same unit.
    :param basis: ``"predicted"`` (the latest prediction of the whole run) or ``"actual"``
        (what the run had used so far).
    :param epoch: Completed epochs at that moment.
    :param t_s: Seconds since the run started.
    :param time: When (UTC).
    :param action: What the tracker was set to do: ``"warn"``, ``"stop"`` or ``"callable"``.
    """

    budget: str = field(validator=_one_of(("co2eq_g", "energy_kwh")))
    limit: float
    value: float
    basis: str = field(validator=_one_of(("predicted", "actual")))
    epoch: int
    t_s: float
    time: datetime = field(converter=_utc)
    action: str = field(default="warn", validator=_one_of(BUDGET_ACTIONS))

    @property
    def over_by(self) -> float:
        """How far over the budget, in the budget's unit."""
        return self.value - self.limit

    @property
    def over_by_fraction(self) -> float:
        """How far over the budget, as a fraction of it (0.25: 25 % over)."""
        return self.value / self.limit - 1.0 if self.limit else math.inf

    def describe(self) -> str:
        """One sentence: ``predicted CO2eq 12.3 g is over the budget of 10 g by 2.3 g (23 %) ...``."""
        unit = "g" if self.budget == "co2eq_g" else "kWh"
        what = "CO2eq" if self.budget == "co2eq_g" else "energy"
        subject = f"the predicted {what} of the run" if self.basis == "predicted" else f"the {what} used so far"
        return (
            f"{subject}, {self.value:.4g} {unit}, is over the budget of {self.limit:.4g} {unit} by "
            f"{self.over_by:.4g} {unit} ({self.over_by_fraction:.0%}) after {self.epoch} epoch(s), "
            f"{self.t_s:.1f} s into the run"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetExceeded:
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@frozen(kw_only=True)
class BudgetReport(_Record):
    """A run's carbon budget and what became of it.

    :param co2eq_g: The CO2eq budget in grams, or None.
    :param energy_kwh: The energy budget in kWh (including PUE), or None.
    :param action: ``"warn"``, ``"stop"`` or ``"callable"`` (``on_over_budget``).
    :param exceeded: The first time the run went over a budget, or None.
    :param stopped: Whether training was stopped because of it (``Tracker.stopped_by_budget()``).
    :param stopped_at_epoch: Completed epochs when training was stopped.
    """

    co2eq_g: float | None = None
    energy_kwh: float | None = None
    action: str = field(default="warn", validator=_one_of(BUDGET_ACTIONS))
    exceeded: BudgetExceeded | None = None
    stopped: bool = False
    stopped_at_epoch: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetReport:
        names = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("exceeded"):
            values["exceeded"] = BudgetExceeded.from_dict(values["exceeded"])
        return cls(**values)


@frozen(kw_only=True)
class Snapshot(_Record):
    """A running tracker's figures so far (:meth:`Tracker.snapshot`), without stopping it.

    Figures are as of the sampler's last tick (``t_s``), priced like the final report
    (intensity in force for each interval, PUE included).
    """

    t_s: float
    duration_s: float
    energy_kwh: float
    it_energy_kwh: float
    co2eq_g: float
    epochs: int
    epochs_planned: int | None = None
    prediction: Prediction | None = None
    over_budget: bool = False


@frozen(kw_only=True)
class ComponentReport(_Record):
    """Energy of one component (``"cpu"``, ``"dram"``, ``"gpu"``...) summed over its devices.

    ``it_energy_kwh`` is what the run is charged (the process tree's share with
    ``attribution="process"``); ``machine_it_energy_kwh`` is the whole machine's figure.
    ``details`` says how each source obtains its figure (its optional ``info``: a model, a TDP
    and where it came from).
    """

    energy_kwh: float
    it_energy_kwh: float
    devices: tuple[str, ...] = field(converter=tuple_of)
    method: str
    sources: tuple[str, ...] = field(converter=tuple_of)
    machine_it_energy_kwh: float | None = None
    details: tuple[str, ...] = field(converter=tuple_of, default=())


@frozen(kw_only=True)
class DroppedSource(_Record):
    """A power source the tracker did not use, and why."""

    name: str
    component: str
    method: str
    reason: str


@frozen(kw_only=True)
class Fallback(_Record):
    """A provider that failed and what was used instead."""

    provider: str
    reason: str
    time: datetime = field(converter=_utc)
    used: str = ""


@frozen(kw_only=True)
class IntensityUse(_Record):
    """One intensity source used during a run, with the share of the run's energy it priced.

    ``signal`` is the signal of its values (``"average"`` or ``"marginal"``). ``max_age_s`` is
    the longest a value of this source was used past the end of the period it covers (a live
    value published late, held until a newer one arrived): 0 when every interval it priced lay
    inside its value's period (yearly averages are never "old").
    """

    provider: str
    source: str
    kind: str
    zone: str
    year: int | None = None
    energy_share: float = 0.0
    mean_g_per_kwh: float = 0.0
    signal: str = field(default="average", validator=_one_of(SIGNALS))
    max_age_s: float = 0.0


@frozen(kw_only=True)
class IntensityProvenance(_Record):
    """Where a run's carbon intensity came from.

    ``signal`` is the signal the run asked for (``Tracker(signal=...)``, ``CARBONKIT_SIGNAL``);
    ``signal_shares`` the share of the priced energy each signal actually priced (a marginal
    run that fell back to average values shows ``{"marginal": 0.8, "average": 0.2}``).
    """

    zone: str
    provider: str
    used: tuple[IntensityUse, ...] = field(converter=tuple_of, default=())
    fallbacks: tuple[Fallback, ...] = field(converter=tuple_of, default=())
    signal: str = field(default="average", validator=_one_of(SIGNALS))
    signal_shares: Mapping[str, float] = field(converter=dict_of, factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntensityProvenance:
        used = [IntensityUse.from_dict(u) for u in data.get("used", ())]
        shares = data.get("signal_shares")
        return cls(
            zone=data["zone"],
            provider=data["provider"],
            used=used,
            fallbacks=[Fallback.from_dict(f) for f in data.get("fallbacks", ())],
            signal=data.get("signal", "average"),
            signal_shares=shares if isinstance(shares, Mapping) else signal_shares(used),
        )


def signal_shares(used: Iterable[IntensityUse]) -> dict[str, float]:
    """The share of the priced energy each signal priced, from a run's :class:`IntensityUse` list."""
    shares: dict[str, float] = {}
    for u in used:
        shares[u.signal] = shares.get(u.signal, 0.0) + u.energy_share
    return shares


@frozen(kw_only=True)
class HostReport(_Record):
    """What one host of a multi-host job measured: its own devices, location and intensity.

    :param host: The host's identity (its host name, or ``CARBONKIT_HOST``).
    :param rank: The global rank of the process that measured it (the host's measurer).
    :param ranks: Every rank of the job seen on this host.
    :param location: The host's zone; its energy is priced with this zone's intensity.
    :param components: Energy per component on this host (device labels as the host gave them).
    """

    host: str
    rank: int | None
    ranks: tuple[int, ...] = field(converter=tuple_of, default=())
    start_time: datetime = field(converter=_utc)
    end_time: datetime = field(converter=_utc)
    duration_s: float
    it_energy_kwh: float
    energy_kwh: float
    co2eq_g: float
    pue: float
    intensity_g_per_kwh: float
    location: str
    intensity: IntensityProvenance
    components: Mapping[str, ComponentReport] = field(converter=dict_of, factory=dict)
    completed: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostReport:
        names = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["intensity"] = IntensityProvenance.from_dict(data["intensity"])
        values["components"] = {k: ComponentReport.from_dict(v) for k, v in data.get("components", {}).items()}
        return cls(**values)


@frozen(kw_only=True)
class Report(_Record):
    """The footprint of a tracked run.

    ``energy_kwh`` includes the PUE, ``it_energy_kwh`` does not; ``co2eq_g`` is the sum over
    intervals of each interval's energy (with PUE) times the intensity in force for it, and
    ``intensity_g_per_kwh`` the energy-weighted mean of those intensities.
    ``completed`` is false for a run recovered from the log of a run that did not stop.
    ``sci`` is the Software Carbon Intensity per ``functional_unit`` when the tracker was given
    one and a count of ``units``. ``cut_short`` says what did not run to the end and why (a
    power source abandoned because it blocked, a reporter that did not finish); ``ended_by``
    names the signal that ended the run (``"SIGTERM"``), None when ``stop()`` ended it.
    ``location_source`` says how the location was found: ``"argument"``,
    ``"CARBONKIT_LOCATION"``, ``"default"``, what a ``resolve_location`` hook said
    (:meth:`ResolvedLocation.describe`, e.g. ``"cloud metadata: aws eu-west-1"``), or
    ``"resolve_location hook"`` for a hook that returned a plain zone code.
    ``prediction`` is the first prediction (after ``predict_after`` epochs, as in the
    Carbontracker paper); ``predictions`` holds it and every update after it, one per epoch,
    each with its interval. ``budget`` is the run's budget and what became of it (None
    without one). ``str(report)`` gives a few readable lines; in a notebook the report shows as
    a small table (``_repr_html_``).

    In a multi-process job (``docs/distributed.md``): ``role`` is ``"measurer"`` (this process
    read the host's devices) or ``"observer"`` (another process of the job on this host did;
    this one recorded its epochs and measured nothing), None outside such a job. On global rank
    0, ``stop()`` returns the job's report: ``hosts`` holds one :class:`HostReport` per host
    and ``job_total`` says how it was made (``"process group"``, ``"run logs"``, or
    ``"this host only"`` when the other hosts did not answer in time); both are empty/None in
    a one-process report.
    """

    carbonkit_version: str
    start_time: datetime = field(converter=_utc)
    end_time: datetime = field(converter=_utc)
    duration_s: float
    it_energy_kwh: float
    energy_kwh: float
    co2eq_g: float
    pue: float
    pue_source: str
    intensity_g_per_kwh: float
    location: str
    intensity: IntensityProvenance
    components: Mapping[str, ComponentReport] = field(converter=dict_of, factory=dict)
    epochs: tuple[EpochRecord, ...] = field(converter=tuple_of, default=())
    epochs_planned: int | None = None
    prediction: Prediction | None = None
    dropped_sources: tuple[DroppedSource, ...] = field(converter=tuple_of, default=())
    warnings: tuple[str, ...] = field(converter=tuple_of, default=())
    tags: Mapping[str, str] = field(converter=dict_of, factory=dict)
    completed: bool = True
    attribution: str = "machine"
    paused_s: float = 0.0
    functional_unit: str | None = None
    units: float | None = None
    sci: SCI | None = None
    car_km: float = 0.0
    car_g_per_km: float = 0.0
    car_source: str = ""
    cut_short: tuple[str, ...] = field(converter=tuple_of, default=())
    ended_by: str | None = None
    location_source: str | None = None
    role: str | None = None
    job: str | None = None
    hosts: tuple[HostReport, ...] = field(converter=tuple_of, default=())
    job_total: str | None = None
    predictions: tuple[Prediction, ...] = field(converter=tuple_of, default=())
    budget: BudgetReport | None = None

    @property
    def methods(self) -> dict[str, str]:
        """Map each component to how its energy was obtained."""
        return {name: c.method for name, c in self.components.items()}

    def __str__(self) -> str:
        """A few readable lines: duration, energy, CO2eq, intensity and its source, methods."""
        from .report_text import report_lines

        return "\n".join(report_lines(self))

    def _repr_html_(self) -> str:
        """A small HTML table for notebooks, the provenance in a ``<details>`` element."""
        from .report_text import report_html

        return report_html(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Read a report back from :meth:`to_dict` output (as stored in run logs)."""
        names = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["intensity"] = IntensityProvenance.from_dict(data["intensity"])
        values["components"] = {
            k: ComponentReport.from_dict(v) for k, v in data.get("components", {}).items()
        }
        values["epochs"] = [EpochRecord.from_dict(e) for e in data.get("epochs", ())]
        if data.get("prediction"):
            values["prediction"] = Prediction.from_dict(data["prediction"])
        values["predictions"] = [Prediction.from_dict(p) for p in data.get("predictions") or ()]
        if data.get("budget"):
            values["budget"] = BudgetReport.from_dict(data["budget"])
        values["dropped_sources"] = [DroppedSource.from_dict(d) for d in data.get("dropped_sources", ())]
        if data.get("sci"):
            from .reports.sci import SCI

            values["sci"] = SCI.from_dict(data["sci"])
        values["hosts"] = [HostReport.from_dict(h) for h in data.get("hosts") or ()]
        return cls(**values)
