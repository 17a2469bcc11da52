"""carbonkit estimate: the what-if arithmetic, the accelerator table, zone intensities, the CLI."""

from __future__ import annotations

import json

import pytest

import carbonkit
from carbonkit.cli import main
from carbonkit.config import DEFAULT_PUE, DEFAULT_PUE_SOURCE
from carbonkit.reports._car import car_factor
from carbonkit.reports.estimate import estimate, find_gpu, gpus, zone_intensities, zone_intensity
from carbonkit.testing import FakeIntensity


def test_reproduces_the_carbontracker_paper_appendix_d():
    """250 W x 2,415,384,615.38 s x PUE 1.125 at 449.06 g/kWh, car 120.4 g/km (EEA 2018): the paper's figures.

    The paper rounds the energy to 188,701.92 kWh before multiplying; so does this check for the
    grams, and the unrounded product agrees to the paper's last digit (0.01 kg).
    """
    est = estimate(power_w=250, duration_s=2415384615.38, pue=1.125, intensity_g_per_kwh=449.06, car=car_factor(2018))
    assert round(est.energy_kwh, 2) == 188701.92
    assert round(round(est.energy_kwh, 2) * 449.06, 2) == 84738484.20  # g, as printed in the paper
    assert abs(est.co2eq_g / 1000 - 84738.48) < 0.01  # kg, to the paper's rounding
    assert round(round(est.energy_kwh, 2) * 449.06 / 120.4, 2) == 703808.01
    assert round(est.car_km) == 703808
    assert est.car_g_per_km == 120.4 and est.car_year == 2018


def test_count_utilization_and_default_pue():
    """Power x count x utilization x time; the default PUE is the core's, with its source."""
    est = estimate(power_w=300, count=4, utilization=0.5, duration_s=7200, intensity_g_per_kwh=200)
    assert est.it_energy_kwh == pytest.approx(300 * 4 * 0.5 * 2 / 1000)
    assert (est.pue, est.pue_source) == (DEFAULT_PUE, DEFAULT_PUE_SOURCE)
    assert est.energy_kwh == pytest.approx(est.it_energy_kwh * DEFAULT_PUE)
    assert est.co2eq_g == pytest.approx(est.energy_kwh * 200)


def test_gpu_table_rows_are_sourced_and_found_by_any_spelling():
    """Every accelerator has a power figure and a vendor URL; names match nvidia-smi's spelling too."""
    table = gpus()
    assert {"V100-SXM2", "A100-PCIE-40GB", "A100-SXM4-80GB", "H100-SXM5", "L4", "T4", "MI300X"} <= set(table)
    for gpu in table.values():
        assert gpu.power_w > 0 and gpu.url.startswith("https://") and gpu.source
    assert find_gpu("NVIDIA A100-SXM4-80GB").power_w == 400
    assert find_gpu("a100 pcie 40gb").power_w == 250
    assert find_gpu("NVIDIA H100 80GB HBM3").name == "H100-SXM5"
    est = estimate(gpu="h100-sxm", count=8, duration_s=3600, intensity_g_per_kwh=100, pue=1.0)
    assert est.it_energy_kwh == pytest.approx(8 * 0.7)
    assert "nvidia.com" in est.power_source


def test_unknown_gpu_lists_the_known_ones():
    """An unknown name is a ConfigError naming the accepted names and --power-w."""
    with pytest.raises(carbonkit.ConfigError, match="A100-SXM4-80GB.*--power-w"):
        find_gpu("Voodoo2")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"power_w": 100, "gpu": "T4"}, "one of them"),
        ({"intensity_g_per_kwh": 1, "location": "FR"}, "one of them"),
        ({"power_w": -5}, "--power-w must be > 0"),
        ({"utilization": 1.5}, "--utilization must be between 0 and 1"),
        ({"pue": 0.8}, "--pue must be between 1 and 5"),
        ({"duration_s": 0}, "duration must be > 0"),
        ({"count": 0}, "--count must be a whole number >= 1"),
    ],
)
def test_bad_input_names_the_value(kwargs, match):
    """Each invalid argument is a ConfigError saying what is accepted."""
    args = {"power_w": 100, "duration_s": 60, "intensity_g_per_kwh": 100}
    args.update(kwargs)
    if "gpu" in kwargs:
        args["power_w"] = kwargs["power_w"]
    if "location" in kwargs:
        args["intensity_g_per_kwh"] = kwargs["intensity_g_per_kwh"]
    with pytest.raises(carbonkit.ConfigError, match=match):
        estimate(**args)


