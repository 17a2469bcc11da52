"""Rebuild the data files shipped in ``carbonkit_intensity_static/data/`` from upstream JSON.

Usage (from the plugin folder ``plugins/intensity_static``)::

    python scripts/refresh_data.py EMBER_JSON ELECTRICITYMAPS_JSON \\
        [--ember-via TEXT] [--electricitymaps-via TEXT] [--electricitymaps-year YEAR]

``EMBER_JSON`` is Ember's yearly average carbon intensity per country, in the shape of
``data/output/average-intensities.json`` of thegreenwebfoundation/co2.js::

    {"DNK": {"country_code": "DNK", "country_or_region": "Denmark", "year": 2024,
             "emissions_intensity_gco2_per_kwh": 143.3}, "World": {...}, ...}

``ELECTRICITYMAPS_JSON`` is Electricity Maps' yearly average per zone, in the shape of
``data/output/electricity-maps/yearly_<YEAR>.json`` of the same repository::

    {"DK-DK1": {"zone": {"zoneName": "West Denmark", "countryName": "Denmark"},
                "carbonIntensity": {"value": 131, "unit": "gCO2eq/kWh"}, ...}, ...}

The script checks every row (units, years, numbers, that each Ember country code is in the
plugin's ISO 3166 table) and writes ``ember-countries.json`` and
``electricitymaps-zones-<YEAR>.json`` with their attribution and licence in ``metadata``.
After a refresh, update the years quoted in the plugin README and run the plugin's tests.
It uses the standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "src" / "carbonkit_intensity_static"


def _load_iso_table() -> dict[str, str]:
    # Load the plugin's table by path, so that carbonkit need not be importable here.
    spec = importlib.util.spec_from_file_location("_iso3166", PACKAGE / "_iso3166.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.ALPHA3_TO_ALPHA2)


ALPHA3_TO_ALPHA2 = _load_iso_table()

DEFAULT_EMBER_VIA = (
    "thegreenwebfoundation/co2.js, data/output/average-intensities.json, commit 27cbe83 (2026-06-29), Apache-2.0"
)
DEFAULT_EM_VIA = (
    "thegreenwebfoundation/co2.js, data/output/electricity-maps/yearly_2024.json, "
    "commit 27cbe83 (2026-06-29), Apache-2.0"
)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: expected a finite number >= 0, got {value!r}")
    return round(float(value), 2)


def build_ember(raw: dict[str, Any], via: str) -> dict[str, Any]:
    """Return the shipped Ember document from co2.js' ``average-intensities.json``."""
    countries: dict[str, Any] = {}
    regions: dict[str, Any] = {}
    for key, row in sorted(raw.items()):
        where = f"Ember row {key!r}"
        year = row["year"]
        if not isinstance(year, int) or not 1990 <= year <= 2100:
            raise ValueError(f"{where}: bad year {year!r}")
        entry = {
            "name": str(row["country_or_region"]),
            "year": year,
            "g_per_kwh": _number(row["emissions_intensity_gco2_per_kwh"], where),
        }
        code = row.get("country_code") or ""
        if code:
            if code != key or code not in ALPHA3_TO_ALPHA2:
                raise ValueError(f"{where}: country code {code!r} is not in the ISO 3166 table")
            countries[code] = entry
        else:
            regions[key] = entry
    if "World" not in regions:
        raise ValueError("the Ember file has no 'World' row")
    return {
        "metadata": {
            "title": "Yearly average carbon intensity of electricity generation, per country",
            "unit": "gCO2eq/kWh",
            "basis": "generation-based; life-cycle emission factors",
            "attribution": "Ember (2025), Yearly Electricity Data",
            "url": "https://ember-energy.org/data/yearly-electricity-data/",
            "licence": "CC BY 4.0",
            "licence_url": "https://creativecommons.org/licenses/by/4.0/",
            "retrieved_via": via,
            "changes": (
                "fields renamed (country_or_region -> name, emissions_intensity_gco2_per_kwh -> "
                "g_per_kwh); countries keyed by ISO 3166-1 alpha-3 under 'countries', aggregates "
                "(World, EU, ...) under 'regions'; values rounded to 2 decimals"
            ),
        },
        "countries": countries,
        "regions": regions,
    }


def build_electricitymaps(raw: dict[str, Any], via: str, year: int) -> dict[str, Any]:
    """Return the shipped Electricity Maps document from co2.js' ``yearly_<YEAR>.json``."""
    zones: dict[str, Any] = {}
    for key, row in sorted(raw.items()):
        where = f"Electricity Maps zone {key!r}"
        if key != key.upper() or not key.replace("-", "").isalnum():
            raise ValueError(f"{where}: not a zone key")
        if key.split("-")[0] not in set(ALPHA3_TO_ALPHA2.values()):
            raise ValueError(f"{where}: prefix is not an ISO 3166-1 alpha-2 code")
        intensity = row["carbonIntensity"]
        if intensity.get("unit") != "gCO2eq/kWh":
            raise ValueError(f"{where}: unit {intensity.get('unit')!r}, expected 'gCO2eq/kWh'")
        if intensity.get("value") is None:
            continue  # no yearly value for this zone
        zone = row.get("zone") or {}
        entry: dict[str, Any] = {"name": str(zone.get("zoneName") or key)}
        if zone.get("countryName"):
            entry["country"] = str(zone["countryName"])
        entry["g_per_kwh"] = _number(intensity["value"], where)
        zones[key] = entry
    return {
        "metadata": {
            "title": f"Yearly average carbon intensity of electricity, {year}, per Electricity Maps zone",
            "unit": "gCO2eq/kWh",
            "year": year,
            "basis": "consumption-based (imports accounted for); life-cycle emission factors",
            "attribution": f"Electricity Maps, {year} yearly averages",
            "url": "https://www.electricitymaps.com/data-portal",
            "licence": "ODbL 1.0 (this file is a derivative database and is shared under the same licence)",
            "licence_url": "https://opendatacommons.org/licenses/odbl/1-0/",
            "retrieved_via": via,
            "changes": (
                "kept zone name, country name and carbon intensity (renewable and carbon-free "
                "shares dropped); field carbonIntensity.value -> g_per_kwh"
            ),
        },
        "zones": zones,
    }


def _write(path: Path, document: dict[str, Any], rows: int) -> None:
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path} ({rows} rows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ember", type=Path, help="Ember average-intensities.json (co2.js shape)")
    parser.add_argument("electricitymaps", type=Path, help="Electricity Maps yearly_<YEAR>.json (co2.js shape)")
    parser.add_argument("--ember-via", default=DEFAULT_EMBER_VIA, help="where the Ember file was taken from")
    parser.add_argument(
        "--electricitymaps-via", default=DEFAULT_EM_VIA, help="where the Electricity Maps file was taken from"
    )
    parser.add_argument("--electricitymaps-year", type=int, default=2024, help="year of the Electricity Maps averages")
    parser.add_argument("--out", type=Path, default=PACKAGE / "data", help="output folder (default: the package data)")
    args = parser.parse_args(argv)

    ember = build_ember(json.loads(args.ember.read_text(encoding="utf-8")), args.ember_via)
    em = build_electricitymaps(
        json.loads(args.electricitymaps.read_text(encoding="utf-8")),
        args.electricitymaps_via,
        args.electricitymaps_year,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "ember-countries.json", ember, len(ember["countries"]) + len(ember["regions"]))
    _write(args.out / f"electricitymaps-zones-{args.electricitymaps_year}.json", em, len(em["zones"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
