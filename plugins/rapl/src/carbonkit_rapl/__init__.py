"""carbonkit plugin ``rapl``: CPU package and DRAM energy from the Linux powercap interface.

Source: Intel's Running Average Power Limit (RAPL) energy counters, as the Linux powercap
framework publishes them under ``/sys/class/powercap`` (driver ``intel_rapl_common`` with
``intel_rapl_msr``; recent kernels publish AMD's compatible counters through the same zones).
Each zone directory holds ``name``, ``energy_uj`` (a counter in microjoules that wraps at
``max_energy_range_uj``) and power-limit ``constraint_*`` files.
Reference: https://docs.kernel.org/power/powercap/powercap.html

What this plugin offers (kind ``"energy"``, method ``"measured"``):

- ``rapl:cpu``: one device per processor package (zones ``intel-rapl:<n>``, named
  ``package-<n>``), cumulative joules since the source was created;
- ``rapl:dram``: one device per package that has a ``dram`` subzone.

``core`` and ``uncore`` subzones are parts of their package and never added; ``psys`` (the
whole platform) and ``intel-rapl-mmio:*`` (a second interface to the same package counters)
overlap the packages and are left out.

Units: the files hold microjoules (uJ); :meth:`RaplSource.read` returns joules (J).
Terms: reading ``energy_uj`` is restricted to root since November 2020 (Linux 5.10, backported
to stable kernels) because energy readings are a power side channel (PLATYPUS,
CVE-2020-8694); see the README for how to grant access and what that exposes.

Settings: ``CARBONKIT_RAPL_ROOT`` (or the option ``rapl.root``) points at another powercap
directory, read when the hook runs.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs
from attrs import define, field, frozen
from carbonkit import hookimpl
from carbonkit.errors import MeasurementError
from carbonkit.records import Unavailable

if TYPE_CHECKING:
    from carbonkit.config import Config

__all__ = [
    "DEFAULT_ROOT",
    "MAX_POWER_W",
    "ROOT_ENV",
    "ROOT_OPTION",
    "RaplLayout",
    "RaplSource",
    "RaplZone",
    "probe",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

PLUGIN = "rapl"
#: Where the kernel publishes powercap zones.
DEFAULT_ROOT = Path("/sys/class/powercap")
#: Environment variable naming another powercap directory (read when the hook runs).
ROOT_ENV = "CARBONKIT_RAPL_ROOT"
#: ``config.options`` key naming another powercap directory; wins over the variable.
ROOT_OPTION = "rapl.root"
#: The power, in watts, that no RAPL zone is assumed to exceed when the wrap-safe read
#: interval is computed: twice the highest TDP of current server processors (500 W).
MAX_POWER_W = 1000.0
#: Fraction of the shortest possible wrap period allowed between two reads.
SAFETY_FACTOR = 0.5
#: Counter range assumed when ``max_energy_range_uj`` cannot be read: a 32-bit microjoule
#: counter, smaller than any range the kernel reports, so the read interval stays safe.
FALLBACK_RANGE_UJ = 2**32

_PACKAGE_ZONE = re.compile(r"intel-rapl:(\d+)")
_SUBZONE = re.compile(r"intel-rapl:(\d+):(\d+)")
_PACKAGE_NAME = re.compile(r"package-\d+(?:-die-\d+)?")
_PERMISSION_ERRNOS = (errno.EACCES, errno.EPERM)

Opener = Callable[[str, int], int]


def _zone_tuple(value: Iterable[RaplZone]) -> tuple[RaplZone, ...]:
    return tuple(value)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen(kw_only=True)
class RaplZone:
    """One powercap zone whose ``energy_uj`` counter is read: a package or a DRAM subzone.

    :param label: The device label, the zone's ``name`` (``package-0``) or ``dram-<n>`` for the
        DRAM subzone of ``package-<n>``.
    :param zone: The zone's directory name, e.g. ``intel-rapl:0`` or ``intel-rapl:0:2``.
    :param path: The zone's directory, symlinks resolved.
    :param max_energy_range_uj: The counter's range: it wraps to 0 after this many microjoules.
    :param max_power_w: The power, in watts, the zone is assumed never to exceed.
    """

    label: str
    zone: str
    path: Path
    max_energy_range_uj: int
    max_power_w: float = MAX_POWER_W

    @property
    def energy_path(self) -> Path:
        """The counter file, ``<zone>/energy_uj``."""
        return self.path / "energy_uj"

    @property
    def wrap_period_s(self) -> float:
        """The shortest time the counter can take to wrap: range / maximum power, in seconds."""
        return self.max_energy_range_uj / 1e6 / self.max_power_w

    @classmethod
    def from_dir(cls, path: Path, *, label: str, zone: str) -> RaplZone:
        """Read a zone's range and power limits from its directory (files readable by anyone)."""
        range_uj = _read_int(path / "max_energy_range_uj")
        if range_uj is None or range_uj <= 0:
            _logger.debug("%s: no usable max_energy_range_uj, assuming %d uJ", path, FALLBACK_RANGE_UJ)
            range_uj = FALLBACK_RANGE_UJ
        limits = [
            value
            for limit in sorted(path.glob("constraint_*_max_power_uw"))
            if (value := _read_int(limit)) is not None and value > 0
        ]
        max_power_w = max([MAX_POWER_W, *(2 * uw / 1e6 for uw in limits)])
        return cls(label=label, zone=zone, path=path, max_energy_range_uj=range_uj, max_power_w=max_power_w)


