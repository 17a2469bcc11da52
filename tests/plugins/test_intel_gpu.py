"""Tests of the intel_gpu plugin against sysfs trees laid out as the xe and i915 drivers create them.

Driver facts (Linux ``drivers/gpu/drm/xe/xe_hwmon.c``, ``drivers/gpu/drm/i915/i915_hwmon.c`` and
their ABI documents ``Documentation/ABI/testing/sysfs-driver-intel-{xe,i915}-hwmon``):

- the hwmon device hangs off the GPU's PCI device, named ``xe`` or ``i915``; i915 adds one per
  tile (``i915_gt0``...) with its own ``energy1_input``, a part of the device-level one;
- ``energyN_input`` is microjoules; xe labels ``energy1`` "card" and ``energy2`` "pkg";
- the driver reads a 32-bit register (units of 2^-14 J, wrapping every 262,144 J) and adds it
  into a 63-bit accumulator on every read of the file, so the file grows monotonically; it only
  goes back when the driver is reloaded;
- ``powerN_rated_max`` is the TDP in microwatts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sysfs_trees import drm_card, hwmon, pci_device, write

import carbonkit_intel_gpu
from carbonkit import MeasurementError, Unavailable
from carbonkit.testing import assert_plugin_valid
from carbonkit_intel_gpu import IntelGpuSource, probe, scan


class Driver:
    """What the driver does on each read of energyN_input: accumulate a wrapping 32-bit register."""

    def __init__(self, path: Path, register: int = 0xFFFF_0000) -> None:
        self.path = path
        self.register = register
        self.previous = register
        self.accumulated = 0
        self.publish()

    def consume(self, joules: float) -> None:
        units = round(joules * 2**14)
        self.register = (self.register + units) % 2**32
        # hwm_energy(): reg >= prev ? reg - prev : UINT_MAX - prev + reg
        if self.register >= self.previous:
            self.accumulated += self.register - self.previous
        else:
            self.accumulated += 0xFFFF_FFFF - self.previous + self.register
        self.previous = self.register
        self.publish()

    def publish(self) -> None:
        # mul_u64_u32_shr(accum, SF_ENERGY=1e6, scl_shift_energy=14)
        write(self.path, (self.accumulated * 1_000_000) >> 14)


def xe_card(root: Path, address: str = "0000:03:00.0", card: str = "card1", *, labels: tuple[str, ...] = ("card", "pkg"),
            number: int = 3, rated_uw: int | None = 225_000_000) -> Path:
    device = pci_device(root, address, "xe", bridge=f"0000:00:0{number}.0")
    drm_card(root, device, card)
    attributes: dict[str, object] = {}
    for i, label in enumerate(labels, start=1):
        attributes[f"energy{i}_input"] = 0
        attributes[f"energy{i}_label"] = label
        attributes[f"power{i}_max"] = 190_000_000
        if rated_uw is not None:
            attributes[f"power{i}_rated_max"] = rated_uw
    return hwmon(root, device, number, "xe", attributes)


def i915_card(root: Path, address: str = "0000:05:00.0", card: str = "card2", number: int = 5) -> tuple[Path, Path]:
    device = pci_device(root, address, "i915", bridge="0000:00:05.0")
    drm_card(root, device, card)
    whole = hwmon(root, device, number, "i915", {"energy1_input": 0, "power1_rated_max": 150_000_000, "in0_input": 700})
    tile = hwmon(root, device, number + 1, "i915_gt0", {"energy1_input": 0})
    return whole, tile


def integrated_i915(root: Path) -> None:
    device = pci_device(root, "0000:00:02.0", "i915", bridge="0000:00:02.0")
    drm_card(root, device, "card0")


def amd_card(root: Path) -> None:
    device = pci_device(root, "0000:07:00.0", "amdgpu", bridge="0000:00:07.0")
    drm_card(root, device, "card3")
    hwmon(root, device, 7, "amdgpu", {"power1_average": 30_000_000})


def test_xe_reads_the_card_counter_not_card_plus_package(tmp_path: Path) -> None:
    hw = xe_card(tmp_path)
    (source,) = probe(tmp_path)
    assert isinstance(source, IntelGpuSource)
    assert source.devices() == ["card1 xe (0000:03:00.0, card)"]
    assert (source.component, source.kind, source.method) == ("gpu", "energy", "measured")
    card, pkg = Driver(hw / "energy1_input"), Driver(hw / "energy2_input")
    for _ in range(5):
        card.consume(100.0)
        pkg.consume(80.0)
    assert source.read() == pytest.approx([500.0], abs=1e-3)
    assert "energy1_input (card)" in source.info["counters"]
    source.close()


def test_xe_with_only_a_package_counter(tmp_path: Path) -> None:
    xe_card(tmp_path, labels=("pkg",))
    (source,) = probe(tmp_path)
    assert source.devices() == ["card1 xe (0000:03:00.0, pkg)"]
    source.close()


def test_energy_across_many_register_wraps_is_exact(tmp_path: Path) -> None:
    """The 32-bit register wraps every 262,144 J; the driver's accumulation keeps the file monotonic."""
    hw = xe_card(tmp_path)
    (source,) = probe(tmp_path)
    card = Driver(hw / "energy1_input")
    total = 0.0
    for step in range(40):
        joules = 60_000.0 + step  # below one register range per read, as MAX_INTERVAL_S ensures
        card.consume(joules)
        total += joules
        last = source.read()
    assert total > 8 * carbonkit_intel_gpu.REGISTER_RANGE_J
    assert last == pytest.approx([total], abs=1e-3)
    source.close()


