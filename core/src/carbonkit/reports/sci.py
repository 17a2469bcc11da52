"""Software Carbon Intensity: ``SCI = (E x I + M) / R``, a rate of CO2eq per functional unit.

The Green Software Foundation's SCI specification (v1.0, 2021; published as ISO/IEC
21031:2024), as Dodge et al. (2022, "Measuring the Carbon Intensity of AI in Cloud Instances")
apply it to ML training:

- ``E x I``, the operational emissions: the run's energy after PUE times the intensity in force
  for each interval, which is the report's ``co2eq_g``;
- ``M``, the embodied emissions: each device's manufacturing, transport and disposal emissions,
  shared by the time the run held it: ``M = embodied_kgco2e x 1000 x run_s / lifetime_s`` per
  device (the specification's ``TE x TiR / EL``, with the whole device reserved). Nothing is
  assumed: a component without embodied data counts zero and is listed in ``unknown``;
- ``R``, the functional unit: how many of it the run produced (samples, tokens, inferences, or
  1 for the training job itself).

carbonkit ships no embodied figures: vendors publish few product carbon footprints for
accelerators, and those that exist differ in scope. Pass your own per component, e.g.
``{"gpu": {"kgco2e": 150.0, "lifetime_years": 4, "source": "vendor PCF, 2023"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import field, frozen

from ..errors import ConfigError
from ..records import Report, _Record, tuple_of

__all__ = [
    "SCI",
    "SCITotal",
    "EmbodiedDevice",
    "EmbodiedShare",
    "embodied_from_config",
    "sci",
    "sci_from_report",
    "sci_totals",
]

SECONDS_PER_YEAR = 365.25 * 86400


@frozen(kw_only=True)
class EmbodiedDevice(_Record):
    """Embodied emissions of one device of a component, and the life it is spread over.

    :param kgco2e: Kilograms CO2eq to make, ship and dispose of one device.
    :param lifetime_years: Years the device is expected to serve.
    :param source: Where the figure comes from (shown in reports).
    """

    kgco2e: float
    lifetime_years: float
    source: str = ""

    def __attrs_post_init__(self) -> None:
        for name, value, low_ok in (("kgco2e", self.kgco2e, True), ("lifetime_years", self.lifetime_years, False)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
                value < 0 if low_ok else value <= 0
            ):
                raise ConfigError(
                    f"embodied {name} must be a number {'>= 0' if low_ok else '> 0'}"
                    f"{' (kg CO2eq per device)' if low_ok else ' (years)'}, got {value!r}"
                )


@frozen(kw_only=True)
class EmbodiedShare(_Record):
    """The embodied emissions one component's devices add to one run."""

    component: str
    devices: int
    kgco2e_per_device: float
    lifetime_years: float
    run_s: float
    embodied_g: float
    source: str = ""


