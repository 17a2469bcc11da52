"""The shipped yearly-average table and the zone lookup rules.

Two datasets are shipped in ``data/`` (see the plugin README for attribution and licences):

- Electricity Maps yearly averages per zone (one year for every zone, consumption-based,
  life-cycle factors), keyed by Electricity Maps zone code (``DK-DK1``, ``SE-SE3``, ``FR``).
- Ember yearly averages per country (generation-based, life-cycle factors; the latest year
  Ember has for each country, 2022 to 2024), keyed by ISO 3166-1 alpha-3, plus ``World``.

Lookup order for a zone code ``Z`` whose country is ``C`` (the part before the first ``-``):

1. Electricity Maps row for ``Z``;
2. Electricity Maps row for ``C`` (when ``Z`` is a sub-zone);
3. Ember row for ``C`` (through the ISO 3166 alpha-2 to alpha-3 table);
4. Ember ``World``.

Electricity Maps comes first because it covers sub-national zones and gives every zone the
same year and basis, so a sub-zone and its country are comparable; Ember fills in countries
Electricity Maps has no row for (Russia, Ukraine, Chile...). The result says which step
answered (:attr:`ZoneIntensity.match`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from attrs import field, frozen

from carbonkit import UnknownZoneError

from ._iso3166 import ALPHA2_TO_ALPHA3, ALPHA3_TO_ALPHA2

__all__ = ["IntensityTable", "ZoneIntensity", "known_zones", "lookup"]

#: The zone code of the world average.
WORLD = "WORLD"
#: How a zone was matched: its own row, its country's row, or the world average.
MATCHES = ("zone", "country", "world")

_ZONE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")


@frozen(kw_only=True)
class ZoneIntensity:
    """The yearly average found for a zone, and where it came from.

    :param requested: The zone code asked for, normalised (upper case).
    :param zone: The zone code whose value was used (``"DK"`` for an unknown ``"DK-XYZ"``,
        ``"WORLD"`` for an unknown country).
    :param g_per_kwh: Yearly average, grams CO2eq per kWh.
    :param year: Year of the average.
    :param source: Human-readable provenance, naming the dataset, the year, the row used and,
        for a fallback, why.
    :param dataset: ``"electricitymaps"`` or ``"ember"``.
    :param match: ``"zone"`` (the zone's own row), ``"country"`` (the zone's country) or
        ``"world"`` (the world average).
    """

    requested: str
    zone: str
    g_per_kwh: float
    year: int
    source: str
    dataset: str
    match: str = field()

    @match.validator
    def _check_match(self, attribute: Any, value: str) -> None:
        if value not in MATCHES:
            raise ValueError(f"match must be one of {MATCHES}, got {value!r}")

    @property
    def known(self) -> bool:
        """Whether the zone (or its country) has data of its own: false when the world average
        stands in for a zone other than ``WORLD``."""
        return self.match != "world" or self.requested == WORLD


@frozen
class IntensityTable:
    """The two shipped datasets, ready for lookups. Build it with :meth:`from_documents` or
    :meth:`from_package`; it never changes afterwards.

    :param em_zones: Electricity Maps rows by zone code: ``{"name", "country"?, "g_per_kwh"}``.
    :param em_year: Year of the Electricity Maps averages.
    :param ember_countries: Ember rows by ISO alpha-3: ``{"name", "year", "g_per_kwh"}``.
    :param world: The Ember ``World`` row.
    :param metadata: Each dataset's metadata (attribution, licence, origin), by dataset.
    """

    em_zones: Mapping[str, Mapping[str, Any]]
    em_year: int
    ember_countries: Mapping[str, Mapping[str, Any]]
    world: Mapping[str, Any]
    metadata: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_documents(cls, ember: Mapping[str, Any], electricitymaps: Mapping[str, Any]) -> IntensityTable:
        """Build the table from the two shipped JSON documents (as written by
        ``scripts/refresh_data.py``).

        :raises ValueError: when a document lacks a part the lookup needs.
        """
        try:
            world = ember["regions"]["World"]
            table = cls(
                em_zones=dict(electricitymaps["zones"]),
                em_year=int(electricitymaps["metadata"]["year"]),
                ember_countries=dict(ember["countries"]),
                world=dict(world),
                metadata={"ember": ember["metadata"], "electricitymaps": electricitymaps["metadata"]},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"intensity table document lacks {exc}") from exc
        return table

    @classmethod
    def from_package(cls) -> IntensityTable:
        """Load the data files shipped in this package (``data/*.json``)."""
        data = resources.files(__package__).joinpath("data")
        ember = json.loads(data.joinpath("ember-countries.json").read_text(encoding="utf-8"))
        em_names = sorted(entry.name for entry in data.iterdir() if entry.name.startswith("electricitymaps-zones-"))
        if not em_names:
            raise FileNotFoundError("no electricitymaps-zones-<YEAR>.json in the package data")
        em = json.loads(data.joinpath(em_names[-1]).read_text(encoding="utf-8"))
        return cls.from_documents(ember, em)

    def known_zones(self) -> frozenset[str]:
        """Every zone code with a row of its own: Electricity Maps zones, the alpha-2 codes of
        Ember countries, and ``WORLD``."""
        ember = {ALPHA3_TO_ALPHA2[a3] for a3 in self.ember_countries if a3 in ALPHA3_TO_ALPHA2}
        return frozenset(self.em_zones) | frozenset(ember) | {WORLD}

    def zone_names(self) -> dict[str, str]:
        """Human names of the zone codes with a row of their own: Electricity Maps' zone names
        (with the country when the name lacks it: ``"CAISO, USA"``), then Ember's country names."""
        names: dict[str, str] = {}
        for code, row in self.em_zones.items():
            name, country = str(row.get("name") or ""), str(row.get("country") or "")
            if name and country and country.lower() not in name.lower():
                name = f"{name}, {country}"
            if name:
                names[code] = name
        for a3, row in self.ember_countries.items():
            a2 = ALPHA3_TO_ALPHA2.get(a3)
            if a2 is not None and a2 not in names and row.get("name"):
                names[a2] = str(row["name"])
        names.setdefault(WORLD, "World")
        return names

    def lookup(self, zone: str) -> ZoneIntensity:
        """Return the yearly average for ``zone`` by the rules in the module docstring.

        :param zone: A zone code such as ``"DK-DK1"``, ``"FR"``, ``"US-CAL-CISO"`` or ``"WORLD"``
            (case-insensitive).
        :raises UnknownZoneError: when ``zone`` is not shaped like a zone code (letters and
            digits in parts joined by ``-``). A well-formed but unknown code is not an error: it
            gets the world average, with ``match="world"``.
        """
        if not isinstance(zone, str):
            raise UnknownZoneError(f"zone must be a string such as 'DK-DK1', 'FR' or 'WORLD', got {zone!r}", zone=None)
        code = zone.strip().upper()
        if not _ZONE_RE.match(code):
            raise UnknownZoneError(
                f"{zone!r} is not a zone code: expected an Electricity Maps style code such as "
                "'DK-DK1', 'SE-SE3', 'FR', 'US-CAL-CISO' or 'WORLD'",
                zone=zone,
            )
        if code == WORLD:
            return self._world(code, reason="")
        if code in self.em_zones:
            return self._em(code, code, match="zone", note="")
        country = code.split("-", 1)[0]
        is_subzone = country != code
        if country not in ALPHA2_TO_ALPHA3:
            what = f"country code {country!r} of zone {code!r}" if is_subzone else f"zone {code!r}"
            return self._world(code, reason=f"{what} is not an ISO 3166 country code")
        note = f"; no data for zone {code}, used its country {country}" if is_subzone else ""
        if is_subzone and country in self.em_zones:
            return self._em(code, country, match="country", note=note)
        alpha3 = ALPHA2_TO_ALPHA3[country]
        if alpha3 in self.ember_countries:
            return self._ember(code, country, alpha3, match="country" if is_subzone else "zone", note=note)
        return self._world(code, reason=f"no data for country {country}")

    # -- builders -----------------------------------------------------------------------------

    def _em(self, requested: str, key: str, *, match: str, note: str) -> ZoneIntensity:
        row = self.em_zones[key]
        return ZoneIntensity(
            requested=requested,
            zone=key,
            g_per_kwh=float(row["g_per_kwh"]),
            year=self.em_year,
            source=f"Electricity Maps {self.em_year} yearly average ({key}){note}",
            dataset="electricitymaps",
            match=match,
        )

    def _ember(self, requested: str, alpha2: str, alpha3: str, *, match: str, note: str) -> ZoneIntensity:
        row = self.ember_countries[alpha3]
        year = int(row["year"])
        return ZoneIntensity(
            requested=requested,
            zone=alpha2,
            g_per_kwh=float(row["g_per_kwh"]),
            year=year,
            source=f"Ember {year} yearly average, {row['name']}{note}",
            dataset="ember",
            match=match,
        )

    def _world(self, requested: str, *, reason: str) -> ZoneIntensity:
        year = int(self.world["year"])
        note = f"; {reason}, used the world average" if reason else ""
        return ZoneIntensity(
            requested=requested,
            zone=WORLD,
            g_per_kwh=float(self.world["g_per_kwh"]),
            year=year,
            source=f"Ember {year} yearly average, World{note}",
            dataset="ember",
            match="world",
        )


@lru_cache(maxsize=1)
def default_table() -> IntensityTable:
    """The table shipped with this package, loaded once on first use."""
    return IntensityTable.from_package()


def lookup(zone: str) -> ZoneIntensity:
    """Return the shipped yearly average for ``zone``; see :meth:`IntensityTable.lookup`.

    ``result.known`` is false when the zone and its country are both unknown and the world
    average stands in; ``result.zone`` is the code whose row was used.
    """
    return default_table().lookup(zone)


def known_zones() -> frozenset[str]:
    """Return every zone code with a row of its own in the shipped data (and ``WORLD``)."""
    return default_table().known_zones()
