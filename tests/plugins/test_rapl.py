"""Tests of the rapl plugin against a fake powercap tree laid out as the kernel lays it out."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import carbonkit
import carbonkit.hookspecs
import carbonkit_rapl
import pluggy
import pytest
from carbonkit import Config, MeasurementError, Unavailable
from carbonkit_rapl import MAX_POWER_W, RaplLayout, RaplSource, RaplZone, probe

#: The range real Intel packages report (about 262 kJ).
REAL_RANGE_UJ = 262_143_328_850


class FakePowercap:
    """A powercap tree: zones under devices/virtual/powercap, symlinked from class/powercap.

    Counters hold exact energy in joules; ``advance`` adds energy at a given power and writes
    the counter modulo the zone's range, as the hardware does.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.devices = base / "sys" / "devices" / "virtual" / "powercap"
        self.root = base / "sys" / "class" / "powercap"
        self.root.mkdir(parents=True)
        self.exact_j: dict[str, float] = {}
        self.start_uj: dict[str, int] = {}
        self.range_uj: dict[str, int] = {}
        self.dirs: dict[str, Path] = {}

    def control(self, control: str) -> None:
        (self.devices / control).mkdir(parents=True)
        (self.devices / control / "enabled").write_text("1\n")
        self._link(control, self.devices / control)

    def zone(
        self,
        zone: str,
        name: str,
        *,
        control: str = "intel-rapl",
        range_uj: int = REAL_RANGE_UJ,
        start_uj: int = 0,
        max_power_uw: int | None = None,
    ) -> Path:
        """Add a zone; ``intel-rapl:0:1`` nests inside ``intel-rapl:0``."""
        parent = self.devices / control
        parts = zone.split(":")
        if len(parts) == 3:
            parent = self.dirs[":".join(parts[:2])]
        path = parent / zone
        path.mkdir()
        (path / "name").write_text(f"{name}\n")
        (path / "enabled").write_text("1\n")
        (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
        (path / "constraint_0_name").write_text("long_term\n")
        (path / "constraint_0_power_limit_uw").write_text("95000000\n")
        if max_power_uw is not None:
            (path / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
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

    def counter_path(self, zone: str) -> Path:
        return self.dirs[zone] / "energy_uj"

    def _write(self, zone: str) -> None:
        raw = (self.start_uj[zone] + round(self.exact_j[zone] * 1e6)) % self.range_uj[zone]
        self.counter_path(zone).write_text(f"{raw}\n")

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
    """Energy per package and per DRAM zone matches the exact figure within 1% across wraps."""
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
    assert cpu_j == pytest.approx([62.5 * seconds, 118.25 * seconds, 20.0 * seconds], rel=0.01)
    assert dram_j == pytest.approx([7.5 * seconds, 4.25 * seconds], rel=0.01)
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
    """max_interval_s is half the shortest wrap time: range / max(1000 W, 2 x constraint max power)."""
    package0 = RaplLayout.scan(server.root).cpu[0]
    assert package0.max_power_w == MAX_POWER_W  # 2 x 205 W is under the 1000 W floor
    assert package0.wrap_period_s == pytest.approx(REAL_RANGE_UJ / 1e6 / 1000.0)
    source = RaplSource(root=server.root, component="cpu", zones=[package0])
    assert source.max_interval_s == pytest.approx(0.5 * 262.14332885)
    source.close()
    (server.dirs["intel-rapl:0"] / "constraint_0_max_power_uw").write_text("800000000\n")
    assert RaplLayout.scan(server.root).cpu[0].max_power_w == pytest.approx(1600.0)


def test_missing_range_file_assumes_a_small_counter(server: FakePowercap) -> None:
    """Without max_energy_range_uj, a 32-bit microjoule range is assumed (a short, safe interval)."""
    (server.dirs["intel-rapl:10"] / "max_energy_range_uj").unlink()
    zone = RaplLayout.scan(server.root).cpu[2]
    assert zone.max_energy_range_uj == 2**32
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
    """A powercap directory with only psys and MMIO zones offers nothing, and says what it saw."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "psys")
    fake.control("intel-rapl-mmio")
    fake.zone("intel-rapl-mmio:0", "package-0", control="intel-rapl-mmio")
    result = probe(fake.root)
    assert len(result) == 1
    assert isinstance(result[0], Unavailable)
    assert "psys" in result[0].reason
    assert result[0].warn is False


def test_amd_style_packages_without_dram(tmp_path: Path) -> None:
    """Packages without a DRAM subzone (typical on AMD) give rapl:cpu and a note for DRAM."""
    fake = FakePowercap(tmp_path)
    fake.control("intel-rapl")
    fake.zone("intel-rapl:0", "package-0", range_uj=65_532_610_987)
    fake.zone("intel-rapl:0:0", "core")
    fake.zone("intel-rapl:1", "package-1", range_uj=65_532_610_987)
    result = probe(fake.root)
    sources = sources_by_name(result)
    assert list(sources) == ["rapl:cpu"]
    assert sources["rapl:cpu"].devices() == ["package-0", "package-1"]
    notes = [item for item in result if isinstance(item, Unavailable)]
    assert len(notes) == 1
    assert "dram" in notes[0].reason
    assert notes[0].warn is False
    fake.advance({"intel-rapl:0": 30.0, "intel-rapl:1": 45.0}, 2.0)
    assert sources["rapl:cpu"].read() == pytest.approx([60.0, 90.0])
    sources["rapl:cpu"].close()


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
    monkeypatch.delenv("CARBONKIT_RAPL_ROOT", raising=False)
    assert carbonkit_rapl._root_from(Config()) == Path("/sys/class/powercap")
