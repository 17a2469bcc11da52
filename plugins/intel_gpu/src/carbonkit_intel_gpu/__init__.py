"""carbonkit plugin ``intel_gpu``: the energy of Intel discrete GPUs, from the ``xe`` and ``i915`` drivers.

Source: the hwmon energy counters the Linux ``i915`` driver (since 6.2) and ``xe`` driver (since
6.8) register for discrete GPUs (Arc, Data Center GPU Flex and Max):
``<sysfs>/class/drm/card<N>/device/hwmon/hwmon<M>/energy<K>_input``, in microjoules
(``drivers/gpu/drm/i915/i915_hwmon.c``, ``drivers/gpu/drm/xe/xe_hwmon.c``, and the ABI documents
``Documentation/ABI/testing/sysfs-driver-intel-i915-hwmon`` and ``-xe-hwmon``).

- ``i915``: one counter, ``energy1_input``, the whole device, in the hwmon device named ``i915``
  (the per-tile hwmon devices ``i915_gt0``, ``i915_gt1`` are parts of it and are not read).
- ``xe``: ``energy1_input`` labelled ``card`` (the whole card) and ``energy2_input`` labelled
  ``pkg`` (the GPU package, a part of the card); some GPUs have only one of them. The card
  counter is read where there is one, else the package counter: never both.

Wraps: the hardware register is 32 bits in units of 2^-14 J (``PACKAGE_POWER_SKU_UNIT``),
262,144 J, about 4.4 minutes at 1,000 W. The driver accumulates it into a 63-bit ``long`` each
time the file is read, so the file itself does not wrap (278 years at 1 kW), provided it is read
before the register wraps twice: :data:`MAX_INTERVAL_S` is half the register's wrap time at
:data:`MAX_POWER_W`. A decrease of the file (driver reloaded) counts nothing.

Source ``intel_gpu:energy``: component ``"gpu"``, kind ``"energy"`` (joules per GPU since the
source was created), method ``"measured"``; ``max_power_w`` is :data:`CEILING_MARGIN` times the
counter's ``power<K>_rated_max`` (the TDP, microwatts) where the driver gives it, else
:data:`MAX_POWER_W`. The sysfs mount is ``$CARBONKIT_SYSFS_ROOT`` (default ``/sys``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from carbonkit import Unavailable, hookimpl
from carbonkit.sysfs import SYSFS_ENV, CounterFiles, Opener, read_int, read_text, sysfs_root

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "CEILING_MARGIN",
    "DRIVERS",
    "MAX_INTERVAL_S",
    "MAX_POWER_W",
    "REGISTER_RANGE_J",
    "IntelGpu",
    "IntelGpuSource",
    "probe",
    "register_power_sources",
    "scan",
]

_logger = logging.getLogger(__name__)

PLUGIN = "intel_gpu"
#: The drivers whose cards are read.
DRIVERS = ("xe", "i915")
#: The energy register's range: 2^32 units of 2^-14 J (the drivers' own example unit).
REGISTER_RANGE_J = 2**32 / 2**14
#: The ceiling of a GPU whose driver gives no rated power: above the 600 W of Data Center GPU Max 1550.
MAX_POWER_W = 1000.0
#: A GPU's ceiling is this many times its rated (TDP) power.
CEILING_MARGIN = 2.0
#: Half the time the register takes to wrap at :data:`MAX_POWER_W` (131 s).
MAX_INTERVAL_S = 0.5 * REGISTER_RANGE_J / MAX_POWER_W

_CARD = re.compile(r"card(\d+)$")
_ENERGY = re.compile(r"energy(\d+)_input$")


@frozen(kw_only=True)
class IntelGpu:
    """One Intel discrete GPU and the counter read for it.

    :param card: The DRM card name (``card0``).
    :param driver: ``"xe"`` or ``"i915"``.
    :param pci: The PCI address of the device (``0000:03:00.0``).
    :param counter: The ``energy<K>_input`` file read.
    :param channel: What it covers: ``"card"``, ``"pkg"`` or ``"device"`` (an unlabelled counter).
    :param max_power_w: The ceiling, in watts.
    :param max_power_basis: How the ceiling was obtained.
    """

    card: str
    driver: str
    pci: str
    counter: Path
    channel: str
    max_power_w: float
    max_power_basis: str

    @property
    def label(self) -> str:
        return f"{self.card} {self.driver} ({self.pci}, {self.channel})"


@frozen(kw_only=True)
class Scan:
    """What :func:`scan` found: the GPUs to read, and why other cards were left out."""

    gpus: tuple[IntelGpu, ...]
    skipped: tuple[str, ...]


def _driver(device: Path) -> str:
    """The device's driver: its ``driver`` link, else ``DRIVER=`` in its ``uevent``, else ""."""
    try:
        return os.path.basename(os.readlink(device / "driver"))
    except OSError:
        pass
    for line in (read_text(device / "uevent") or "").splitlines():
        if line.startswith("DRIVER="):
            return line.partition("=")[2].strip()
    return ""


def _pick_counter(hwmon: Path) -> tuple[Path, str, int] | None:
    """The card counter, else the package counter, else the only unlabelled one."""
    counters: dict[str, tuple[Path, int]] = {}
    unlabelled: list[tuple[Path, int]] = []
    for path in sorted(hwmon.glob("energy*_input")):
        match = _ENERGY.match(path.name)
        if not match:
            continue
        index = int(match.group(1))
        label = read_text(hwmon / f"energy{index}_label")
        if label:
            counters.setdefault(label.lower(), (path, index))
        else:
            unlabelled.append((path, index))
    for channel in ("card", "pkg"):
        if channel in counters:
            return counters[channel][0], channel, counters[channel][1]
    if unlabelled:
        path, index = unlabelled[0]
        return path, "device", index
    return None


