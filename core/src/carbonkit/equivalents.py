"""Everyday equivalents of grams of CO2eq.

Average CO2 emissions of new passenger cars in the EU, European Environment Agency
(``data/car-co2-per-km.csv``, one row per year with its source page). Reports use the latest
year unless asked for another (``carbonkit.reports``).

Equivalents are also a hook (``register_equivalents``): each plugin returns :class:`Equivalent`
objects (what one unit is, grams of CO2eq per unit, the source with its year, and the zones it
applies to), so that a region's own comparisons can be installed. Built in: the EEA car (any
zone) and the US EPA Greenhouse Gas Equivalencies (``data/us-epa-equivalencies.csv``, US zones).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from attrs import field, frozen

from .errors import ConfigError
from .records import _Record, tuple_of

__all__ = [
    "CarFactor",
    "Equivalent",
    "car_equivalent",
    "car_factor",
    "car_factors",
    "car_km",
    "equivalents_for",
    "us_epa_equivalents",
]


def _positive(instance: Any, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"Equivalent {attribute.name} must be a number of grams > 0, got {value!r}")


def _text(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Equivalent {attribute.name} must be a non-empty string, got {value!r}")


def _zones(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    return tuple(str(z).strip().upper() for z in tuple_of(value) if str(z).strip())


@frozen(kw_only=True)
class Equivalent(_Record):
    """An everyday comparison for grams of CO2eq.

    :param name: Unique across plugins (``"us_epa_miles_driven"``).
    :param label: What an amount of units is, plural, for a sentence: ``"miles driven by an
        average gasoline-powered passenger vehicle"``.
    :param unit: One unit, for the factor: ``"mile"`` (as in "393 gCO2eq per mile").
    :param g_per_unit: Grams of CO2eq per unit (> 0).
    :param source: Who published the figure and where in it (with the figure as published).
    :param year: The data year of the figure (None when it has none).
    :param url: The source's address ("" when none).
    :param zones: The zone codes it applies to; a code also covers the zones under it (``"US"``
        covers ``"US-CAL-CISO"``). Empty: any zone.
    """

    name: str = field(validator=_text)
    label: str = field(validator=_text)
    unit: str = field(validator=_text)
    g_per_unit: float = field(validator=_positive)
    source: str = field(validator=_text)
    year: int | None = None
    url: str = ""
    zones: tuple[str, ...] = field(default=(), converter=_zones)

    def applies_to(self, zone: str | None) -> bool:
        """Whether the comparison applies to ``zone`` (any zone when ``zones`` is empty)."""
        if not self.zones:
            return True
        code = (zone or "").strip().upper()
        return any(code == z or code.startswith(z + "-") for z in self.zones)

    def amount(self, grams: float) -> float:
        """How many units ``grams`` of CO2eq are."""
        return grams / self.g_per_unit

    def citation(self) -> str:
        """The factor, its source, year and address."""
        year = f", data year {self.year}" if self.year is not None else ""
        url = f", {self.url}" if self.url else ""
        return f"{self.g_per_unit:g} gCO2eq per {self.unit}; {self.source}{year}{url}"


def equivalents_for(zones: Sequence[str | None], equivalents: Sequence[Equivalent]) -> list[Equivalent]:
    """The equivalents that apply to every zone of ``zones`` (in the order given)."""
    return [e for e in equivalents if all(e.applies_to(z) for z in zones)]


@lru_cache(maxsize=1)
def us_epa_equivalents() -> tuple[Equivalent, ...]:
    """The US EPA Greenhouse Gas Equivalencies shipped with carbonkit, for US zones."""
    with resources.files("carbonkit").joinpath("data/us-epa-equivalencies.csv").open(encoding="utf-8") as f:
        return tuple(
            Equivalent(
                name=r["name"], label=r["label"], unit=r["unit"], g_per_unit=float(r["g_per_unit"]),
                source=r["source"], year=int(r["year"]) if r["year"] else None, url=r["url"], zones=("US",),
            )
            for r in csv.DictReader(f)
        )


@frozen
class CarFactor:
    """Grams of CO2 per km, the year of the figure and its source page ("" when given)."""

    g_per_km: float
    year: int | None = None
    url: str = ""

    def citation(self) -> str:
        """Say what the factor is and where it comes from."""
        g = f"{self.g_per_km:g} gCO2/km"
        if self.year is None:
            return f"{g}, given"
        return f"{g}, average of new cars registered in the EU in {self.year}, European Environment Agency, {self.url}"


@lru_cache(maxsize=1)
def car_factors() -> dict[int, CarFactor]:
    """Every year in the shipped table, oldest first."""
    with resources.files("carbonkit").joinpath("data/car-co2-per-km.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["name"].startswith("eu_new_car_")]
    table = {
        int(r["name"].rsplit("_", 1)[1]): CarFactor(
            float(r["gCO2eq_per_unit"]), int(r["name"].rsplit("_", 1)[1]), r["source"]
        )
        for r in rows
    }
    return dict(sorted(table.items()))


def car_factor() -> tuple[float, str]:
    """Return (g CO2 per km of the latest year, a citation with year and source)."""
    table = car_factors()
    latest = table[max(table)]
    return latest.g_per_km, (
        f"average new EU car {latest.year}, {latest.g_per_km} gCO2/km, European Environment Agency ({latest.url})"
    )


def car_km(grams: float) -> float:
    """Kilometres a new EU car would drive for ``grams`` of CO2."""
    return grams / car_factor()[0]


def car_equivalent() -> Equivalent:
    """The latest EEA car figure as an :class:`Equivalent` (any zone, as reports use it)."""
    table = car_factors()
    latest = table[max(table)]
    return Equivalent(
        name="eea_new_car",
        label=f"km driven by an average new car registered in the EU in {latest.year}",
        unit="km",
        g_per_unit=latest.g_per_km,
        source="European Environment Agency, average CO2 emissions of new passenger cars",
        year=latest.year,
        url=latest.url,
    )
