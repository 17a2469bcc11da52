"""Containers and allocations: the cgroup v2 this process runs in, and its Slurm job.

With ``attribution="cgroup"`` the tracker charges the run what its cgroup used (a container, a
Kubernetes pod, a systemd unit or a Slurm job), rather than the machine or one process tree:

- CPU energy by the cgroup's own CPU time against the host's busy CPU time, interval by
  interval: ``usage_usec`` of the cgroup's ``cpu.stat`` over the non-idle time of every CPU in
  ``/proc/stat`` (user, nice, system, irq, softirq, steal; ``/proc/stat`` is the host's, also in
  a container). Where ``cpuset.cpus.effective`` leaves out whole processor packages, a source
  whose devices are packages (RAPL's ``package-<n>``) is charged 0 for those, and for the others
  the usage over the busy time of the packages' own CPUs;
- DRAM energy by the cgroup's memory without page cache (``memory.current`` minus ``file`` of
  ``memory.stat``) against the host's used memory (``MemTotal - MemAvailable`` of
  ``/proc/meminfo``);
- a GPU's energy by the share of it the cgroup's processes (``cgroup.procs`` of the cgroup and
  every cgroup below it) took, as the GPU's plugin measures it (see ``docs/attribution.md``).

Which cgroup: the ``0::<path>`` line of ``/proc/self/cgroup`` (cgroup v2), under the cgroup
mount ``<sysfs>/fs/cgroup``. In a Slurm job (``SLURM_JOB_ID`` set) the whole job is charged:
the ancestor ``job_<SLURM_JOB_ID>`` of that path when there is one (Slurm's cgroup/v2 plugin
nests ``step_*`` and ``task_*`` cgroups under it), else the process's own cgroup.

Roots: ``CARBONKIT_SYSFS_ROOT`` (default ``/sys``) and ``CARBONKIT_PROC_ROOT`` (default
``/proc``), so that tests build a cgroup v2 tree in a folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import define, field

from .errors import ConfigError

__all__ = ["Allocation", "CgroupShare", "cpu_list", "detect"]

PROC_ENV = "CARBONKIT_PROC_ROOT"
SYSFS_ENV = "CARBONKIT_SYSFS_ROOT"
#: At most this many cgroups are walked to list a cgroup's processes.
MAX_CGROUPS = 10_000
_PACKAGE = re.compile(r"package-(\d+)\b")


def cpu_list(text: str) -> tuple[int, ...]:
    """Parse a kernel CPU list (``"0-3,8,10-11"``) into CPU numbers; ``""`` is no CPU."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        first = int(low)
        last = int(high) if high else first
        cpus.extend(range(first, last + 1))
    return tuple(sorted(set(cpus)))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value.strip())
        except ValueError:
            continue
    return out


@define(kw_only=True)
class Allocation:
    """The cgroup (and Slurm job) a run is charged to, and what it may use.

    ``cgroup`` is the cgroup's path in the hierarchy (``/system.slice/docker-1f2e.scope``);
    ``directory`` where it is mounted; ``cpus`` the CPUs it may run on
    (``cpuset.cpus.effective``), ``cpu_limit`` the CPUs' worth its ``cpu.max`` quota allows;
    ``slurm_job``, ``slurm_cpus`` and ``gpus`` what the Slurm allocation says
    (``SLURM_JOB_ID``, ``SLURM_CPUS_ON_NODE``, ``SLURM_JOB_GPUS``; ``CUDA_VISIBLE_DEVICES`` when
    Slurm did not set ``SLURM_JOB_GPUS``).
    """

    cgroup: str
    directory: Path
    cpus: tuple[int, ...] | None = None
    cpu_limit: float | None = None
    slurm_job: str | None = None
    slurm_cpus: int | None = None
    gpus: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """``"slurm"`` in a Slurm job, else ``"cgroup"``."""
        return "slurm" if self.slurm_job else "cgroup"

    def describe(self) -> str:
        """One line saying what is charged and what it may use."""
        parts = [f"Slurm job {self.slurm_job}, " if self.slurm_job else "", f"cgroup {self.cgroup}"]
        limits = []
        if self.cpus is not None:
            limits.append(f"{len(self.cpus)} CPUs ({_ranges(self.cpus)})")
        if self.cpu_limit is not None:
            limits.append(f"cpu.max {self.cpu_limit:g} CPUs")
        if self.slurm_cpus is not None:
            limits.append(f"{self.slurm_cpus} CPUs on this node (SLURM_CPUS_ON_NODE)")
        if self.gpus is not None:
            limits.append(f"GPUs {','.join(self.gpus) or 'none'}")
        return "".join(parts) + (f": {', '.join(limits)}" if limits else "")


def _ranges(cpus: tuple[int, ...]) -> str:
    out: list[str] = []
    start = prev = cpus[0]
    for c in (*cpus[1:], None):
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
        if c is not None:
            start = prev = c
    return ",".join(out)


