"""The last-resort intensity: the world average, labelled as such.

Ember (2025), Yearly Electricity Data, CC BY 4.0: world average carbon intensity of electricity
generation in 2024, 472.94 gCO2eq/kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from attrs import frozen

from ..hookspecs import hookimpl
from ..records import IntensitySample

WORLD_G_PER_KWH = 472.94
WORLD_YEAR = 2024
WORLD_SOURCE = "world average 2024, Ember (2025) Yearly Electricity Data, CC BY 4.0"


@frozen
class WorldAverage:
    """Always answers with the world average; priority 0, covers every zone."""

    name: str = "constant:world"
    zones: frozenset[str] = frozenset({"*"})
    priority: int = 0
    offline: bool = True

    def current(self, zone: str) -> IntensitySample:
        return IntensitySample(
            time=datetime.now(timezone.utc),
            g_per_kwh=WORLD_G_PER_KWH,
            zone="WORLD",
            source=WORLD_SOURCE,
            kind="average",
            year=WORLD_YEAR,
        )

    def forecast(self, zone: str, start: datetime, end: datetime) -> Sequence[IntensitySample]:
        return []


@hookimpl(trylast=True)
def register_intensity_providers() -> list[WorldAverage]:
    return [WorldAverage()]
