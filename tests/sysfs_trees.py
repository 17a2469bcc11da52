"""Build sysfs trees in a temporary directory the way the kernel lays them out.

Layout facts used here (kernel documentation and driver core behaviour):

- every device lives under ``devices/`` at its bus path; ``class/<class>/<name>`` entries are
  relative symlinks to it (``Documentation/ABI/stable/sysfs-class-*``, ``drivers/base/core.c``);
- a device directory has a ``driver`` symlink to ``bus/<bus>/drivers/<driver>`` and, for a
  class device, a ``device`` symlink back to its parent;
- a hwmon device is ``<parent>/hwmon/hwmon<N>``, also linked from ``class/hwmon/hwmon<N>``, with
  a ``name`` file (the chip name) and attributes named by
  https://docs.kernel.org/hwmon/sysfs-interface.html (``energyN_input`` in uJ, ``inN_input`` mV,
  ``currN_input`` mA, ``powerN_*`` uW, ``*_label``).
"""

from __future__ import annotations

import os
from pathlib import Path


def link(target: Path, at: Path) -> None:
    """Make ``at`` a relative symlink to ``target``, as sysfs does."""
    at.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, at.parent), at)


def write(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{value}\n")
    return path


def pci_device(root: Path, address: str, driver: str | None, bridge: str = "0000:00:01.0") -> Path:
    """``devices/pci0000:00/<bridge>/<address>`` bound to ``driver``."""
    device = root / "devices" / "pci0000:00" / bridge / address
    device.mkdir(parents=True)
    write(device / "vendor", "0x8086")
    if driver:
        drivers = root / "bus" / "pci" / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        link(drivers, device / "driver")
    return device


def hwmon(root: Path, parent: Path, number: int, name: str, attributes: dict[str, object]) -> Path:
    """``<parent>/hwmon/hwmon<number>`` with ``name`` and ``attributes``, linked from class/hwmon."""
    directory = parent / "hwmon" / f"hwmon{number}"
    write(directory / "name", name)
    for attribute, value in attributes.items():
        write(directory / attribute, value)
    link(parent, directory / "device")
    link(directory, root / "class" / "hwmon" / f"hwmon{number}")
    return directory


def drm_card(root: Path, device: Path, card: str) -> Path:
    """``<device>/drm/<card>``, its ``device`` link, and ``class/drm/<card>``."""
    directory = device / "drm" / card
    write(directory / "dev", "226:0")
    link(device, directory / "device")
    link(directory, root / "class" / "drm" / card)
    return directory
