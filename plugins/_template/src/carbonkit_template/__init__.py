"""carbonkit plugin ``template``: the energy counters of a made-up device, read from sysfs.

Copy this plugin to start a new hardware backend; README.md says what to rename and what every
attribute means. Replace this paragraph with what your plugin measures, its source (the driver
and its documentation), the unit of the files, how often the counters wrap, and the settings.

What it reads: ``<sysfs>/class/template/<device>/energy_uj``, one cumulative counter per device
in microjoules (uJ), where ``<sysfs>`` is ``$CARBONKIT_SYSFS_ROOT`` or ``/sys``. The source
returns joules (J) per device since it was created.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from carbonkit import MeasurementError, Unavailable, hookimpl

__all__ = ["COUNTER_DIR", "MAX_POWER_W", "SYSFS_ENV", "TemplateSource", "register_power_sources", "sysfs_root"]

_logger = logging.getLogger(__name__)

#: The entry-point name: it prefixes source names and signs ``Unavailable`` notes.
PLUGIN = "template"
#: Environment variable naming the sysfs mount (tests and containers point it elsewhere).
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"
#: Where the counters are, relative to sysfs: ``<sysfs>/class/template/<device>/energy_uj``.
COUNTER_DIR = Path("class") / "template"
#: The most power, in watts, one device can draw. Replace it with a figure with a physical
#: basis (the device's rated maximum from its datasheet, with a margin), and say which in the
#: README: the core rejects readings above it.
MAX_POWER_W = 500.0
#: The counter is 64-bit and wraps after about 585 years at 1 kW, so it need not be read
#: often; a counter that wraps sooner needs ``max_interval_s`` below half its wrap period.
MAX_INTERVAL_S = 3600.0


def sysfs_root(environ: Mapping[str, str] | None = None) -> Path:
    """Return the sysfs mount: ``$CARBONKIT_SYSFS_ROOT`` when set and not blank, else ``/sys``."""
    env = os.environ if environ is None else environ
    value = env.get(SYSFS_ENV, "").strip()
    return Path(value) if value else Path("/sys")


class TemplateSource:
    """Cumulative energy of the devices, in joules per device since the source was created.

    Opens each counter file once; each read is one ``os.pread`` per device. A counter lower
    than its previous value (the device was reset) counts nothing for that interval, with one
    warning: never negative energy.

    :param paths: The ``energy_uj`` files, one per device.
    :raises OSError: when a counter cannot be opened or read (``PermissionError`` included).
    """

    name = f"{PLUGIN}:energy"
    component = "accelerator"
    method = "measured"
    kind = "energy"
    max_interval_s = MAX_INTERVAL_S
    max_power_w = MAX_POWER_W

    def __init__(self, paths: Sequence[Path]) -> None:
        if not paths:
            raise ValueError("TemplateSource needs at least one counter file")
        self.paths = list(paths)
        self.info = {"counter": f"{self.paths[0].parent.parent}/*/energy_uj, microjoules"}
        self._fds: list[int] = []
        try:
            for path in self.paths:
                self._fds.append(os.open(path, os.O_RDONLY))
            self._last_uj = [self._read_uj(i) for i in range(len(self.paths))]
        except BaseException:
            self.close()
            raise
        self._total_uj = [0] * len(self.paths)
        self._warned = False

    def devices(self) -> list[str]:
        """Return one label per device, the counter's directory name, in the order of :meth:`read`."""
        return [path.parent.name for path in self.paths]

    def read(self) -> list[float]:
        """Return the joules each device has used since the source was created.

        :raises MeasurementError: when a counter cannot be read (the device is gone); the
            tracker then stops reading this source and keeps what it measured.
        """
        for i in range(len(self.paths)):
            try:
                now_uj = self._read_uj(i)
            except (OSError, ValueError) as exc:
                raise MeasurementError(f"{self.name}: cannot read {self.paths[i]}: {exc}") from exc
            delta = now_uj - self._last_uj[i]
            self._last_uj[i] = now_uj
            if delta < 0:
                log = _logger.debug if self._warned else _logger.warning
                log("%s: %s went back (device reset?); that interval is not counted", self.name, self.paths[i])
                self._warned = True
                delta = 0
            self._total_uj[i] += delta
        return [total / 1e6 for total in self._total_uj]

    def close(self) -> None:
        """Close the counter files. Safe to call more than once."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def _read_uj(self, i: int) -> int:
        return int(os.pread(self._fds[i], 32, 0))


@hookimpl
def register_power_sources() -> list[TemplateSource | Unavailable]:
    """Offer one source for every counter under ``<sysfs>/class/template``, or say why there is none."""
    directory = sysfs_root() / COUNTER_DIR
    paths = sorted(directory.glob("*/energy_uj"))
    if not paths:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"no template device: nothing matches {directory}/*/energy_uj",
                hint=f"load the template driver, or set {SYSFS_ENV} to where sysfs is mounted",
            )
        ]
    try:
        return [TemplateSource(paths)]
    except OSError as exc:
        return [
            Unavailable(
                plugin=PLUGIN,
                reason=f"cannot read the template counters under {directory}: {exc}",
                hint="check the files' permissions",
                warn=True,  # the user can fix this one: the tracker logs it once
            )
        ]
