"""carbonkit plugin ``amd_energy``: AMD processor socket energy from the ``amd_energy`` hwmon driver.

Source: AMD's ``amd_energy`` hwmon driver (in mainline Linux 5.8 to 5.12, then maintained out of
tree at https://github.com/amd/amd_energy), which publishes the RAPL energy MSRs of AMD
Family 17h and 19h processors (EPYC, Ryzen) where the kernel's powercap RAPL driver does not
cover them: ``<sysfs>/class/hwmon/hwmon<N>`` with ``name`` = ``amd_energy``,
``energy<K>_input`` in microjoules and ``energy<K>_label``: ``Ecore<NNN>`` for each core
(``Ecore000``...), then ``Esocket<n>`` for each socket. Reference: the driver's
``Documentation/hwmon/amd_energy.rst``.

Only the socket counters are used (component ``"cpu"``, one device per socket): a socket's
counter already includes its cores, which are never added on top.

Wraps: the MSRs are 32 bits in units of 15.3 uJ (about 9 minutes at 240 W per socket); the
driver adds them into 64-bit accumulators from its own kernel thread every 100 s, independently
of reads, so the files do not wrap within a run. A decrease (driver reloaded) counts nothing.

Permission: the driver restricts the files to their owner and group (mode 0440, the fix for
CVE-2020-12912, a power side channel like PLATYPUS).

Where the kernel's powercap RAPL interface publishes readable package counters, the ``rapl``
plugin measures the sockets and this plugin steps aside, so no socket is counted twice.
The sysfs mount is ``$CARBONKIT_SYSFS_ROOT`` (default ``/sys``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from carbonkit import Unavailable, hookimpl
from carbonkit.sysfs import SYSFS_ENV, CounterFiles, Opener, read_text, sysfs_root

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "MAX_INTERVAL_S",
    "MAX_POWER_W",
    "AmdEnergySource",
    "Socket",
    "find_sockets",
    "probe",
    "rapl_measures_packages",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

PLUGIN = "amd_energy"
DRIVER_NAME = "amd_energy"
#: A socket's ceiling: twice the highest TDP of current server processors (500 W), as for RAPL.
MAX_POWER_W = 1000.0
#: The files are 64-bit accumulators the driver keeps up to date itself: no minimum read rate.
MAX_INTERVAL_S = 3600.0

_SOCKET = re.compile(r"Esocket(\d+)$")
_CORE = re.compile(r"Ecore(\d+)$")
_ENERGY = re.compile(r"energy(\d+)_input$")


@frozen(kw_only=True)
class Socket:
    """One socket's counter: ``label`` is ``socket<n>``, ``counter`` its ``energy<K>_input``."""

    label: str
    counter: Path


def find_sockets(root: Path) -> tuple[list[Socket], int]:
    """Return the socket counters of every ``amd_energy`` hwmon device, and how many core counters were left out."""
    sockets: list[Socket] = []
    cores = 0
    seen: set[Path] = set()
    for hwmon in sorted((root / "class" / "hwmon").glob("hwmon*"), key=lambda p: (len(p.name), p.name)):
        if read_text(hwmon / "name") != DRIVER_NAME:
            continue
        real = hwmon.resolve()
        if real in seen:
            continue
        seen.add(real)
        for counter in sorted(hwmon.glob("energy*_input"), key=lambda p: _index(p.name)):
            label = read_text(hwmon / counter.name.replace("_input", "_label")) or ""
            socket = _SOCKET.match(label)
            if socket:
                sockets.append(Socket(label=f"socket{int(socket.group(1))}", counter=counter))
            elif _CORE.match(label):
                cores += 1
    return sockets, cores


def _index(name: str) -> int:
    match = _ENERGY.match(name)
    return int(match.group(1)) if match else -1


def _can_read(path: Path) -> bool:
    return os.access(path, os.R_OK)