@frozen(kw_only=True)
class RaplLayout:
    """The zones found under a powercap directory, by component, and what was left out.

    Build it with :meth:`scan`.

    :param root: The powercap directory scanned.
    :param cpu: The package zones, in index order.
    :param dram: The DRAM subzones, in their package's order.
    :param skipped: Zones seen and not used, each ``"<zone> (<why>)"``.
    """

    root: Path
    cpu: tuple[RaplZone, ...] = field(converter=_zone_tuple, default=())
    dram: tuple[RaplZone, ...] = field(converter=_zone_tuple, default=())
    skipped: tuple[str, ...] = field(converter=_str_tuple, default=())

    @classmethod
    def scan(cls, root: Path) -> RaplLayout:
        """Find the package and DRAM zones under ``root``, counting each zone once.

        The kernel lists every zone at the top level as a symlink into
        ``/sys/devices/virtual/powercap/``, and also nests subzones inside their parent's
        directory; zones are told apart by their resolved path.

        :raises OSError: when ``root`` cannot be listed.
        """
        entries = sorted(root.iterdir(), key=_zone_sort_key)
        seen: set[Path] = set()
        cpu: list[RaplZone] = []
        dram: list[RaplZone] = []
        skipped: list[str] = []
        packages: dict[str, RaplZone] = {}  # by package index, as in "intel-rapl:<n>"

        def subzone(path: Path, zone: str, parent: RaplZone) -> None:
            real = path.resolve()
            if real in seen:
                return
            seen.add(real)
            name = _read_text(real / "name")
            if name == "dram":
                label = "dram" + parent.label[len("package") :]
                dram.append(RaplZone.from_dir(real, label=label, zone=zone))
            elif name in ("core", "uncore"):
                skipped.append(f"{zone} ({name}: part of {parent.label})")
            else:
                skipped.append(f"{zone} ({name or 'unnamed'} subzone: not used)")

        for entry in entries:
            match = _PACKAGE_ZONE.fullmatch(entry.name)
            if match is None:
                if entry.name.startswith("intel-rapl-mmio:"):
                    skipped.append(f"{entry.name} (MMIO interface to the package counters)")
                continue
            real = entry.resolve()
            if real in seen or not real.is_dir():
                continue
            seen.add(real)
            name = _read_text(real / "name")
            if name == "psys":
                skipped.append(f"{entry.name} (psys: whole platform, overlaps the packages)")
                continue
            if name is None or not _PACKAGE_NAME.fullmatch(name):
                skipped.append(f"{entry.name} ({name or 'unnamed'}: not a package)")
                continue
            if any(zone.label == name for zone in cpu):
                name = f"{name} ({entry.name})"
            package = RaplZone.from_dir(real, label=name, zone=entry.name)
            cpu.append(package)
            packages[match.group(1)] = package
            for child in sorted(real.iterdir(), key=_zone_sort_key):
                if _SUBZONE.fullmatch(child.name) and child.is_dir():
                    subzone(child, child.name, package)

        # Subzones listed only at the top level (the kernel nests them too, but be thorough).
        for entry in entries:
            match = _SUBZONE.fullmatch(entry.name)
            if match is None or entry.resolve() in seen:
                continue
            parent = packages.get(match.group(1))
            if parent is None:
                seen.add(entry.resolve())
                skipped.append(f"{entry.name} (its package is not used)")
            else:
                subzone(entry, entry.name, parent)
        return cls(root=root, cpu=cpu, dram=dram, skipped=skipped)


