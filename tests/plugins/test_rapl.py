"""Tests of the rapl plugin against fake powercap trees laid out as the kernel lays them out.

The layout follows the kernel's documentation and drivers:

- Documentation/power/powercap/powercap.rst ("Example sysfs interface tree",
  https://docs.kernel.org/power/powercap/powercap.html): control types under
  /sys/devices/virtual/powercap/<control type>, zones <control type>:<n> inside them, subzones
  <control type>:<n>:<m> nested inside their zone, each zone with ``name``, ``energy_uj``,
  ``max_energy_range_uj``, ``enabled``, ``constraint_<j>_*`` files, a ``device`` link to its
  parent and a ``subsystem`` link to the class; /sys/class/powercap holds a symlink to every
  control type, zone and subzone.
- drivers/powercap/intel_rapl_common.c: zone names ``package-<n>`` (``package-<n>-die-<m>``
  with several dies), ``core``, ``uncore``, ``dram``, ``psys`` (``psys-<n>`` beyond package 0);
  constraint names ``long_term``, ``short_term``, ``peak_power``; ``constraint_<j>_max_power_uw``
  is the thermal spec power (PL1), the maximum power (PL2), twice that (PL4); and
  ``max_energy_range_uj`` is the value of the 32-bit counter at its top, so the counter runs
  from 0 to it inclusive.
- drivers/powercap/intel_rapl_msr.c: AMD's counters (package, core; no power-limit registers,
  hence no constraint files) are published under the same ``intel-rapl`` control type.
- drivers/powercap/intel_rapl_tpmi.c: TPMI zones are per physical package, with package,
  psys and memory (``dram``) domains; some kernels name the control type ``intel-rapl-tpmi``.
- drivers/thermal/intel/int340x_thermal/processor_thermal_rapl.c: ``intel-rapl-mmio``, a
  mirror of package 0 on client processors.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pluggy
import pytest

import carbonkit
import carbonkit.hookspecs
import carbonkit_rapl
from carbonkit import Config, MeasurementError, Unavailable
from carbonkit_rapl import MAX_POWER_W, RaplLayout, RaplSource, RaplZone, probe

#: The range real Intel packages report (about 262 kJ): 0xffffffff units of 2^-14 J.
REAL_RANGE_UJ = 262_143_328_850
#: The range AMD packages report (about 65.5 kJ): 0xffffffff units of 2^-16 J.
AMD_RANGE_UJ = 65_532_610_987


class FakePowercap:
    """A powercap tree: zones under devices/virtual/powercap, symlinked from class/powercap.

    Counters hold exact energy in joules; ``advance`` adds energy at a given power and writes
    the counter as the hardware does: it runs from 0 to the zone's range inclusive, then
    wraps to 0 (modulo range + 1).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sysfs = base / "sys"
        self.devices = self.sysfs / "devices" / "virtual" / "powercap"
        self.root = self.sysfs / "class" / "powercap"
        self.root.mkdir(parents=True)
        self.exact_j: dict[str, float] = {}
        self.start_uj: dict[str, int] = {}
        self.range_uj: dict[str, int] = {}
        self.dirs: dict[str, Path] = {}

    def control(self, control: str) -> None:
        path = self.devices / control
        path.mkdir(parents=True)
        self._attributes(path)
        self._link(control, path)

    def zone(
        self,
        zone: str,
        name: str,
        *,
        control: str = "intel-rapl",
        range_uj: int = REAL_RANGE_UJ,
        range_file: str | None = "same",
        start_uj: int = 0,
        max_power_uw: int | tuple[int, ...] | None = None,
        constraints: bool = True,
    ) -> Path:
        """Add a zone; ``intel-rapl:0:1`` nests inside ``intel-rapl:0``.

        :param range_uj: The counter's top value (it wraps after it).
        :param range_file: What ``max_energy_range_uj`` holds: ``"same"`` for ``range_uj``, None
            for no file, or any other text.
        :param max_power_uw: ``constraint_<j>_max_power_uw`` for j = 0, 1...
        :param constraints: Whether the zone has power-limit constraints at all (AMD: none).
        """
        parent = self.devices / control
        parts = zone.split(":")
        if len(parts) == 3:
            parent = self.dirs[":".join(parts[:2])]
        path = parent / zone
        path.mkdir()
        self._attributes(path)
        (path / "device").symlink_to(os.path.join("..", "..", parent.name))
        (path / "name").write_text(f"{name}\n")
        if range_file is not None:
            (path / "max_energy_range_uj").write_text(f"{range_uj}\n" if range_file == "same" else range_file)
        if constraints:
            powers = (max_power_uw,) if isinstance(max_power_uw, int) else (max_power_uw or (None,))
            for j, (label, power) in enumerate(zip(("long_term", "short_term", "peak_power"), powers)):
                (path / f"constraint_{j}_name").write_text(f"{label}\n")
                (path / f"constraint_{j}_power_limit_uw").write_text("95000000\n")
                (path / f"constraint_{j}_time_window_us").write_text("27983872\n")
                if power is not None:
                    (path / f"constraint_{j}_max_power_uw").write_text(f"{power}\n")
        self.dirs[zone] = path
        self.exact_j[zone] = 0.0
        self.start_uj[zone] = start_uj
        self.range_uj[zone] = range_uj
        self._write(zone)
        self._link(zone, path)
        return path

    def advance(self, watts: dict[str, float], seconds: float) -> None:
        for zone, power in watts.items():
            self.exact_j[zone] += power * seconds
            self._write(zone)

    def set_raw(self, zone: str, raw: int) -> None:
        self.counter_path(zone).write_text(f"{raw}\n")

    def raw(self, zone: str) -> int:
        return int(self.counter_path(zone).read_text())

    def counter_path(self, zone: str) -> Path:
        return self.dirs[zone] / "energy_uj"

    def _write(self, zone: str) -> None:
        raw = (self.start_uj[zone] + round(self.exact_j[zone] * 1e6)) % (self.range_uj[zone] + 1)
        self.set_raw(zone, raw)

    def _attributes(self, path: Path) -> None:
        (path / "enabled").write_text("1\n")
        (path / "uevent").write_text("")
        (path / "power").mkdir()
        # A link back to the class directory: a scanner that followed every link would loop.
        (path / "subsystem").symlink_to(os.path.relpath(self.root, path))

    def _link(self, name: str, target: Path) -> None:
        (self.root / name).symlink_to(os.path.relpath(target, self.root))


