"""Tests of the powermetrics plugin against stand-in ``powermetrics`` and ``macmon`` executables on PATH.

The stand-ins print the real tools' output formats:

- ``powermetrics --samplers cpu_power,gpu_power,ane_power -i <ms>`` on Apple silicon (macOS 13
  and later; ``man powermetrics``): a preamble (machine model, OS version, boot time), then per
  sample a ``*** Sampled system activity (<date>) (<n>ms elapsed) ***`` header, a
  ``**** Processor usage ****`` section ending with ``CPU Power: <n> mW``, ``GPU Power: <n> mW``,
  ``ANE Power: <n> mW`` and ``Combined Power (CPU + GPU + ANE): <n> mW``, then a
  ``**** GPU usage ****`` section with its own ``GPU Power: <n> mW`` line;
- ``macmon pipe -i <ms>`` (https://github.com/vladkens/macmon, README "Piping"): one JSON object
  per line with ``cpu_power``, ``gpu_power``, ``ane_power``, ``all_power``, ``sys_power``,
  ``ram_power`` in watts, and ``timestamp``, ``temp``, ``memory``, ``*_usage``.

Each stand-in writes its arguments to a file, prints its samples, then waits until it is
terminated, as the real tools do when no sample count is given.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import carbonkit_powermetrics
from carbonkit import MeasurementError, Unavailable
from carbonkit.testing import assert_plugin_valid
from carbonkit_powermetrics import AppleSiliconSource, PowerStream, command_for, probe

PREAMBLE = """Machine model: Mac14,2
OS version: 23A344
Boot arguments:
Boot time: Mon Oct  2 09:12:01 2023



"""


def powermetrics_sample(cpu_mw: int, gpu_mw: int, ane_mw: int, gpu_section_mw: int) -> str:
    return f"""*** Sampled system activity (Mon Oct  2 10:01:12 2023 +0200) (503.45ms elapsed) ***


**** Processor usage ****

E-Cluster HW active frequency: 1143 MHz
E-Cluster HW active residency:  45.20% (600 MHz:   0% 912 MHz:  61% 1284 MHz:  13%)
E-Cluster idle residency:  54.80%
CPU 0 frequency: 1181 MHz
CPU 0 active residency:  31.33% (600 MHz:   0% 912 MHz:  21%)
CPU 0 idle residency:  68.67%
P-Cluster HW active frequency: 730 MHz
P-Cluster HW active residency:   5.10% (660 MHz:  95% 924 MHz: .35%)
P-Cluster idle residency:  94.90%
CPU Power: {cpu_mw} mW
GPU Power: {gpu_mw} mW
ANE Power: {ane_mw} mW
Combined Power (CPU + GPU + ANE): {cpu_mw + gpu_mw + ane_mw} mW

**** GPU usage ****

GPU HW active frequency: 444 MHz
GPU HW active residency:   3.14% (444 MHz: 3.1% 612 MHz:   0%)
GPU SW requested state: (P1 : 100% P2 :   0% P3 :   0%)
GPU idle residency:  96.86%
GPU Power: {gpu_section_mw} mW

"""


def macmon_line(cpu_w: float, gpu_w: float, ane_w: float) -> str:
    return json.dumps(
        {
            "timestamp": "2025-02-24T20:38:15.427569+00:00",
            "temp": {"cpu_temp_avg": 43.7, "gpu_temp_avg": 36.9},
            "memory": {"ram_total": 25769803776, "ram_usage": 20985479168, "swap_total": 0, "swap_usage": 0},
            "ecpu_usage": [1181, 0.08],
            "pcpu_usage": [1974, 0.01],
            "gpu_usage": [461, 0.02],
            "cpu_power": cpu_w,
            "gpu_power": gpu_w,
            "ane_power": ane_w,
            "all_power": cpu_w + gpu_w + ane_w,
            "sys_power": 5.87,
            "ram_power": 0.11,
            "gpu_ram_power": 0.0009,
        }
    )


STANDIN = """#!{python}
import pathlib, sys, threading
here = pathlib.Path(__file__).with_name("{name}")
(here.parent / "{name}.args").write_text("\\n".join(sys.argv[1:]))
sys.stdout.write((here.parent / "{name}.out").read_text())
sys.stdout.flush()
if (here.parent / "{name}.exit").exists():
    sys.stderr.write((here.parent / "{name}.exit").read_text())
    sys.exit(1)
