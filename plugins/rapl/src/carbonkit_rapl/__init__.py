"""carbonkit plugin ``rapl``: CPU package and DRAM energy from the Linux powercap interface.

Source: the RAPL (Running Average Power Limit) energy counters of Intel and AMD processors, as
the Linux powercap framework publishes them under ``/sys/class/powercap``. Three kernel
drivers publish them, each under its own powercap control type:

- ``intel-rapl``: the MSR interface (``intel_rapl_msr``), on Intel since Sandy Bridge and on
  AMD since Zen (AMD's counters use this same control type; there is no ``amd-rapl``); the
  mainline TPMI driver (``intel_rapl_tpmi``) registers its zones under this name too;
- ``intel-rapl-tpmi``: the TPMI interface of Xeon 6 servers, as some kernels name it;
- ``intel-rapl-mmio``: the MMIO mirror of package 0 on client processors
  (``processor_thermal_rapl``).

Each zone directory holds ``name``, ``energy_uj`` (a counter in microjoules running from 0 to
``max_energy_range_uj`` inclusive, then wrapping to 0) and power-limit ``constraint_*`` files.
Reference: https://docs.kernel.org/power/powercap/powercap.html and the kernel's
``drivers/powercap/intel_rapl_common.c``.

What this plugin offers (kind ``"energy"``, method ``"measured"``):

- ``rapl:cpu``: one device per processor package (zones named ``package-<n>`` or
  ``package-<n>-die-<m>``), cumulative joules since the source was created;
- ``rapl:dram``: one device per package that has a ``dram`` subzone.

A package published by several control types is counted once: its zone comes from the first
of :data:`CONTROL_TYPES` that has it, and so does its DRAM zone. ``core`` and ``uncore``
subzones are parts of their package and never added; ``psys`` (the whole platform) overlaps
the packages and is left out.

Each source declares ``max_power_w``, the largest power, in watts, any of its devices can draw:
:data:`CEILING_MARGIN` times the zone's largest ``constraint_*_max_power_uw`` where one can be
read, else :data:`DEFAULT_PACKAGE_MAX_POWER_W` or :data:`DEFAULT_DRAM_MAX_POWER_W`.

Units: the files hold microjoules (uJ); :meth:`RaplSource.read` returns joules (J).
Terms: reading ``energy_uj`` is restricted to root since November 2020 (Linux 5.10, backported
to stable kernels) because energy readings are a power side channel (PLATYPUS,
CVE-2020-8694); see the README for how to grant access and what that exposes.

Settings, read when the hook runs: the option ``rapl.root``, else ``CARBONKIT_RAPL_ROOT`` (the
powercap directory itself), else ``CARBONKIT_SYSFS_ROOT`` (a sysfs mount: the powercap
directory is ``$CARBONKIT_SYSFS_ROOT/class/powercap``), else ``/sys/class/powercap``.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
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
    "CEILING_MARGIN",
    "CONTROL_TYPES",
    "DEFAULT_DRAM_MAX_POWER_W",
    "DEFAULT_PACKAGE_MAX_POWER_W",
    "DEFAULT_ROOT",
    "DEFAULT_SYSFS_ROOT",
    "MAX_POWER_W",
    "ROOT_ENV",
    "ROOT_OPTION",
    "SYSFS_ENV",
    "PowercapRoot",
    "RaplLayout",
    "RaplSource",
    "RaplZone",
    "probe",
    "register_power_sources",
    "resolve_root",
]

_logger = logging.getLogger(__name__)

PLUGIN = "rapl"
#: Where the kernel publishes powercap zones.
DEFAULT_ROOT = Path("/sys/class/powercap")
#: Where sysfs is mounted, unless ``CARBONKIT_SYSFS_ROOT`` says otherwise.
DEFAULT_SYSFS_ROOT = Path("/sys")
#: Environment variable naming another powercap directory (read when the hook runs).
ROOT_ENV = "CARBONKIT_RAPL_ROOT"
#: Environment variable naming another sysfs mount; the powercap tree is ``<it>/class/powercap``.
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"
#: ``config.options`` key naming another powercap directory; wins over both variables.
ROOT_OPTION = "rapl.root"
#: The powercap control types whose zones are RAPL energy counters, in order of preference:
#: a package found under several of them is counted once, from the first that has it.
CONTROL_TYPES = ("intel-rapl", "intel-rapl-tpmi", "intel-rapl-mmio")
#: The power, in watts, no RAPL zone is assumed to exceed when the wrap-safe read interval is
#: computed: twice the highest TDP of current server processors (500 W). It is also the
#: ceiling of a package zone without a readable power constraint.
MAX_POWER_W = 1000.0
#: ``max_power_w`` of a package zone whose ``constraint_*_max_power_uw`` cannot be read (AMD).
DEFAULT_PACKAGE_MAX_POWER_W = MAX_POWER_W
#: ``max_power_w`` of a DRAM zone without a readable constraint: a socket holds at most 24
#: DIMMs (12 channels x 2), and a loaded DDR5 RDIMM draws about 20 W at most.
DEFAULT_DRAM_MAX_POWER_W = 500.0
#: A zone's ceiling is this many times its largest ``constraint_*_max_power_uw``. The kernel
#: reports the TDP (PL1), the part's maximum power (PL2) and twice that (PL4); client parts
#: may draw up to about 3.7 times their TDP in turbo (PL2 55 W on a 15 W part).
CEILING_MARGIN = 4.0
#: Fraction of the shortest possible wrap period allowed between two reads.
SAFETY_FACTOR = 0.5
#: Counter range assumed, for the read interval only, when ``max_energy_range_uj`` cannot be
#: read: a 32-bit microjoule counter, smaller than any range the kernel reports.
FALLBACK_RANGE_UJ = 2**32

# <control type>:<n> and <control type>:<n>:<m>, as the powercap core names zone devices.
_ZONE = re.compile(r"(?P<control>[A-Za-z0-9_.-]+):(?P<index>\d+)(?::(?P<sub>\d+))?")
_PACKAGE_NAME = re.compile(r"package-(?P<package>\d+)(?:-die-(?P<die>\d+))?")
_PSYS_NAME = re.compile(r"psys(?:-\d+)?")
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
    :param zone: The zone's directory name, e.g. ``intel-rapl:0``, ``intel-rapl-tpmi:1:0``.
    :param path: The zone's directory, symlinks resolved.
    :param max_energy_range_uj: The counter's largest value: it runs from 0 to this many
        microjoules inclusive, then wraps to 0. None when the file reads 0 or cannot be read:
        then a decrease cannot be told from a reset and is not counted.
    :param max_power_w: The most power, in watts, the zone can draw (its ceiling).
    :param max_power_basis: Where :attr:`max_power_w` comes from, in words.
    """

    label: str
    zone: str
    path: Path
    max_energy_range_uj: int | None
    max_power_w: float = DEFAULT_PACKAGE_MAX_POWER_W
    max_power_basis: str = "default"

    @property
    def control_type(self) -> str:
        """The powercap control type of the zone, e.g. ``intel-rapl-tpmi``."""
        return self.zone.split(":", 1)[0]

    @property
    def energy_path(self) -> Path:
        """The counter file, ``<zone>/energy_uj``."""
        return self.path / "energy_uj"

    @property
    def wrap_period_s(self) -> float:
        """The shortest time the counter can take to wrap, in seconds.

        The range (or :data:`FALLBACK_RANGE_UJ` when unknown) divided by the larger of
        :data:`MAX_POWER_W` and :attr:`max_power_w`.
        """
        range_uj = self.max_energy_range_uj if self.max_energy_range_uj is not None else FALLBACK_RANGE_UJ
        return range_uj / 1e6 / max(MAX_POWER_W, self.max_power_w)

    @classmethod
    def from_dir(cls, path: Path, *, label: str, zone: str, dram: bool = False) -> RaplZone:
        """Read a zone's range and power constraints from its directory (files readable by anyone).

        :param dram: Whether the zone is a DRAM zone (for its default ceiling).
        """
        range_uj = _read_int(path / "max_energy_range_uj")
        if range_uj is None or range_uj <= 0:
            _logger.debug("%s: no usable max_energy_range_uj; a decrease will not be read as a wrap", path)
            range_uj = None
        limits = [
            (value, limit.name)
            for limit in sorted(path.glob("constraint_*_max_power_uw"))
            if (value := _read_int(limit)) is not None and value > 0
        ]
        if limits:
            uw, file = max(limits)
            max_power_w = CEILING_MARGIN * uw / 1e6
            basis = f"{CEILING_MARGIN:g} x {file} ({uw / 1e6:g} W)"
        elif dram:
            max_power_w, basis = DEFAULT_DRAM_MAX_POWER_W, "default for a DRAM zone"
        else:
            max_power_w, basis = DEFAULT_PACKAGE_MAX_POWER_W, "default for a package"
        return cls(
            label=label,
            zone=zone,
            path=path,
            max_energy_range_uj=range_uj,
            max_power_w=max_power_w,
            max_power_basis=basis,
        )