@pytest.fixture
def server(tmp_path: Path) -> FakePowercap:
    """Two packages with core/uncore/dram subzones, a third one with index 10, psys and MMIO."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0", max_power_uw=205_000_000)
    fake.zone("intel-rapl:0:0", "core")
    fake.zone("intel-rapl:0:1", "uncore")
    fake.zone("intel-rapl:0:2", "dram")
    # package-1 wraps a few times during the run: a small range, starting near its top.
    fake.zone("intel-rapl:1", "package-1", range_uj=400_000_000, start_uj=390_000_000)
    fake.zone("intel-rapl:1:0", "dram")
    fake.zone("intel-rapl:1:1", "core")
    fake.zone("intel-rapl:2", "psys")
    fake.zone("intel-rapl:10", "package-10")
    fake.control("intel-rapl-mmio")
    fake.zone("intel-rapl-mmio:0", "package-0", control="intel-rapl-mmio")
    return fake


def deny_counters(path: str, flags: int, mode: int = 0o777) -> int:
    """An opener that behaves as the kernel does for a non-root user on a 0400 energy_uj."""
    if path.endswith("energy_uj"):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    return os.open(path, flags, mode)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sources_by_name(result: list[RaplSource | Unavailable]) -> dict[str, RaplSource]:
    return {item.name: item for item in result if isinstance(item, RaplSource)}


def test_layout_counts_each_zone_once(server: FakePowercap) -> None:
    """Packages and DRAM subzones are found once each; core, uncore, psys and MMIO are left out."""
    layout = RaplLayout.scan(server.root)
    assert [zone.label for zone in layout.cpu] == ["package-0", "package-1", "package-10"]
    assert [zone.zone for zone in layout.cpu] == ["intel-rapl:0", "intel-rapl:1", "intel-rapl:10"]
    assert [zone.label for zone in layout.dram] == ["dram-0", "dram-1"]
    assert [zone.zone for zone in layout.dram] == ["intel-rapl:0:2", "intel-rapl:1:0"]
    assert layout.cpu[0].path == server.dirs["intel-rapl:0"].resolve()
    skipped = " ".join(layout.skipped)
    for left_out in (
        "intel-rapl:2 (psys",
        "intel-rapl-mmio:0",
        "intel-rapl:0:0 (core",
        "intel-rapl:0:1 (uncore",
    ):
        assert left_out in skipped
    assert len(layout.skipped) == 5  # psys, mmio, two cores, one uncore: each once


def test_layout_finds_subzones_listed_only_at_top_level(tmp_path: Path) -> None:
    """A DRAM zone reachable only through its top-level symlink is still found, once."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0")
    dram = fake.devices / "elsewhere" / "intel-rapl:0:0"
    dram.mkdir(parents=True)
    (dram / "name").write_text("dram\n")
    (dram / "energy_uj").write_text("5\n")
    (dram / "max_energy_range_uj").write_text(f"{REAL_RANGE_UJ}\n")
    (fake.root / "intel-rapl:0:0").symlink_to(dram)
    layout = RaplLayout.scan(fake.root)
    assert [(zone.label, zone.path) for zone in layout.dram] == [("dram-0", dram.resolve())]


