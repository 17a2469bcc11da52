"""The carbonkit schedule command: --series, --json, slurm and at formats, --evaluate, providers."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import carbonkit
import carbonkit.plugins
from carbonkit import hookimpl
from carbonkit.cli import main
from carbonkit.testing import FakeIntensity

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def write_series(path, values, step_s=1800, start=T0):
    """Write a time,g_per_kwh CSV."""
    lines = ["time,g_per_kwh"]
    for i, v in enumerate(values):
        lines.append(f"{(start + timedelta(seconds=i * step_s)).isoformat().replace('+00:00', 'Z')},{v}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def forecast_csv(tmp_path):
    """48 half-hours at 400 g/kWh, with 100 from 03:00 to 04:00 and 150 from 06:00 to 07:00."""
    values = [400.0] * 48
    values[6:8] = [100.0, 100.0]
    values[12:14] = [150.0, 150.0]
    return write_series(tmp_path / "forecast.csv", values)


def last_json(out):
    """The last line of stdout, parsed."""
    return json.loads(out.strip().splitlines()[-1])


def test_series_json_has_every_field(forecast_csv, capsys):
    """--series --json: algorithm, start, intervals, pauses, g_per_kwh, now_g_per_kwh, saving."""
    assert main(["schedule", "--series", forecast_csv, "--duration", "1h", "--window", "12h", "--json"]) == 0
    data = last_json(capsys.readouterr().out)
    assert data["algorithm"] == "flexible_start"
    assert data["start"] == "2024-05-01T03:00:00Z"
    assert data["intervals"] == [["2024-05-01T03:00:00Z", "2024-05-01T04:00:00Z"]]
    assert data["pauses"] == 0
    assert data["g_per_kwh"] == pytest.approx(100.0)
    assert data["now_g_per_kwh"] == pytest.approx(400.0)
    assert data["saving"] == pytest.approx(0.75)
    assert data["now"] == "2024-05-01T00:00:00Z"  # the series' first time


def test_pause_resume_json_lists_the_run_intervals(forecast_csv, capsys):
    """--pause-resume: a 2 h job runs in both troughs, with one pause."""
    args = ["schedule", "--series", forecast_csv, "--duration", "2h", "--window", "12h", "--pause-resume", "--json"]
    assert main(args) == 0
    data = last_json(capsys.readouterr().out)
    assert data["algorithm"] == "pause_and_resume"
    assert data["intervals"] == [
        ["2024-05-01T03:00:00Z", "2024-05-01T04:00:00Z"],
        ["2024-05-01T06:00:00Z", "2024-05-01T07:00:00Z"],
    ]
    assert data["pauses"] == 1 and data["start"] == "2024-05-01T03:00:00Z"
    assert data["g_per_kwh"] == pytest.approx(125.0) and data["saving"] == pytest.approx(1 - 125 / 400)


def test_now_moves_the_planning_start(forecast_csv, capsys):
    """--now ISO plans from that time: after the first trough, the second one is chosen."""
    args = ["schedule", "--series", forecast_csv, "--duration", "1h", "--window", "6h", "--now", "2024-05-01T04:00:00+00:00", "--json"]
    assert main(args) == 0
    data = last_json(capsys.readouterr().out)
    assert data["start"] == "2024-05-01T06:00:00Z" and data["now_g_per_kwh"] == pytest.approx(400.0)


def test_format_slurm_prints_a_begin_value_sbatch_accepts(forecast_csv, capsys):
    """--format slurm prints YYYY-MM-DDTHH:MM:SS only, in the zone given by --tz (default: local)."""
    base = ["schedule", "--series", forecast_csv, "--duration", "1h", "--window", "12h", "--format", "slurm"]
    assert main([*base, "--tz", "UTC"]) == 0
    assert capsys.readouterr().out == "2024-05-01T03:00:00\n"
    assert main(base) == 0
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\n", capsys.readouterr().out)


def test_format_at_prints_a_time_for_at_t(forecast_csv, capsys):
    """--format at prints CCYYMMDDhhmm.SS, the form `at -t` reads, rounded up to the minute."""
    assert main(["schedule", "--series", forecast_csv, "--duration", "1h", "--window", "12h", "--format", "at", "--tz", "UTC"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"\d{12}\.\d{2}\n", out) and out == "202405010300.00\n"
    now = ["--now", "2024-05-01T00:00:30Z", "--window", "0"]
    assert main(["schedule", "--series", forecast_csv, "--duration", "1h", *now, "--format", "at", "--tz", "UTC"]) == 0
    assert capsys.readouterr().out == "202405010001.00\n"  # rounded up: at refuses times in the past


def test_text_output_says_start_intensity_and_saving(forecast_csv, capsys):
    """The default output names the start, the intensities, the saving and the sbatch/at values."""
    assert main(["schedule", "--series", forecast_csv, "--duration", "2h", "--window", "12h", "--pause-resume", "--tz", "UTC"]) == 0
    out = capsys.readouterr().out
    assert "Pause and Resume for a 2h job within 12h" in out
    assert "run 2024-05-01T06:00:00Z -> 2024-05-01T07:00:00Z (1h)" in out
    assert "saving:    68.8%" in out and "sbatch --begin=2024-05-01T03:00:00" in out


def test_evaluate_json_is_the_table(tmp_path, capsys):
    """--evaluate --json with lists of durations and windows gives one cell per pair."""
    hours = np.arange(24 * 20 * 2) / 2
    path = write_series(tmp_path / "history.csv", np.round(300 + 100 * np.sin(2 * np.pi * hours / 24), 1))
    args = ["schedule", "--series", path, "--evaluate", "--duration", "1h,6h", "--window", "12h,100%", "--starts", "30", "--json"]
    assert main(args) == 0
    data = last_json(capsys.readouterr().out)
    assert data["windows"] == ["12h", "100%"] and data["durations_s"] == [3600.0, 21600.0]
    assert len(data["cells"]) == 4 and data["starts"] == 30
    for cell in data["cells"]:
        assert 0 <= cell["flexible_start_saving"] <= cell["pause_and_resume_saving"] + 1e-12
    assert main(args[:-1]) == 0
    assert "| Pauses / hr |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "3x", "--window", "1h"], "duration must be"),
        (["--duration", "1h", "--window", "soon"], "window must be"),
        (["--duration", "1h,2h", "--window", "1h"], "one value unless --evaluate"),
        (["--duration", "1h", "--window", "1h", "--min-run", "10m"], "add --pause-resume"),
        (["--duration", "1h", "--window", "1h", "--evaluate"], "needs a history"),
        (["--duration", "1h", "--window", "1h", "--now", "2024-05-01T00:00"], "no UTC offset"),
        (["--duration", "1h", "--window", "1h", "--tz", "Nowhere/Land"], "--tz"),
    ],
)
def test_bad_arguments_exit_2_naming_the_value(forecast_csv, capsys, args, message):
    """Bad durations, windows and combinations exit 2 with a message naming the problem."""
    series = [] if "--evaluate" in args else ["--series", forecast_csv]  # --evaluate without a history
    assert main(["schedule", *series, *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_csv_names_the_file_and_line(tmp_path, capsys):
    """A naive time or a bad value in --series is an error naming the line."""
    bad = tmp_path / "bad.csv"
    bad.write_text("time,g_per_kwh\n2024-05-01T00:00:00Z,100\n2024-05-01T00:30:00,120\n")
    assert main(["schedule", "--series", str(bad), "--duration", "1h", "--window", "1h"]) == 2
    assert "line 3" in capsys.readouterr().err
    bad.write_text("when,value\n")
    assert main(["schedule", "--series", str(bad), "--duration", "1h", "--window", "1h"]) == 2
    assert "time,g_per_kwh" in capsys.readouterr().err


class ProviderPlugin:
    """A plugin offering one intensity provider."""

    def __init__(self, provider):
        self.provider = provider

    @hookimpl
    def register_intensity_providers(self):
        return [self.provider]


@pytest.fixture
def with_provider(monkeypatch):
    """Make the CLI's plugin manager hold only the built-ins plus the given provider."""
    original = carbonkit.plugins.make_plugin_manager

    def install(provider):
        plugin = ProviderPlugin(provider)
        monkeypatch.setattr(
            carbonkit.plugins, "make_plugin_manager", lambda **kw: original(plugins=[plugin], entrypoints=False)
        )

    return install


