"""Electricity Maps zone code -> WattTime region, for the zones this plugin serves.

WattTime region codes and names are those of WattTime's own region list as published in its
MIT-licensed Python client, ``WattTime/watttime-python-client``, file
``data/us_region_meta_data.csv`` (columns ``signal_type,region,region_name,endpoint,...``;
every region below is listed there with ``signal_type`` ``co2_moer`` and the endpoints
``v3/historical`` and ``v3/forecast``). The Electricity Maps zone codes are
``US-<area>-<EIA balancing authority code>`` (Electricity Maps, 2024 yearly dataset keys).

Most US balancing authorities are one WattTime region of their own, listed under the same
EIA code or a name for it (``BPA`` is EIA's ``BPAT``, ``ELE`` is ``EPE``, ``MPCO`` is
``NWMT``, ``TID`` is ``TIDC``). The organised markets (CAISO, ERCOT, ISO-NE, MISO, NYISO,
PJM, SPP) are split by WattTime into sub-regions with their own marginal rates; for those
zones the table names **one representative sub-region** (``representative=True``): one holding
a major load centre of the market, or for CAISO the free plan's region. The sample's
``source`` names the WattTime region used, and ``CARBONKIT_WATTTIME_REGION`` or coordinates
(``CARBONKIT_WATTTIME_LATITUDE``/``_LONGITUDE``, resolved by ``/v3/region-from-loc``) pick the
machine's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

__all__ = ["REGIONS_BY_ZONE", "Region"]


@frozen
class Region:
    """One WattTime region.

    :param code: WattTime's ``region`` (``CAISO_NORTH``).
    :param name: WattTime's ``region_full_name`` (``California ISO Northern``).
    :param representative: The zone is larger than this region (an organised market split by
        WattTime into sub-regions); the region stands for it.
    :param chosen_by: How the region was chosen when not by the table
        (``"CARBONKIT_WATTTIME_REGION"``, ``"coordinates 39.74, -104.99"``), else ``""``.
    """

    code: str
    name: str
    representative: bool = False
    chosen_by: str = ""


def _r(code: str, name: str, representative: bool = False) -> Region:
    return Region(code=code, name=name, representative=representative)


#: Electricity Maps zone -> WattTime region (see the module docstring for the source).
REGIONS_BY_ZONE: Mapping[str, Region] = {
    # Organised markets: one representative WattTime sub-region each.
    "US-CAL-CISO": _r("CAISO_NORTH", "California ISO Northern", True),
    "US-TEX-ERCO": _r("ERCOT_NORTHCENTRAL", "ERCOT North Central", True),
    "US-NE-ISNE": _r("ISONE_NEMA", "ISONE Northeast Massachusetts", True),
    "US-MIDW-MISO": _r("MISO_INDIANAPOLIS", "MISO Indianapolis", True),
    "US-NY-NYIS": _r("NYISO_NYC", "NYISO New York City", True),
    "US-MIDA-PJM": _r("PJM_NJ", "PJM New Jersey", True),
    "US-CENT-SWPP": _r("SPP_KC", "SPP Kansas City", True),
    # Balancing authorities that are one WattTime region.
    "US-CAL-BANC": _r("BANC", "Balancing Authority of Northern California"),
    "US-CAL-IID": _r("IID", "Imperial Irrigation District"),
    "US-CAL-LDWP": _r("LDWP", "Los Angeles Dept of Water & Power"),
    "US-CAL-TIDC": _r("TID", "Turlock Irrigation District"),
    "US-CAR-CPLE": _r("CPLE", "Duke Energy Progress East"),
    "US-CAR-CPLW": _r("CPLW", "Duke Energy Progress West"),
    "US-CAR-DUK": _r("DUK", "Duke Energy Carolinas"),
    "US-CAR-SC": _r("SC", "South Carolina Public Service Authority"),
    "US-CAR-SCEG": _r("SCEG", "Dominion Energy South Carolina"),
    "US-CENT-SPA": _r("SPA", "Southwestern Power Administration"),
    "US-FLA-FMPP": _r("FMPP", "Florida Municipal Power Pool"),
    "US-FLA-FPC": _r("FPC", "Duke Energy Florida"),
    "US-FLA-FPL": _r("FPL", "Florida Power & Light"),
    "US-FLA-GVL": _r("GVL", "Gainesville Regional Utilities"),
    "US-FLA-JEA": _r("JEA", "JEA Jacksonville Florida"),
    "US-FLA-SEC": _r("SEC", "Seminole Electric Cooperative"),
    "US-FLA-TAL": _r("TAL", "Tallahassee FL (City of)"),
    "US-FLA-TEC": _r("TEC", "Tampa Electric Co"),
    "US-MIDW-AECI": _r("AECI", "Associated Electric Coop Inc"),
    "US-MIDW-LGEE": _r("LGEE", "Louisville Gas & Electric Co"),
    "US-NW-AVA": _r("AVA", "Avista Corp"),
    "US-NW-BPAT": _r("BPA", "Bonneville Power Administration"),
    "US-NW-CHPD": _r("CHPD", "PUD No 1 of Chelan County"),
    "US-NW-DOPD": _r("DOPD", "PUD No 1 of Douglas County"),
    "US-NW-IPCO": _r("IPCO", "Idaho Power Co"),
    "US-NW-NEVP": _r("NEVP", "Nevada Power Co"),
    "US-NW-NWMT": _r("MPCO", "Northwestern Energy"),
    "US-NW-PACE": _r("PACE", "PacifiCorp East"),
    "US-NW-PACW": _r("PACW", "PacifiCorp West"),
    "US-NW-PGE": _r("PGE", "Portland General Electric"),
    "US-NW-PSCO": _r("PSCO", "Public Service Co of Colorado"),
    "US-NW-PSEI": _r("PSEI", "Puget Sound Energy Inc"),
    "US-NW-SCL": _r("SCL", "Seattle City Light"),
    "US-NW-TPWR": _r("TPWR", "Tacoma Power"),
    "US-NW-WACM": _r("WACM", "WAPA Rocky Mountain Region"),
    "US-NW-WAUW": _r("WAUW", "WAPA Upper Great Plains West"),
    "US-SE-SOCO": _r("SOCO", "Southern Co Services Inc"),
    "US-SW-AZPS": _r("AZPS", "Arizona Public Service Co"),
    "US-SW-EPE": _r("ELE", "El Paso Electric"),
    "US-SW-PNM": _r("PNM", "Public Service Co of New Mexico"),
    "US-SW-SRP": _r("SRP", "Salt River Project"),
    "US-SW-TEPC": _r("TEPC", "Tucson Electric Power Co"),
    "US-SW-WALC": _r("WALC", "WAPA Desert Southwest Region"),
    "US-TEN-TVA": _r("TVA", "Tennessee Valley Authority"),
}
