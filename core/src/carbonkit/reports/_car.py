"""The car equivalent by year, for reports: the table of :mod:`carbonkit.equivalents`, with a
year of the caller's choice (the carbontracker paper used 2018: 120.4 g/km) or a factor of its own.
"""

from __future__ import annotations

import math

from ..equivalents import CarFactor, car_factors
from ..errors import ConfigError

__all__ = ["CarFactor", "car_factor", "car_factors"]


def car_factor(year: int | None = None, g_per_km: float | None = None) -> CarFactor:
    """The factor for ``year`` (default: the latest), or ``g_per_km`` as given.

    :raises ConfigError: for a year not in the table or a factor that is not > 0.
    """
    if g_per_km is not None:
        if isinstance(g_per_km, bool) or not (
            isinstance(g_per_km, (int, float)) and math.isfinite(g_per_km) and g_per_km > 0
        ):
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