def _check_component(instance: RaplSource, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("cpu", "dram"):
        raise ValueError(f"RaplSource.component must be 'cpu' or 'dram', got {value!r}")


def _check_zones(
    instance: RaplSource, attribute: attrs.Attribute[tuple[RaplZone, ...]], value: tuple[RaplZone, ...]
) -> None:
    if not value or not all(isinstance(zone, RaplZone) for zone in value):
        raise ValueError(f"RaplSource.zones must be one or more RaplZone objects, got {value!r}")


@define
class RaplSource:
    """Cumulative energy of a component's RAPL zones, in joules per zone since creation.

    Creating it opens each zone's ``energy_uj`` once and reads the starting values; reads use
    ``os.pread`` on those descriptors. A counter lower than its previous value has wrapped: its
    range is added. :attr:`max_interval_s` is half the shortest time any counter could take to
    wrap at :attr:`RaplZone.max_power_w`, so reading at least that often never misses a wrap.

    :param root: The powercap directory the zones come from.
    :param component: ``"cpu"`` (packages) or ``"dram"``.
    :param zones: The zones, one device each.
    :param opener: Opens a counter file (``os.open`` signature); the file-system boundary.
    :param clock: Monotonic seconds, used to notice reads further apart than is safe.
    :raises PermissionError: when a counter file may not be read (root-only by default).
    :raises OSError: when a counter file cannot be opened or read for another reason.
    """

    method: ClassVar[str] = "measured"
    kind: ClassVar[str] = "energy"

    root: Path
    component: str = field(validator=_check_component)
    zones: tuple[RaplZone, ...] = field(converter=_zone_tuple, validator=_check_zones)
    opener: Opener = os.open
    clock: Callable[[], float] = time.monotonic
    name: str = field(init=False)
    max_interval_s: float = field(init=False)
    _fds: list[int | None] = field(init=False, factory=list)
    _last_uj: list[int] = field(init=False, factory=list)
    _total_uj: list[int] = field(init=False, factory=list)
    _last_time: float = field(init=False, default=0.0)
    _gap_warned: bool = field(init=False, default=False)
    _read_once: bool = field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self.name = f"{PLUGIN}:{self.component}"
        self.max_interval_s = SAFETY_FACTOR * min(zone.wrap_period_s for zone in self.zones)
        try:
            for zone in self.zones:
                fd = self._open(zone)
                self._fds.append(fd)
                self._last_uj.append(_pread_uj(fd))
                self._total_uj.append(0)
        except BaseException:
            self.close()
            raise
        self._last_time = self.clock()

    def devices(self) -> list[str]:
        """Return the zone labels (``package-0``, ``dram-0``...), in the order of :meth:`read`."""
        return [zone.label for zone in self.zones]

    def read(self) -> list[float]:
        """Return the joules each zone has used since the source was created.

        :raises MeasurementError: when a counter file cannot be read even after reopening it.
        """
        now = self.clock()
        gap = now - self._last_time
        self._last_time = now
        # The first read is the tracker's starting point: a long gap before it (a tracker built
        # well before it starts) does not touch the energy of the run.
        first, self._read_once = not self._read_once, True
        if gap > 2 * self.max_interval_s and not first and not self._gap_warned:
            self._gap_warned = True
            _logger.warning(
                "%s was read %.1f s after its previous read; a counter can wrap in %.1f s at "
                "%.0f W, so energy may be undercounted. Read it at least every %.1f s.",
                self.name,
                gap,
                2 * self.max_interval_s,
                max(zone.max_power_w for zone in self.zones),
                self.max_interval_s,
            )
        joules = []
        for index, zone in enumerate(self.zones):
            raw, reopened = self._read_zone(index)
            delta = raw - self._last_uj[index]
            if delta < 0:
                if reopened:
                    # After a reopen a lower value is a wrap or a reset of the counter:
                    # count nothing rather than guess.
                    _logger.warning(
                        "%s: %s restarted lower after being reopened; the energy since the "
                        "previous read is not counted",
                        self.name,
                        zone.energy_path,
                    )
                    delta = 0
                else:
                    delta += zone.max_energy_range_uj
            self._last_uj[index] = raw
            self._total_uj[index] += delta
            joules.append(self._total_uj[index] / 1e6)
        return joules

    def close(self) -> None:
        """Close the counter files. Safe to call more than once."""
        for index, fd in enumerate(self._fds):
            if fd is not None:
                self._fds[index] = None
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _open(self, zone: RaplZone) -> int:
        return self.opener(str(zone.energy_path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def _read_zone(self, index: int) -> tuple[int, bool]:
        fd = self._fds[index]
        if fd is not None:
            try:
                return _pread_uj(fd), False
            except (OSError, ValueError) as exc:
                _logger.info(
                    "%s: reading %s failed (%s); reopening it", self.name, self.zones[index].energy_path, exc
                )
                self._fds[index] = None
                try:
                    os.close(fd)
                except OSError:
                    pass
        zone = self.zones[index]
        try:
            fd = self._open(zone)
        except OSError as exc:
            raise MeasurementError(
                f"{self.name}: RAPL zone {zone.zone} ({zone.label}) is gone: {zone.energy_path} "
                f"cannot be reopened ({exc})"
            ) from exc
        self._fds[index] = fd
        try:
            return _pread_uj(fd), True
        except (OSError, ValueError) as exc:
            raise MeasurementError(
                f"{self.name}: RAPL zone {zone.zone} ({zone.label}): {zone.energy_path} "
                f"cannot be read after reopening it ({exc})"
            ) from exc


def probe(root: Path, *, opener: Opener = os.open) -> list[RaplSource | Unavailable]:
    """Return the sources that can be read under ``root``, or notes saying why there are none.

    :param root: The powercap directory, normally ``/sys/class/powercap``.
    :param opener: Opens a counter file (``os.open`` signature).
    """
    if not root.is_dir():
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no RAPL powercap interface at {root}",
                hint=(
                    "RAPL counters need Linux on the host itself (most virtual machines and "
                    "macOS/Windows have none) with the intel_rapl_msr module loaded; set "
                    f"{ROOT_ENV} if the powercap directory is mounted elsewhere"
                ),
            )
        ]
    try:
        layout = RaplLayout.scan(root)
    except OSError as exc:
        return [Unavailable(plugin=PLUGIN, reason=f"cannot list the powercap zones at {root}: {exc}")]
    if not layout.cpu:
        found = f" (found only: {'; '.join(layout.skipped)})" if layout.skipped else ""
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no RAPL package zone (intel-rapl:<n> named package-<n>) at {root}{found}",
            )
        ]

    sources: list[RaplSource] = []
    notes: list[Unavailable] = []
    for component, zones in (("cpu", layout.cpu), ("dram", layout.dram)):
        if not zones:
            notes.append(
                Unavailable(
                    plugin=PLUGIN,
                    reason=f"no RAPL dram subzone at {root} (usual on AMD and on client processors)",
                )
            )
            continue
        try:
            sources.append(RaplSource(root=root, component=component, zones=zones, opener=opener))
        except OSError as exc:
            for source in sources:
                source.close()
            if isinstance(exc, PermissionError) or exc.errno in _PERMISSION_ERRNOS:
                return [_permission_note(root, exc)]
            return [
                Unavailable(
                    plugin=PLUGIN,
                    reason=f"cannot read the RAPL energy counters at {root}: {exc}",
                    hint="the counters exist but reading them failed; check dmesg for intel_rapl errors",
                )
            ]
    for skipped in layout.skipped:
        _logger.debug("rapl: not used: %s", skipped)
    return [*sources, *notes]


