"""carbonkit plugin ``intensity_static``: yearly-average carbon intensity for any zone, offline.

Source: two yearly datasets shipped inside this package (no network):

- Electricity Maps, 2024 yearly averages per zone (ODbL): consumption-based, life-cycle
  emission factors, zone codes such as ``DK-DK1``, ``SE-SE3``, ``US-CAL-CISO``, ``FR``;
  https://www.electricitymaps.com/data-portal
- Ember (2025), Yearly Electricity Data (CC BY 4.0): generation-based, life-cycle factors,
  per country (latest year available, 2022 to 2024) and the world average;
  https://ember-energy.org/data/yearly-electricity-data/

Units: grams CO2-equivalent per kWh of electricity (gCO2eq/kWh).

Terms: a *zone* is an Electricity Maps zone code; its *country* is the ISO 3166-1 alpha-2 code
before the first ``-`` (``DK`` of ``DK-DK1``). A zone without a row of its own falls back to its
country, then to the world average; the sample's ``zone`` and ``source`` say which row was used
(rules in :mod:`carbonkit_intensity_static.table`).

The provider ``intensity_static:table`` covers every zone (``"*"``) at priority 10, below live
APIs. Public helpers for tools (``carbonkit intensity ZONE``): :func:`lookup` and
:func:`known_zones`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from attrs import define, field

from carbonkit import Config, IntensitySample, hookimpl
from carbonkit.plugin_settings import aware_utc, utc_now

from .table import IntensityTable, ZoneIntensity, default_table, known_zones, lookup

__all__ = [
    "IntensityTable",
    "StaticIntensityProvider",
    "ZoneIntensity",
    "known_zones",
    "lookup",
    "register_intensity_providers",
]

PLUGIN = "intensity_static"


@define(kw_only=True)
class StaticIntensityProvider:
    """Yearly-average intensity for any zone from the shipped table (kind ``"average"``).

    :param table: The table to look zones up in (default: the data shipped in this package,
        loaded on first use).
    :param now: Clock returning an aware datetime; stamps :meth:`current` samples.
    """

    name: ClassVar[str] = f"{PLUGIN}:table"
    zones: ClassVar[frozenset[str]] = frozenset({"*"})
    priority: ClassVar[int] = 10
    #: Answers from shipped data, without the network: the tracker asks it at construction, so a
    #: run is priced at the zone's own average from its first second.
    offline: ClassVar[bool] = True

    table: IntensityTable | None = None
    now: Callable[[], datetime] = field(default=utc_now)

    def _table(self) -> IntensityTable:
        return self.table if self.table is not None else default_table()

    def _sample(self, found: ZoneIntensity, time: datetime, period_s: float | None) -> IntensitySample:
        return IntensitySample(
            time=time,
            g_per_kwh=found.g_per_kwh,
            zone=found.zone,
            source=found.source,
            kind="average",
            period_s=period_s,
            year=found.year,
        )

    def known_zones(self) -> frozenset[str]:
        """Every zone code with a row of its own (the tracker rejects a location outside every
        provider's known zones, naming the closest codes)."""
        return self._table().known_zones()

    def zone_names(self) -> dict[str, str]:
        """Human names of the zones it knows, for ``carbonkit zones`` (from the shipped data:
        Electricity Maps zone names, Ember country names)."""
        return self._table().zone_names()

    def current(self, zone: str) -> IntensitySample:
        """Return the yearly average for ``zone``, stamped now (UTC).

        The sample's ``zone`` is the row used (the country or ``WORLD`` on a fallback).
        :raises carbonkit.UnknownZoneError: when ``zone`` is not shaped like a zone code.
        """
        return self._sample(self._table().lookup(zone), aware_utc(self.now(), "now()"), None)

    def forecast(self, zone: str, start: datetime, end: datetime) -> list[IntensitySample]:
        """Return one ``"average"`` sample spanning ``[start, end)``: a yearly average is the
        best static guess for any future window. Empty when ``end <= start``."""
        start = aware_utc(start, "start")
        end = aware_utc(end, "end")
        if end <= start:
            return []
        return [self._sample(self._table().lookup(zone), start, (end - start).total_seconds())]


@hookimpl
def register_intensity_providers(config: Config) -> list[StaticIntensityProvider]:
    """Offer the static table for every zone. No I/O: the data loads on the first lookup."""
    return [StaticIntensityProvider()]
