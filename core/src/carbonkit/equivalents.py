"""Everyday equivalents of grams of CO2eq.

Average CO2 emissions of new passenger cars in the EU, European Environment Agency
(``data/car-co2-per-km.csv``, one row per year with its source page). Reports use the latest
year unless asked for another (``carbonkit.reports``).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from attrs import frozen

__all__ = ["CarFactor", "car_factor", "car_factors", "car_km"]


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
