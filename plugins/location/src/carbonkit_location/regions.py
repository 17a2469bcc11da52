"""Cloud region -> grid zone: the table shipped in ``data/cloud-regions.json``.

One row per region of AWS, GCP and Azure: the region as the cloud names it, the location the
cloud documents for it, the Electricity Maps zone code of the grid there, and the basis of that
zone (``"ccf"``: as Cloud Carbon Footprint maps it, Apache-2.0, see ``data/NOTICE``;
``"location"``: the grid of the documented location; ``"country"``: the country only, coarse).
Sources are cited in the file itself and in the README.

Region names are normalised before lookup: lower case, and for Azure without spaces, hyphens
or underscores (IMDS has answered ``westeurope``; portals and older API versions say
``West Europe`` or ``WestEurope``).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

from attrs import frozen

__all__ = ["CLOUDS", "RegionZone", "normalise_region", "region_table", "zone_for_region"]

#: The clouds the table covers, as :class:`RegionZone.cloud` and ``cloud metadata: <cloud> ...`` name them.
CLOUDS = ("aws", "gcp", "azure")
_BASES = ("ccf", "location", "country")
_AZURE_NOISE = re.compile(r"[\s_-]+")


@frozen
class RegionZone:
    """One row of the table: a cloud region and the grid zone it is in."""

    cloud: str
    region: str
    location: str
    zone: str
    basis: str

    @property
    def coarse(self) -> bool:
        """True when the zone is the country only (the grid within it is not established)."""
        return self.basis == "country"


def normalise_region(cloud: str, region: str) -> str:
    """Return ``region`` as the table spells it (``"West Europe"`` -> ``"westeurope"`` on Azure)."""
    text = region.strip().lower()
    if cloud == "azure":
        text = _AZURE_NOISE.sub("", text)
    return text


@functools.lru_cache(maxsize=1)
def region_table() -> dict[tuple[str, str], RegionZone]:
    """Load the shipped table (once): ``(cloud, region)`` -> :class:`RegionZone`."""
    raw = resources.files(__package__).joinpath("data/cloud-regions.json").read_text(encoding="utf-8")
    doc = json.loads(raw)
    table: dict[tuple[str, str], RegionZone] = {}
    for cloud in CLOUDS:
        for row in doc["regions"][cloud]:
            entry = RegionZone(
                cloud=cloud,
                region=normalise_region(cloud, row["region"]),
                location=row["location"],
                zone=row["zone"],
                basis=row["basis"],
            )
            if entry.basis not in _BASES:  # a broken table is a packaging bug: fail loudly in tests
                raise ValueError(f"cloud-regions.json: {cloud} {entry.region}: unknown basis {entry.basis!r}")
            table[(cloud, entry.region)] = entry
    return table


def zone_for_region(cloud: str, region: str) -> RegionZone | None:
    """Return the table's row for a cloud region, or None when the table has no such region.

    :param cloud: ``"aws"``, ``"gcp"`` or ``"azure"``.
    :param region: The region as the cloud names it (``"eu-west-1"``, ``"us-central1"``,
        ``"westeurope"`` or ``"West Europe"``).
    """
    return region_table().get((cloud, normalise_region(cloud, region)))
