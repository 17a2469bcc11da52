"""Tests of the template plugin: run them with ``python -m pytest`` from the plugin's directory.

They build a fake sysfs tree in a temporary directory and point ``CARBONKIT_SYSFS_ROOT`` at it,
so they need no hardware. When you copy the template, keep the fake tree faithful to your
driver: the same paths, file names, units and wrap behaviour as its documentation gives.
"""

from __future__ import annotations

import logging
from pathlib import Path

import carbonkit
import carbonkit_template
import pytest
from carbonkit import MeasurementError, Unavailable
from carbonkit.testing import assert_plugin_valid


class FakeSysfs:
    """``<base>/class/template/<device>/energy_uj``, as the (made-up) driver lays it out."""

    def __init__(self, base: Path, devices: int = 2) -> None:
        self.base = base
        self.counters = [base / "class" / "template" / f"template{i}" / "energy_uj" for i in range(devices)]
        for counter in self.counters:
            counter.parent.mkdir(parents=True)
            counter.write_text("1000000\n")

    def add_uj(self, device: int, microjoules: int) -> None:
        counter = self.counters[device]
        counter.write_text(f"{int(counter.read_text()) + microjoules}\n")


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysfs:
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path))
    return FakeSysfs(tmp_path)


def sources() -> list[carbonkit_template.TemplateSource]:
    found = carbonkit_template.register_power_sources()
    assert all(isinstance(item, carbonkit_template.TemplateSource) for item in found), found
    return found  # type: ignore[return-value]


def test_plugin_is_valid(sysfs: FakeSysfs) -> None:
    """The plugin passes carbonkit's contract checks and offers one PowerSource."""
    offers = assert_plugin_valid(carbonkit_template)
    (source,) = offers["register_power_sources"]
    assert isinstance(source, carbonkit.PowerSource)
    assert (source.name, source.component, source.method, source.kind) == (
        "template:energy",
        "accelerator",
        "measured",
        "energy",
    )
    assert source.max_power_w > 0 and source.max_interval_s > 0


def test_reads_joules_since_creation(sysfs: FakeSysfs) -> None:
    """Readings are joules per device since the source was created, in the order of devices()."""
    (source,) = sources()
    assert source.devices() == ["template0", "template1"]
    assert source.read() == [0.0, 0.0]
    sysfs.add_uj(0, 2_500_000)
    sysfs.add_uj(1, 1_000)
    assert source.read() == [2.5, 0.001]
    source.close()


def test_counter_going_back_counts_nothing(sysfs: FakeSysfs, caplog: pytest.LogCaptureFixture) -> None:
    """A reset counter adds nothing for that interval (never negative energy), with one warning."""
    (source,) = sources()
    sysfs.add_uj(0, 3_000_000)
    assert source.read()[0] == 3.0
    with caplog.at_level(logging.WARNING, logger="carbonkit_template"):
        sysfs.counters[0].write_text("5\n")
        assert source.read()[0] == 3.0
    assert len(caplog.records) == 1
    sysfs.add_uj(0, 1_000_000)
    assert source.read()[0] == 4.0
    source.close()


def test_device_gone_raises_measurement_error(sysfs: FakeSysfs) -> None:
    """A counter that cannot be read any more raises MeasurementError naming the file."""
    (source,) = sources()
    sysfs.counters[1].write_text("not a number\n")
    with pytest.raises(MeasurementError, match="template1"):
        source.read()
    source.close()
    source.close()  # idempotent


def test_no_device_gives_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the counters the hook returns an Unavailable note naming where it looked."""
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path / "empty"))
    (note,) = carbonkit_template.register_power_sources()
    assert isinstance(note, Unavailable)
    assert note.plugin == "template"
    assert str(tmp_path / "empty" / "class" / "template") in note.reason
    assert note.warn is False


def test_sysfs_root_defaults_to_sys() -> None:
    """Without CARBONKIT_SYSFS_ROOT (or with a blank one) the plugin reads /sys."""
    assert carbonkit_template.sysfs_root({}) == Path("/sys")
    assert carbonkit_template.sysfs_root({"CARBONKIT_SYSFS_ROOT": "  "}) == Path("/sys")
    assert carbonkit_template.sysfs_root({"CARBONKIT_SYSFS_ROOT": "/host/sys"}) == Path("/host/sys")
