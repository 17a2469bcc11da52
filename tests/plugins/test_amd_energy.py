"""Tests of the amd_energy plugin against hwmon trees laid out as AMD's amd_energy driver creates them.

Driver facts (``Documentation/hwmon/amd_energy.rst`` of the driver, in Linux 5.8 to 5.12 and at
https://github.com/amd/amd_energy):

- one platform device ``amd_energy.0`` with a hwmon device whose ``name`` is ``amd_energy``;
- ``energy<K>_input`` in microjoules: first one per core (``energy<K>_label`` = ``Ecore000``,
  ``Ecore001``...), then one per socket (``Esocket0``, ``Esocket1``);
- the MSRs are 32 bits in units of 1/2^ESU J (ESU 16: 15.3 uJ); a kernel thread adds them into
  64-bit accumulators every 100 s, and a read returns the accumulator plus the register, so the
  file grows monotonically while the driver is loaded;
- the files are mode 0440 (owner and group only), the fix for CVE-2020-12912.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sysfs_trees import link, write

import carbonkit_amd_energy
from carbonkit import Unavailable
from carbonkit.testing import assert_plugin_valid
from carbonkit_amd_energy import AmdEnergySource, probe

ESU_UJ = 1e6 / 2**16  # 15.26 uJ per count


class Msr:
    """One energy MSR and the driver's 64-bit accumulator, as the accumulation thread keeps it."""

    def __init__(self, path: Path, start: int = 0xFFFF_F000) -> None:
        self.path = path
        self.register = start
        self.previous = start
        self.accumulated = 0
        self.publish()

    def consume(self, joules: float) -> None:
        self.register = (self.register + round(joules * 1e6 / ESU_UJ)) % 2**32
        self.publish()

    def accumulate(self) -> None:
        """The driver's thread (every 100 s): fold the register into the 64-bit accumulator."""
        if self.register >= self.previous:
            self.accumulated += self.register - self.previous
        else:
            self.accumulated += 2**32 - self.previous + self.register
        self.previous = self.register
        self.publish()

    def publish(self) -> None:
        delta = (self.register - self.previous) % 2**32
        write(self.path, int((self.accumulated + delta) * ESU_UJ))


def amd_energy_tree(root: Path, sockets: int = 2, cores: int = 4, number: int = 2) -> Path:
    device = root / "devices" / "platform" / f"amd_energy.{number - 2}"
    hw = device / "hwmon" / f"hwmon{number}"
    write(hw / "name", "amd_energy")
    k = 1
    for core in range(cores):
        write(hw / f"energy{k}_input", 0)
        write(hw / f"energy{k}_label", f"Ecore{core:03d}")
        k += 1
    for socket in range(sockets):
        write(hw / f"energy{k}_input", 0)
        write(hw / f"energy{k}_label", f"Esocket{socket}")
        k += 1
    link(device, hw / "device")
    link(hw, root / "class" / "hwmon" / f"hwmon{number}")
    # another hwmon device that is not amd_energy
    write(root / "devices" / "pci0000:00" / "0000:00:18.3" / "hwmon" / "hwmon1" / "name", "k10temp")
    link(root / "devices" / "pci0000:00" / "0000:00:18.3" / "hwmon" / "hwmon1", root / "class" / "hwmon" / "hwmon1")
    return hw


def powercap_package(root: Path) -> None:
    zone = root / "devices" / "virtual" / "powercap" / "intel-rapl" / "intel-rapl:0"
    write(zone / "name", "package-0")
    write(zone / "energy_uj", 1000)
    link(zone, root / "class" / "powercap" / "intel-rapl:0")


def test_sockets_only_cores_not_added(tmp_path: Path) -> None:
    hw = amd_energy_tree(tmp_path, sockets=2, cores=4)
    (source,) = probe(tmp_path)
    assert isinstance(source, AmdEnergySource)
    assert source.devices() == ["socket0", "socket1"]
    assert (source.name, source.component, source.kind, source.method) == ("amd_energy:cpu", "cpu", "energy", "measured")
    sockets = [Msr(hw / "energy5_input"), Msr(hw / "energy6_input")]
    cores = [Msr(hw / f"energy{k}_input") for k in range(1, 5)]
    sockets[0].consume(150.0)
    sockets[1].consume(90.0)
    for core in cores:
        core.consume(20.0)  # part of the sockets' energy: never added
    assert source.read() == pytest.approx([150.0, 90.0], abs=1e-3)
    source.close()


def test_energy_across_many_msr_wraps_is_exact(tmp_path: Path) -> None:
    """The 32-bit MSR wraps every 65.5 kJ; the driver's accumulator keeps the file monotonic."""
    hw = amd_energy_tree(tmp_path, sockets=1, cores=0)
    (source,) = probe(tmp_path)
    msr = Msr(hw / "energy1_input")
    total = 0.0
    for step in range(30):
        msr.consume(24_000.0)  # 240 W for the driver's 100 s period
        msr.accumulate()
        total += 24_000.0
        if step % 3 == 0:
            last = source.read()
    last = source.read()
    assert total > 10 * 2**32 * ESU_UJ / 1e6
    assert last == pytest.approx([total], rel=1e-9, abs=1e-3)
    source.close()


def test_driver_reload_counts_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hw = amd_energy_tree(tmp_path, sockets=1, cores=0)
    (source,) = probe(tmp_path)
    Msr(hw / "energy1_input").consume(50.0)
    assert source.read() == pytest.approx([50.0], abs=1e-3)
    msr = Msr(hw / "energy1_input", start=5)  # reloaded: the accumulator starts again
    with caplog.at_level(logging.WARNING):
        assert source.read() == pytest.approx([50.0], abs=1e-3)
    msr.consume(10.0)
    assert source.read() == pytest.approx([60.0], abs=1e-3)
    source.close()


def test_steps_aside_when_rapl_powercap_can_be_read(tmp_path: Path) -> None:
    amd_energy_tree(tmp_path)
    powercap_package(tmp_path)
    (note,) = probe(tmp_path, can_read=lambda path: True)
    assert isinstance(note, Unavailable) and "carbonkit-rapl measures them" in note.reason
    assert "intel-rapl:0 (package-0)" in note.reason
    (source,) = probe(tmp_path, can_read=lambda path: False)  # powercap root-only: amd_energy is used
    assert isinstance(source, AmdEnergySource)
    source.close()


def test_permission_denied_names_the_cve_and_the_trade_off(tmp_path: Path) -> None:
    amd_energy_tree(tmp_path)

    def denied(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", path)

    (note,) = probe(tmp_path, opener=denied)
    assert isinstance(note, Unavailable) and note.warn
    assert "CVE-2020-12912" in note.reason and "side channel" in note.hint and "energy5_input" in note.reason


def test_no_driver(tmp_path: Path) -> None:
    (note,) = probe(tmp_path, setting="CARBONKIT_SYSFS_ROOT=/x")
    assert isinstance(note, Unavailable) and "no amd_energy hwmon device" in note.reason
    assert "CARBONKIT_SYSFS_ROOT=/x" in note.reason


def test_hook_reads_carbonkit_sysfs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    amd_energy_tree(tmp_path)
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    offers = assert_plugin_valid(carbonkit_amd_energy)
    (source,) = offers["register_power_sources"]
    assert source.name == "amd_energy:cpu" and source.max_power_w == 1000.0
