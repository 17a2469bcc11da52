"""Everyday equivalents as a hook (``register_equivalents``), the US EPA figures, and the social
cost of carbon in the statement.

A run of 1 kW for one hour at 400 g/kWh (PUE 1) emits 400 g CO2eq, so by hand: 400 / 393 = 1.02
miles driven by an average US gasoline car, 400 / 12.4 = 32.3 smartphones charged, 400 / 8,887 =
0.045 gallons of gasoline; and at the EPA's 190 USD per metric ton, 400e-6 t x 190 = 0.076 USD.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reports.logfiles import steady_log

from carbonkit import hookimpl
from carbonkit.cli import main
from carbonkit.config import Config
from carbonkit.equivalents import Equivalent, car_equivalent, equivalents_for, us_epa_equivalents
from carbonkit.errors import ConfigError, PluginContractError
from carbonkit.plugins import collect_equivalents, make_plugin_manager
from carbonkit.reports.aggregate import aggregate, load_runs
from carbonkit.reports.social_cost import EPA_2023_SC_CO2
from carbonkit.reports.statement import statement

EPA_URL = "https://www.epa.gov/energy/greenhouse-gas-equivalencies-calculator-calculations-and-references"


def us_run(tmp_path: Path, zone: str = "US-CAL-CISO") -> Path:
    return steady_log(tmp_path / f"{zone}.jsonl", watts=1000.0, seconds=3600.0, g_per_kwh=400.0, location=zone,
                      stopped=True)


class NordicPlugin:
    """A region's own comparison, installed as a plugin."""

    __name__ = "nordic_equivalents"

    @hookimpl
    def register_equivalents(self, config):
        return [
            Equivalent(name="nordic_sauna", label="sauna sessions", unit="sauna session", g_per_unit=200.0,
                       source="a test figure", year=2024, zones=("DK", "SE"))
        ]


def test_hook_register_equivalents():
    """The built-in plugin gives the EEA car and the EPA figures; a plugin adds its own, and the
    statement gives those that apply to the runs' zone."""
    pm = make_plugin_manager(plugins=[NordicPlugin()], entrypoints=False)
    offers = collect_equivalents(pm, Config())
    names = [e.name for e in offers.objects]
    assert names[0] == "nordic_sauna"  # the built-ins come last (trylast)
    assert set(names[1:]) == {"eea_new_car", "us_epa_miles_driven", "us_epa_smartphones_charged",
                              "us_epa_gasoline_gallons"}
    assert offers.owners["eea_new_car"] == "carbonkit.default_plugins.equivalents"


def test_statement_gives_a_plugins_equivalent_for_its_zones_only(tmp_path):
    pm = make_plugin_manager(plugins=[NordicPlugin()], entrypoints=False)
    equivalents = list(collect_equivalents(pm, Config()).objects)
    se = steady_log(tmp_path / "se.jsonl", watts=1000.0, seconds=3600.0, g_per_kwh=400.0, location="SE-SE3",
                    stopped=True)
    text = statement(aggregate(load_runs([str(se)])[0]), equivalents=equivalents)
    assert "It is also about as much CO2eq as 2 sauna sessions (200 gCO2eq per sauna session; a test figure, " \
        "data year 2024)." in text
    assert "miles driven" not in text  # the EPA figures are for US zones
    text_us = statement(aggregate(load_runs([str(us_run(tmp_path))])[0]), equivalents=equivalents)
    assert "sauna" not in text_us


def test_us_run_gets_the_epa_equivalents_by_hand(tmp_path):
    agg = aggregate(load_runs([str(us_run(tmp_path))])[0])
    assert agg.total.co2eq_g == pytest.approx(400.0)
    text = statement(agg, equivalents=[car_equivalent(), *us_epa_equivalents()])
    assert "emits over 3.75 km" in text  # the EEA car sentence stays: 400 / 106.8
    assert (
        "It is also about as much CO2eq as 1.02 miles driven by an average gasoline-powered passenger vehicle "
        "(393 gCO2eq per mile; US EPA Greenhouse Gas Equivalencies Calculator, Calculations and References: "
        "3.93 x 10^-4 metric tons CO2E/mile (4.29 t CO2E per vehicle per year over 10,917 miles), data year 2022, "
        f"{EPA_URL}), 32.3 smartphones charged (12.4 gCO2eq per smartphone charged; "
    ) in text
    assert "or 0.045 gallons of gasoline burned (8887 gCO2eq per gallon of gasoline; " in text