def test_location_uses_the_first_yearly_average_and_skips_live_providers():
    """--location asks providers in order and takes the first 'average' sample; live ones are passed over."""
    live = FakeIntensity(g_per_kwh=999.0, name="fake:live", zones={"XX"}, priority=100, kind="live")
    broken = FakeIntensity(name="fake:broken", zones={"XX"}, priority=90, fail=RuntimeError("no network"))
    static = FakeIntensity(g_per_kwh=123.0, name="fake:static", zones={"*"}, priority=10, kind="average")
    zi = zone_intensity("xx", [live, broken, static])
    assert (zi.zone, zi.g_per_kwh, zi.provider, zi.fallback) == ("XX", 123.0, "fake:static", False)
    est = estimate(power_w=1000, duration_s=3600, pue=1.0, location="XX", providers=[live, broken, static])
    assert est.co2eq_g == pytest.approx(123.0) and est.location == "XX"


def test_compare_sorts_cleanest_first_and_flags_world_fallbacks():
    """--compare prices the same energy in each zone, cleanest first; a zone priced at the world average is flagged."""

    class Table:
        name, zones, priority = "fake:table", frozenset({"*"}), 10
        values = {"AA": 50.0, "BB": 500.0}

        def current(self, zone):
            from datetime import datetime, timezone

            g = self.values.get(zone)
            return carbonkit.IntensitySample(
                time=datetime.now(timezone.utc), g_per_kwh=g if g else 480.0, zone=zone if g else "WORLD",
                source="table", kind="average", year=2024,
            )

        def forecast(self, zone, start, end):
            return []

    rows = zone_intensities(["BB", "aa", "ZZ"], [Table()])
    assert [r.zone for r in rows] == ["AA", "ZZ", "BB"]
    assert [r.fallback for r in rows] == [False, True, False]
    est = estimate(power_w=1000, duration_s=3600, pue=1.0, intensity_g_per_kwh=100, compare=["BB", "AA", "ZZ"], providers=[Table()])
    assert [r["zone"] for r in est.compare] == ["AA", "ZZ", "BB"]
    assert est.compare[0]["co2eq_g"] == pytest.approx(50.0)
    assert any("ZZ" in w for w in est.warnings)


def test_cli_json_uses_the_report_names(capsys):
    """--json: the last line has energy_kwh, it_energy_kwh and co2eq_g like a Report."""
    assert main(["estimate", "--power-w", "250", "--seconds", "2415384615.38", "--pue", "1.125", "--intensity", "449.06", "--car-year", "2018", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert round(data["energy_kwh"], 2) == 188701.92
    assert data["it_energy_kwh"] == pytest.approx(250 * 2415384615.38 / 3.6e6, rel=1e-12)
    assert round(data["car_km"]) == 703808
    assert data["pue_source"] == "given (--pue)"


def test_cli_human_output_and_errors(capsys):
    """The default output names every input and its source; missing inputs exit 2 with a message."""
    assert main(["estimate", "--gpu", "T4", "--count", "2", "--hours", "10", "--intensity", "300"]) == 0
    out = capsys.readouterr().out
    assert "2 x 70 W" in out and "nvidia.com" in out and "1.58" in out and "not measured" in out
    assert main(["estimate", "--gpu", "T4", "--intensity", "300"]) == 2
    assert "--hours H or --seconds S" in capsys.readouterr().err
    assert main(["estimate", "--list-gpus"]) == 0
    assert "A100-SXM4-80GB" in capsys.readouterr().out


def test_cli_location_and_compare_with_the_static_plugin(capsys):
    """With carbonkit-intensity-static installed, --location and --compare use its yearly averages."""
    pytest.importorskip("carbonkit_intensity_static")
    assert main(["estimate", "--power-w", "1000", "--hours", "1", "--pue", "1", "--location", "FR", "--compare", "DK-DK2,FR,PL", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["intensity"]["kind"] == "average" and data["intensity"]["year"]
    assert data["co2eq_g"] == pytest.approx(data["intensity_g_per_kwh"])
    assert [r["zone"] for r in data["compare"]] == sorted((r["zone"] for r in data["compare"]), key=lambda z: next(x["g_per_kwh"] for x in data["compare"] if x["zone"] == z))
    assert data["cleanest"]["g_per_kwh"] <= data["dirtiest"]["g_per_kwh"]
    assert main(["estimate", "--power-w", "1000", "--hours", "1", "--intensity", "100", "--compare", "all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(data["compare"]) > 100