@frozen
class _Found:
    """A zone seen during a scan: its control type, directory name, resolved path, ``name``, and
    for a DRAM zone the ``name`` of its package zone."""

    control: str
    zone: str
    path: Path
    name: str
    package: str = ""


@frozen(kw_only=True)
class RaplLayout:
    """The zones found under a powercap directory, by component, and what was left out.

    Build it with :meth:`scan`.

    :param root: The powercap directory scanned.
    :param cpu: The package zones, by package and die number.
    :param dram: The DRAM subzones, in their package's order.
    :param skipped: Zones seen and not used, each ``"<zone> (<why>)"``.
    """

    root: Path
    cpu: tuple[RaplZone, ...] = field(converter=_zone_tuple, default=())
    dram: tuple[RaplZone, ...] = field(converter=_zone_tuple, default=())
    skipped: tuple[str, ...] = field(converter=_str_tuple, default=())

    @property
    def control_types(self) -> tuple[str, ...]:
        """The control types the chosen zones come from, in :data:`CONTROL_TYPES` order."""
        used = {zone.control_type for zone in (*self.cpu, *self.dram)}
        return tuple(control for control in CONTROL_TYPES if control in used)

    @classmethod
    def scan(cls, root: Path) -> RaplLayout:
        """Find the package and DRAM zones under ``root``, counting each package once.

        The kernel lists every zone at the top level as a symlink into
        ``/sys/devices/virtual/powercap/``, and also nests subzones inside their parent's
        directory; zones are told apart by their resolved path. A package (told by the number
        in its ``name``, ``package-<n>``) found under several control types is taken from the
        first of :data:`CONTROL_TYPES` that has it; its DRAM zone likewise.

        :raises OSError: when ``root`` cannot be listed.
        """
        seen: set[Path] = set()
        skipped: list[str] = []
        # Package zones and DRAM zones by (package number, control type), each with its die
        # number (-1 without dies); a DRAM zone also with the name of its package zone.
        packages: dict[tuple[int, str], list[tuple[int, _Found]]] = {}
        drams: dict[tuple[int, str], list[tuple[int, _Found]]] = {}
        by_zone: dict[str, tuple[int, int, _Found]] = {}  # package zone name -> (number, die, zone)
        nested: list[Path] = []  # subzones inside their package's directory
        listed: list[Path] = []  # subzones listed at the top level (the kernel does both)

        entries = sorted(root.iterdir(), key=_zone_sort_key)
        for entry in entries:
            match = _ZONE.fullmatch(entry.name)
            if match is None:
                continue  # the control-type directories themselves
            if match.group("sub") is not None:
                listed.append(entry)
                continue
            control = match.group("control")
            real = entry.resolve()
            if real in seen or not real.is_dir():
                continue
            seen.add(real)
            name = _read_text(real / "name") or ""
            if control not in CONTROL_TYPES:
                skipped.append(f"{entry.name} ({name or 'unnamed'}: control type {control} is not RAPL)")
                continue
            package = _PACKAGE_NAME.fullmatch(name)
            if package is None:
                why = "whole platform, overlaps the packages" if _PSYS_NAME.fullmatch(name) else "not a package"
                skipped.append(f"{entry.name} ({name or 'unnamed'}: {why})")
                continue
            number, die = int(package.group("package")), int(package.group("die") or -1)
            found = _Found(control, entry.name, real, name)
            packages.setdefault((number, control), []).append((die, found))
            by_zone[entry.name] = (number, die, found)
            nested.extend(
                child
                for child in sorted(real.iterdir(), key=_zone_sort_key)
                if _is_subzone_of(child.name, entry.name) and child.is_dir()
            )

        for path in (*nested, *listed):
            zone = path.name
            real = path.resolve()
            if real in seen or not real.is_dir():
                continue
            seen.add(real)
            name = _read_text(real / "name") or ""
            parent = by_zone.get(zone.rpartition(":")[0])
            if parent is None:
                skipped.append(f"{zone} ({name or 'unnamed'}: its package is not used)")
                continue
            number, die, package_zone = parent
            if name == "dram":
                drams.setdefault((number, package_zone.control), []).append(
                    (die, _Found(package_zone.control, zone, real, name, package=package_zone.name))
                )
            elif name in ("core", "uncore"):
                skipped.append(f"{zone} ({name}: part of {package_zone.name})")
            else:
                skipped.append(f"{zone} ({name or 'unnamed'} subzone: not used)")

        cpu: list[RaplZone] = []
        dram: list[RaplZone] = []
        labels: set[str] = set()

        def label_for(text: str, zone: str) -> str:
            label = f"{text} ({zone})" if text in labels else text
            labels.add(label)
            return label

        for number in sorted({number for number, _ in packages}):
            for found in _pick(packages, number, skipped):
                label = label_for(found.name, found.zone)
                cpu.append(RaplZone.from_dir(found.path, label=label, zone=found.zone))
            for found in _pick(drams, number, skipped):
                # Labelled after its package: package-0 -> dram-0, package-0-die-1 -> dram-0-die-1.
                label = label_for("dram" + found.package[len("package") :], found.zone)
                dram.append(RaplZone.from_dir(found.path, label=label, zone=found.zone, dram=True))
        return cls(root=root, cpu=cpu, dram=dram, skipped=skipped)