def test_provider_forecast_is_planned_on(with_provider, capsys):
    """Without --series, the zone's provider forecast is used; the JSON names provider and zone."""
    with_provider(FakeIntensity(
        name="fake:zz", zones={"ZZ"}, priority=100, g_per_kwh=lambda t: 100.0 if 5 <= t.hour < 7 else 400.0,
        forecast_step_s=1800, forecast_horizon_s=48 * 3600,
    ))
    args = ["schedule", "--location", "ZZ", "--duration", "2h", "--window", "12h", "--now", "2024-05-01T00:00:00Z", "--json"]
    assert main(args) == 0
    data = last_json(capsys.readouterr().out)
    assert data["provider"] == "fake:zz" and data["zone"] == "ZZ"
    assert data["start"] == "2024-05-01T05:00:00Z" and data["saving"] == pytest.approx(0.75)


def test_no_forecast_exits_3_and_says_so(with_provider, capsys):
    """A zone whose providers have no forecast: exit 3 and a message saying why planning is refused."""
    with_provider(FakeIntensity(name="fake:zz", zones={"ZZ"}, priority=100))
    assert main(["schedule", "--location", "ZZ", "--duration", "2h", "--window", "12h"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no intensity forecast for zone 'ZZ'" in captured.err and "fake:zz: no forecast" in captured.err


# -- no forecast, in a script: `sbatch --begin=$(carbonkit schedule ... --format slurm)` ----------


def test_no_forecast_format_slurm_prints_now_and_exits_0(with_provider, capsys):
    """No forecast with --format slurm: `now` (which `sbatch --begin` accepts), exit 0, and the
    reason on stderr, so that `sbatch --begin=$(...)` never gets an empty value."""
    with_provider(FakeIntensity(name="fake:zz", zones={"ZZ"}, priority=100))
    assert main(["schedule", "--location", "ZZ", "--duration", "2h", "--window", "12h", "--format", "slurm"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "now\n"
    assert "no intensity forecast for zone 'ZZ'" in captured.err and "Printing now for --format slurm" in captured.err


def test_no_forecast_format_at_prints_a_time_at_least_30_s_ahead(with_provider, capsys):
    """No forecast with --format at: `at -t` takes no `now`, so the first whole minute at least
    30 s ahead (at refuses a time already past), exit 0."""
    with_provider(FakeIntensity(name="fake:zz", zones={"ZZ"}, priority=100))
    before = datetime.now(timezone.utc)
    code = main(
        ["schedule", "--location", "ZZ", "--duration", "2h", "--window", "12h", "--format", "at", "--tz", "UTC"]
    )
    after = datetime.now(timezone.utc)
    assert code == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"\d{12}\.00\n", out)
    value = datetime.strptime(out.strip(), "%Y%m%d%H%M.%S").replace(tzinfo=timezone.utc)
    assert before + timedelta(seconds=30) <= value <= after + timedelta(seconds=90)


def test_no_forecast_with_json_still_exits_3(with_provider, capsys):
    """--json (a program reading the plan can check the status): exit 3 and nothing on stdout."""
    with_provider(FakeIntensity(name="fake:zz", zones={"ZZ"}, priority=100))
    args = ["schedule", "--location", "ZZ", "--duration", "2h", "--window", "12h", "--format", "slurm", "--json"]
    assert main(args) == 3
    assert capsys.readouterr().out == ""


def test_start_at_once_values():
    """`now` for Slurm; for at the next whole minute at least 30 s ahead; a future --now is kept."""
    from carbonkit._cli_schedule import start_at_once

    noon = datetime(2024, 5, 1, 12, 0, 10, tzinfo=timezone.utc)
    assert start_at_once("slurm", timezone.utc, now=noon) == "now"
    assert start_at_once("at", timezone.utc, now=noon) == "202405011201.00"  # 12:00:40 rounded up
    assert start_at_once("at", timezone.utc, now=noon + timedelta(seconds=20)) == "202405011201.00"  # 12:01:00 exactly
    assert start_at_once("at", timezone.utc, now=noon + timedelta(seconds=21)) == "202405011202.00"
    later = noon + timedelta(hours=2)
    assert start_at_once("slurm", timezone.utc, later, now=noon) == "2024-05-01T14:00:10"
    assert start_at_once("at", timezone.utc, later, now=noon) == "202405011401.00"
    assert start_at_once("slurm", timezone.utc, noon - timedelta(hours=1), now=noon) == "now"  # a past --now
    with pytest.raises(carbonkit.ConfigError, match="'text'"):
        start_at_once("text", timezone.utc)


@pytest.mark.entrypoints
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_documented_sbatch_pattern_never_gets_an_empty_begin():
    """The pattern of docs/scheduling.md, in a real shell with `set -e`, for a zone whose only
    intensity is a yearly average (SE-SE3, from carbonkit-intensity-static): the script goes on and
    sbatch would get `--begin=now`; the at form gets a valid `at -t` time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONKIT_")}
    env["CARBONKIT_LOCATION"] = "SE-SE3"
    schedule = f"{shlex.quote(sys.executable)} -m carbonkit schedule --duration 3h --window 12h --tz UTC"
    script = (
        "set -e\n"
        f"begin=$({schedule} --format slurm)\n"
        f"at_t=$({schedule} --format at)\n"
        'echo "sbatch --begin=$begin"\n'
        'echo "at -t $at_t"\n'
    )
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    slurm, at = proc.stdout.splitlines()
    assert slurm == "sbatch --begin=now"
    assert re.fullmatch(r"at -t \d{12}\.00", at)
    assert proc.stderr.count("no intensity forecast for zone 'SE-SE3'") == 2
