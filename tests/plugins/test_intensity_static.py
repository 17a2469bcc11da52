"""Tests of the intensity_static plugin: the shipped yearly averages and the zone fallback rules."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from types import ModuleType

import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_intensity_static
from carbonkit import IntensitySample, UnknownZoneError
from carbonkit_intensity_static import IntensityTable, StaticIntensityProvider, known_zones, lookup
from carbonkit_intensity_static._iso3166 import ALPHA2_TO_ALPHA3, ALPHA3_TO_ALPHA2

NOW = datetime(2024, 11, 5, 13, 0, tzinfo=timezone.utc)
PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "intensity_static"


def shipped(name: str) -> dict:
    return json.loads(resources.files("carbonkit_intensity_static").joinpath("data", name).read_text("utf-8"))


# -- lookups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "value"),
    [("DK-DK1", 131.0), ("DK", 136.0), ("SE-SE3", 21.0), ("FR", 33.0), ("US-CAL-CISO", 229.0)],
)
def test_zone_with_own_row_uses_electricity_maps(zone: str, value: float) -> None:
    """A zone Electricity Maps covers gets its own 2024 yearly average, named in the source."""
    found = lookup(zone)
    assert (found.zone, found.g_per_kwh, found.year, found.dataset, found.match) == (
        zone,
        value,
        2024,
        "electricitymaps",
        "zone",
    )
    assert found.source == f"Electricity Maps 2024 yearly average ({zone})"
    assert found.known
    assert shipped("electricitymaps-zones-2024.json")["zones"][zone]["g_per_kwh"] == value


def test_lookup_is_case_insensitive() -> None:
    """Zone codes are normalised to upper case."""
    assert lookup(" dk-dk1 ").zone == "DK-DK1"


def test_unknown_subzone_of_known_country_falls_back_to_country() -> None:
    """DK-XYZ has no row: Denmark's row is used and the source says so."""
    found = lookup("DK-XYZ")
    assert (found.requested, found.zone, found.g_per_kwh, found.match) == ("DK-XYZ", "DK", 136.0, "country")
    assert found.source == "Electricity Maps 2024 yearly average (DK); no data for zone DK-XYZ, used its country DK"
    assert found.known


def test_country_missing_from_electricity_maps_uses_ember() -> None:
    """Russia has only Electricity Maps sub-zones: RU and an unknown RU sub-zone use Ember's row."""
    ember = shipped("ember-countries.json")["countries"]["RUS"]
    for zone, match in (("RU", "zone"), ("RU-XYZ", "country")):
        found = lookup(zone)
        assert (found.zone, found.g_per_kwh, found.year, found.dataset, found.match) == (
            "RU",
            ember["g_per_kwh"],
            ember["year"],
            "ember",
            match,
        )
        assert found.source.startswith(f"Ember {ember['year']} yearly average, Russia")
    assert lookup("RU-1").dataset == "electricitymaps"  # its own sub-zone row still comes first


def test_unknown_zone_falls_back_to_world_flagged() -> None:
    """A code whose country is not ISO 3166 gets the Ember world average, flagged as unknown."""
    found = lookup("XX-FOO")
    world = shipped("ember-countries.json")["regions"]["World"]
    assert (found.zone, found.g_per_kwh, found.year, found.match) == ("WORLD", world["g_per_kwh"], 2024, "world")
    assert found.g_per_kwh == 472.94
    assert not found.known
    assert found.source == (
        "Ember 2024 yearly average, World; country code 'XX' of zone 'XX-FOO' is not an ISO 3166 "
        "country code, used the world average"
    )


def test_country_without_data_falls_back_to_world() -> None:
    """A real country with no row in either dataset (Antarctica) gets the world average, flagged."""
    found = lookup("AQ")
    assert (found.zone, found.match, found.known) == ("WORLD", "world", False)
    assert found.source.endswith("no data for country AQ, used the world average")


def test_world_zone_is_known() -> None:
    """WORLD is a zone of its own: the world average, not flagged."""
    found = lookup("WORLD")
    assert (found.zone, found.g_per_kwh, found.known) == ("WORLD", 472.94, True)
    assert found.source == "Ember 2024 yearly average, World"


@pytest.mark.parametrize("bad", ["", "DK DK1", "DK/1", "-DK", 42])
def test_malformed_zone_code_is_an_error(bad: object) -> None:
    """Something not shaped like a zone code raises UnknownZoneError naming it."""
    with pytest.raises(UnknownZoneError, match=repr(bad)):
        lookup(bad)  # type: ignore[arg-type]


def test_known_zones() -> None:
    """known_zones() holds Electricity Maps zones, Ember countries (alpha-2) and WORLD, nothing else."""
    zones = known_zones()
    assert {"DK-DK1", "DK-DK2", "DK", "SE-SE3", "FR", "US-CAL-CISO", "GB", "RU", "UA", "WORLD"} <= zones
    assert "XX" not in zones and "DK-XYZ" not in zones and "AQ" not in zones
    assert all(lookup(z).known for z in zones)


# -- data and the ISO table ------------------------------------------------------------------


def test_shipped_data_carries_attribution_and_units() -> None:
    """Each shipped file names its source, licence, unit and origin in its metadata."""
    ember = shipped("ember-countries.json")["metadata"]
    em = shipped("electricitymaps-zones-2024.json")["metadata"]
    assert ember["attribution"] == "Ember (2025), Yearly Electricity Data" and ember["licence"] == "CC BY 4.0"
    assert em["attribution"] == "Electricity Maps, 2024 yearly averages" and em["licence"].startswith("ODbL")
    assert ember["unit"] == em["unit"] == "gCO2eq/kWh"
    assert "co2.js" in ember["retrieved_via"] and "co2.js" in em["retrieved_via"]


