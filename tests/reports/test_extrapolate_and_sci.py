"""``carbonkit report --extrapolate`` (whole-run estimates of partial runs) and SCI in reports."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import attrs
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from logfiles import START, steady_log, write  # noqa: E402

import carbonkit  # noqa: E402
from carbonkit import ConfigError  # noqa: E402
from carbonkit.cli import main  # noqa: E402
from carbonkit.reports.aggregate import read_run  # noqa: E402
from carbonkit.reports.extrapolate import extrapolate, extrapolate_report, parse_progress, t_95  # noqa: E402
from carbonkit.reports.sci import SECONDS_PER_YEAR, sci_from_report, sci_totals  # noqa: E402

PROJECT = Path(__file__).parent / "fixtures" / "project"
RANK0 = PROJECT / "train-vision-rank0.jsonl"


def test_dodge_6b_transformer_arithmetic():
    """Dodge et al. 2022, section 4: 13.8 MWh over 8 of the 60 days a full run takes -> (60 / 8) x 13.8 = 103.5 MWh.
    Their "13 %" is 8 / 60 = 0.1333; dividing by 0.13 instead would give 106.15 MWh."""
    whole = extrapolate(energy_kwh=13.8, progress=8 / 60)
    assert whole.energy_kwh == pytest.approx(103.5)
    assert extrapolate(energy_kwh=13.8, progress="8/60").energy_kwh == pytest.approx(103.5)
    assert extrapolate(energy_kwh=13.8, progress=0.13).energy_kwh == pytest.approx(13.8 / 0.13)
    assert whole.energy_low_kwh is None and "no interval" in whole.interval  # a single total has no spread
    assert whole.method == "progress" and "linear in the work done" in whole.description


def test_progress_forms_and_bad_values():
    assert parse_progress("13%") == pytest.approx(0.13)
    assert parse_progress(" 8/60 ") == pytest.approx(8 / 60)
    assert parse_progress(1) == 1.0
    for bad in ("0", "1.5", "-0.1", "abc", "1/0", True, math.nan):
        with pytest.raises(ConfigError, match="--progress must be the fraction"):
            parse_progress(bad)


def test_interval_from_the_spread_of_epochs():
    """Epochs of 1, 2 and 3 kWh at 60 % done: R = 3 x (1 / 0.6 - 1) = 2 more epochs. Mean 2, s = 1,
    t(2 dof) = 4.303: half-width 4.303 x 1 x sqrt(2^2 / 3 + 2) = 7.856 kWh around 6 / 0.6 = 10 kWh."""
    out = extrapolate(energy_kwh=6.0, progress=0.6, epoch_energies_kwh=[1.0, 2.0, 3.0])
    half = 4.303 * math.sqrt(4 / 3 + 2)
    assert out.energy_kwh == pytest.approx(10.0)
    assert out.energy_high_kwh == pytest.approx(10.0 + half)
    assert out.energy_low_kwh == pytest.approx(6.0)  # never below what was measured
    assert t_95(2) == 4.303 and t_95(100) == 1.96


def test_epochs_method_from_the_log():
    """The fixture run planned 5 epochs and finished 3: measured + 2 x the mean finished epoch."""
    report = read_run(RANK0).report
    assert (report.epochs_planned, len(report.epochs)) == (5, 3)
    mean_e = sum(e.energy_kwh for e in report.epochs) / 3
    mean_c = sum(e.co2eq_g for e in report.epochs) / 3
    out = extrapolate_report(report)
    assert out.method == "epochs" and out.progress == pytest.approx(0.6)
    assert out.energy_kwh == pytest.approx(report.energy_kwh + 2 * mean_e)
    assert out.co2eq_g == pytest.approx(report.co2eq_g + 2 * mean_c)
    assert out.measured_energy_kwh == report.energy_kwh
    with pytest.raises(ConfigError, match="no planned epochs"):
        extrapolate_report(read_run(PROJECT / "finetune-nlp-killed.jsonl").report)


def test_report_extrapolate_cli(capsys):
    assert main(["report", str(PROJECT), "--extrapolate", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    files = [Path(e["file"]).name for e in data["extrapolated"]]
    assert files == ["train-vision-rank0.jsonl", "train-vision-rank1.jsonl"]
    assert any("finetune-nlp-killed.jsonl: not extrapolated" in n for n in data["extra_notes"])
    assert main(["report", str(RANK0), "--progress", "8/60"]) == 0
    text = capsys.readouterr().out
    assert "Whole-run estimates" in text and "13.33% done" in text
    assert main(["report", str(RANK0), "--progress", "2"]) == 2
    assert "--progress must be" in capsys.readouterr().err


def _with_units(path: Path, units: float, unit: str = "sample", **kwargs: object) -> Path:
    """A steady run whose final report counted ``units`` of ``unit`` (what Tracker(functional_unit=...) writes)."""
    steady_log(path, stopped=True, **kwargs)
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[-1])
    report = carbonkit.Report.from_dict(record["report"])
    report = attrs.evolve(report, functional_unit=unit, units=units, sci=sci_from_report(report, units, unit))
    record["report"] = report.to_dict()
    write(path, [*(line + "\n" for line in lines[:-1]), json.dumps(record) + "\n"])
    return path


def test_sci_per_run_and_total_per_functional_unit(tmp_path, capsys):
    """Two runs of 100 W for 600 s at 100 g/kWh (PUE 1): E x I = 1/60 kWh x 100 = 1.667 g each. With a CPU
    of 100 kg CO2eq over 4 years, M = 100,000 g x 600 s / (4 x 365.25 days) = 0.4753 g each. R = 1000 and 3000:
    the total is (2 x 1.667 + 2 x 0.4753) / 4000 g per sample."""
    a = _with_units(tmp_path / "a.jsonl", 1000, host="a")
    _with_units(tmp_path / "b.jsonl", 3000, host="b", start=START + 7200)
    _with_units(tmp_path / "c.jsonl", 5, unit="epoch", host="c", start=START + 14400)
    embodied = '{"cpu": {"kgco2e": 100, "lifetime_years": 4, "source": "test vendor PCF"}}'
    assert main(["report", str(tmp_path), "--embodied", embodied, "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    op = 100 * 600 / 3.6e6 * 100
    m = 100_000 * 600 / (4 * SECONDS_PER_YEAR)
    runs = {Path(r["file"]).name: r for r in data["sci"]["runs"]}
    assert runs["a.jsonl"]["operational_g"] == pytest.approx(op)
    assert runs["a.jsonl"]["embodied_g"] == pytest.approx(m)
    assert runs["a.jsonl"]["embodied"][0]["source"] == "test vendor PCF"
    assert runs["a.jsonl"]["sci_g_per_unit"] == pytest.approx((op + m) / 1000)
    totals = {t["functional_unit"]: t for t in data["sci"]["totals"]}
    assert totals["sample"]["runs"] == 2 and totals["sample"]["units"] == 4000
    assert totals["sample"]["sci_g_per_unit"] == pytest.approx(2 * (op + m) / 4000)
    assert totals["sample"]["embodied_sources"] == ["cpu: test vendor PCF"]
    assert totals["epoch"]["sci_g_per_unit"] == pytest.approx((op + m) / 5)  # never mixed with samples
    # Without --embodied: the SCI the run recorded (operational only), and it says so.
    assert main(["report", str(a)]) == 0
    text = capsys.readouterr().out
    assert "Software Carbon Intensity" in text and "operational emissions only" in text
    assert main(["report", str(a), "--embodied", '{"cpu": 3}']) == 2
    assert "--embodied=" in capsys.readouterr().err


def test_sci_totals_are_by_unit():
    assert sci_totals([]) == []


def test_html_has_the_sections(tmp_path, capsys):
    a = _with_units(tmp_path / "a.jsonl", 10)
    page = tmp_path / "r.html"
    assert main(["report", str(a), str(RANK0), "--extrapolate", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "Whole-run estimates from partial runs" in html and "Software Carbon Intensity" in html


def test_extras_are_refused_with_csv_and_markdown(capsys):
    assert main(["report", str(RANK0), "--extrapolate", "--csv"]) == 2
    assert "not to --csv" in capsys.readouterr().err
    assert main(["report", str(RANK0), "--progress", "0.5", "--markdown"]) == 2
    assert "not to --markdown" in capsys.readouterr().err