@frozen(kw_only=True)
class SCI(_Record):
    """The Software Carbon Intensity of one run.

    :param functional_unit: What ``R`` counts (``"sample"``, ``"token"``, ``"run"``...).
    :param units: ``R``, how many functional units the run produced (> 0).
    :param energy_kwh: ``E``, energy after PUE.
    :param intensity_g_per_kwh: ``I``, the energy-weighted mean intensity.
    :param operational_g: ``E x I`` (the report's ``co2eq_g``, priced interval by interval).
    :param embodied_g: ``M``, summed over ``embodied``.
    :param embodied: One share per component with embodied data.
    :param unknown: Components without embodied data (counted as zero).
    :param total_g: ``operational_g + embodied_g``.
    :param sci_g_per_unit: ``total_g / units``.
    """

    functional_unit: str
    units: float
    energy_kwh: float
    intensity_g_per_kwh: float
    operational_g: float
    embodied_g: float
    total_g: float
    sci_g_per_unit: float
    embodied: tuple[EmbodiedShare, ...] = field(converter=tuple_of, default=())
    unknown: tuple[str, ...] = field(converter=tuple_of, default=())

    @property
    def note(self) -> str:
        """One line on what the embodied part covers."""
        if not self.embodied:
            return (
                "embodied emissions not included (no embodied data configured): SCI covers operational emissions only"
            )
        if self.unknown:
            return f"embodied emissions of {', '.join(self.unknown)} unknown, counted as zero"
        return "embodied emissions included for every component"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, with :attr:`note`."""
        data = super().to_dict()
        data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SCI:
        """Read back :meth:`to_dict` output (``note`` is derived, not read)."""
        names = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["embodied"] = [EmbodiedShare.from_dict(e) for e in data.get("embodied", ())]
        return cls(**values)


def embodied_from_config(data: Mapping[str, Any] | None) -> dict[str, EmbodiedDevice]:
    """Read ``{"gpu": {"kgco2e": 150, "lifetime_years": 4, "source": "..."}, ...}``.

    :raises ConfigError: naming the component and the value when an entry is malformed.
    """
    if not data:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"embodied must map components to {{'kgco2e': ..., 'lifetime_years': ...}}, got {data!r}")
    out = {}
    for component, entry in data.items():
        if not isinstance(entry, Mapping) or "kgco2e" not in entry or "lifetime_years" not in entry:
            raise ConfigError(
                f"embodied[{component!r}] must be {{'kgco2e': kg per device, 'lifetime_years': years, "
                f"'source': text}}, got {entry!r}"
            )
        out[str(component)] = EmbodiedDevice(
            kgco2e=entry["kgco2e"], lifetime_years=entry["lifetime_years"], source=str(entry.get("source", ""))
        )
    return out


def sci(
    *,
    operational_g: float,
    energy_kwh: float,
    run_s: float,
    devices: Mapping[str, int],
    units: float,
    functional_unit: str = "run",
    embodied: Mapping[str, EmbodiedDevice] | Mapping[str, Mapping[str, Any]] | None = None,
) -> SCI:
    """Compute the SCI from plain figures.

    :param operational_g: ``E x I`` in grams (a report's ``co2eq_g``).
    :param energy_kwh: ``E``, after PUE.
    :param run_s: How long the run held its devices, seconds.
    :param devices: Device count per component (``{"gpu": 8, "cpu": 2}``).
    :param units: ``R`` (> 0).
    :param functional_unit: What ``R`` counts.
    :param embodied: Embodied data per component (:class:`EmbodiedDevice` or its dict form).
    :raises ConfigError: when ``units`` is not > 0, or an input is negative or not finite.
    """
    if isinstance(units, bool) or not isinstance(units, (int, float)) or not math.isfinite(units) or units <= 0:
        raise ConfigError(f"units (R, functional units produced) must be a number > 0, got {units!r}")
    if not isinstance(functional_unit, str) or not functional_unit.strip():
        raise ConfigError(
            f"functional_unit must name what R counts, such as 'sample' or 'token', got {functional_unit!r}"
        )
    for name, value in (("operational_g", operational_g), ("energy_kwh", energy_kwh), ("run_s", run_s)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    table = {
        k: (v if isinstance(v, EmbodiedDevice) else embodied_from_config({k: v})[k])
        for k, v in (embodied or {}).items()
    }
    shares = []
    unknown = []
    for component, count in sorted(devices.items()):
        data = table.get(component)
        if data is None:
            unknown.append(component)
            continue
        grams = count * data.kgco2e * 1000.0 * run_s / (data.lifetime_years * SECONDS_PER_YEAR)
        shares.append(
            EmbodiedShare(
                component=component,
                devices=count,
                kgco2e_per_device=float(data.kgco2e),
                lifetime_years=float(data.lifetime_years),
                run_s=run_s,
                embodied_g=grams,
                source=data.source,
            )
        )
    embodied_g = sum(s.embodied_g for s in shares)
    total = operational_g + embodied_g
    return SCI(
        functional_unit=functional_unit.strip(),
        units=float(units),
        energy_kwh=energy_kwh,
        intensity_g_per_kwh=operational_g / energy_kwh if energy_kwh > 0 else 0.0,
        operational_g=operational_g,
        embodied_g=embodied_g,
        total_g=total,
        sci_g_per_unit=total / units,
        embodied=shares,
        unknown=unknown,
    )


def sci_from_report(
    report: Report,
    units: float,
    functional_unit: str = "run",
    embodied: Mapping[str, EmbodiedDevice] | Mapping[str, Mapping[str, Any]] | None = None,
) -> SCI:
    """The SCI of a finished run: ``E x I`` is ``report.co2eq_g``, ``M`` shares each device of
    ``report.components`` by ``report.duration_s``.
    """
    devices = {name: max(len(c.devices), 1) for name, c in report.components.items()}
    return sci(
        operational_g=report.co2eq_g,
        energy_kwh=report.energy_kwh,
        run_s=report.duration_s,
        devices=devices,
        units=units,
        functional_unit=functional_unit,
        embodied=embodied,
    )


@frozen(kw_only=True)
class SCITotal(_Record):
    """The SCI of several runs of one functional unit: ``(sum E x I + sum M) / sum R``.

    :param functional_unit: What ``R`` counts.
    :param runs: Runs added up.
    :param units: ``R`` summed.
    :param operational_g: ``E x I`` summed.
    :param embodied_g: ``M`` summed.
    :param total_g: ``operational_g + embodied_g``.
    :param sci_g_per_unit: ``total_g / units``.
    :param embodied_sources: Each component with embodied data and the source of its figure.
    :param unknown: Components without embodied data in some run (counted as zero).
    :param files: The runs' logs.
    """

    functional_unit: str
    runs: int
    units: float
    operational_g: float
    embodied_g: float
    total_g: float
    sci_g_per_unit: float
    embodied_sources: tuple[str, ...] = field(converter=tuple_of, default=())
    unknown: tuple[str, ...] = field(converter=tuple_of, default=())
    files: tuple[str, ...] = field(converter=tuple_of, default=())


def sci_totals(items: Iterable[tuple[str, SCI]]) -> list[SCITotal]:
    """Add up the SCI of runs per functional unit (``items``: the log and its run's SCI).

    Runs of different functional units are never added: a total per unit, in the order first seen.
    """
    groups: dict[str, list[tuple[str, SCI]]] = {}
    for file, value in items:
        groups.setdefault(value.functional_unit, []).append((file, value))
    out = []
    for unit, members in groups.items():
        units = sum(s.units for _, s in members)
        op = sum(s.operational_g for _, s in members)
        emb = sum(s.embodied_g for _, s in members)
        sources = sorted({f"{e.component}: {e.source or 'source not given'}" for _, s in members for e in s.embodied})
        out.append(
            SCITotal(
                functional_unit=unit,
                runs=len(members),
                units=units,
                operational_g=op,
                embodied_g=emb,
                total_g=op + emb,
                sci_g_per_unit=(op + emb) / units if units > 0 else 0.0,
                embodied_sources=sources,
                unknown=sorted({u for _, s in members for u in s.unknown}),
                files=[f for f, _ in members],
            )
        )
    return out
