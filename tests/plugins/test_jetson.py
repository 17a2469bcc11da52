"""Tests of the jetson plugin against INA3221 sysfs trees laid out as Jetson Linux creates them.

Layouts (NVIDIA Jetson Linux Developer Guide, "Platform Power and Performance" / "Jetson
Power Monitoring", for L4T R32 and R35; Linux ``drivers/hwmon/ina3221.c`` and
``Documentation/hwmon/ina3221.rst``):

- L4T R32 (Nano, TX2, Xavier), the ``ina3221x`` IIO driver:
  ``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<k>/in_power<N>_input`` (mW),
  ``in_current<N>_input`` (mA), ``in_voltage<N>_input`` (mV), ``rail_name_<N>``, N = 0..2.
  Jetson Nano: one monitor at 6-0040, rails POM_5V_IN, POM_5V_GPU, POM_5V_CPU. Jetson TX2:
  0-0040 (VDD_SYS_GPU, VDD_SYS_SOC, VDD_4V0_WIFI) and 0-0041 (VDD_IN, VDD_SYS_CPU, VDD_SYS_DDR).
- L4T R35 and later (Orin), the mainline ``ina3221`` hwmon driver:
  ``/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon<k>/in<N>_input`` (bus voltage, mV),
  ``curr<N>_input`` (mA), ``in<N>_label``, ``in<N>_enable``, N = 1..3 (in4..in6 are the shunt
  voltages). Orin Nano / NX: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC. AGX Orin: 1-0040 VDD_GPU_SOC,
  VDD_CPU_CV, VIN_SYS_5V0; 1-0041 NC, VDDQ_VDD2_1V8AO, NC (no module input rail).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sysfs_trees import link, write

import carbonkit_jetson
from carbonkit import Unavailable
from carbonkit.testing import assert_plugin_valid
from carbonkit_jetson import JetsonSource, classify, probe


def iio_monitor(root: Path, address: str, rails: dict[str, int]) -> Path:
    """An ina3221x device: rails by name -> milliwatts."""
    bus = address.split("-")[0]
    device = root / "devices" / "platform" / "7000c400.i2c" / f"i2c-{bus}" / address
    iio = device / "iio:device0"
    for n, (name, milliwatts) in enumerate(rails.items()):
        write(iio / f"rail_name_{n}", name)
        write(iio / f"in_power{n}_input", milliwatts)
        write(iio / f"in_voltage{n}_input", 5000)
        write(iio / f"in_current{n}_input", milliwatts // 5)
    link(device, root / "bus" / "i2c" / "drivers" / "ina3221x" / address)
    return iio


def hwmon_monitor(root: Path, address: str, number: int, rails: list[tuple[str, int, int]],
                  disabled: tuple[int, ...] = ()) -> Path:
    """An ina3221 hwmon device: (label, mV, mA) per channel 1..3."""
    device = root / "devices" / "platform" / "c240000.i2c" / "i2c-1" / address
    hw = device / "hwmon" / f"hwmon{number}"
    write(hw / "name", "ina3221")
    for n, (label, millivolts, milliamps) in enumerate(rails, start=1):
        write(hw / f"in{n}_label", label)
        write(hw / f"in{n}_input", millivolts)
        write(hw / f"in{n + 3}_input", 12)  # shunt voltage
        write(hw / f"curr{n}_input", milliamps)
        write(hw / f"in{n}_enable", 0 if n in disabled else 1)
        write(hw / f"curr{n}_crit", 32760)
    link(device, hw / "device")
    link(hw, root / "class" / "hwmon" / f"hwmon{number}")
    link(device, root / "bus" / "i2c" / "drivers" / "ina3221" / address)
    return hw


def by_component(found: list[object]) -> dict[str, JetsonSource]:
    return {s.component: s for s in found if isinstance(s, JetsonSource)}


def close(found: list[object]) -> None:
    for s in found:
        if isinstance(s, JetsonSource):
            s.close()


@pytest.mark.parametrize(
    ("rail", "component"),
    [
        ("VDD_IN", "total"), ("POM_5V_IN", "total"), ("POM_5V_GPU", "gpu"), ("POM_5V_CPU", "cpu"),
        ("VDD_CPU_GPU_CV", "cpu"), ("VDD_GPU_SOC", "gpu"), ("VDD_CPU_CV", "cpu"), ("VDD_SOC", "soc"),
        ("VDD_SYS_SOC", "soc"), ("VDD_SYS_DDR", "dram"), ("VDDQ_VDD2_1V8AO", "dram"), ("VDDRQ", "dram"),
        ("CV", "soc"), ("GPU", "gpu"), ("VIN_SYS_5V0", "board"), ("VDD_4V0_WIFI", "board"), ("SYS5V", "board"),
    ],
)
def test_rail_components(rail: str, component: str) -> None:
    assert classify(rail) == component


def test_nano_old_layout_total_is_not_added_to_its_parts(tmp_path: Path) -> None:
    iio_monitor(tmp_path, "6-0040", {"POM_5V_IN": 7200, "POM_5V_GPU": 2100, "POM_5V_CPU": 1800})
    found = probe(tmp_path)
    kinds = by_component(found)
    assert set(kinds) == {"gpu", "cpu", "board"}
    assert kinds["gpu"].read() == [2.1] and kinds["cpu"].read() == [1.8]
    assert kinds["board"].devices() == ["POM_5V_IN - measured rails"]
    assert kinds["board"].read() == pytest.approx([3.3])
    assert sum(sum(s.read()) for s in kinds.values()) == pytest.approx(7.2)  # the total, once
    assert all((s.kind, s.method) == ("power", "measured") for s in kinds.values())
    close(found)


def test_orin_hwmon_layout_power_is_voltage_times_current(tmp_path: Path) -> None:
    hw = hwmon_monitor(tmp_path, "1-0040", 1, [("VDD_IN", 5016, 1500), ("VDD_CPU_GPU_CV", 5000, 400),
                                                 ("VDD_SOC", 5008, 250)])
    found = probe(tmp_path)
    kinds = by_component(found)
    assert kinds["cpu"].devices() == ["VDD_CPU_GPU_CV (cpu, gpu, cv)"]
    assert kinds["cpu"].read() == pytest.approx([2.0])
    assert kinds["soc"].read() == pytest.approx([1.252])
    assert kinds["board"].read() == pytest.approx([5.016 * 1.5 - 2.0 - 1.252])
    write(hw / "curr2_input", 1600)  # a GPU burst: the rest of the module stays, the part grows
    assert kinds["cpu"].read() == pytest.approx([8.0])
    assert kinds["board"].read() == [0.0]  # never below 0
    close(found)


def test_agx_orin_without_total_reports_parts_and_says_so(tmp_path: Path) -> None:
    hwmon_monitor(tmp_path, "1-0040", 1, [("VDD_GPU_SOC", 5000, 3000), ("VDD_CPU_CV", 5000, 1000),
                                          ("VIN_SYS_5V0", 5000, 600)])
    hwmon_monitor(tmp_path, "1-0041", 2, [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 5000, 200), ("NC", 0, 0)])
    found = probe(tmp_path)
    kinds = by_component(found)
    assert {k: s.devices() for k, s in kinds.items()} == {
        "gpu": ["VDD_GPU_SOC (gpu, soc)"],
        "cpu": ["VDD_CPU_CV (cpu, cv)"],
        "dram": ["VDDQ_VDD2_1V8AO"],
        "board": ["VIN_SYS_5V0"],
    }
    assert kinds["board"].read() == pytest.approx([3.0])
    (note,) = [n for n in found if isinstance(n, Unavailable)]
    assert "no module input rail" in note.reason
    close(found)


def test_tx2_other_rails_stay_inside_the_remainder(tmp_path: Path) -> None:
    iio_monitor(tmp_path, "0-0040", {"VDD_SYS_GPU": 3000, "VDD_SYS_SOC": 1000, "VDD_4V0_WIFI": 200})
    iio_monitor(tmp_path, "0-0041", {"VDD_IN": 9000, "VDD_SYS_CPU": 2000, "VDD_SYS_DDR": 1200})
    found = probe(tmp_path)
    kinds = by_component(found)
    assert set(kinds) == {"gpu", "soc", "cpu", "dram", "board"}
    # WIFI is inside VDD_IN and not a part: it stays in the remainder, not added again.
    assert kinds["board"].read() == pytest.approx([9.0 - 3.0 - 1.0 - 2.0 - 1.2])
    assert "VDD_IN minus" in kinds["board"].info["rails"]
    close(found)


def test_disabled_and_unconnected_channels_are_skipped(tmp_path: Path) -> None:
    hwmon_monitor(tmp_path, "1-0040", 1, [("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 100), ("VDD_SOC", 5000, 100)],
                  disabled=(3,))
    found = probe(tmp_path)
    assert set(by_component(found)) == {"cpu", "board"}
    close(found)


def test_no_rails_and_unreadable_rails(tmp_path: Path) -> None:
    (note,) = probe(tmp_path, setting="CARBONKIT_SYSFS_ROOT=/x")
    assert isinstance(note, Unavailable) and "no INA3221" in note.reason and "CARBONKIT_SYSFS_ROOT=/x" in note.reason
    iio_monitor(tmp_path, "6-0040", {"POM_5V_IN": 7200, "POM_5V_GPU": 2100, "POM_5V_CPU": 1800})

    def denied(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", path)

    (note,) = probe(tmp_path, opener=denied)
    assert isinstance(note, Unavailable) and note.warn and "Permission denied" in note.reason


def test_hook_reads_carbonkit_sysfs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    iio_monitor(tmp_path, "6-0040", {"POM_5V_IN": 7200, "POM_5V_GPU": 2100, "POM_5V_CPU": 1800})
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    offers = assert_plugin_valid(carbonkit_jetson)
    names = sorted(s.name for s in offers["register_power_sources"])
    assert names == ["jetson:board", "jetson:cpu", "jetson:gpu"]


def test_a_tracked_run_counts_the_module_once_and_drops_the_cpu_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import carbonkit_cpu_estimate
    from carbonkit.testing import tracker_for

    iio_monitor(tmp_path, "6-0040", {"POM_5V_IN": 7200, "POM_5V_GPU": 2100, "POM_5V_CPU": 1800})
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("CARBONKIT_CPU_TDP_W", "65")
    with tracker_for(carbonkit_jetson, carbonkit_cpu_estimate, location="WORLD", interval_s=0.01) as t:
        sum(range(200_000))
    components = t.report.components
    assert set(components) == {"cpu", "gpu", "board"}
    assert components["cpu"].sources == ("jetson:cpu",) and components["cpu"].method == "measured"
    assert [d.component for d in t.report.dropped_sources if d.name.startswith("cpu_estimate")] == ["cpu"]
    total = sum(c.it_energy_kwh for c in components.values())
    assert total > 0
    # Constant rails: each component's share of the energy is its share of the 7.2 W input.
    assert components["cpu"].it_energy_kwh / total == pytest.approx(1.8 / 7.2)
    assert components["gpu"].it_energy_kwh / total == pytest.approx(2.1 / 7.2)
    assert components["board"].it_energy_kwh / total == pytest.approx(3.3 / 7.2)