def _ceiling(hwmon: Path, index: int) -> tuple[float, str]:
    for name in (f"power{index}_rated_max", "power1_rated_max"):
        microwatts = read_int(hwmon / name)
        if microwatts is not None and microwatts > 0:
            watts = CEILING_MARGIN * microwatts / 1e6
            return watts, f"{CEILING_MARGIN:g} x {name} ({microwatts / 1e6:g} W)"
    return MAX_POWER_W, f"default {MAX_POWER_W:g} W (no power rated_max)"


def scan(root: Path) -> Scan:
    """List the Intel discrete GPUs with an energy counter under ``<root>/class/drm``."""
    drm = root / "class" / "drm"
    gpus: list[IntelGpu] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    try:
        cards = sorted((p for p in drm.iterdir() if _CARD.match(p.name)), key=lambda p: int(p.name[4:]))
    except OSError:
        return Scan(gpus=(), skipped=())
    for card in cards:
        device = card / "device"
        driver = _driver(device)
        named = {h: read_text(h / "name") for h in sorted((device / "hwmon").glob("hwmon*"))}
        if not driver:
            # No driver link or uevent (a copied tree): the hwmon device's name is the driver's.
            driver = next((n for n in named.values() if n in DRIVERS), "")
        if driver not in DRIVERS:
            skipped.append(f"{card.name} (driver {driver or 'unknown'}, not {' or '.join(DRIVERS)})")
            continue
        try:
            real = device.resolve(strict=True)
        except OSError:
            skipped.append(f"{card.name} (no device directory)")
            continue
        if real in seen:
            continue
        seen.add(real)
        # The hwmon device named after the driver (i915's per-tile ones are i915_gt<n>); an
        # unnamed one only if none is named.
        hwmons = [h for h, n in named.items() if n == driver] or [h for h, n in named.items() if n is None]
        picked = None
        hwmon = None
        for hwmon in hwmons:
            picked = _pick_counter(hwmon)
            if picked:
                break
        if picked is None or hwmon is None:
            skipped.append(
                f"{card.name} ({driver}: no hwmon energy counter; integrated GPUs have none, their energy is "
                "part of the processor package that RAPL measures)"
            )
            continue
        counter, channel, index = picked
        ceiling, basis = _ceiling(hwmon, index)
        gpus.append(
            IntelGpu(
                card=card.name,
                driver=driver,
                pci=real.name,
                counter=counter,
                channel=channel,
                max_power_w=ceiling,
                max_power_basis=basis,
            )
        )
    return Scan(gpus=tuple(gpus), skipped=tuple(skipped))


class IntelGpuSource:
    """Cumulative energy of Intel discrete GPUs, in joules per GPU since the source was created.

    :param gpus: The GPUs, from :func:`scan`.
    :param opener: Opens a counter file (``os.open`` signature).
    :raises OSError: when a counter cannot be opened or read.
    """

    name = f"{PLUGIN}:energy"
    component = "gpu"
    method = "measured"
    kind = "energy"

    def __init__(self, gpus: Sequence[IntelGpu], *, opener: Opener = os.open) -> None:
        if not gpus:
            raise ValueError("IntelGpuSource needs at least one GPU")
        self.gpus = tuple(gpus)
        self.max_power_w = max(g.max_power_w for g in self.gpus)
        self.max_interval_s = 0.5 * REGISTER_RANGE_J / max(MAX_POWER_W, self.max_power_w)
        self.info = {
            "counters": "; ".join(f"{g.card}: {g.counter.name} ({g.channel}), microjoules" for g in self.gpus),
            "ceilings": "; ".join(f"{g.card}: {g.max_power_w:g} W, {g.max_power_basis}" for g in self.gpus),
        }
        self._files = CounterFiles([g.counter for g in self.gpus], owner=self.name, opener=opener)

    def devices(self) -> list[str]:
        """One label per GPU: ``"card0 xe (0000:03:00.0, card)"``."""
        return [g.label for g in self.gpus]

    def read(self) -> list[float]:
        """Return the joules each GPU has used since the source was created.

        :raises MeasurementError: when a counter can no longer be read.
        """
        return [uj / 1e6 for uj in self._files.read()]

    def close(self) -> None:
        self._files.close()


def probe(
    root: Path, *, opener: Opener = os.open, setting: str = ""
) -> list[IntelGpuSource | Unavailable]:
    """Return the source for the Intel GPUs under ``root`` (a sysfs mount), or a note why there is none."""
    where = f" ({setting})" if setting else ""
    if not (root / "class" / "drm").is_dir():
        return [Unavailable(plugin=PLUGIN, reason=f"no DRM devices at {root / 'class' / 'drm'}{where}")]
    found = scan(root)
    for note in found.skipped:
        _logger.debug("intel_gpu: not used: %s", note)
    if not found.gpus:
        intel = [s for s in found.skipped if s.split(" (", 1)[1].startswith(DRIVERS)]
        detail = f": {'; '.join(intel)}" if intel else ""
        return [Unavailable(plugin=PLUGIN, reason=f"no Intel discrete GPU with an energy counter{where}{detail}")]
    try:
        return [IntelGpuSource(found.gpus, opener=opener)]
    except (OSError, ValueError) as exc:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"cannot read the Intel GPU energy counters: {exc}",
                hint="the hwmon energy files are world-readable by default (mode 0444); check the mount",
                warn=True,
            )
        ]


def _setting(environ: Mapping[str, str]) -> str:
    value = environ.get(SYSFS_ENV, "").strip()
    return f"{SYSFS_ENV}={value}" if value else ""


@hookimpl
def register_power_sources(config: Config) -> list[IntelGpuSource | Unavailable]:
    return probe(sysfs_root(), setting=_setting(os.environ))
