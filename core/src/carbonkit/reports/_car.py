"""The car equivalent by year: average CO2 of new passenger cars registered in the EU.

Reads the table shipped with carbonkit (``carbonkit/data/car-co2-per-km.csv``, European
Environment Agency, one row per year with its source page), like
:func:`carbonkit.equivalents.car_factor`, but lets a caller pick the year (the carbontracker
paper used 2018: 120.4 g/km) or give a factor of its own.
"""

from __future__ import annotations

import csv
import math
from functools import lru_cache
from importlib import resources

from attrs import frozen

from ..errors import ConfigError

__all__ = ["CarFactor", "car_factor", "car_factors"]


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
    """Every year in the shipped table."""
    path = resources.files("carbonkit").joinpath("data/car-co2-per-km.csv")
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["name"].startswith("eu_new_car_")]
    out = {}
    for r in rows:
        year = int(r["name"].rsplit("_", 1)[1])
        out[year] = CarFactor(float(r["gCO2eq_per_unit"]), year, r["source"])
    return dict(sorted(out.items()))


def car_factor(year: int | None = None, g_per_km: float | None = None) -> CarFactor:
    """The factor for ``year`` (default: the latest), or ``g_per_km`` as given.

    :raises ConfigError: for a year not in the table or a factor that is not > 0.
    """
    if g_per_km is not None:
        if isinstance(g_per_km, bool) or not (isinstance(g_per_km, (int, float)) and math.isfinite(g_per_km) and g_per_km > 0):
            raise ConfigError(f"car gCO2/km must be a number > 0, got {g_per_km!r}")
        return CarFactor(float(g_per_km))
    table = car_factors()
    if year is None:
        return table[max(table)]
    if year not in table:
        raise ConfigError(
            f"no car figure for year {year!r}; the table (European Environment Agency) has "
            f"{', '.join(str(y) for y in table)}, or give --car-g-per-km"
        )
    return table[year]
