"""carbonkit statement: the carbon impact statement, word for word on a fixture project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carbonkit
from carbonkit.cli import main
from carbonkit.reports._car import car_factor
from carbonkit.reports.aggregate import aggregate, load_runs
from carbonkit.reports.statement import statement

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "project"

EXPECTED_TEXT = (
    "The experiments reported here used 0.474 kWh of electricity and emitted 77 g CO2eq, measured and estimated by "
    "carbonkit over 2 runs on 2 machines on 2025-03-10 (UTC), 51.7 minutes of run time in all. "
    "Not every figure is a measurement: the CPU energy was estimated in 1 of 2 runs. "
    "The energy is what the devices drew, 0.306 kWh, multiplied by the power usage effectiveness (PUE) of each "
    "run's data centre: 1.2 in 1 run [user-supplied (CARBONKIT_PUE)] and 1.58 in 1 run [default: global "
    "data-centre average, Uptime Institute Global Data Center Survey 2023]. "
    "That is about as much CO2 as an average new car registered in the EU in 2024 emits over 721 m "
    "(106.8 gCO2/km; European Environment Agency, "
    "https://www.eea.europa.eu/en/newsroom/news/average-co2-emissions-from-new-cars-and-new-vans). "
    "Energy per component: CPU estimated by fixture_cpu:estimate (power readings integrated over time) in 1 run "
    "and measured by fixture_cpu:package (power readings integrated over time) in 1 run; GPU measured by "
    "fixture_gpu:energy (an energy counter). "
    "Each interval of the runs was priced at the carbon intensity in force for it: fixture live values for DK-DK2 "
    "(live values for zone DK-DK2, through fixture_dk) for 93.4% of the energy and fixture yearly average for GB "
    "(a yearly average for zone GB, data year 2024, through fixture_static) for 6.6% of the energy; the "
    "energy-weighted mean is 162.6 gCO2eq/kWh. "
    "The logs of several processes of one job on one machine covered the same devices; each device was counted "
    "once (1 of 3 logs left out wholly or in part). "
    "1 run did not stop normally and was counted up to the last reading logged. "
    "Measured and estimated with carbonkit 0.1.0."
)


@pytest.fixture(scope="module")
def agg():
    runs, notes = load_runs([PROJECT])
    return aggregate(runs, notes=notes)


def test_text_statement_word_for_word(agg):
    """The fixture project's plain statement is exactly the expected paragraph."""
    assert statement(agg, "text") == EXPECTED_TEXT


def test_latex_and_markdown_statements_word_for_word(agg):
    """LaTeX and Markdown match their frozen fixtures (escaping, CO$_2$, \\url, bold figures)."""
    assert statement(agg, "latex") == (FIXTURES / "statement.tex").read_text().strip()
    assert statement(agg, "markdown") == (FIXTURES / "statement.md").read_text().strip()


def test_latex_escapes_special_characters(agg):
    """Underscores and percent signs are escaped, the URL is in \\url, CO2 is typeset."""
    tex = statement(agg, "latex")
    assert r"fixture\_cpu:package" in tex and r"93.4\%" in tex
    assert r"\url{https://www.eea.europa.eu/" in tex and "CO$_2$eq" in tex
    assert "_" not in tex.replace(r"\_", "").replace("$_2$", "").split(r"\url{")[0]


def test_statement_is_deterministic_and_follows_the_car_year(agg):
    """The same logs give the same words; a car year picks that year's EEA figure."""
    assert statement(agg, "text") == statement(aggregate(load_runs([PROJECT])[0]), "text")
    old = statement(aggregate(agg.runs, car=car_factor(2018)), "text")
    assert "registered in the EU in 2018" in old and "120.4 gCO2/km" in old


def test_unknown_format_is_a_config_error(agg):
    """Only text, markdown and latex are accepted."""
    with pytest.raises(carbonkit.ConfigError, match="text, markdown, latex"):
        statement(agg, "html")


def test_cli_statement_prints_the_paragraph(capsys):
    """carbonkit statement PATH prints the paragraph; --json puts it in the last line's object."""
    assert main(["statement", str(PROJECT)]) == 0
    assert capsys.readouterr().out == EXPECTED_TEXT + "\n"
    assert main(["statement", str(PROJECT), "--format", "latex", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["format"] == "latex" and data["statement"].startswith("The experiments reported here used \\textbf{")
    assert data["total"]["co2eq_g"] == pytest.approx(77.0099, rel=1e-4)


def test_cli_unknown_car_year_exits_2(capsys):
    """A car year that is not in the table names the years it has."""
    assert main(["statement", str(PROJECT), "--car-year", "1999"]) == 2
    err = capsys.readouterr().err
    assert "1999" in err and "2018" in err


# -- "measured" only for measured figures --------------------------------------------------------


def method_project(tmp_path, methods):
    """One stopped run per entry of ``methods``: {file stem: {component: method}}."""
    from reports.logfiles import source, steady_log

    for i, (stem, comps) in enumerate(methods.items()):
        sources = [source(name=f"test:{c}", component=c, method=m) for c, m in comps.items()]
        steady_log(tmp_path / f"{stem}.jsonl", sources=sources, host=f"node-{i}", stopped=True)
    return aggregate(load_runs([tmp_path])[0])


def test_all_measured_runs_are_called_measured(tmp_path):
    """Only when every counted component was measured does the statement say "measured"."""
    text = statement(method_project(tmp_path, {"a": {"cpu": "measured", "gpu": "measured"}}), "text")
    assert ", measured by carbonkit over 1 run" in text and text.endswith("Measured with carbonkit 0.1.0.")
    assert "estimated" not in text and "simulated" not in text and "Not every figure" not in text


def test_estimated_runs_are_called_estimated_and_named(tmp_path):
    """A run whose CPU was estimated (TDP x utilisation) is not "measured" anywhere."""
    text = statement(method_project(tmp_path, {"a": {"cpu": "estimated"}}), "text")
    assert ", estimated by carbonkit over 1 run" in text
    assert "None of these figures is a measurement: the CPU energy was estimated." in text
    assert text.endswith("Estimated with carbonkit 0.1.0.") and "measured" not in text.replace("a measurement", "")


def test_simulated_runs_are_called_simulated(tmp_path):
    """A simulated source read no hardware, and the statement says so."""
    text = statement(method_project(tmp_path, {"a": {"gpu": "simulated"}, "b": {"gpu": "simulated"}}), "markdown")
    assert ", simulated by carbonkit over 2 runs" in text
    assert "the GPU energy was simulated in all 2 runs" in text and "no hardware was read" in text
    assert text.endswith("Simulated with carbonkit 0.1.0.")


def test_mixed_methods_name_each_component_and_run_count(tmp_path):
    """Measured GPUs with an estimated CPU in one of two runs and a simulated DRAM: each is named."""
    agg = method_project(
        tmp_path,
        {
            "a": {"cpu": "measured", "gpu": "measured"},
            "b": {"cpu": "estimated", "gpu": "measured", "dram": "simulated"},
        },
    )
    text = statement(agg, "latex")
    assert "measured, estimated and simulated by carbonkit over 2 runs" in text
    assert (
        "Not every figure is a measurement: the CPU energy was estimated in 1 of 2 runs and the DRAM energy was "
        "simulated in 1 run. Simulated energy comes from a simulated power source: no hardware was read for it."
    ) in text
    assert "GPU energy was" not in text
    assert text.endswith("Measured, estimated and simulated with carbonkit 0.1.0.")