def _pick(
    by_package: Mapping[tuple[int, str], list[tuple[int, _Found]]], number: int, skipped: list[str]
) -> list[_Found]:
    """Return package ``number``'s zones (by die) from the first control type that has any.

    The zones of the same package under the other control types are added to ``skipped``.
    """
    chosen = next((control for control in CONTROL_TYPES if (number, control) in by_package), None)
    if chosen is None:
        return []
    picked = [found for _, found in sorted(by_package[(number, chosen)], key=lambda item: (item[0], item[1].zone))]
    used = ", ".join(found.zone for found in picked)
    for control in CONTROL_TYPES:
        if control != chosen:
            for _, found in sorted(by_package.get((number, control), []), key=lambda item: (item[0], item[1].zone)):
                skipped.append(f"{found.zone} ({found.name}: already counted from {used})")
    return picked


def _is_subzone_of(name: str, parent: str) -> bool:
    """Whether ``name`` is a subzone directory of the zone ``parent`` (``intel-rapl:0:1`` of ``intel-rapl:0``)."""
    match = _ZONE.fullmatch(name)
    return match is not None and match.group("sub") is not None and name.rpartition(":")[0] == parent


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
    ``os.pread`` on those descriptors. A counter lower than its previous value has wrapped:
    ``(range - previous) + 1 + current`` microjoules are counted, the counter running from 0
    to ``max_energy_range_uj`` inclusive. Where the range is unknown (the file reads 0, cannot
    be read, or a reading exceeds it), a decrease cannot be told from a reset: that interval
    counts nothing, with one warning. :attr:`max_interval_s` is half the shortest time any
    counter could take to wrap, so reading at least that often never misses a wrap.

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
    max_power_w: float = field(init=False)
    _fds: list[int | None] = field(init=False, factory=list)
    _last_uj: list[int] = field(init=False, factory=list)
    _total_uj: list[int] = field(init=False, factory=list)
    _range_uj: list[int | None] = field(init=False, factory=list)
    _warned: set[tuple[str, int]] = field(init=False, factory=set)
    _last_time: float = field(init=False, default=0.0)
    _gap_warned: bool = field(init=False, default=False)
    _read_once: bool = field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self.name = f"{PLUGIN}:{self.component}"
        self.max_interval_s = SAFETY_FACTOR * min(zone.wrap_period_s for zone in self.zones)
        self.max_power_w = max(zone.max_power_w for zone in self.zones)
        self._range_uj = [zone.max_energy_range_uj for zone in self.zones]
        try:
            for index, zone in enumerate(self.zones):
                fd = self._open(zone)
                self._fds.append(fd)
                raw = _pread_uj(fd)
                self._check_range(index, raw)
                self._last_uj.append(raw)
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
                max(MAX_POWER_W, self.max_power_w),
                self.max_interval_s,
            )
        joules = []
        for index, zone in enumerate(self.zones):
            raw, reopened = self._read_zone(index)
            previous = self._last_uj[index]
            self._last_uj[index] = raw
            self._check_range(index, raw)
            delta = raw - previous
            range_uj = self._range_uj[index]
            if delta < 0:
                if reopened:
                    # After a reopen a lower value is a wrap or a reset of the counter:
                    # count nothing rather than guess.
                    self._warn_once(
                        "reopened",
                        index,
                        "%s: %s restarted lower after being reopened; the energy since the previous read "
                        "is not counted",
                        self.name,
                        zone.energy_path,
                    )
                    delta = 0
                elif range_uj is None:
                    self._warn_once(
                        "unknown range",
                        index,
                        "%s: %s went back from %d to %d uJ and its range is unknown (max_energy_range_uj "
                        "reads 0, cannot be read, or is below a reading), so a wrap cannot be told from a "
                        "reset; the energy since the previous read is not counted",
                        self.name,
                        zone.energy_path,
                        previous,
                        raw,
                    )
                    delta = 0
                else:
                    # The counter runs 0..range inclusive: range - previous up to the top, one
                    # more to reach 0, then raw.
                    delta = (range_uj - previous) + 1 + raw
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

    def _check_range(self, index: int, raw: int) -> None:
        range_uj = self._range_uj[index]
        if range_uj is not None and raw > range_uj:
            self._range_uj[index] = None
            self._warn_once(
                "range",
                index,
                "%s: %s read %d uJ, above its max_energy_range_uj %d; the range is wrong, so from now "
                "on a decrease of this counter is not counted as a wrap",
                self.name,
                self.zones[index].energy_path,
                raw,
                range_uj,
            )

    def _warn_once(self, what: str, index: int, message: str, *args: object) -> None:
        log = _logger.debug if (what, index) in self._warned else _logger.warning
        self._warned.add((what, index))
        log(message, *args)

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