def test_iso_table_is_a_bijection_covering_the_data() -> None:
    """The alpha-2/alpha-3 table is one-to-one and covers every Ember country and zone prefix."""
    assert len(ALPHA2_TO_ALPHA3) == len(ALPHA3_TO_ALPHA2) == 250  # 249 ISO 3166-1 codes + XK
    assert {"DK": "DNK", "GB": "GBR", "US": "USA", "SE": "SWE", "XK": "XKX"}.items() <= ALPHA2_TO_ALPHA3.items()
    table = IntensityTable.from_package()
    assert set(table.ember_countries) <= set(ALPHA3_TO_ALPHA2)
    assert {z.split("-")[0] for z in table.em_zones} <= set(ALPHA2_TO_ALPHA3)


def load_refresh_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_data", PLUGIN_DIR / "scripts" / "refresh_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ember_row(code: str, name: str, year: int, value: float) -> dict[str, object]:
    """One row in the shape of co2.js' average-intensities.json."""
    return {"country_code": code, "country_or_region": name, "year": year, "emissions_intensity_gco2_per_kwh": value}


def test_refresh_script_rebuilds_loadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/refresh_data.py turns upstream-shaped JSON into files the table loads."""
    ember_in = tmp_path / "average-intensities.json"
    ember_in.write_text(
        json.dumps(
            {
                "DNK": ember_row("DNK", "Denmark", 2025, 120.5),
                "World": ember_row("", "World", 2025, 460),
            }
        )
    )
    em_in = tmp_path / "yearly_2025.json"
    em_in.write_text(
        json.dumps(
            {
                "DK-DK1": {
                    "zone": {"zoneName": "West Denmark", "countryName": "Denmark"},
                    "carbonIntensity": {"value": 110, "unit": "gCO2eq/kWh"},
                    "renewableEnergy": {"value": 85, "unit": "%"},
                    "carbonFreeEnergy": {"value": 88, "unit": "%"},
                },
            }
        )
    )
    out = tmp_path / "data"
    args = [str(ember_in), str(em_in), "--electricitymaps-year", "2025", "--out", str(out)]
    assert load_refresh_script().main(args) == 0
    assert "wrote" in capsys.readouterr().out
    table = IntensityTable.from_documents(
        json.loads((out / "ember-countries.json").read_text()),
        json.loads((out / "electricitymaps-zones-2025.json").read_text()),
    )
    assert table.lookup("DK-DK1").source == "Electricity Maps 2025 yearly average (DK-DK1)"
    assert (table.lookup("DK-DK2").g_per_kwh, table.lookup("DK-DK2").match) == (120.5, "country")
    assert table.lookup("SE").match == "world"


def test_refresh_script_rejects_unknown_country_code(tmp_path: Path) -> None:
    """An Ember row whose code is not in the ISO table stops the refresh with its name."""
    script = load_refresh_script()
    with pytest.raises(ValueError, match="'ZZZ' is not in the ISO 3166 table"):
        script.build_ember(
            {"ZZZ": ember_row("ZZZ", "Nowhere", 2024, 1), "World": ember_row("", "World", 2024, 470)},
            "test",
        )


# -- provider and hook -----------------------------------------------------------------------


def test_current_is_average_sample_stamped_now() -> None:
    """current() returns the yearly average as kind 'average' with its year, stamped with the clock."""
    sample = StaticIntensityProvider(now=lambda: NOW).current("SE-SE3")
    assert sample == IntensitySample(
        time=NOW,
        g_per_kwh=21.0,
        zone="SE-SE3",
        source="Electricity Maps 2024 yearly average (SE-SE3)",
        kind="average",
        year=2024,
    )


def test_current_sample_zone_says_which_row_was_used() -> None:
    """A fallback shows in the sample: zone is the row used, source says why."""
    sample = StaticIntensityProvider(now=lambda: NOW).current("ZZ-NORTH")
    assert (sample.zone, sample.kind, sample.year) == ("WORLD", "average", 2024)
    assert "used the world average" in sample.source


def test_forecast_is_one_average_spanning_window() -> None:
    """forecast() gives one average sample covering the whole window, or [] for an empty one."""
    provider = StaticIntensityProvider()
    (sample,) = provider.forecast("FR", NOW, NOW + timedelta(hours=6))
    assert (sample.time, sample.period_s, sample.g_per_kwh, sample.kind) == (NOW, 6 * 3600.0, 33.0, "average")
    assert provider.forecast("FR", NOW, NOW) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        provider.forecast("FR", datetime(2024, 11, 5), NOW)


def test_hook_offers_table_for_every_zone() -> None:
    """The hook, called through pluggy, offers intensity_static:table for '*' at priority 10."""
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_intensity_static, name="intensity_static")
    pm.check_pending()
    results = pm.hook.register_intensity_providers(config=carbonkit.Config(location="DK-DK1"), http_client=None)
    (provider,) = [p for batch in results for p in batch]
    assert isinstance(provider, carbonkit.IntensityProvider)
    assert (provider.name, provider.zones, provider.priority) == ("intensity_static:table", frozenset({"*"}), 10)
    assert provider.current("DK-DK1").g_per_kwh == 131.0