def test_energy_is_exact_with_a_wrap(server: FakePowercap) -> None:
    """Energy per package and per DRAM zone matches the exact figure across several wraps."""
    clock = Clock()
    cpu = RaplSource(root=server.root, component="cpu", zones=RaplLayout.scan(server.root).cpu, clock=clock)
    dram = RaplSource(
        root=server.root, component="dram", zones=RaplLayout.scan(server.root).dram, clock=clock
    )
    power = {
        "intel-rapl:0": 62.5,
        "intel-rapl:1": 118.25,
        "intel-rapl:10": 20.0,
        "intel-rapl:0:2": 7.5,
        "intel-rapl:1:0": 4.25,
        # Zones that must not be counted anywhere still tick.
        "intel-rapl:0:0": 40.0,
        "intel-rapl:0:1": 10.0,
        "intel-rapl:1:1": 90.0,
        "intel-rapl:2": 250.0,
        "intel-rapl-mmio:0": 62.5,
    }
    assert cpu.max_interval_s == pytest.approx(0.5 * 400.0 / MAX_POWER_W)  # package-1: 400 J range
    step = 0.15  # below max_interval_s (0.2 s)
    wraps = 0
    previous = int(server.counter_path("intel-rapl:1").read_text())
    for _ in range(40):
        server.advance(power, step)
        clock.now += step
        cpu_j, dram_j = cpu.read(), dram.read()
        current = int(server.counter_path("intel-rapl:1").read_text())
        wraps += current < previous
        previous = current
    assert wraps >= 2
    assert cpu.devices() == ["package-0", "package-1", "package-10"]
    assert dram.devices() == ["dram-0", "dram-1"]
    seconds = 40 * step
    # Every wrap is counted exactly: the totals match the energy written, to the microjoule.
    assert cpu_j == pytest.approx([62.5 * seconds, 118.25 * seconds, 20.0 * seconds], abs=2e-6)
    assert dram_j == pytest.approx([7.5 * seconds, 4.25 * seconds], abs=2e-6)
    cpu.close()
    dram.close()


def test_readings_are_monotonic_and_start_at_zero(server: FakePowercap) -> None:
    """The first reading counts from creation, and readings never decrease."""
    zones = RaplLayout.scan(server.root).cpu
    source = RaplSource(root=server.root, component="cpu", zones=zones)
    assert source.read() == [0.0, 0.0, 0.0]
    history = []
    for _ in range(10):
        server.advance({"intel-rapl:1": 150.0}, 0.1)
        history.append(source.read()[1])
    assert history == sorted(history)
    assert history[-1] == pytest.approx(150.0)  # across one wrap of package-1
    source.close()


def test_max_interval_uses_range_and_power_bound(server: FakePowercap) -> None:
    """max_interval_s is half the shortest wrap time: range / max(1000 W, the zone's ceiling)."""
    package0 = RaplLayout.scan(server.root).cpu[0]
    assert package0.max_power_w == pytest.approx(4 * 205.0)  # 4 x constraint_0_max_power_uw
    assert package0.wrap_period_s == pytest.approx(REAL_RANGE_UJ / 1e6 / 1000.0)  # 820 W < 1000 W
    source = RaplSource(root=server.root, component="cpu", zones=[package0])
    assert source.max_interval_s == pytest.approx(0.5 * 262.14332885)
    source.close()
    (server.dirs["intel-rapl:0"] / "constraint_0_max_power_uw").write_text("400000000\n")
    zone = RaplLayout.scan(server.root).cpu[0]
    assert zone.max_power_w == pytest.approx(1600.0)
    assert zone.wrap_period_s == pytest.approx(REAL_RANGE_UJ / 1e6 / 1600.0)


def test_missing_range_file_is_unknown_and_keeps_a_short_interval(server: FakePowercap) -> None:
    """Without max_energy_range_uj the range is unknown; a 32-bit range sets the read interval."""
    (server.dirs["intel-rapl:10"] / "max_energy_range_uj").unlink()
    zone = RaplLayout.scan(server.root).cpu[2]
    assert zone.max_energy_range_uj is None
    assert zone.wrap_period_s == pytest.approx(4294.967296 / 1000.0)


def test_long_gap_is_logged(server: FakePowercap, caplog: pytest.LogCaptureFixture) -> None:
    """Reads further apart than a wrap could take are logged once, from the second read on."""
    clock = Clock()
    source = RaplSource(
        root=server.root, component="cpu", zones=RaplLayout.scan(server.root).cpu, clock=clock
    )
    clock.now += 10.0
    with caplog.at_level(logging.WARNING, logger="carbonkit_rapl"):
        source.read()  # the first read is the tracker's starting point: no warning
        assert not caplog.records
        for _ in range(2):
            clock.now += 10.0
            source.read()
    warnings = [r for r in caplog.records if "undercounted" in r.getMessage()]
    assert len(warnings) == 1
    source.close()


