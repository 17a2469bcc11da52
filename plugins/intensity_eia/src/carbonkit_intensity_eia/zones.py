"""US balancing authorities behind carbonkit's zone codes, and EIA energy sources behind its fuels.

Form EIA-930 respondents are balancing authorities (BAs), each assigned by EIA to one of 13
regions (CAL, CAR, CENT, FLA, MIDA, MIDW, NE, NW, NY, SE, SW, TEN, TEX). Electricity Maps names
a US zone ``US-<EIA region>-<BA code>`` (``US-CAL-CISO``, ``US-TEX-ERCO``, ``US-MIDA-PJM``),
which is the rule applied to every BA below; each resulting code was checked to exist among
Electricity Maps' zone configuration file names (``config/zones/<code>.yaml``; the names only,
nothing is copied). Electric Energy, Inc. (``EEI``), which has no Electricity Maps zone, is left
out. The BA codes and regions are EIA's (the EIA-930
reference tables, https://www.eia.gov/electricity/gridmonitor/about). The region aggregates
and ``US48`` are also respondents of the API; they are not zones and are not mapped.

Energy source codes of ``electricity/rto/fuel-type-data`` (its ``fueltype`` facet) and the fuel
of :data:`carbonkit.emission_factors.FUELS` each is priced as:

====== ============================================ ==========
code   EIA name                                     fuel
====== ============================================ ==========
COL    Coal                                         coal
NG     Natural gas                                  gas
OIL    Petroleum                                    oil
NUC    Nuclear                                      nuclear
WAT    Hydro                                        hydro
SUN    Solar                                        solar
SNB    Solar with integrated battery storage        solar
WND    Wind                                         wind
WNB    Wind with integrated battery storage         wind
GEO    Geothermal                                   geothermal
BIO    Biomass                                      biomass
OTH    Other                                        unknown
UNK    Unknown                                      unknown
BAT    Battery storage                              storage
PS     Pumped storage                               storage
OES    Other energy storage                         storage
UES    Unknown energy storage                       storage
====== ============================================ ==========

EIA began splitting storage and hybrid plants out of WAT, SUN, WND and OTH in its newer
EIA-930 data; older hours carry the first eight codes only. An unlisted code is priced as
``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["FUEL_BY_CODE", "RESPONDENT_BY_ZONE", "ZONE_NAMES", "fuel_of"]

#: BA code -> (EIA region, name).
_BAS: dict[str, tuple[str, str]] = {
    "BANC": ("CAL", "Balancing Authority of Northern California"),
    "CISO": ("CAL", "California Independent System Operator"),
    "IID": ("CAL", "Imperial Irrigation District"),
    "LDWP": ("CAL", "Los Angeles Department of Water and Power"),
    "TIDC": ("CAL", "Turlock Irrigation District"),
    "CPLE": ("CAR", "Duke Energy Progress East"),
    "CPLW": ("CAR", "Duke Energy Progress West"),
    "DUK": ("CAR", "Duke Energy Carolinas"),
    "SC": ("CAR", "South Carolina Public Service Authority"),
    "SCEG": ("CAR", "Dominion Energy South Carolina"),
    "YAD": ("CAR", "Alcoa Power Generating, Yadkin Division"),
    "SPA": ("CENT", "Southwestern Power Administration"),
    "SWPP": ("CENT", "Southwest Power Pool"),
    "FMPP": ("FLA", "Florida Municipal Power Pool"),
    "FPC": ("FLA", "Duke Energy Florida"),
    "FPL": ("FLA", "Florida Power & Light"),
    "GVL": ("FLA", "Gainesville Regional Utilities"),
    "HST": ("FLA", "City of Homestead"),
    "JEA": ("FLA", "JEA"),
    "NSB": ("FLA", "Utilities Commission of New Smyrna Beach"),
    "SEC": ("FLA", "Seminole Electric Cooperative"),
    "TAL": ("FLA", "City of Tallahassee"),
    "TEC": ("FLA", "Tampa Electric Company"),
    "PJM": ("MIDA", "PJM Interconnection"),
    "AECI": ("MIDW", "Associated Electric Cooperative"),
    "GLHB": ("MIDW", "GridLiance Heartland"),
    "LGEE": ("MIDW", "Louisville Gas and Electric and Kentucky Utilities"),
    "MISO": ("MIDW", "Midcontinent Independent System Operator"),
    "ISNE": ("NE", "ISO New England"),
    "AVA": ("NW", "Avista Corporation"),
    "AVRN": ("NW", "Avangrid Renewables"),
    "BPAT": ("NW", "Bonneville Power Administration"),
    "CHPD": ("NW", "Public Utility District No. 1 of Chelan County"),
    "DOPD": ("NW", "Public Utility District No. 1 of Douglas County"),
    "GCPD": ("NW", "Public Utility District No. 2 of Grant County"),
    "GRID": ("NW", "Gridforce Energy Management"),
    "GWA": ("NW", "NaturEner Power Watch (Glacier Wind)"),
    "IPCO": ("NW", "Idaho Power Company"),
    "NEVP": ("NW", "Nevada Power Company"),
    "NWMT": ("NW", "NorthWestern Energy"),
    "PACE": ("NW", "PacifiCorp East"),
    "PACW": ("NW", "PacifiCorp West"),
    "PGE": ("NW", "Portland General Electric"),
    "PSCO": ("NW", "Public Service Company of Colorado"),
    "PSEI": ("NW", "Puget Sound Energy"),
    "SCL": ("NW", "Seattle City Light"),
    "TPWR": ("NW", "City of Tacoma"),
    "WACM": ("NW", "Western Area Power Administration, Rocky Mountain"),
    "WAUW": ("NW", "Western Area Power Administration, Upper Great Plains West"),
    "WWA": ("NW", "NaturEner Wind Watch"),
    "NYIS": ("NY", "New York Independent System Operator"),
    "AEC": ("SE", "PowerSouth Energy Cooperative"),
    "SEPA": ("SE", "Southeastern Power Administration"),
    "SOCO": ("SE", "Southern Company Services"),
    "AZPS": ("SW", "Arizona Public Service Company"),
    "DEAA": ("SW", "Arlington Valley"),
    "EPE": ("SW", "El Paso Electric Company"),
    "GRIF": ("SW", "Griffith Energy"),
    "HGMA": ("SW", "New Harquahala Generating Company"),
    "PNM": ("SW", "Public Service Company of New Mexico"),
    "SRP": ("SW", "Salt River Project"),
    "TEPC": ("SW", "Tucson Electric Power"),
    "WALC": ("SW", "Western Area Power Administration, Desert Southwest"),
    "TVA": ("TEN", "Tennessee Valley Authority"),
    "ERCO": ("TEX", "Electric Reliability Council of Texas"),
}

#: Zone code -> EIA respondent (BA) code.
RESPONDENT_BY_ZONE: Mapping[str, str] = MappingProxyType(
    {f"US-{region}-{ba}": ba for ba, (region, _) in _BAS.items()}
)
#: Zone code -> BA name, for ``carbonkit zones``.
ZONE_NAMES: Mapping[str, str] = MappingProxyType(
    {f"US-{region}-{ba}": name for ba, (region, name) in _BAS.items()}
)

#: EIA energy source code -> fuel of :data:`carbonkit.emission_factors.FUELS`.
FUEL_BY_CODE: Mapping[str, str] = MappingProxyType(
    {
        "COL": "coal",
        "NG": "gas",
        "OIL": "oil",
        "NUC": "nuclear",
        "WAT": "hydro",
        "SUN": "solar",
        "SNB": "solar",
        "WND": "wind",
        "WNB": "wind",
        "GEO": "geothermal",
        "BIO": "biomass",
        "OTH": "unknown",
        "UNK": "unknown",
        "BAT": "storage",
        "PS": "storage",
        "OES": "storage",
        "UES": "storage",
    }
)


def fuel_of(code: str) -> str:
    """The fuel an EIA energy source code is priced as (``unknown`` when unlisted)."""
    return FUEL_BY_CODE.get(code.strip().upper(), "unknown")
