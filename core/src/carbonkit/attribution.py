"""Per-process attribution on shared machines (experiment-impact-tracker's method).

With ``attribution="process"`` the tracker scales, interval by interval:

- CPU energy by the tracked process tree's share of the machine's busy CPU time
  (user + system of the tree, over user + system + the other non-idle states of all CPUs);
- DRAM energy by the tree's share of the machine's used memory (resident set size).

- each GPU's energy by the tree's share of that GPU, where its power source can say
  (``process_shares``: the NVML plugin's per-process utilisation samples, else its documented
  fallback); the GPUs of a source that cannot say are charged whole.

The share of idle CPU power is not charged to the process, so on an idle machine the
attributed figure is near zero while the machine figure is not: the report shows both.
``attribution="cgroup"`` charges a container's or a Slurm job's cgroup instead
(:mod:`carbonkit.cgroups`). See ``docs/attribution.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import define, field

__all__ = ["ProcessShare"]


def _busy(times: Any) -> float:
    idle: float = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    total: float = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - idle


@define
class ProcessShare:
    """Compute the tracked process tree's share of CPU time and memory between two calls.

    :param pid: Root of the process tree.
    :param psutil: The psutil module (injected in tests).
    """

    pid: int
    psutil: Any = field(default=None)
    _last_tree: float | None = None
    _last_busy: float | None = None
    _proc: Any = None
    clock: Callable[[], float] | None = None
    _pids: frozenset[int] = frozenset()

    def __attrs_post_init__(self) -> None:
        if self.psutil is None:
            import psutil

            self.psutil = psutil
        self._proc = self.psutil.Process(self.pid)

    def pids(self) -> frozenset[int]:
        """The process ids of the tree, as last sampled (the root alone before the first sample)."""
        return self._pids or frozenset({self.pid})

    def describe(self) -> dict[str, str]:
        """How each component's share is obtained, for the report's component details."""
        return {
            "cpu": f"charged by the process tree of pid {self.pid}: its CPU time over the machine's busy CPU time",
            "dram": f"charged by the process tree of pid {self.pid}: its resident memory over the machine's "
            "used memory",
            "gpu": f"charged by the process tree of pid {self.pid}: its share of each GPU, where the GPU plugin "
            "measures it",
        }

    def _tree(self) -> tuple[float, float]:
        cpu = 0.0
        rss = 0.0
        procs = [self._proc]
        try:
            procs += self._proc.children(recursive=True)
        except self.psutil.Error:
            pass
        self._pids = frozenset(int(p.pid) for p in procs)
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
                    rss += p.memory_info().rss
            except self.psutil.Error:
                continue
        return cpu, rss

    def sample(self) -> Mapping[str, float]:
        """Return ``{"cpu": share, "dram": share}`` for the interval since the last call."""
        tree_cpu, tree_rss = self._tree()
        busy = _busy(self.psutil.cpu_times())
        vm = self.psutil.virtual_memory()
        used = max(float(vm.total - vm.available), 1.0)
        cpu_share = 0.0
        if self._last_tree is not None and self._last_busy is not None:
            d_busy = busy - self._last_busy
            d_tree = max(tree_cpu - self._last_tree, 0.0)
            cpu_share = min(d_tree / d_busy, 1.0) if d_busy > 0 else 0.0
        self._last_tree, self._last_busy = tree_cpu, busy
        return {"cpu": cpu_share, "dram": min(tree_rss / used, 1.0)}