def test_epa_figures_match_the_published_ones():
    """Each factor is the EPA's published metric tons per unit, in grams, with the page cited."""
    by_name = {e.name: e for e in us_epa_equivalents()}
    assert by_name["us_epa_miles_driven"].g_per_unit == 3.93e-4 * 1e6
    assert by_name["us_epa_smartphones_charged"].g_per_unit == pytest.approx(1.24e-5 * 1e6)
    assert by_name["us_epa_gasoline_gallons"].g_per_unit == pytest.approx(8.887e-3 * 1e6)
    # The per-mile figure is the EPA's vehicle-year over its miles: 4.29 t / 10,917 miles.
    assert 4.29e6 / 10917 == pytest.approx(by_name["us_epa_miles_driven"].g_per_unit, abs=0.5)
    for e in by_name.values():
        assert e.url == EPA_URL and e.year == 2022 and e.zones == ("US",)
        assert e.applies_to("US-TEX-ERCO") and e.applies_to("us") and not e.applies_to("USA")
        assert not e.applies_to("DE")


def test_equivalents_for_mixed_zones_keeps_those_applying_to_all():
    us = us_epa_equivalents()
    assert equivalents_for(["US-CAL-CISO", "US-TEX-ERCO"], us) == list(us)
    assert equivalents_for(["US-CAL-CISO", "DE"], us) == []
    assert equivalents_for(["DE", "US-CAL-CISO"], [car_equivalent()]) == [car_equivalent()]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"g_per_unit": 0}, "g_per_unit"), ({"g_per_unit": float("nan")}, "g_per_unit"), ({"label": " "}, "label"),
     ({"source": ""}, "source")],
)
def test_bad_equivalent_is_an_error_naming_the_field(kwargs, field):
    base = {"name": "x", "label": "things", "unit": "thing", "g_per_unit": 1.0, "source": "s"}
    with pytest.raises(ConfigError, match=field):
        Equivalent(**{**base, **kwargs})


def test_a_plugin_returning_something_else_breaks_the_contract():
    class Bad:
        __name__ = "bad_equivalents"

        @hookimpl
        def register_equivalents(self):
            return [{"name": "not an Equivalent"}]

    pm = make_plugin_manager(plugins=[Bad()], entrypoints=False)
    with pytest.raises(PluginContractError, match="bad_equivalents"):
        collect_equivalents(pm, Config(), strict=True)
    assert [e.name for e in collect_equivalents(pm, Config()).objects][0] == "eea_new_car"  # dropped, built-ins stay


def test_social_cost_by_hand(tmp_path):
    agg = aggregate(load_runs([str(us_run(tmp_path))])[0])
    assert EPA_2023_SC_CO2.cost(400.0) == pytest.approx(0.076)
    text = statement(agg, equivalents=[], social_cost=True)
    assert (
        "At a social cost of carbon of 190 US dollars (2020 dollars) per metric ton of CO2 emitted in 2020 "
        "(US EPA (2023), Report on the Social Cost of Greenhouse Gases: Estimates Incorporating Recent Scientific "
        "Advances, table ES-1, 2.0% near-term Ramsey discount rate (central estimate); a global estimate, not "
        "specific to a country, https://www.epa.gov/environmental-economics/scghg), applied to the CO2eq, these "
        "emissions stand for about 0.076 US dollars of climate damages."
    ) in text
    assert "social cost" not in statement(agg, equivalents=[])
    latex = statement(agg, "latex", equivalents=[], social_cost=True)
    assert r"2.0\% near-term" in latex and r"\url{https://www.epa.gov/environmental-economics/scghg}" in latex


def test_statement_cli_json_has_equivalents_and_social_cost(tmp_path, capsys):
    path = us_run(tmp_path)
    assert main(["statement", str(path), "--json", "--social-cost"]) == 0
    data = json.loads(capsys.readouterr().out.splitlines()[-1])
    amounts = {e["name"]: e["amount"] for e in data["equivalents"]}
    assert amounts["us_epa_miles_driven"] == pytest.approx(400 / 393)
    assert amounts["us_epa_smartphones_charged"] == pytest.approx(400 / 12.4)
    assert "eea_new_car" not in amounts  # given from the logs' own car factor
    assert data["social_cost"]["cost"] == pytest.approx(0.076)
    assert data["social_cost"]["currency"] == "USD" and data["social_cost"]["dollar_year"] == 2020
    assert "0.076 US dollars" in data["statement"]
