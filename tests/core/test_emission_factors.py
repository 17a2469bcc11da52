"""The one factor table and the one mix-to-intensity function (carbonkit.emission_factors)."""

from __future__ import annotations

import math

import pytest

from carbonkit.emission_factors import FUELS, IPCC_2014, UNPRICED, FactorSet, mix_intensity


def test_the_table_holds_the_cited_ipcc_ar5_medians():
    """AR5 WGIII Annex III Table A.III.2 life-cycle medians, with oil and unknown as documented."""
    assert dict(IPCC_2014.g_per_kwh) == {
        "coal": 820.0, "gas": 490.0, "oil": 650.0, "nuclear": 12.0, "hydro": 24.0, "wind": 11.0,
        "solar": 48.0, "biomass": 230.0, "geothermal": 38.0, "unknown": 700.0,
    }
    assert IPCC_2014.name == "IPCC 2014 AR5 lifecycle medians"
    assert set(IPCC_2014.sources) == set(FUELS) - UNPRICED
    assert "Table A.III.2" in IPCC_2014.citation


@pytest.mark.parametrize(
    ("mix", "expected"),
    [
        # one fuel: its factor
        ({"coal": 1.0}, 820.0),
        ({"wind": 123.0}, 11.0),
        # half gas, half nuclear: (490 * 50 + 12 * 50) / 100 = 251
        ({"gas": 50.0, "nuclear": 50.0}, 251.0),
        # 10 GW gas, 5 GW lignite (coal), 20 GW wind, 5 GW solar, 3 GW hard coal:
        # (490*10000 + 820*5000 + 11*20000 + 48*5000 + 820*3000) / 43000 = 11 920 000 / 43 000
        ({"gas": 10000.0, "coal": 8000.0, "wind": 20000.0, "solar": 5000.0}, 11_920_000 / 43_000),
        # oil and unknown: (650 * 1 + 700 * 3) / 4 = 687.5
        ({"oil": 1.0, "unknown": 3.0}, 687.5),
        # a zero-valued fuel counts for nothing: (230 * 2 + 38 * 2) / 4 = 134
        ({"biomass": 2.0, "geothermal": 2.0, "hydro": 0.0}, 134.0),
    ],
)
def test_known_mixes_give_the_hand_computed_intensity(mix, expected):
    assert mix_intensity(mix) == pytest.approx(expected)


def test_storage_output_takes_the_intensity_of_the_rest():
    """Storage is not priced: adding any amount of it leaves the intensity unchanged."""
    rest = {"gas": 300.0, "hydro": 700.0}  # (490*300 + 24*700) / 1000 = 163.8
    assert mix_intensity(rest) == pytest.approx(163.8)
    assert mix_intensity({**rest, "storage": 5000.0}) == pytest.approx(163.8)


@pytest.mark.parametrize(
    ("mix", "words"),
    [
        ({"gas": -1.0}, ["'gas'", "-1.0", ">= 0"]),
        ({"coal": math.nan}, ["'coal'", "nan"]),
        ({"solar": math.inf}, ["'solar'", "inf"]),
        ({"wind": "12"}, ["'wind'", "'12'"]),
        ({"wind": True}, ["'wind'", "True"]),
        ({"lignite": 5.0}, ["'lignite'", "coal, gas, oil"]),
        ({}, ["no generation"]),
        ({"storage": 10.0}, ["no generation"]),
        ({"gas": 0.0}, ["no generation"]),
    ],
)
def test_bad_mixes_are_refused_naming_the_fuel_and_value(mix, words):
    with pytest.raises(ValueError) as info:
        mix_intensity(mix)
    for word in words:
        assert word in str(info.value)


def test_a_mix_must_be_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        mix_intensity([("gas", 1.0)])  # type: ignore[arg-type]


def test_a_factor_set_must_cover_every_priced_fuel_with_a_number():
    factors = dict(IPCC_2014.g_per_kwh)
    with pytest.raises(ValueError, match="exactly"):
        FactorSet(name="short", g_per_kwh={k: v for k, v in factors.items() if k != "oil"}, sources={}, citation="")
    with pytest.raises(ValueError, match="'coal'"):
        FactorSet(name="bad", g_per_kwh={**factors, "coal": -5.0}, sources={}, citation="")
    custom = FactorSet(name="direct", g_per_kwh={**factors, "wind": 0.0, "solar": 0.0}, sources={}, citation="")
    assert mix_intensity({"wind": 1.0, "gas": 1.0}, custom) == pytest.approx(245.0)  # (0 + 490) / 2
