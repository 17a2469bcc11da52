"""Support for plugins that read Linux sysfs: where it is mounted, and cumulative counter files.

- :func:`sysfs_root` is the sysfs mount every sysfs plugin reads from: ``$CARBONKIT_SYSFS_ROOT``
  when set and not blank (a container that mounts the host's sysfs at ``/host/sys``, or a test's
  temporary tree), else ``/sys``.
- :class:`CounterFiles` reads cumulative integer counters (hwmon ``energyN_input`` in
  microjoules, for example), each file opened once and read with one ``os.pread``. It turns the
  raw values into amounts counted since it was created, never negative: a counter that runs from
  0 to ``modulus - 1`` and wraps is unwrapped; a decrease of a counter without a modulus (a
  driver reload, a reset) counts nothing for that interval, with one warning per file.

Hwmon's sysfs conventions (https://docs.kernel.org/hwmon/sysfs-interface.html): ``energyN_input``
is in microjoules, ``powerN_input`` in microwatts, ``inN_input`` in millivolts, ``currN_input``
in milliamperes, ``*_label`` a free-text name, ``name`` the driver's chip name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import MeasurementError

__all__ = ["DEFAULT_SYSFS_ROOT", "SYSFS_ENV", "CounterFiles", "read_int", "read_text", "sysfs_root"]

_logger = logging.getLogger(__name__)

#: The variable naming the sysfs mount.
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"
DEFAULT_SYSFS_ROOT = Path("/sys")

Opener = Callable[[str, int], int]


def sysfs_root(environ: Mapping[str, str] | None = None) -> Path:
    """Return the sysfs mount: ``$CARBONKIT_SYSFS_ROOT`` when set and not blank, else ``/sys``."""
    env = os.environ if environ is None else environ
    value = env.get(SYSFS_ENV, "").strip()
    return Path(value) if value else DEFAULT_SYSFS_ROOT


def read_text(path: Path) -> str | None:
    """Return a small sysfs file's stripped text, or None when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def read_int(path: Path) -> int | None:
    """Return a sysfs file's integer value, or None when it cannot be read or is not an integer."""
    text = read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class CounterFiles:
    """Cumulative integer counters, one file each, read as amounts counted since creation.

    :param paths: The counter files.
    :param owner: Who reads them (a source name), for messages.
    :param modulus: Where the counters wrap (they run from 0 to ``modulus - 1``), or None for
        counters that do not wrap within a run (a decrease is then a reset and counts nothing).
    :param opener: Opens a file (``os.open`` signature): the file-system boundary, for tests.
    :raises OSError: when a file cannot be opened or read (``PermissionError`` included).
    :raises ValueError: when a file does not hold an integer.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        owner: str,
        modulus: int | None = None,
        opener: Opener = os.open,
    ) -> None:
        if not paths:
            raise ValueError("CounterFiles needs at least one file")
        self.paths = tuple(paths)
        self.owner = owner
        self.modulus = modulus
        self._opener = opener
        self._fds: list[int | None] = []
        self._warned: set[int] = set()
        try:
            for path in self.paths:
                self._fds.append(opener(str(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
            self._last = [self._pread(i) for i in range(len(self.paths))]
        except BaseException:
            self.close()
            raise
        self._total = [0] * len(self.paths)

    def read(self) -> list[int]:
        """Return each counter's total since creation (in the files' unit).

        A file that fails is reopened once; if it still cannot be read, raise
        :class:`~carbonkit.MeasurementError` naming it.
        """
        for i in range(len(self.paths)):
            now, reopened = self._read(i)
            delta = now - self._last[i]
            self._last[i] = now
            if delta < 0:
                if self.modulus is not None and not reopened and now < self.modulus:
                    delta += self.modulus
                else:
                    log = _logger.debug if i in self._warned else _logger.warning
                    self._warned.add(i)
                    log(
                        "%s: %s went back from %d to %d (driver reloaded or device reset?); the amount "
                        "since the previous read is not counted",
                        self.owner,
                        self.paths[i],
                        now - delta,
                        now,
                    )
                    delta = 0
            self._total[i] += delta
        return list(self._total)

    def close(self) -> None:
        """Close the files. Safe to call more than once."""
        for i, fd in enumerate(self._fds):
            if fd is not None:
                self._fds[i] = None
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _pread(self, i: int) -> int:
        fd = self._fds[i]
        if fd is None:
            raise OSError(f"{self.paths[i]} is closed")
        return int(os.pread(fd, 32, 0))

    def _read(self, i: int) -> tuple[int, bool]:
        try:
            return self._pread(i), False
        except (OSError, ValueError) as exc:
            _logger.info("%s: reading %s failed (%s); reopening it", self.owner, self.paths[i], exc)
        fd = self._fds[i]
        self._fds[i] = None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self._fds[i] = self._opener(str(self.paths[i]), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            return self._pread(i), True
        except (OSError, ValueError) as exc:
            raise MeasurementError(f"{self.owner}: {self.paths[i]} cannot be read any more ({exc})") from exc
