"""carbonkit plugin ``jetson``: the power of NVIDIA Jetson modules, from their INA3221 power monitors.

Source: the Texas Instruments INA3221 three-channel current and voltage monitors on Jetson
modules and carrier boards, as Linux for Tegra (L4T) publishes them in sysfs. Two layouts:

- the older ``ina3221x`` IIO driver (L4T R32 and before: Jetson Nano, TX1, TX2, AGX Xavier,
  Xavier NX): ``<sysfs>/bus/i2c/drivers/ina3221x/<dev>/iio:device<k>/in_power<N>_input`` in
  milliwatts, ``in_current<N>_input`` (mA), ``in_voltage<N>_input`` (mV), and the rail's name in
  ``rail_name_<N>``, for N = 0, 1, 2;
- the mainline ``ina3221`` hwmon driver (L4T R34 and later: Orin, Thor):
  ``<sysfs>/bus/i2c/drivers/ina3221/<dev>/hwmon/hwmon<k>/in<N>_input`` (bus voltage, mV),
  ``curr<N>_input`` (mA) and ``in<N>_label`` (the rail's name), for N = 1, 2, 3; power is
  voltage x current. A channel labelled ``NC`` (not connected), or whose ``in<N>_enable`` reads
  0, is skipped.

References: the NVIDIA Jetson Linux Developer Guide, "Platform Power and Performance" (the rails
of each module and their names), Linux ``drivers/hwmon/ina3221.c`` and
``Documentation/hwmon/ina3221.rst``.

Rails are mapped to components (see :func:`classify` and the README): ``cpu``, ``gpu``,
``soc``, ``dram``; a rail feeding several parts goes under the first of them in that order
(``VDD_CPU_GPU_CV`` under ``cpu``, labelled ``VDD_CPU_GPU_CV (cpu, gpu, cv)``). The module's
input rail (``VDD_IN``, ``POM_5V_IN``) is the **total**: it is never added to its parts.
Where it exists, the component ``board`` is the total minus the parts measured (never below
0), so the components add up to the total exactly once. Where it does not (AGX Orin, AGX
Xavier), the parts are reported and other rails go to ``board``.

Every source has kind ``"power"`` (watts per rail), method ``"measured"`` and
``max_power_w`` :data:`MAX_POWER_W`. The sysfs mount is ``$CARBONKIT_SYSFS_ROOT`` (default ``/sys``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from carbonkit import MeasurementError, Unavailable, hookimpl
from carbonkit.sysfs import SYSFS_ENV, Opener, read_int, read_text, sysfs_root

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "MAX_POWER_W",
    "TOTAL_RAILS",
    "JetsonSource",
    "Rail",
    "classify",
    "covers",
    "find_rails",
    "probe",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

PLUGIN = "jetson"
#: The most power one rail can carry, in watts: above the largest Jetson module's maximum
#: (Jetson AGX Thor, 130 W).
MAX_POWER_W = 250.0
#: The rails that measure the module's whole input.
TOTAL_RAILS = frozenset({"VDD_IN", "POM_5V_IN"})
#: A power monitor is read every tick: a power source needs no minimum rate, this only bounds it.
MAX_INTERVAL_S = 60.0

_PARTS = (
    ("cpu", "CPU"),
    ("gpu", "GPU"),
    ("soc", "SOC"),
    ("cv", "CV"),
    ("dram", "DDR"),
    ("dram", "VDDQ"),
    ("dram", "VDDRQ"),
)
_IIO_POWER = re.compile(r"in_power(\d+)_input$")
_HWMON_IN = re.compile(r"in(\d+)_label$")


def covers(name: str) -> list[str]:
    """Return what a rail feeds, from its name: ``["total"]``, some of ``cpu``, ``gpu``, ``soc``,
    ``cv``, ``dram`` in that order, or ``[]`` for another rail (Wi-Fi, 5 V system)."""
    upper = name.strip().upper()
    if upper in TOTAL_RAILS:
        return ["total"]
    words = set(re.split(r"[^A-Z0-9]+", upper))
    found: list[str] = []
    for part, word in _PARTS:
        if word in words and part not in found:
            found.append(part)
    return found


def classify(name: str) -> str:
    """Return the component a rail is reported under: ``total``, ``cpu``, ``gpu``, ``soc``,
    ``dram`` or ``board``.

    A rail feeding several parts goes to the first of cpu, gpu, soc, dram it feeds
    (``VDD_CPU_GPU_CV`` to ``cpu``, ``VDD_GPU_SOC`` to ``gpu``): every rail that carries CPU power
    is under ``cpu``, so a CPU estimate is never added on top of a measured CPU. ``CV`` (the
    vision accelerators) alone counts as ``soc``. The device label names the rail and what it feeds.
    """
    parts = covers(name)
    if parts == ["total"]:
        return "total"
    for component in ("cpu", "gpu", "soc", "dram"):
        if component in parts:
            return component
    return "soc" if parts == ["cv"] else "board"


@frozen(kw_only=True)
class Rail:
    """One measured rail.

    :param name: Its name (``VDD_GPU_SOC``), from ``rail_name_<N>`` or ``in<N>_label``.
    :param files: ``(power_mw,)`` for the IIO layout, ``(voltage_mv, current_ma)`` for hwmon.
    :param where: The device directory, for messages.
    """

    name: str
    files: tuple[Path, ...]
    where: str

    @property
    def component(self) -> str:
        return classify(self.name)

    @property
    def label(self) -> str:
        """``"VDD_CPU_GPU_CV (cpu, gpu, cv)"``: the rail and what it feeds, when that is several parts."""
        parts = covers(self.name)
        return f"{self.name} ({', '.join(parts)})" if len(parts) > 1 else self.name


def find_rails(root: Path) -> list[Rail]:
    """Every connected rail under ``root`` (a sysfs mount), in both layouts, each device once."""
    rails: list[Rail] = []
    seen: set[Path] = set()
    drivers = root / "bus" / "i2c" / "drivers"
    for device in sorted((drivers / "ina3221x").glob("*/iio:device*")):
        real = device.resolve()
        if real in seen:
            continue
        seen.add(real)
        for power in sorted(device.glob("in_power*_input")):
            match = _IIO_POWER.match(power.name)
            if not match:
                continue
            name = read_text(device / f"rail_name_{match.group(1)}")
            if name and name.upper() != "NC":
                rails.append(Rail(name=name, files=(power,), where=str(device)))
    for device in sorted((drivers / "ina3221").glob("*/hwmon/hwmon*")):
        real = device.resolve()
        if real in seen:
            continue
        seen.add(real)
        for label in sorted(device.glob("in*_label")):
            match = _HWMON_IN.match(label.name)
            if not match:
                continue
            n = match.group(1)
            name = read_text(label)
            voltage, current = device / f"in{n}_input", device / f"curr{n}_input"
            if not name or name.upper() == "NC" or read_int(device / f"in{n}_enable") == 0:
                continue
            if voltage.exists() and current.exists():
                rails.append(Rail(name=name, files=(voltage, current), where=str(device)))
    return rails


class _RailFiles:
    """The rails' files, opened once, read with ``os.pread``; returns watts per rail."""

    def __init__(self, rails: Sequence[Rail], owner: str, opener: Opener) -> None:
        self.rails = tuple(rails)
        self.owner = owner
        self._fds: list[list[int]] = []
        try:
            for rail in self.rails:
                fds: list[int] = []
                self._fds.append(fds)
                for path in rail.files:
                    fds.append(opener(str(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
            self.read()
        except BaseException:
            self.close()
            raise

    def read(self) -> list[float]:
        watts = []
        for rail, fds in zip(self.rails, self._fds):
            try:
                values = [int(os.pread(fd, 32, 0)) for fd in fds]
            except (OSError, ValueError) as exc:
                message = f"{self.owner}: rail {rail.name} at {rail.where} cannot be read ({exc})"
                raise MeasurementError(message) from exc
            if len(values) == 1:
                watts.append(values[0] / 1e3)  # mW
            else:
                watts.append(values[0] * values[1] / 1e6)  # mV x mA
        return watts

    def close(self) -> None:
        for fds in self._fds:
            while fds:
                try:
                    os.close(fds.pop())
                except OSError:
                    pass


class JetsonSource:
    """The power of the rails of one component, in watts per rail.

    For ``component="board"`` with a ``total`` rail, the one device is the total minus the
    ``parts`` (never below 0): the rest of the module.

    :param component: The component.
    :param rails: Its rails (for ``board`` with a total: the total rail, first, then any
        rails that are neither total nor parts, which are not subtracted).
    :param parts: For ``board``: the rails subtracted from the total.
    """

    method = "measured"
    kind = "power"
    max_interval_s = MAX_INTERVAL_S
    max_power_w = MAX_POWER_W

    def __init__(
        self, component: str, rails: Sequence[Rail], *, parts: Sequence[Rail] = (), opener: Opener = os.open
    ) -> None:
        if not rails:
            raise ValueError("JetsonSource needs at least one rail")
        self.component = component
        self.name = f"{PLUGIN}:{component}"
        self.rails = tuple(rails)
        self.parts = tuple(parts)
        self._remainder = bool(parts) and self.rails[0].component == "total"
        self._files = _RailFiles([*self.rails, *self.parts], self.name, opener)
        if self._remainder:
            self.info = {
                "rails": f"{self.rails[0].name} minus {' + '.join(r.name for r in self.parts)} (the rest of the module)"
            }
        else:
            self.info = {"rails": ", ".join(r.name for r in self.rails)}

    def devices(self) -> list[str]:
        if self._remainder:
            return [f"{self.rails[0].name} - measured rails"]
        return [r.label for r in self.rails]

    def read(self) -> list[float]:
        watts = self._files.read()
        if not self._remainder:
            return watts
        total = watts[0]
        parts = sum(watts[len(self.rails):])
        return [max(0.0, total - parts)]

    def close(self) -> None:
        self._files.close()


def probe(root: Path, *, opener: Opener = os.open, setting: str = "") -> list[JetsonSource | Unavailable]:
    """Return one source per component for the rails under ``root``, or a note why there are none."""
    where = f" ({setting})" if setting else ""
    rails = find_rails(root)
    if not rails:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no INA3221 power monitor rail under {root / 'bus' / 'i2c' / 'drivers'}{where} "
                "(ina3221 or ina3221x)",
            )
        ]
    totals = [r for r in rails if r.component == "total"]
    parts = [r for r in rails if r.component not in ("total", "board")]
    others = [r for r in rails if r.component == "board"]
    groups: dict[str, list[Rail]] = {}
    for rail in parts:
        groups.setdefault(rail.component, []).append(rail)
    sources: list[JetsonSource] = []
    notes: list[Unavailable] = []
    try:
        for component, members in groups.items():
            sources.append(JetsonSource(component, members, opener=opener))
        if totals:
            if len(totals) > 1:
                names = ", ".join(r.name for r in totals)
                _logger.warning("jetson: several total rails (%s); the first is used", names)
            if parts:
                sources.append(JetsonSource("board", [totals[0]], parts=parts, opener=opener))
            else:
                sources.append(JetsonSource("board", [totals[0]], opener=opener))
            if others:
                _logger.info(
                    "jetson: %s not counted: already in the total %s", ", ".join(r.name for r in others), totals[0].name
                )
        else:
            if others:
                sources.append(JetsonSource("board", others, opener=opener))
            notes.append(
                Unavailable(
                    plugin=PLUGIN,
                    reason="no module input rail (VDD_IN or POM_5V_IN): the rails measured are reported, the "
                    "rest of the module (memory, I/O, regulators) is not",
                )
            )
    except (OSError, ValueError, MeasurementError) as exc:
        for source in sources:
            source.close()
        denied = isinstance(exc, PermissionError)
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"cannot read the INA3221 rails: {exc}",
                hint="the power monitor files are world-readable on Jetson Linux; check the sysfs mount"
                if not denied
                else "run as a user who may read the power monitor files",
                warn=True,
            )
        ]
    return [*sources, *notes]


@hookimpl
def register_power_sources(config: Config) -> list[JetsonSource | Unavailable]:
    value = os.environ.get(SYSFS_ENV, "").strip()
    return probe(sysfs_root(), setting=f"{SYSFS_ENV}={value}" if value else "")