threading.Event().wait()
"""


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def install(bin_dir: Path, name: str, output: str, *, fail: str = "") -> Path:
    script = bin_dir / name
    script.write_text(STANDIN.format(python=sys.executable, name=name))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (bin_dir / f"{name}.out").write_text(output)
    if fail:
        (bin_dir / f"{name}.exit").write_text(fail)
    return script


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    found: list[Any] = []
    yield found
    for item in found:
        if isinstance(item, AppleSiliconSource):
            item.close()


def by_component(found: list[Any]) -> dict[str, AppleSiliconSource]:
    return {s.component: s for s in found if isinstance(s, AppleSiliconSource)}


def test_powermetrics_as_root(bin_dir: Path, opened: list[Any]) -> None:
    samples = [powermetrics_sample(1234, 456, 78, 400), powermetrics_sample(3200, 900, 0, 880)]
    install(bin_dir, "powermetrics", PREAMBLE + "".join(samples))
    opened.extend(probe(is_root=lambda: True))
    sources = by_component(opened)
    assert list(sources) == ["cpu", "gpu", "ane"]
    stream = sources["cpu"]._stream
    assert stream.wait_samples(2, timeout=30)
    assert stream._samples == 2  # the GPU sections' lines make no samples of their own
    # The latest sample; GPU from the SoC energy model's line, not the GPU section's.
    assert [sources[c].read() for c in ("cpu", "gpu", "ane")] == [[3.2], [0.9], [0.0]]
    assert (bin_dir / "powermetrics.args").read_text().split("\n") == [
        "--samplers", "cpu_power,gpu_power,ane_power", "-i", "500"]
    assert all((s.kind, s.method) == ("power", "measured") for s in sources.values())
    assert sources["ane"].devices() == ["Neural Engine"] and "powermetrics (root)" in sources["cpu"].info["reader"]


def test_macmon_is_preferred_and_needs_no_root(bin_dir: Path, opened: list[Any]) -> None:
    install(bin_dir, "powermetrics", PREAMBLE + powermetrics_sample(1, 1, 1, 1))
    install(bin_dir, "macmon", macmon_line(0.20486385, 0.017451683, 0.0) + "\n" + macmon_line(4.5, 2.25, 0.5) + "\n")
    opened.extend(probe(is_root=lambda: False))
    sources = by_component(opened)
    assert sources["cpu"]._stream.wait_samples(2, timeout=30)
    assert [sources[c].read() for c in ("cpu", "gpu", "ane")] == [[4.5], [2.25], [0.5]]
    assert (bin_dir / "macmon.args").read_text().split("\n") == ["pipe", "-i", "500"]
    assert not (bin_dir / "powermetrics.args").exists()
    assert "no root" in sources["gpu"].info["reader"]


def test_without_root_or_reader_the_note_says_what_to_do(bin_dir: Path) -> None:
    install(bin_dir, "powermetrics", PREAMBLE)
    (note,) = probe(is_root=lambda: False)
    assert isinstance(note, Unavailable) and note.warn
    assert "needs root" in note.reason and "macmon" in note.hint
    assert not (bin_dir / "powermetrics.args").exists()  # nothing was started


def test_no_tool_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    (note,) = probe(which=lambda name: None, is_root=lambda: True)
    assert isinstance(note, Unavailable) and not note.warn and "neither macmon nor powermetrics" in note.reason


def test_a_reader_that_fails_at_once_is_a_note(bin_dir: Path) -> None:
    install(bin_dir, "powermetrics", "", fail="powermetrics must be invoked as the superuser")
    (note,) = probe(is_root=lambda: True, wait_s=60)  # returns as soon as the reader has ended
    assert isinstance(note, Unavailable) and note.warn
    assert "gave no sample" in note.reason and "status 1" in note.reason and "superuser" in note.reason


def test_a_reader_that_exits_later_is_a_measurement_error(bin_dir: Path) -> None:
    install(bin_dir, "powermetrics", "", fail="powermetrics must be invoked as the superuser")
    stream = PowerStream("powermetrics", command_for("powermetrics", str(bin_dir / "powermetrics")))
    source = AppleSiliconSource("cpu", stream)
    try:
        assert not stream.wait_samples(1, timeout=30)
        with pytest.raises(MeasurementError, match="gave no sample.*superuser"):
            source.read()
    finally:
        source.close()


def test_samples_stop_coming(bin_dir: Path) -> None:
    install(bin_dir, "macmon", macmon_line(1.0, 2.0, 3.0) + "\n")
    path = str(bin_dir / "macmon")
    stream = PowerStream("macmon", command_for("macmon", path), stale_s=0.0)
    source = AppleSiliconSource("cpu", stream)
    try:
        assert stream.wait_samples(1, timeout=30)
        with pytest.raises(MeasurementError, match="stopped sampling"):
            source.read()
    finally:
        source.close()


def test_close_ends_the_process_once_every_source_is_closed(bin_dir: Path) -> None:
    install(bin_dir, "macmon", macmon_line(1.0, 2.0, 3.0) + "\n")
    found = probe(is_root=lambda: False)
    sources = [s for s in found if isinstance(s, AppleSiliconSource)]
    process: subprocess.Popen[str] = sources[0]._stream._process
    sources[0].close()
    sources[0].close()
    assert process.poll() is None
    for source in sources[1:]:
        source.close()
    assert process.poll() is not None
    assert not sources[0]._stream._thread.is_alive()


def test_parsers_take_units_as_written() -> None:
    parser = carbonkit_powermetrics._PowermetricsParser()
    lines = ["*** Sampled system activity (x) (500ms elapsed) ***", "CPU Power: 1.5 W", "GPU Power: 250 mW",
             "ANE Power: 0 mW", "Combined Power (CPU + GPU + ANE): 1750 mW"]
    results = [parser.feed(line) for line in lines]
    assert results[-1] == {"cpu": 1.5, "gpu": 0.25, "ane": 0.0}
    # The GPU section's own GPU Power line after the combined line is no sample.
    assert parser.feed("**** GPU usage ****") is None and parser.feed("GPU Power: 240 mW") is None
    assert parser.end() is None
    # Older macOS without the combined line: the sample ends at the next header.
    assert parser.feed("*** Sampled system activity (y) (500ms elapsed) ***") is None
    assert parser.feed("CPU Power: 700 mW") is None and parser.feed("GPU Power: 20 mW") is None
    assert parser.feed("*** Sampled system activity (z) (500ms elapsed) ***") == {"cpu": 0.7, "gpu": 0.02}
    assert carbonkit_powermetrics.parse_macmon_line("not json") is None
    assert carbonkit_powermetrics.parse_macmon_line('{"cpu_power": -1}') is None


def test_hook_through_pluggy(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(bin_dir, "macmon", macmon_line(1.0, 2.0, 3.0) + "\n")
    offers = assert_plugin_valid(carbonkit_powermetrics)
    assert sorted(s.name for s in offers["register_power_sources"]) == [
        "powermetrics:ane", "powermetrics:cpu", "powermetrics:gpu"]


ONE_SHOT = """#!{python}
import pathlib, sys
here = pathlib.Path(__file__).parent
runs = here / "runs"
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
sys.stdout.write("{preamble}" + (here / "sample.out").read_text().replace("CPU Power: 1000 mW", f"CPU Power: {{1000 + n}} mW"))
"""


def test_a_reader_that_prints_one_sample_and_exits_is_started_again(bin_dir: Path, opened: list[Any]) -> None:
    """Like ``powermetrics -n 1``: each run prints one sample and exits 0; the next read starts it again."""
    script = bin_dir / "powermetrics"
    script.write_text(ONE_SHOT.format(python=sys.executable, preamble=PREAMBLE.replace("\n", "\\n")))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "sample.out").write_text(powermetrics_sample(1000, 500, 0, 480))
    opened.extend(probe(is_root=lambda: True))
    cpu = by_component(opened)["cpu"]
    stream = cpu._stream
    assert stream.wait_samples(1, timeout=30)
    assert cpu.read()[0] >= 1.0
    assert stream.wait_samples(3, timeout=30)  # the stream ran it again after each run
    assert cpu.read()[0] >= 1.002
    assert stream.runs >= 3
