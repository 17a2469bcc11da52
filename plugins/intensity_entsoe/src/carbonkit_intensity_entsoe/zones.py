"""ENTSO-E areas behind carbonkit's zone codes, and production types behind carbonkit's fuels.

Zone codes are Electricity Maps codes (``DE``, ``FR``, ``DK-DK1``, ``SE-SE3``, ``IT-NO``). Each is
mapped to the Energy Identification Code (EIC) of the ENTSO-E area whose actual generation per
production type describes it: the bidding zone where the zone is one (``SE-SE3``, ``IT-NO``),
else the country's control area (``DE`` is ``10Y1001A1001A83F``, "Germany": the DE-LU bidding
zone ``10Y1001A1001A82H`` would add Luxembourg).

Great Britain is not mapped: National Grid ESO stopped publishing to the Transparency Platform
when the United Kingdom left the EU internal energy market in 2021 (the ``intensity_gb`` plugin
covers it).

EIC codes are public identifiers published by ENTSO-E. The values below were checked against
the ``Area`` table of entsoe-py (``entsoe/mappings.py``, Copyright (c) EnergieID, MIT licence),
which lists them as the Transparency Platform's guide does.

Production types (``psrType``) are grouped into the fuels of
:data:`carbonkit.emission_factors.FUELS`:

===== ================================ ==========
code  ENTSO-E production type          fuel
===== ================================ ==========
B01   Biomass                          biomass
B02   Fossil Brown coal/Lignite        coal
B03   Fossil Coal-derived gas          gas
B04   Fossil Gas                       gas
B05   Fossil Hard coal                 coal
B06   Fossil Oil                       oil
B07   Fossil Oil shale                 coal
B08   Fossil Peat                      coal
B09   Geothermal                       geothermal
B10   Hydro Pumped Storage             storage
B11   Hydro Run-of-river and poundage  hydro
B12   Hydro Water Reservoir            hydro
B13   Marine                           hydro
B14   Nuclear                          nuclear
B15   Other renewable                  biomass
B16   Solar                            solar
B17   Waste                            biomass
B18   Wind Offshore                    wind
B19   Wind Onshore                     wind
B20   Other                            unknown
B25   Energy storage                   storage
===== ================================ ==========

Choices: marine (tidal) has no IPCC median and is priced as hydro, the nearest technology;
"other renewable" (mostly biogas and landfill gas) and waste incineration are priced as
biomass; an unlisted code is priced as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["EIC_BY_ZONE", "FUEL_BY_PSR_TYPE", "PSR_TYPE_NAMES", "ZONE_NAMES", "fuel_of"]

#: Zone code -> (EIC code, area name).
_AREAS: dict[str, tuple[str, str]] = {
    "AL": ("10YAL-KESH-----5", "Albania"),
    "AT": ("10YAT-APG------L", "Austria"),
    "BA": ("10YBA-JPCC-----D", "Bosnia and Herzegovina"),
    "BE": ("10YBE----------2", "Belgium"),
    "BG": ("10YCA-BULGARIA-R", "Bulgaria"),
    "CH": ("10YCH-SWISSGRIDZ", "Switzerland"),
    "CY": ("10YCY-1001A0003J", "Cyprus"),
    "CZ": ("10YCZ-CEPS-----N", "Czechia"),
    "DE": ("10Y1001A1001A83F", "Germany"),
    "DK": ("10Y1001A1001A65H", "Denmark"),
    "DK-DK1": ("10YDK-1--------W", "West Denmark (DK1)"),
    "DK-DK2": ("10YDK-2--------M", "East Denmark (DK2)"),
    "EE": ("10Y1001A1001A39I", "Estonia"),
    "ES": ("10YES-REE------0", "Spain"),
    "FI": ("10YFI-1--------U", "Finland"),
    "FR": ("10YFR-RTE------C", "France"),
    "GB-NIR": ("10Y1001A1001A016", "Northern Ireland"),
    "GE": ("10Y1001A1001B012", "Georgia"),
    "GR": ("10YGR-HTSO-----Y", "Greece"),
    "HR": ("10YHR-HEP------M", "Croatia"),
    "HU": ("10YHU-MAVIR----U", "Hungary"),
    "IE": ("10YIE-1001A00010", "Ireland"),
    "IT": ("10YIT-GRTN-----B", "Italy"),
    "IT-CNO": ("10Y1001A1001A70O", "Central North Italy"),
    "IT-CSO": ("10Y1001A1001A71M", "Central South Italy"),
    "IT-NO": ("10Y1001A1001A73I", "North Italy"),
    "IT-SAR": ("10Y1001A1001A74G", "Sardinia"),
    "IT-SIC": ("10Y1001A1001A75E", "Sicily"),
    "IT-SO": ("10Y1001A1001A788", "South Italy"),
    "LT": ("10YLT-1001A0008Q", "Lithuania"),
    "LU": ("10YLU-CEGEDEL-NQ", "Luxembourg"),
    "LV": ("10YLV-1001A00074", "Latvia"),
    "MD": ("10Y1001A1001A990", "Moldova"),
    "ME": ("10YCS-CG-TSO---S", "Montenegro"),
    "MK": ("10YMK-MEPSO----8", "North Macedonia"),
    "MT": ("10Y1001A1001A93C", "Malta"),
    "NL": ("10YNL----------L", "Netherlands"),
    "NO": ("10YNO-0--------C", "Norway"),
    "NO-NO1": ("10YNO-1--------2", "Southeast Norway (NO1)"),
    "NO-NO2": ("10YNO-2--------T", "Southwest Norway (NO2)"),
    "NO-NO3": ("10YNO-3--------J", "Middle Norway (NO3)"),
    "NO-NO4": ("10YNO-4--------9", "North Norway (NO4)"),
    "NO-NO5": ("10Y1001A1001A48H", "West Norway (NO5)"),
    "PL": ("10YPL-AREA-----S", "Poland"),
    "PT": ("10YPT-REN------W", "Portugal"),
    "RO": ("10YRO-TEL------P", "Romania"),
    "RS": ("10YCS-SERBIATSOV", "Serbia"),
    "SE": ("10YSE-1--------K", "Sweden"),
    "SE-SE1": ("10Y1001A1001A44P", "North Sweden (SE1)"),
    "SE-SE2": ("10Y1001A1001A45N", "North Central Sweden (SE2)"),
    "SE-SE3": ("10Y1001A1001A46L", "South Central Sweden (SE3)"),
    "SE-SE4": ("10Y1001A1001A47J", "South Sweden (SE4)"),
    "SI": ("10YSI-ELES-----O", "Slovenia"),
    "SK": ("10YSK-SEPS-----K", "Slovakia"),
    "TR": ("10YTR-TEIAS----W", "Turkey"),
    "XK": ("10Y1001C--00100H", "Kosovo"),
}

#: Zone code -> EIC code of the ENTSO-E area queried for it.
EIC_BY_ZONE: Mapping[str, str] = MappingProxyType({zone: eic for zone, (eic, _) in _AREAS.items()})
#: Zone code -> human name, for ``carbonkit zones``.
ZONE_NAMES: Mapping[str, str] = MappingProxyType({zone: name for zone, (_, name) in _AREAS.items()})

#: ENTSO-E production type names (the Transparency Platform guide's psrType list).
PSR_TYPE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "B01": "Biomass",
        "B02": "Fossil Brown coal/Lignite",
        "B03": "Fossil Coal-derived gas",
        "B04": "Fossil Gas",
        "B05": "Fossil Hard coal",
        "B06": "Fossil Oil",
        "B07": "Fossil Oil shale",
        "B08": "Fossil Peat",
        "B09": "Geothermal",
        "B10": "Hydro Pumped Storage",
        "B11": "Hydro Run-of-river and poundage",
        "B12": "Hydro Water Reservoir",
        "B13": "Marine",
        "B14": "Nuclear",
        "B15": "Other renewable",
        "B16": "Solar",
        "B17": "Waste",
        "B18": "Wind Offshore",
        "B19": "Wind Onshore",
        "B20": "Other",
        "B25": "Energy storage",
    }
)

#: psrType -> fuel of :data:`carbonkit.emission_factors.FUELS`.
FUEL_BY_PSR_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "B01": "biomass",
        "B02": "coal",
        "B03": "gas",
        "B04": "gas",
        "B05": "coal",
        "B06": "oil",
        "B07": "coal",
        "B08": "coal",
        "B09": "geothermal",
        "B10": "storage",
        "B11": "hydro",
        "B12": "hydro",
        "B13": "hydro",
        "B14": "nuclear",
        "B15": "biomass",
        "B16": "solar",
        "B17": "biomass",
        "B18": "wind",
        "B19": "wind",
        "B20": "unknown",
        "B25": "storage",
    }
)


def fuel_of(psr_type: str | None) -> str:
    """The fuel a production type is priced as (``unknown`` for an unlisted or absent code)."""
    return FUEL_BY_PSR_TYPE.get(psr_type or "", "unknown")