def _permission_note(root: Path, exc: OSError) -> Unavailable:
    where = exc.filename or root
    return Unavailable(
        plugin=PLUGIN,
        reason=(
            f"permission denied reading {where}: RAPL energy counters are readable by root only "
            "(the kernel default since November 2020); no CPU or DRAM energy is measured"
        ),
        hint=(
            "Grant read access until the next reboot with: "
            f"sudo chmod o+r {root}/intel-rapl:*/energy_uj {root}/intel-rapl:*/intel-rapl:*:*/energy_uj ; "
            "to keep it across reboots, add the systemd-tmpfiles line "
            f"'z {root}/intel-rapl:*/energy_uj 0444 - - -' (and the same for "
            f"{root}/intel-rapl:*/intel-rapl:*:*/energy_uj), or give a dedicated group read "
            "access (mode 0440, group owner) instead of everyone. Be aware that this exposes a "
            "power side channel to whoever can read the files (PLATYPUS, CVE-2020-8694): do it "
            "only where the local users are trusted. Without it, carbonkit-cpu-estimate "
            "estimates CPU power from utilisation instead."
        ),
        warn=True,
    )


def _root_from(config: Config) -> Path:
    configured = config.options.get(ROOT_OPTION) or os.environ.get(ROOT_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_ROOT


def _pread_uj(fd: int) -> int:
    return int(os.pread(fd, 32, 0))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _zone_sort_key(path: Path) -> tuple[str, tuple[int, ...]]:
    prefix, _, numbers = path.name.partition(":")
    return prefix, tuple(int(part) if part.isdigit() else -1 for part in numbers.split(":") if part)


@hookimpl
def register_power_sources(config: Config) -> list[RaplSource | Unavailable]:
    return probe(_root_from(config))
