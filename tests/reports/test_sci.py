"""Software Carbon Intensity: (E x I + M) / R, with embodied emissions shared by run time."""

from __future__ import annotations

from pathlib import Path

import pytest

import carbonkit
from carbonkit.reports.aggregate import read_run
from carbonkit.reports.sci import SCI, SECONDS_PER_YEAR, embodied_from_config, sci, sci_from_report

RANK0 = Path(__file__).parent / "fixtures" / "project" / "train-vision-rank0.jsonl"


def test_operational_plus_embodied_per_unit():
    """M = devices x kgCO2e x 1000 x run time / lifetime; SCI = (E x I + M) / R."""
    year = SECONDS_PER_YEAR
    result = sci(
        operational_g=500.0, energy_kwh=2.0, run_s=year / 100, devices={"gpu": 4, "cpu": 1}, units=1000,
        functional_unit="sample", embodied={"gpu": {"kgco2e": 150.0, "lifetime_years": 4, "source": "test figure"}},
    )
    embodied = 4 * 150.0 * 1000 / 100 / 4  # 1% of a year, over a 4-year life
    assert result.embodied_g == pytest.approx(embodied)
    assert result.total_g == pytest.approx(500.0 + embodied)
    assert result.sci_g_per_unit == pytest.approx((500.0 + embodied) / 1000)
    assert result.intensity_g_per_kwh == pytest.approx(250.0)
    assert result.unknown == ("cpu",) and "cpu unknown, counted as zero" in result.note
    assert result.embodied[0].source == "test figure"


def test_no_embodied_data_means_operational_only_and_says_so():
    """Without embodied data M is zero and the note says SCI covers operational emissions only."""
    result = sci(operational_g=10.0, energy_kwh=0.1, run_s=60, devices={"gpu": 1}, units=2)
    assert (result.embodied_g, result.sci_g_per_unit) == (0.0, 5.0)
    assert "operational emissions only" in result.note


def test_from_a_report_and_round_trip():
    """sci_from_report takes E x I from co2eq_g and devices and run time from the report; to_dict/from_dict round-trip."""
    report = read_run(RANK0).report
    result = sci_from_report(report, units=50_000, functional_unit="sample", embodied={"gpu": {"kgco2e": 100, "lifetime_years": 5}})
    assert result.operational_g == report.co2eq_g
    assert result.embodied_g == pytest.approx(2 * 100_000 * report.duration_s / (5 * SECONDS_PER_YEAR))
    data = result.to_dict()
    assert data["note"] and data["functional_unit"] == "sample"
    assert SCI.from_dict(data) == result


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"units": 0}, "units .* must be a number > 0"),
        ({"units": float("nan")}, "units"),
        ({"functional_unit": " "}, "functional_unit"),
        ({"embodied": {"gpu": {"kgco2e": -1, "lifetime_years": 4}}}, "kgco2e must be a number >= 0"),
        ({"embodied": {"gpu": {"kgco2e": 1, "lifetime_years": 0}}}, "lifetime_years must be a number > 0"),
        ({"embodied": {"gpu": {"kg": 1}}}, r"embodied\['gpu'\] must be"),
    ],
)
def test_bad_input_is_a_config_error(kwargs, match):
    """Invalid units, unit names or embodied entries name the value and what is accepted."""
    args = {"operational_g": 1.0, "energy_kwh": 1.0, "run_s": 1.0, "devices": {"gpu": 1}, "units": 1}
    args.update(kwargs)
    with pytest.raises(carbonkit.ConfigError, match=match):
        sci(**args)


def test_embodied_config_reader():
    """The config form maps components to kgco2e, lifetime_years and an optional source."""
    table = embodied_from_config({"gpu": {"kgco2e": 150, "lifetime_years": 4}})
    assert table["gpu"].kgco2e == 150 and table["gpu"].source == ""
    assert embodied_from_config(None) == {}