def test_vanished_file_is_reopened(
    server: FakePowercap, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A counter whose descriptor stops working is reopened once and the count goes on."""
    opened: dict[str, int] = {}

    def recording_opener(path: str, flags: int) -> int:
        opened[path] = os.open(path, flags)
        return opened[path]

    zones = RaplLayout.scan(server.root).cpu
    source = RaplSource(root=server.root, component="cpu", zones=zones, opener=recording_opener)
    server.advance({"intel-rapl:0": 50.0}, 1.0)
    assert source.read()[0] == pytest.approx(50.0)
    # The device goes away and comes back: the old descriptor fails (EISDIR here, ENODEV on
    # sysfs) and a new counter file appears, continuing from where it was.
    counter = server.counter_path("intel-rapl:0")
    old_fd = opened[str(zones[0].energy_path)]
    counter.unlink()
    directory_fd = os.open(tmp_path, os.O_RDONLY)
    os.dup2(directory_fd, old_fd)
    os.close(directory_fd)
    server.advance({"intel-rapl:0": 50.0}, 1.0)
    with caplog.at_level(logging.INFO, logger="carbonkit_rapl"):
        assert source.read()[0] == pytest.approx(100.0)
    assert any("reopening" in r.getMessage() for r in caplog.records)
    server.advance({"intel-rapl:0": 50.0}, 1.0)
    assert source.read()[0] == pytest.approx(150.0)
    source.close()


def test_counter_restarting_lower_after_reopen_counts_nothing(server: FakePowercap, tmp_path: Path) -> None:
    """After a reopen, a lower counter (reset or wrap, undecidable) adds nothing for that interval."""
    opened: dict[str, int] = {}

    def recording_opener(path: str, flags: int) -> int:
        opened[path] = os.open(path, flags)
        return opened[path]

    server.advance({"intel-rapl:0": 100.0}, 1.0)
    zones = RaplLayout.scan(server.root).cpu
    source = RaplSource(root=server.root, component="cpu", zones=zones, opener=recording_opener)
    server.advance({"intel-rapl:0": 100.0}, 1.0)
    assert source.read()[0] == pytest.approx(100.0)
    directory_fd = os.open(tmp_path, os.O_RDONLY)
    os.dup2(directory_fd, opened[str(zones[0].energy_path)])
    os.close(directory_fd)
    server.counter_path("intel-rapl:0").write_text("1000000\n")  # the device came back reset
    assert source.read()[0] == pytest.approx(100.0)
    server.counter_path("intel-rapl:0").write_text("3000000\n")
    assert source.read()[0] == pytest.approx(102.0)
    source.close()


def test_file_gone_for_good_raises(server: FakePowercap, tmp_path: Path) -> None:
    """A counter that cannot be reopened raises MeasurementError naming the zone."""
    opened: dict[str, int] = {}

    def recording_opener(path: str, flags: int) -> int:
        opened[path] = os.open(path, flags)
        return opened[path]

    zones = RaplLayout.scan(server.root).dram
    source = RaplSource(root=server.root, component="dram", zones=zones, opener=recording_opener)
    path = zones[1].energy_path
    path.unlink()
    directory_fd = os.open(tmp_path, os.O_RDONLY)
    os.dup2(directory_fd, opened[str(path)])
    os.close(directory_fd)
    with pytest.raises(MeasurementError, match=r"intel-rapl:1:0 \(dram-1\) is gone"):
        source.read()
    source.close()
    source.close()  # idempotent


def test_permission_denied_gives_a_warning_note(server: FakePowercap) -> None:
    """Unreadable counters give no source and one warn=True note saying how to grant access."""
    result = probe(server.root, opener=deny_counters)
    assert len(result) == 1
    note = result[0]
    assert isinstance(note, Unavailable)
    assert note.warn is True
    assert note.plugin == "rapl"
    assert "permission denied" in note.reason
    assert str(server.dirs["intel-rapl:0"].resolve() / "energy_uj") in note.reason
    assert f"sudo chmod o+r {server.root}/intel-rapl:*/energy_uj" in note.hint
    assert "intel-rapl:*/intel-rapl:*:*/energy_uj" in note.hint
    assert "CVE-2020-8694" in note.hint
    assert "PLATYPUS" in note.hint
    assert "systemd-tmpfiles" in note.hint
    assert note.hint.startswith("Run once, as root: sudo carbonkit setup rapl")  # the lasting fix first


def test_permission_denied_on_real_file_mode(server: FakePowercap) -> None:
    """With the real opener, a mode-000 counter gives the permission note (when the OS refuses)."""
    for zone in ("intel-rapl:0", "intel-rapl:1", "intel-rapl:10"):
        server.counter_path(zone).chmod(0)
    try:
        os.close(os.open(server.counter_path("intel-rapl:0"), os.O_RDONLY))
    except PermissionError:
        pass
    else:
        pytest.skip("this process may read mode-000 files (root); covered by the injected opener")
    result = probe(server.root)
    assert [type(item) for item in result] == [Unavailable]
    assert result[0].warn is True


def test_no_powercap_directory(tmp_path: Path) -> None:
    """No powercap directory: a quiet note naming the path, no source."""
    missing = tmp_path / "no" / "powercap"
    result = probe(missing)
    assert len(result) == 1
    assert isinstance(result[0], Unavailable)
    assert result[0].warn is False
    assert result[0].reason == f"no RAPL powercap interface at {missing}"


def test_powercap_without_packages(tmp_path: Path) -> None:
    """Only a psys zone and a non-RAPL zone: nothing is offered, and the note says what was seen."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "psys")
    fake.control("dtpm")
    fake.zone("dtpm:0", "soc", control="dtpm")
    result = probe(fake.root)
    assert len(result) == 1
    assert isinstance(result[0], Unavailable)
    assert "intel-rapl:0 (psys: whole platform" in result[0].reason
    assert "dtpm:0 (soc: control type dtpm is not RAPL)" in result[0].reason
    assert "intel-rapl-tpmi" in result[0].reason  # says which control types were looked for
    assert result[0].warn is False


def test_amd_packages_under_intel_rapl_without_dram(tmp_path: Path) -> None:
    """AMD: the kernel's MSR driver publishes package and core zones under intel-rapl, with no
    DRAM zone and no constraint files. rapl:cpu comes with a note for DRAM and a default ceiling."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    for n in (0, 1):
        fake.zone(f"intel-rapl:{n}", f"package-{n}", range_uj=AMD_RANGE_UJ, constraints=False)
        fake.zone(f"intel-rapl:{n}:0", "core", range_uj=AMD_RANGE_UJ, constraints=False)
    result = probe(fake.root)
    sources = sources_by_name(result)
    assert list(sources) == ["rapl:cpu"]
    cpu = sources["rapl:cpu"]
    assert cpu.devices() == ["package-0", "package-1"]
    assert cpu.max_power_w == carbonkit_rapl.DEFAULT_PACKAGE_MAX_POWER_W == 1000.0
    assert [zone.max_power_basis for zone in cpu.zones] == ["default for a package"] * 2
    notes = [item for item in result if isinstance(item, Unavailable)]
    assert len(notes) == 1
    assert "dram" in notes[0].reason
    assert notes[0].warn is False
    fake.advance({"intel-rapl:0": 30.0, "intel-rapl:1": 45.0, "intel-rapl:0:0": 20.0}, 2.0)
    assert cpu.read() == pytest.approx([60.0, 90.0])
    cpu.close()


def test_sources_satisfy_the_protocol(server: FakePowercap) -> None:
    """Both sources are PowerSources: measured energy, named rapl:<component>."""
    sources = sources_by_name(probe(server.root))
    assert list(sources) == ["rapl:cpu", "rapl:dram"]
    for component, source in zip(("cpu", "dram"), sources.values(), strict=True):
        assert isinstance(source, carbonkit.PowerSource)
        assert (source.component, source.method, source.kind) == (component, "measured", "energy")
        assert source.max_interval_s > 0
        source.close()


def test_bad_construction_is_refused(server: FakePowercap) -> None:
    """A source needs a known component and at least one zone."""
    zones = RaplLayout.scan(server.root).cpu
    with pytest.raises(ValueError, match="'cpu' or 'dram'"):
        RaplSource(root=server.root, component="gpu", zones=zones)
    with pytest.raises(ValueError, match="one or more RaplZone"):
        RaplSource(root=server.root, component="cpu", zones=())


def test_failed_open_closes_what_was_opened(server: FakePowercap) -> None:
    """If one counter cannot be opened, the descriptors already opened are closed."""
    opened: list[int] = []

    def second_fails(path: str, flags: int) -> int:
        if opened:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        opened.append(os.open(path, flags))
        return opened[-1]

    with pytest.raises(PermissionError):
        RaplSource(
            root=server.root, component="cpu", zones=RaplLayout.scan(server.root).cpu, opener=second_fails
        )
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened[0])


def test_zone_record_is_plain_data() -> None:
    """RaplZone names its counter file and derives the wrap period from range and power."""
    zone = RaplZone(label="package-0", zone="intel-rapl:0", path=Path("/x"), max_energy_range_uj=10**9)
    assert zone.energy_path == Path("/x/energy_uj")
    assert zone.wrap_period_s == pytest.approx(1.0)


def test_hook_register_power_sources(server: FakePowercap, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook, called through pluggy, reads CARBONKIT_RAPL_ROOT when it runs."""
    pm = pluggy.PluginManager("carbonkit")
    pm.add_hookspecs(carbonkit.hookspecs)
    pm.register(carbonkit_rapl, name="rapl")
    pm.check_pending()
    monkeypatch.setenv("CARBONKIT_RAPL_ROOT", str(server.root))
    (result,) = pm.hook.register_power_sources(config=Config())
    sources = sources_by_name(result)
    assert list(sources) == ["rapl:cpu", "rapl:dram"]
    assert sources["rapl:cpu"].root == server.root
    for source in sources.values():
        source.close()
    monkeypatch.setenv("CARBONKIT_RAPL_ROOT", str(server.base / "elsewhere"))
    (result,) = pm.hook.register_power_sources(config=Config())
    assert [type(item) for item in result] == [Unavailable]
    assert str(server.base / "elsewhere") in result[0].reason


def test_hook_option_wins_over_environment(server: FakePowercap, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rapl.root option takes precedence over CARBONKIT_RAPL_ROOT."""
    monkeypatch.setenv("CARBONKIT_RAPL_ROOT", str(server.base / "elsewhere"))
    result = carbonkit_rapl.register_power_sources(config=Config(options={"rapl.root": str(server.root)}))
    sources = sources_by_name(result)
    assert list(sources) == ["rapl:cpu", "rapl:dram"]
    for source in sources.values():
        source.close()


def test_default_root_is_sysfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a setting, the hook looks at /sys/class/powercap."""
    root = carbonkit_rapl.resolve_root(Config(), environ={})
    assert (root.path, root.setting, root.named) == (Path("/sys/class/powercap"), "", None)
    assert carbonkit_rapl._root_from(Config()) == Path("/sys/class/powercap")


def test_sysfs_root_variable_moves_the_tree(server: FakePowercap, monkeypatch: pytest.MonkeyPatch) -> None:
    """CARBONKIT_SYSFS_ROOT names a sysfs mount: the powercap tree is <it>/class/powercap."""
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(server.sysfs))
    result = carbonkit_rapl.register_power_sources(config=Config())
    sources = sources_by_name(result)
    assert list(sources) == ["rapl:cpu", "rapl:dram"]
    assert sources["rapl:cpu"].root == server.root
    for source in sources.values():
        source.close()


def test_root_settings_in_order_of_precedence(tmp_path: Path) -> None:
    """Option rapl.root, then CARBONKIT_RAPL_ROOT, then CARBONKIT_SYSFS_ROOT; blank values are unset."""
    env = {"CARBONKIT_RAPL_ROOT": "/a/powercap", "CARBONKIT_SYSFS_ROOT": "/host/sys"}
    resolve = carbonkit_rapl.resolve_root
    assert resolve(Config(options={"rapl.root": "/o"}), env).path == Path("/o")
    assert resolve(Config(), env).path == Path("/a/powercap")
    assert resolve(Config(), env).setting == "CARBONKIT_RAPL_ROOT=/a/powercap"
    only_sysfs = resolve(Config(), {"CARBONKIT_RAPL_ROOT": " ", "CARBONKIT_SYSFS_ROOT": "/host/sys"})
    assert only_sysfs.path == Path("/host/sys/class/powercap")
    assert (only_sysfs.setting, only_sysfs.named) == ("CARBONKIT_SYSFS_ROOT=/host/sys", Path("/host/sys"))
    assert resolve(Config(), {"CARBONKIT_SYSFS_ROOT": ""}).path == Path("/sys/class/powercap")


def test_sysfs_root_that_does_not_exist_warns_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CARBONKIT_SYSFS_ROOT that is not a directory is a user error: a warning note naming it."""
    missing = tmp_path / "host" / "sys"
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(missing))
    (note,) = carbonkit_rapl.register_power_sources(config=Config())
    assert isinstance(note, Unavailable)
    assert note.warn is True
    assert f"CARBONKIT_SYSFS_ROOT={missing}" in note.reason
    assert str(missing / "class" / "powercap") in note.reason


def test_sysfs_without_powercap_is_a_quiet_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sysfs mount without a powercap class (a virtual machine) gives a quiet note naming the setting."""
    (tmp_path / "sys" / "class").mkdir(parents=True)
    monkeypatch.setenv("CARBONKIT_SYSFS_ROOT", str(tmp_path / "sys"))
    (note,) = carbonkit_rapl.register_power_sources(config=Config())
    assert isinstance(note, Unavailable)
    assert note.warn is False
    assert "CARBONKIT_SYSFS_ROOT=" in note.reason


# -- every control type ----------------------------------------------------------------------


def add_package(fake: FakePowercap, control: str, n: int, *, index: int | None = None, dram: bool = True) -> None:
    """Package n as zone <control>:<index>, with a DRAM subzone <control>:<index>:0."""
    index = n if index is None else index
    fake.zone(f"{control}:{index}", f"package-{n}", control=control, max_power_uw=(350_000_000, 420_000_000))
    if dram:
        fake.zone(f"{control}:{index}:0", "dram", control=control, max_power_uw=60_000_000)


def test_intel_rapl_only(tmp_path: Path) -> None:
    """The MSR layout: two packages with DRAM and a psys zone, all under intel-rapl."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    add_package(fake, "intel-rapl", 0)
    add_package(fake, "intel-rapl", 1)
    fake.zone("intel-rapl:2", "psys")
    layout = RaplLayout.scan(fake.root)
    assert [(z.label, z.zone) for z in layout.cpu] == [("package-0", "intel-rapl:0"), ("package-1", "intel-rapl:1")]
    assert [(z.label, z.zone) for z in layout.dram] == [("dram-0", "intel-rapl:0:0"), ("dram-1", "intel-rapl:1:0")]
    assert layout.control_types == ("intel-rapl",)
    assert layout.skipped == ("intel-rapl:2 (psys: whole platform, overlaps the packages)",)


def test_intel_rapl_tpmi_only(tmp_path: Path) -> None:
    """Xeon 6 with the TPMI driver naming its control type intel-rapl-tpmi: packages and DRAM
    are found there, psys (on the domain-root package) is left out, and energy is counted."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl-tpmi")
    add_package(fake, "intel-rapl-tpmi", 0)
    add_package(fake, "intel-rapl-tpmi", 1)
    fake.zone("intel-rapl-tpmi:2", "psys", control="intel-rapl-tpmi")
    sources = sources_by_name(probe(fake.root))
    cpu, dram = sources["rapl:cpu"], sources["rapl:dram"]
    assert [z.zone for z in cpu.zones] == ["intel-rapl-tpmi:0", "intel-rapl-tpmi:1"]
    assert cpu.devices() == ["package-0", "package-1"]
    assert [z.zone for z in dram.zones] == ["intel-rapl-tpmi:0:0", "intel-rapl-tpmi:1:0"]
    assert dram.devices() == ["dram-0", "dram-1"]
    watts = {"intel-rapl-tpmi:0": 300.0, "intel-rapl-tpmi:1": 250.0, "intel-rapl-tpmi:2": 900.0}
    fake.advance({**watts, "intel-rapl-tpmi:0:0": 40.0, "intel-rapl-tpmi:1:0": 35.0}, 2.0)
    assert cpu.read() == pytest.approx([600.0, 500.0])
    assert dram.read() == pytest.approx([80.0, 70.0])
    cpu.close()
    dram.close()