@frozen(kw_only=True)
class PowercapRoot:
    """The powercap directory to scan, and the setting that chose it.

    Build it with :func:`resolve_root`.

    :param path: The powercap directory.
    :param setting: The setting that gave it, e.g. ``"CARBONKIT_SYSFS_ROOT=/host/sys"``; empty
        for the default.
    :param named: The directory the setting named (the sysfs mount for ``CARBONKIT_SYSFS_ROOT``),
        or None for the default.
    """

    path: Path
    setting: str = ""
    named: Path | None = None


def resolve_root(config: Config, environ: Mapping[str, str] | None = None) -> PowercapRoot:
    """Return the powercap directory: option ``rapl.root``, ``CARBONKIT_RAPL_ROOT``,
    ``CARBONKIT_SYSFS_ROOT``/class/powercap, else ``/sys/class/powercap``, in that order.

    Empty or blank values count as unset.
    """
    env = os.environ if environ is None else environ
    option = config.options.get(ROOT_OPTION)
    if option is not None and str(option).strip():
        path = Path(str(option).strip())
        return PowercapRoot(path=path, setting=f"option {ROOT_OPTION}={str(option)!r}", named=path)
    rapl = env.get(ROOT_ENV, "").strip()
    if rapl:
        return PowercapRoot(path=Path(rapl), setting=f"{ROOT_ENV}={rapl}", named=Path(rapl))
    sysfs = env.get(SYSFS_ENV, "").strip()
    if sysfs:
        return PowercapRoot(path=Path(sysfs) / "class" / "powercap", setting=f"{SYSFS_ENV}={sysfs}", named=Path(sysfs))
    return PowercapRoot(path=DEFAULT_ROOT)