def _roots(environ: Mapping[str, str]) -> tuple[Path, Path]:
    proc = Path(environ.get(PROC_ENV, "").strip() or "/proc")
    sysfs = Path(environ.get(SYSFS_ENV, "").strip() or "/sys")
    return proc, sysfs


def detect(environ: Mapping[str, str] | None = None) -> Allocation | None:
    """Return this process's cgroup v2 allocation, or None when it has none (cgroup v1 only,
    not Linux, or the cgroup files cannot be read)."""
    env = os.environ if environ is None else environ
    proc, sysfs = _roots(env)
    text = _read(proc / "self" / "cgroup")
    if text is None:
        return None
    path = None
    for line in text.splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
    if path is None or not path.startswith("/"):
        return None
    mount = sysfs / "fs" / "cgroup"
    job = (env.get("SLURM_JOB_ID") or "").strip() or None
    if job:
        parts = path.split("/")
        marker = f"job_{job}"
        if marker in parts:
            path = "/".join(parts[: parts.index(marker) + 1])
    directory = mount / path.lstrip("/")
    if _read(directory / "cpu.stat") is None:
        return None
    cpus = None
    effective = _read(directory / "cpuset.cpus.effective")
    if effective is not None:
        try:
            cpus = cpu_list(effective) or None
        except ValueError:
            cpus = None
    limit = None
    quota = (_read(directory / "cpu.max") or "").split()
    if len(quota) == 2 and quota[0] != "max":
        try:
            limit = int(quota[0]) / int(quota[1])
        except (ValueError, ZeroDivisionError):
            limit = None
    slurm_cpus = None
    if job:
        try:
            slurm_cpus = int(env.get("SLURM_CPUS_ON_NODE", ""))
        except ValueError:
            slurm_cpus = None
    raw_gpus = env.get("SLURM_JOB_GPUS") if job else None
    if raw_gpus is None and job:
        raw_gpus = env.get("CUDA_VISIBLE_DEVICES")
    gpus = tuple(g.strip() for g in raw_gpus.split(",") if g.strip()) if raw_gpus is not None else None
    return Allocation(
        cgroup=path or "/", directory=directory, cpus=cpus, cpu_limit=limit, slurm_job=job,
        slurm_cpus=slurm_cpus, gpus=gpus,
    )


