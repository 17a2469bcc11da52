"""``carbonkit setup rapl``: let one group read the RAPL energy counters, for good.

Since Linux 5.10 (November 2020, backported to the stable kernels) the powercap attribute
``energy_uj`` is readable by root only (mode 0400): energy readings are a power side channel
(PLATYPUS, CVE-2020-8694 and CVE-2020-8695). Run once as root, :class:`RaplAccess` installs a
least-privilege alternative (see ``docs/rapl-access.md`` for the trade-off):

1. the group :data:`DEFAULT_GROUP` (``groupadd --system``), unless it exists;
2. a udev rule, :data:`RULE_NAME` in ``<etc>/udev/rules.d``, that gives the group read access to
   ``energy_uj`` and ``max_energy_range_uj`` of every RAPL powercap zone (control types
   ``intel-rapl``, ``intel-rapl-tpmi``, ``intel-rapl-mmio``; AMD processors use ``intel-rapl``
   too) each time a zone is added or changed. Powercap zones are devices: the kernel sends an
   ``add`` event for each zone when the RAPL driver loads (at boot, where systemd replays the
   events through ``systemd-udev-trigger``, and at every later load or module reload), so the
   rule survives both reboots and reloads. A ``tmpfiles.d`` line would not: it runs once at
   boot and misses a driver loaded, or reloaded, afterwards.
3. the same change applied now to the zones that exist (``chgrp``, ``chmod g+r``), and
   ``udevadm control --reload`` so that udev reads the rule at once.

Running it twice changes nothing (and says so); ``dry_run`` prints the steps without taking
them; :meth:`RaplAccess.undo` removes exactly what was installed: the rule, the group (only when
this command created it, as the rule records) and the group's access to the counters, which go
back to the kernel's ``root:root``.

Paths: sysfs from ``CARBONKIT_SYSFS_ROOT`` (default ``/sys``), the configuration directory from
``CARBONKIT_ETC_ROOT`` (default ``/etc``). ``groupadd``, ``groupdel``, ``chgrp``, ``chmod`` and
``udevadm`` are found on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from attrs import define, field

from .errors import CarbonkitError

__all__ = [
    "CONTROL_TYPES",
    "DEFAULT_GROUP",
    "ETC_ENV",
    "RULE_NAME",
    "SYSFS_ENV",
    "RaplAccess",
    "SetupError",
]

#: The group that may read the counters, unless ``--group`` names another.
DEFAULT_GROUP = "carbonkit-rapl"
#: The udev rule file, in ``<etc>/udev/rules.d``.
RULE_NAME = "60-carbonkit-rapl.rules"
#: The powercap control types of RAPL.
CONTROL_TYPES = ("intel-rapl", "intel-rapl-tpmi", "intel-rapl-mmio")
#: The files the group may read in each zone.
COUNTER_FILES = ("energy_uj", "max_energy_range_uj")
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"
ETC_ENV = "CARBONKIT_ETC_ROOT"

_MARKER = "# Installed by `carbonkit setup rapl`; remove with `carbonkit setup rapl --undo`."
_CREATED = "# carbonkit-created-group: "
_GROUP_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class SetupError(CarbonkitError):
    """``carbonkit setup`` cannot do what it was asked (not root, a command failed)."""


def _run(argv: Sequence[str]) -> None:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{' '.join(argv)} failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise SetupError(f"{' '.join(argv)} exited with status {done.returncode}: {detail}")


@define(kw_only=True)
class RaplAccess:
    """Install, or remove, read access to the RAPL counters for one group.

    :param group: The group's name (letters, digits, ``_`` and ``-``, as ``groupadd`` accepts).
    :param sysfs_root: Where sysfs is mounted; default ``CARBONKIT_SYSFS_ROOT``, else ``/sys``.
    :param etc_root: The system configuration directory; default ``CARBONKIT_ETC_ROOT``, else
        ``/etc``.
    :param dry_run: Say what would be done; change nothing.
    :param euid: The effective user id (default: this process's); anything but 0 is refused
        unless ``dry_run``.
    :param which: Finds a command on ``PATH`` (injected by tests).
    :param run: Runs a command, raising :class:`SetupError` when it fails (injected by tests).
    :param say: Receives one line per step taken (or planned).
    :raises SetupError: at construction, when ``group`` is not a valid group name.
    """

    group: str = DEFAULT_GROUP
    sysfs_root: Path | None = None
    etc_root: Path | None = None
    dry_run: bool = False
    euid: int | None = None
    environ: Mapping[str, str] | None = None
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[Sequence[str]], None] = _run
    say: Callable[[str], None] = print
    lines: list[str] = field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.group, str) or not _GROUP_NAME.fullmatch(self.group):
            raise SetupError(
                f"group {self.group!r} is not a valid group name: lower-case letters, digits, '_' and '-', "
                "starting with a letter or '_', at most 32 characters"
            )
        env = os.environ if self.environ is None else self.environ
        if self.sysfs_root is None:
            self.sysfs_root = Path(env.get(SYSFS_ENV, "").strip() or "/sys")
        if self.etc_root is None:
            self.etc_root = Path(env.get(ETC_ENV, "").strip() or "/etc")
        if self.euid is None:
            self.euid = os.geteuid() if hasattr(os, "geteuid") else 0

    # -- paths ----------------------------------------------------------------------------------

    @property
    def rule_path(self) -> Path:
        assert self.etc_root is not None
        return self.etc_root / "udev" / "rules.d" / RULE_NAME

    @property
    def powercap(self) -> Path:
        assert self.sysfs_root is not None
        return self.sysfs_root / "class" / "powercap"

    def counters(self) -> list[Path]:
        """The counter files of every RAPL zone and subzone present now.

        ``/sys/class/powercap`` lists every zone and subzone (``intel-rapl:0``,
        ``intel-rapl:0:0``), each a link to its device folder, where subzones also sit inside
        their parent zone; each file is listed once.
        """
        found: list[Path] = []
        seen: set[Path] = set()

        def zones(folder: Path) -> list[Path]:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                return []
            return [e for e in entries if e.name.partition(":")[1] and e.name.partition(":")[0] in CONTROL_TYPES]

        for zone in zones(self.powercap):
            for entry in (zone, *zones(zone)):
                for name in COUNTER_FILES:
                    path = entry / name
                    try:
                        real = path.resolve()
                    except OSError:
                        continue
                    if real not in seen and path.is_file():
                        seen.add(real)
                        found.append(path)
        return found

    def group_id(self) -> int | None:
        """The group's id from ``<etc>/group``, or None when it is not there."""
        assert self.etc_root is not None
        try:
            text = (self.etc_root / "group").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[0] == self.group:
                try:
                    return int(parts[2])
                except ValueError:
                    return None
        return None

    # -- the rule -------------------------------------------------------------------------------

    def rule_text(self, *, created_group: bool) -> str:
        """The udev rule file's content."""
        chgrp = self._command("chgrp", required=False)
        chmod = self._command("chmod", required=False)
        files = " ".join(f"/sys%p/{name}" for name in COUNTER_FILES)
        kernels = "|".join(f"{control}:*" for control in CONTROL_TYPES)
        return (
            f"{_MARKER}\n"
            f"# Lets the group {self.group} read the RAPL energy counters of every powercap zone, each time a\n"
            "# zone appears (boot, driver load or reload). Energy counters are a power side channel\n"
            "# (PLATYPUS, CVE-2020-8694/8695): only trusted users belong in this group.\n"
            f"{_CREATED}{'yes' if created_group else 'no'}\n"
            f'ACTION=="add|change", SUBSYSTEM=="powercap", KERNEL=="{kernels}", '
            f'RUN+="{chgrp} {self.group} {files}", RUN+="{chmod} g+r {files}"\n'
        )

    def _installed_rule(self) -> str | None:
        try:
            text = self.rule_path.read_text(encoding="utf-8")
        except OSError:
            return None
        return text if text.startswith(_MARKER) else ""

    def _command(self, name: str, *, required: bool = True) -> str:
        found = self.which(name)
        if found:
            return found
        if required and not self.dry_run:
            raise SetupError(f"{name} not found on PATH; it is needed to set up RAPL access")
        return f"/usr/bin/{name}"

    # -- steps ----------------------------------------------------------------------------------

    def _step(self, text: str, action: Callable[[], None]) -> None:
        self.lines.append(("would " if self.dry_run else "") + text)
        self.say(self.lines[-1])
        if not self.dry_run:
            action()

    def _note(self, text: str) -> None:
        self.lines.append(text)
        self.say(text)

    def _check_root(self) -> None:
        if self.euid != 0 and not self.dry_run:
            raise SetupError(
                "carbonkit setup rapl changes system files and must run as root: sudo carbonkit setup rapl "
                "(or --dry-run to see what it would do)"
            )

    def install(self) -> bool:
        """Install the group, the rule and the access now; return whether anything changed."""
        self._check_root()
        changed = False
        gid = self.group_id()
        installed = self._installed_rule()
        if installed == "":
            raise SetupError(
                f"{self.rule_path} exists and was not written by carbonkit; move it away and run again"
            )
        created = gid is None or (installed is not None and f"{_CREATED}yes" in installed)
        if gid is None:
            groupadd = self._command("groupadd")
            self._step(f"create the system group {self.group}", lambda: self.run([groupadd, "--system", self.group]))
            changed = True
            gid = self.group_id()
        wanted = self.rule_text(created_group=created)
        if installed != wanted:
            verb = "update" if installed else "install"
            self._step(f"{verb} the udev rule {self.rule_path}", lambda: self._write_rule(wanted))
            if self.dry_run:
                for line in wanted.splitlines():
                    self._note(f"    {line}")
            changed = True
            udevadm = self.which("udevadm")
            if udevadm:
                self._step("reload the udev rules (udevadm control --reload)",
                           lambda: self.run([udevadm, "control", "--reload"]))
            else:
                self._note("udevadm not found: udev reads the rule when it next starts (at the latest, the next boot)")
        todo = [p for p in self.counters() if not self._readable(p, gid)]
        if todo:
            chgrp = self._command("chgrp")
            chmod = self._command("chmod")
            names = [str(p) for p in todo]

            def grant() -> None:
                self.run([chgrp, self.group, *names])
                self.run([chmod, "g+r", *names])

            self._step(f"let {self.group} read {len(todo)} counter file(s) now: {', '.join(names)}", grant)
            changed = True
        elif not self.counters():
            self._note(f"no RAPL zone under {self.powercap} now; the rule applies when the driver loads")
        if not changed:
            self._note(f"nothing to change: {self.group} may already read the RAPL counters ({self.rule_path})")
        elif not self.dry_run:
            self._note(
                f"done. Add each user who runs carbonkit: sudo usermod -aG {self.group} USER (it applies at "
                "their next login). Undo with: sudo carbonkit setup rapl --undo"
            )
        return changed

    def undo(self) -> bool:
        """Remove what :meth:`install` installed; return whether anything changed."""
        self._check_root()
        changed = False
        installed = self._installed_rule()
        if installed == "":
            raise SetupError(f"{self.rule_path} was not written by carbonkit; it is left alone")
        gid = self.group_id()
        if installed is not None:
            self._step(f"remove the udev rule {self.rule_path}", self.rule_path.unlink)
            changed = True
            udevadm = self.which("udevadm")
            if udevadm:
                self._step("reload the udev rules (udevadm control --reload)",
                           lambda: self.run([udevadm, "control", "--reload"]))
        ours = [p for p in self.counters() if gid is not None and self._gid(p) == gid]
        if ours:
            chgrp = self._command("chgrp")
            chmod = self._command("chmod")
            names = [str(p) for p in ours]
            private = [str(p) for p in ours if not self._mode(p) & stat.S_IROTH]
            text = f"give {len(ours)} counter file(s) back to root: {', '.join(names)}"

            def restore() -> None:
                self.run([chgrp, "root", *names])
                if private:
                    self.run([chmod, "g-r", *private])

            self._step(text, restore)
            changed = True
        if installed is not None and f"{_CREATED}yes" in installed and gid is not None:
            groupdel = self._command("groupdel")
            self._step(f"delete the group {self.group} (created by carbonkit setup rapl)",
                       lambda: self.run([groupdel, self.group]))
            changed = True
        if not changed:
            self._note(f"nothing to undo: no rule at {self.rule_path} and no counter file owned by {self.group}")
        return changed

    # -- helpers --------------------------------------------------------------------------------

    def _write_rule(self, text: str) -> None:
        self.rule_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.rule_path.with_name(self.rule_path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(self.rule_path)

    @staticmethod
    def _gid(path: Path) -> int | None:
        try:
            return path.stat().st_gid
        except OSError:
            return None

    @staticmethod
    def _mode(path: Path) -> int:
        try:
            return path.stat().st_mode
        except OSError:
            return 0

    def _readable(self, path: Path, gid: int | None) -> bool:
        """Whether the group may read ``path`` already (its own group with g+r, or o+r)."""
        mode = self._mode(path)
        if mode & stat.S_IROTH:
            return True
        return gid is not None and self._gid(path) == gid and bool(mode & stat.S_IRGRP)