def probe(
    root: Path, *, opener: Opener = os.open, setting: str = "", named: Path | None = None
) -> list[RaplSource | Unavailable]:
    """Return the sources that can be read under ``root``, or notes saying why there are none.

    :param root: The powercap directory, normally ``/sys/class/powercap``.
    :param opener: Opens a counter file (``os.open`` signature).
    :param setting: The setting that chose ``root`` (named in the notes), or empty.
    :param named: The directory that setting named: when it does not exist, the note warns.
    """
    if not root.is_dir():
        where = f" ({setting})" if setting else ""
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no RAPL powercap interface at {root}{where}",
                hint=(
                    "RAPL counters need Linux on the host itself (most virtual machines and "
                    "macOS/Windows have none) with the intel_rapl_msr (or intel_rapl_tpmi) module "
                    f"loaded; set {ROOT_ENV} to the powercap directory, or {SYSFS_ENV} to the sysfs "
                    "mount, if they are mounted elsewhere"
                ),
                warn=named is not None and not named.is_dir(),
            )
        ]
    try:
        layout = RaplLayout.scan(root)
    except OSError as exc:
        return [Unavailable(plugin=PLUGIN, reason=f"cannot list the powercap zones at {root}: {exc}")]
    if not layout.cpu:
        found = f" (found only: {'; '.join(layout.skipped)})" if layout.skipped else ""
        types = ", ".join(CONTROL_TYPES)
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no RAPL package zone (a zone named package-<n> under {types}) at {root}{found}",
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
                return [_permission_note(root, exc, layout.control_types)]
            return [
                Unavailable(
                    plugin=PLUGIN,
                    reason=f"cannot read the RAPL energy counters at {root}: {exc}",
                    hint="the counters exist but reading them failed; check dmesg for intel_rapl errors",
                )
            ]
    for skipped in layout.skipped:
        _logger.debug("rapl: not used: %s", skipped)
    for source in sources:
        for zone in source.zones:
            _logger.debug(
                "rapl: %s from %s, at most %.0f W (%s)", zone.label, zone.zone, zone.max_power_w, zone.max_power_basis
            )
    return [*sources, *notes]