def test_both_control_types_for_the_same_packages_count_each_once(tmp_path: Path) -> None:
    """intel-rapl:<n> (MSR) and intel-rapl-tpmi:<n> both publish packages 0 and 1: each package
    and each DRAM zone is counted once, from intel-rapl, and the energy is not doubled."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.control("intel-rapl-tpmi")
    for n in (0, 1):
        add_package(fake, "intel-rapl", n)
        add_package(fake, "intel-rapl-tpmi", n)
    layout = RaplLayout.scan(fake.root)
    assert [z.zone for z in layout.cpu] == ["intel-rapl:0", "intel-rapl:1"]
    assert [z.zone for z in layout.dram] == ["intel-rapl:0:0", "intel-rapl:1:0"]
    assert sorted(layout.skipped) == [
        "intel-rapl-tpmi:0 (package-0: already counted from intel-rapl:0)",
        "intel-rapl-tpmi:0:0 (dram: already counted from intel-rapl:0:0)",
        "intel-rapl-tpmi:1 (package-1: already counted from intel-rapl:1)",
        "intel-rapl-tpmi:1:0 (dram: already counted from intel-rapl:1:0)",
    ]
    sources = sources_by_name(probe(fake.root))
    watts = {"package": 200.0, "dram": 30.0}
    fake.advance({zone: watts["dram" if zone.count(":") == 2 else "package"] for zone in fake.dirs}, 5.0)
    assert sources["rapl:cpu"].read() == pytest.approx([1000.0, 1000.0])
    assert sources["rapl:dram"].read() == pytest.approx([150.0, 150.0])
    for source in sources.values():
        source.close()


def test_preference_is_per_package_and_per_component(tmp_path: Path) -> None:
    """Each package, and each package's DRAM, comes from the first control type that has it:
    package 1 only under TPMI is still counted; DRAM missing under intel-rapl comes from TPMI."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.control("intel-rapl-tpmi")
    add_package(fake, "intel-rapl", 0, dram=False)
    add_package(fake, "intel-rapl-tpmi", 0)
    add_package(fake, "intel-rapl-tpmi", 1)
    layout = RaplLayout.scan(fake.root)
    assert [(z.label, z.zone) for z in layout.cpu] == [
        ("package-0", "intel-rapl:0"),
        ("package-1", "intel-rapl-tpmi:1"),
    ]
    assert [(z.label, z.zone) for z in layout.dram] == [
        ("dram-0", "intel-rapl-tpmi:0:0"),
        ("dram-1", "intel-rapl-tpmi:1:0"),
    ]
    assert layout.skipped == ("intel-rapl-tpmi:0 (package-0: already counted from intel-rapl:0)",)
    assert layout.control_types == ("intel-rapl", "intel-rapl-tpmi")


