"""Everyday equivalents of grams of CO2eq.

Average CO2 emissions of new passenger cars in the EU, European Environment Agency
(``data/car-co2-per-km.csv``, with each value's source page). The latest year is used.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

__all__ = ["car_factor", "car_km"]


@lru_cache(maxsize=1)
def car_factor() -> tuple[float, str]:
    """Return (g CO2 per km of the latest year, a citation with year and source)."""
    with resources.files("carbonkit").joinpath("data/car-co2-per-km.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["name"].startswith("eu_new_car_")]
    latest = max(rows, key=lambda r: int(r["name"].rsplit("_", 1)[1]))
    year = latest["name"].rsplit("_", 1)[1]
    g = float(latest["gCO2eq_per_unit"])
    return g, f"average new EU car {year}, {g} gCO2/km, European Environment Agency ({latest['source']})"


def car_km(grams: float) -> float:
    """Kilometres a new EU car would drive for ``grams`` of CO2."""
    return grams / car_factor()[0]