def _permission_note(root: Path, exc: OSError, controls: Iterable[str]) -> Unavailable:
    where = exc.filename or root
    patterns = [
        pattern
        for control in (tuple(controls) or CONTROL_TYPES[:1])
        for pattern in (f"{root}/{control}:*/energy_uj", f"{root}/{control}:*/{control}:*:*/energy_uj")
    ]
    return Unavailable(
        plugin=PLUGIN,
        reason=(
            f"permission denied reading {where}: RAPL energy counters are readable by root only "
            "(the kernel default since November 2020); no CPU or DRAM energy is measured"
        ),
        hint=(
            "Run once, as root: sudo carbonkit setup rapl ; it lets the group carbonkit-rapl read the "
            "counters, across reboots and driver reloads (then: sudo usermod -aG carbonkit-rapl $USER). "
            f"Or grant read access until the next reboot with: sudo chmod o+r {' '.join(patterns)} ; "
            "to keep it across reboots, add one systemd-tmpfiles line per pattern, "
            f"'z {patterns[0]} 0444 - - -' and the same for {', '.join(patterns[1:])}, "
            "or give a dedicated group read "
            "access (mode 0440, group owner) instead of everyone. Be aware that this exposes a "
            "power side channel to whoever can read the files (PLATYPUS, CVE-2020-8694): do it "
            "only where the local users are trusted. Without it, carbonkit-cpu-estimate "
            "estimates CPU power from utilisation instead."
        ),
        warn=True,
    )


def _root_from(config: Config) -> Path:
    return resolve_root(config).path


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
    root = resolve_root(config)
    return probe(root.path, setting=root.setting, named=root.named)
