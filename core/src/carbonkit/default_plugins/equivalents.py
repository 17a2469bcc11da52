"""The built-in everyday equivalents: the EEA car (any zone) and the US EPA Greenhouse Gas
Equivalencies (US zones)."""

from __future__ import annotations

from ..equivalents import Equivalent, car_equivalent, us_epa_equivalents
from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def register_equivalents() -> list[Equivalent]:
    return [car_equivalent(), *us_epa_equivalents()]