def test_i915_reads_the_device_not_the_tiles(tmp_path: Path) -> None:
    whole, tile = i915_card(tmp_path)
    integrated_i915(tmp_path)
    amd_card(tmp_path)
    found = scan(tmp_path)
    assert [g.label for g in found.gpus] == ["card2 i915 (0000:05:00.0, device)"]
    assert found.gpus[0].counter.resolve() == (whole / "energy1_input").resolve()
    assert any(s.startswith("card0 (i915: no hwmon energy counter") for s in found.skipped)
    assert any(s.startswith("card3 (driver amdgpu") for s in found.skipped)
    (source,) = probe(tmp_path)
    Driver(whole / "energy1_input").consume(42.0)
    Driver(tile / "energy1_input").consume(40.0)
    assert source.read() == pytest.approx([42.0], abs=1e-3)
    source.close()


def test_two_gpus_and_connectors_in_class_drm(tmp_path: Path) -> None:
    xe_card(tmp_path, "0000:03:00.0", "card1", number=3)
    xe_card(tmp_path, "0000:04:00.0", "card0", number=4, rated_uw=None)
    (tmp_path / "class" / "drm" / "card1-DP-1").mkdir()
    (tmp_path / "class" / "drm" / "renderD128").mkdir()
    write(tmp_path / "class" / "drm" / "version", "drm 1.1.0 20060810")
    (source,) = probe(tmp_path)
    assert source.devices() == ["card0 xe (0000:04:00.0, card)", "card1 xe (0000:03:00.0, card)"]
    # The ceiling: 2 x the rated (TDP) power where given, else 1,000 W.
    assert [g.max_power_w for g in source.gpus] == [1000.0, 450.0]
    assert source.max_power_w == 1000.0
    assert source.max_interval_s == pytest.approx(131.072)
    source.close()


def test_driver_reload_counts_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hw = xe_card(tmp_path)
    (source,) = probe(tmp_path)
    card = Driver(hw / "energy1_input")
    card.consume(10.0)
    assert source.read() == pytest.approx([10.0], abs=1e-3)
    card = Driver(hw / "energy1_input", register=5)  # reloaded: accumulation restarts at 0
    with caplog.at_level(logging.WARNING):
        assert source.read() == pytest.approx([10.0], abs=1e-3)
    card.consume(3.0)
    assert source.read() == pytest.approx([13.0], abs=1e-3)
    assert any("went back" in r.getMessage() for r in caplog.records)
    source.close()


def test_counter_gone(tmp_path: Path) -> None:
    hw = xe_card(tmp_path)
    (source,) = probe(tmp_path)
    # The device goes away: reads of the open file fail (EBADF here, ENODEV on real sysfs), and
    # the file cannot be read again after reopening it.
    fd = source._files._fds[0]
    assert fd is not None
    os.close(fd)
    (hw / "energy1_input").unlink()
    (hw / "energy1_input").mkdir()
    with pytest.raises(MeasurementError, match="cannot be read any more"):
        source.read()
    source.close()


def test_notes(tmp_path: Path) -> None:
    (note,) = probe(tmp_path / "nothing", setting="CARBONKIT_SYSFS_ROOT=/x")
    assert isinstance(note, Unavailable) and "no DRM devices" in note.reason and "CARBONKIT_SYSFS_ROOT=/x" in note.reason
    integrated_i915(tmp_path)
    amd_card(tmp_path)
    (note,) = probe(tmp_path)
    assert isinstance(note, Unavailable) and "no Intel discrete GPU" in note.reason and "card0" in note.reason
    assert "card3" not in note.reason


def test_permission_denied_is_a_note(tmp_path: Path) -> None:
    xe_card(tmp_path)

    def denied(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied", path)

    (note,) = probe(tmp_path, opener=denied)
    assert isinstance(note, Unavailable) and note.warn and "Permission denied" in note.reason


def test_hook_reads_carbonkit_sysfs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xe_card(tmp_path)
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    offers = assert_plugin_valid(carbonkit_intel_gpu)
    (source,) = offers["register_power_sources"]
    assert source.name == "intel_gpu:energy"
    assert os.path.isabs(str(source.gpus[0].counter))


def test_a_copied_tree_without_links(tmp_path: Path) -> None:
    """A tree copied without symlinks (cp -r, a container's bind mount of files): the driver comes
    from the device's uevent, else from the hwmon device's name."""
    for number, (card, how) in enumerate((("card0", "uevent"), ("card1", "name")), start=1):
        device = tmp_path / "class" / "drm" / card / "device"
        if how == "uevent":
            write(device / "uevent", "DRIVER=xe\nPCI_CLASS=30000\nPCI_ID=8086:E20B\n")
        hw = device / "hwmon" / f"hwmon{number}"
        write(hw / "name", "xe" if how == "uevent" else "i915")
        write(hw / "energy1_input", 1_000_000 * number)
    write(tmp_path / "class" / "drm" / "card2" / "device" / "uevent", "DRIVER=amdgpu\n")
    (source,) = probe(tmp_path)
    assert source.devices() == ["card0 xe (device, device)", "card1 i915 (device, device)"]
    write(tmp_path / "class" / "drm" / "card0" / "device" / "hwmon" / "hwmon1" / "energy1_input", 3_000_000)
    assert source.read() == pytest.approx([2.0, 0.0])
    source.close()