def test_mmio_mirror_is_used_only_without_another_interface(tmp_path: Path) -> None:
    """intel-rapl-mmio mirrors package 0: skipped next to intel-rapl:0, used when it is alone."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl-mmio")
    # A 28 W laptop part whose short-term (PL2) maximum is 64 W.
    fake.zone("intel-rapl-mmio:0", "package-0", control="intel-rapl-mmio", max_power_uw=(28_000_000, 64_000_000))
    layout = RaplLayout.scan(fake.root)
    assert [(z.label, z.zone) for z in layout.cpu] == [("package-0", "intel-rapl-mmio:0")]
    assert layout.cpu[0].max_power_w == pytest.approx(4 * 64.0)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0")
    layout = RaplLayout.scan(fake.root)
    assert [z.zone for z in layout.cpu] == ["intel-rapl:0"]
    assert layout.skipped == ("intel-rapl-mmio:0 (package-0: already counted from intel-rapl:0)",)


def test_dies_are_devices_and_psys_of_other_packages_is_left_out(tmp_path: Path) -> None:
    """package-<n>-die-<m> zones are devices of their own (DRAM: dram-<n>-die-<m>); psys-<n> is skipped."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0-die-0")
    fake.zone("intel-rapl:0:0", "dram")
    fake.zone("intel-rapl:1", "package-0-die-1")
    fake.zone("intel-rapl:1:0", "dram")
    fake.zone("intel-rapl:2", "psys")
    fake.zone("intel-rapl:3", "psys-1")
    layout = RaplLayout.scan(fake.root)
    assert [z.label for z in layout.cpu] == ["package-0-die-0", "package-0-die-1"]
    assert [z.label for z in layout.dram] == ["dram-0-die-0", "dram-0-die-1"]
    assert "intel-rapl:3 (psys-1: whole platform, overlaps the packages)" in layout.skipped