@define
class CgroupShare:
    """The cgroup's share of the host's busy CPU time and used memory between two calls.

    :param allocation: The cgroup (from :func:`detect`).
    :param proc_root: Where ``/proc`` is (the host's ``stat`` and ``meminfo``).
    :param clock_ticks: ``USER_HZ``, the unit of ``/proc/stat`` (``os.sysconf("SC_CLK_TCK")``).
    """

    allocation: Allocation
    proc_root: Path = Path("/proc")
    clock_ticks: int = field(factory=lambda: int(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100)
    sysfs_root: Path = Path("/sys")
    _last_usage: int | None = None
    _last_busy: float | None = None
    _pids: frozenset[int] = frozenset()
    _packages: dict[int, frozenset[int]] | None = None  # package id -> its CPUs
    _last_cpu_busy: dict[int, float] | None = None
    #: Each processor package's share in the last interval (None: the cgroup may use every CPU).
    package_shares: dict[int, float] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CgroupShare:
        """Build it for this process; :class:`ConfigError` when it is in no cgroup v2."""
        env = os.environ if environ is None else environ
        allocation = detect(env)
        if allocation is None:
            proc, sysfs = _roots(env)
            raise ConfigError(
                f"attribution='cgroup' needs a cgroup v2 hierarchy: no '0::' line in {proc}/self/cgroup with a "
                f"cpu.stat under {sysfs}/fs/cgroup (cgroup v1 only, or not Linux); use attribution='process'"
            )
        proc, sysfs = _roots(env)
        return cls(allocation, proc_root=proc, sysfs_root=sysfs)

    def _busy_us(self) -> tuple[float, dict[int, float]]:
        """The host's busy CPU time, in microseconds, in all and per CPU (``/proc/stat``)."""
        text = _read(self.proc_root / "stat") or ""
        total = None
        per_cpu: dict[int, float] = {}
        for line in text.splitlines():
            fields = line.split()
            if not fields or not fields[0].startswith("cpu"):
                continue
            values = [int(v) for v in fields[1:]]
            values += [0] * (8 - len(values))
            user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
            busy = (user + nice + system + irq + softirq + steal) * 1e6 / self.clock_ticks
            if fields[0] == "cpu":
                total = busy
            elif fields[0][3:].isdigit():
                per_cpu[int(fields[0][3:])] = busy
        if total is None:
            raise OSError(f"no 'cpu' line in {self.proc_root / 'stat'}")
        return total, per_cpu

    def packages(self) -> dict[int, frozenset[int]]:
        """Each processor package's CPUs (``/sys/devices/system/cpu/cpu<N>/topology/physical_package_id``)."""
        if self._packages is None:
            found: dict[int, set[int]] = {}
            base = self.sysfs_root / "devices" / "system" / "cpu"
            try:
                entries = list(base.iterdir())
            except OSError:
                entries = []
            for entry in entries:
                name = entry.name
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                text = _read(entry / "topology" / "physical_package_id")
                if text is None or not text.strip().lstrip("-").isdigit():
                    continue
                found.setdefault(int(text), set()).add(int(name[3:]))
            self._packages = {k: frozenset(v) for k, v in found.items()}
        return self._packages

    def _host_used_bytes(self) -> float:
        info = {}
        for line in (_read(self.proc_root / "meminfo") or "").splitlines():
            key, _, rest = line.partition(":")
            try:
                info[key] = int(rest.split()[0]) * 1024
            except (IndexError, ValueError):
                continue
        if "MemTotal" not in info:
            raise OSError(f"no MemTotal in {self.proc_root / 'meminfo'}")
        return max(float(info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))), 1.0)

    def _memory_bytes(self) -> float:
        d = self.allocation.directory
        current = _read(d / "memory.current")
        if current is None:
            return 0.0
        file_bytes = _keyed(_read(d / "memory.stat")).get("file", 0)
        return max(float(int(current) - file_bytes), 0.0)

    def pids(self) -> frozenset[int]:
        """The processes of the cgroup and of every cgroup below it (as last sampled)."""
        if not self._pids:
            self._pids = self._walk()
        return self._pids

    def _walk(self) -> frozenset[int]:
        found: set[int] = set()
        todo = [self.allocation.directory]
        seen = 0
        while todo and seen < MAX_CGROUPS:
            d = todo.pop()
            seen += 1
            for line in (_read(d / "cgroup.procs") or "").split():
                if line.isdigit():
                    found.add(int(line))
            try:
                todo.extend(p for p in d.iterdir() if p.is_dir())
            except OSError:
                continue
        return frozenset(found)

    def sample(self) -> Mapping[str, float]:
        """Return ``{"cpu": share, "dram": share}`` for the interval since the last call."""
        usage = _keyed(_read(self.allocation.directory / "cpu.stat")).get("usage_usec")
        if usage is None:
            raise OSError(f"no usage_usec in {self.allocation.directory / 'cpu.stat'}")
        busy, per_cpu = self._busy_us()
        cpu_share = 0.0
        if self._last_usage is not None and self._last_busy is not None:
            d_busy = busy - self._last_busy
            d_usage = max(usage - self._last_usage, 0)
            cpu_share = min(d_usage / d_busy, 1.0) if d_busy > 0 else 0.0
            self.package_shares = self._by_package(d_usage, per_cpu)
        self._last_usage, self._last_busy = usage, busy
        self._last_cpu_busy = per_cpu
        self._pids = self._walk()
        dram_share = min(self._memory_bytes() / self._host_used_bytes(), 1.0)
        return {"cpu": cpu_share, "dram": dram_share}

    def _by_package(self, d_usage: float, per_cpu: Mapping[int, float]) -> dict[int, float] | None:
        """With a cpuset narrower than the machine: 0 for the packages the cgroup cannot run on,
        and its usage over the busy time of the packages it can run on for the others."""
        cpus = self.allocation.cpus
        packages = self.packages()
        last = self._last_cpu_busy
        if cpus is None or not packages or last is None:
            return None
        allowed = frozenset(cpus)
        mine = {pkg for pkg, members in packages.items() if members & allowed}
        if len(mine) == len(packages):
            return None  # every package: the machine-wide share is the right one
        d_busy = sum(per_cpu.get(c, 0.0) - last.get(c, 0.0) for pkg in mine for c in packages[pkg])
        share = min(d_usage / d_busy, 1.0) if d_busy > 0 else 0.0
        return {pkg: (share if pkg in mine else 0.0) for pkg in packages}

    def device_shares(self, component: str, labels: Sequence[str]) -> list[float] | None:
        """Per-device CPU shares for a source whose devices are processor packages (labels
        ``package-<n>``, as RAPL names its zones), when the cgroup may use only some packages."""
        if component != "cpu" or self.package_shares is None:
            return None
        out: list[float] = []
        for label in labels:
            match = _PACKAGE.match(label)
            if match is None or int(match.group(1)) not in self.package_shares:
                return None
            out.append(self.package_shares[int(match.group(1))])
        return out

    def describe(self) -> dict[str, str]:
        """How each component's share is obtained, for the report's component details."""
        what = self.allocation.describe()
        return {
            "cpu": f"charged by {what}: its cpu.stat usage_usec over the host's busy CPU time (/proc/stat); "
            "where its cpuset leaves out whole processor packages, those count 0 and the share is of the busy "
            "time of the packages it may use",
            "dram": f"charged by {what}: its memory.current less page cache over the host's used memory",
            "gpu": f"charged by {what}: the share of each GPU its processes used, where the GPU plugin measures it",
        }