def rapl_measures_packages(root: Path, can_read: Callable[[Path], bool] = _can_read) -> list[str]:
    """The powercap RAPL package zones under ``<root>/class/powercap`` this process can read."""
    readable = []
    for zone in sorted((root / "class" / "powercap").glob("*")):
        name = read_text(zone / "name") or ""
        if name.startswith("package-") and can_read(zone / "energy_uj"):
            readable.append(f"{zone.name} ({name})")
    return readable


class AmdEnergySource:
    """Cumulative energy of each AMD processor socket, in joules since the source was created.

    :param sockets: The socket counters, from :func:`find_sockets`.
    :param opener: Opens a counter file (``os.open`` signature).
    :raises OSError: when a counter cannot be opened (``PermissionError`` for a non-root user
        outside the files' group).
    """

    name = f"{PLUGIN}:cpu"
    component = "cpu"
    method = "measured"
    kind = "energy"
    max_interval_s = MAX_INTERVAL_S
    max_power_w = MAX_POWER_W

    def __init__(self, sockets: Sequence[Socket], *, opener: Opener = os.open) -> None:
        if not sockets:
            raise ValueError("AmdEnergySource needs at least one socket")
        self.sockets = tuple(sockets)
        self.info = {"counters": ", ".join(f"{s.label}: {s.counter}" for s in self.sockets) + " (microjoules)"}
        self._files = CounterFiles([s.counter for s in self.sockets], owner=self.name, opener=opener)

    def devices(self) -> list[str]:
        return [s.label for s in self.sockets]

    def read(self) -> list[float]:
        """Return each socket's joules since the source was created.

        :raises MeasurementError: when a counter can no longer be read.
        """
        return [uj / 1e6 for uj in self._files.read()]

    def close(self) -> None:
        self._files.close()


def probe(
    root: Path, *, opener: Opener = os.open, setting: str = "", can_read: Callable[[Path], bool] = _can_read
) -> list[AmdEnergySource | Unavailable]:
    """Return the socket source under ``root`` (a sysfs mount), or a note saying why there is none.

    :param can_read: Whether this process may read a file (``os.access``), for the RAPL check.
    """
    where = f" ({setting})" if setting else ""
    sockets, cores = find_sockets(root)
    if not sockets:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no amd_energy hwmon device with socket counters under {root / 'class' / 'hwmon'}{where}",
                hint="on AMD processors whose kernel has no RAPL powercap support, load AMD's amd_energy "
                "driver (https://github.com/amd/amd_energy)",
            )
        ]
    rapl = rapl_measures_packages(root, can_read)
    if rapl:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason="the kernel's RAPL powercap interface already publishes the packages ("
                + ", ".join(rapl)
                + "): carbonkit-rapl measures them, so amd_energy is not used, to count each socket once",
            )
        ]
    if cores:
        _logger.debug("amd_energy: %d core counters not used: the socket counters include them", cores)
    try:
        return [AmdEnergySource(sockets, opener=opener)]
    except PermissionError as exc:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"permission denied reading {exc.filename or sockets[0].counter}: the amd_energy "
                "counters are readable by their owner and group only (CVE-2020-12912)",
                hint="give a trusted group read access (for example a udev rule: SUBSYSTEM==\"hwmon\", "
                "ATTR{name}==\"amd_energy\", RUN+=\"/bin/sh -c 'chgrp <group> /sys%p/energy*_input'\") and add "
                "the users who run carbonkit to it. Energy readings are a power side channel: grant this only "
                "where the local users are trusted.",
                warn=True,
            )
        ]
    except (OSError, ValueError) as exc:
        return [Unavailable(plugin=PLUGIN, reason=f"cannot read the amd_energy counters: {exc}", warn=True)]


@hookimpl
def register_power_sources(config: Config) -> list[AmdEnergySource | Unavailable]:
    value = os.environ.get(SYSFS_ENV, "").strip()
    return probe(sysfs_root(), setting=f"{SYSFS_ENV}={value}" if value else "")