def test_permission_hint_names_the_control_types_in_use(tmp_path: Path) -> None:
    """On a TPMI machine the chmod and tmpfiles patterns name intel-rapl-tpmi."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl-tpmi")
    add_package(fake, "intel-rapl-tpmi", 0)
    (note,) = probe(fake.root, opener=deny_counters)
    assert isinstance(note, Unavailable) and note.warn is True
    assert f"{fake.root}/intel-rapl-tpmi:*/energy_uj" in note.hint
    assert f"{fake.root}/intel-rapl-tpmi:*/intel-rapl-tpmi:*:*/energy_uj" in note.hint
    assert f"'z {fake.root}/intel-rapl-tpmi:*/energy_uj 0444 - - -'" in note.hint


# -- wraps and counters without a known range -------------------------------------------------


def one_zone(tmp_path: Path, **kwargs: object) -> tuple[FakePowercap, RaplSource]:
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0", **kwargs)  # type: ignore[arg-type]
    (source,) = [s for s in probe(fake.root) if isinstance(s, RaplSource)]
    return fake, source


def test_wrap_adds_the_range_plus_one(tmp_path: Path) -> None:
    """The counter runs 0..max inclusive: from v0 to v1 across a wrap is (max - v0) + 1 + v1 uJ."""
    fake, source = one_zone(tmp_path, range_uj=999_999, start_uj=999_990)
    fake.set_raw("intel-rapl:0", 10)  # 999_990 -> 999_999 is 9 uJ, -> 0 one more, -> 10 ten more
    assert source.read() == [20 / 1e6]
    fake.set_raw("intel-rapl:0", 999_999)
    assert source.read() == [(20 + 999_989) / 1e6]
    fake.set_raw("intel-rapl:0", 0)  # the smallest wrap: one microjoule
    assert source.read() == [(20 + 999_989 + 1) / 1e6]
    source.close()


def test_wrap_through_the_fake_hardware_is_exact(tmp_path: Path) -> None:
    """Energy written by the fake (modulo range + 1, as the hardware counts) is read back to the uJ."""
    fake, source = one_zone(tmp_path, range_uj=1_000_000, start_uj=900_000)
    readings = []
    for _ in range(7):
        fake.advance({"intel-rapl:0": 0.3}, 1.0)  # 300_000 uJ a step: a wrap every 3 or 4 steps
        readings.append(source.read()[0])
    assert readings[-1] == pytest.approx(2.1, abs=1e-9)
    assert readings == sorted(readings)
    source.close()


@pytest.mark.parametrize(
    "range_file", ["0\n", None, "unreadable"], ids=["range-0", "no-range-file", "range-unreadable"]
)
def test_unknown_range_never_gives_negative_or_huge_energy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, range_file: str | None
) -> None:
    """max_energy_range_uj reading 0, absent or unreadable: a decrease counts nothing, with one
    warning, instead of negative energy or a guessed range; increases are counted as usual."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    written = None if range_file == "unreadable" else range_file
    path = fake.zone("intel-rapl:0", "package-0", range_file=written, start_uj=5_000_000)
    if range_file == "unreadable":
        (path / "max_energy_range_uj").mkdir()  # reading it fails with an OSError, as a failing driver read does
    (source,) = [s for s in probe(fake.root) if isinstance(s, RaplSource)]
    assert source.zones[0].max_energy_range_uj is None
    with caplog.at_level(logging.WARNING, logger="carbonkit_rapl"):
        fake.set_raw("intel-rapl:0", 7_000_000)
        assert source.read() == [2.0]
        fake.set_raw("intel-rapl:0", 1_000)  # went back: a wrap or a reset, undecidable
        assert source.read() == [2.0]
        fake.set_raw("intel-rapl:0", 501_000)
        assert source.read() == [2.5]
        fake.set_raw("intel-rapl:0", 10)  # again: counted as nothing, logged at debug only
        assert source.read() == [2.5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "range is unknown" in warnings[0] and "not counted" in warnings[0]
    source.close()


def test_reading_above_the_range_makes_it_unknown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A counter reading above max_energy_range_uj shows the range is wrong: it is no longer trusted
    for wraps, so the next decrease counts nothing rather than a wrong range."""
    fake, source = one_zone(tmp_path, range_uj=1_000_000)
    with caplog.at_level(logging.WARNING, logger="carbonkit_rapl"):
        fake.set_raw("intel-rapl:0", 3_000_000)
        assert source.read() == [3.0]
        fake.set_raw("intel-rapl:0", 100)
        assert source.read() == [3.0]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "above its max_energy_range_uj 1000000" in messages
    source.close()


# -- power ceilings ---------------------------------------------------------------------------


def test_max_power_w_comes_from_the_largest_constraint(tmp_path: Path) -> None:
    """The ceiling is 4 x the largest readable constraint_*_max_power_uw; zero values are ignored."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    # PL1 = TDP 125 W, PL2 = 253 W (a desktop part), PL4 reads 0 (not reported).
    fake.zone("intel-rapl:0", "package-0", max_power_uw=(125_000_000, 253_000_000, 0))
    fake.zone("intel-rapl:0:0", "dram", max_power_uw=0)
    fake.zone("intel-rapl:0:1", "core")
    layout = RaplLayout.scan(fake.root)
    package, dram = layout.cpu[0], layout.dram[0]
    assert package.max_power_w == pytest.approx(4 * 253.0)
    assert package.max_power_basis == "4 x constraint_1_max_power_uw (253 W)"
    assert dram.max_power_w == carbonkit_rapl.DEFAULT_DRAM_MAX_POWER_W == 500.0
    assert dram.max_power_basis == "default for a DRAM zone"


def test_each_source_exposes_a_sensible_max_power_w(server: FakePowercap) -> None:
    """rapl:cpu and rapl:dram declare a ceiling per device: above any real draw, far below a misread wrap."""
    sources = sources_by_name(probe(server.root))
    cpu, dram = sources["rapl:cpu"], sources["rapl:dram"]
    # package-0 has a 205 W constraint (820 W); package-1 and package-10 have none readable (1000 W).
    assert cpu.max_power_w == pytest.approx(1000.0)
    assert dram.max_power_w == pytest.approx(500.0)
    for source in (cpu, dram):
        assert 100.0 <= source.max_power_w <= 5000.0
        # A full-range jump (a reset misread as a wrap) in one second would be far above it.
        assert REAL_RANGE_UJ / 1e6 > 100 * source.max_power_w
        source.close()
