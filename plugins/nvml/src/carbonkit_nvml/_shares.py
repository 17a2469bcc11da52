"""The tracked processes' share of each GPU, for ``attribution="process"`` and ``"cgroup"``.

For each GPU and each sampling interval, in this order:

1. **utilisation samples**: ``nvmlDeviceGetProcessUtilization(handle, lastSeenTimeStamp)``
   returns, per process that used the GPU since the last call, samples of its SM (compute)
   utilisation, and of its memory, encoder and decoder utilisation, in percent. The share is
   the tracked processes' summed ``smUtil`` over every process's (their ``memUtil + encUtil +
   decUtil`` when no process used the SMs). ``lastSeenTimeStamp`` is the newest sample's
   timestamp of the previous call, so each sample counts once.
2. **running processes**, where the driver gives no utilisation samples
   (``NVML_ERROR_NOT_SUPPORTED``: GPUs older than Maxwell, MIG mode) or none came in the
   interval (``NVML_ERROR_NOT_FOUND``: no process used the GPU): the tracked processes' share
   of the GPU memory used by the processes with a compute or graphics context
   (``nvmlDeviceGetComputeRunningProcesses``, ``nvmlDeviceGetGraphicsRunningProcesses``,
   ``usedGpuMemory``); an equal split among those processes where NVML does not give their
   memory (``usedGpuMemory`` None).
3. **no process** on the GPU: share 0 (its idle power is no one's, as for the CPU).
4. **NVML cannot say** (every query fails): None, and the core charges that GPU whole.

NVML gives host process ids: in a container with its own PID namespace they never match the
tracked ones, and every share is 0 (see the plugin README).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from types import ModuleType
from typing import Any

from attrs import define, field

from ._select import Gpu

_logger = logging.getLogger(__name__)

#: How each GPU's share was found, for :attr:`GpuShares.methods`.
UTILISATION = "utilisation samples"
MEMORY = "memory of running processes"
EQUAL = "equal split among running processes"
IDLE = "no process on the GPU"


def _gpus(value: Sequence[Gpu]) -> tuple[Gpu, ...]:
    return tuple(value)


@define(kw_only=True)
class GpuShares:
    """Split each GPU among its processes.

    :param nvml: The NVML module (``pynvml`` or a stand-in), initialised by the caller.
    :param gpus: The GPUs, in the order of the source's devices.

    ``methods`` counts, per method, the GPU-intervals it gave a share for.
    """

    nvml: ModuleType
    gpus: tuple[Gpu, ...] = field(converter=_gpus)
    methods: dict[str, int] = field(init=False, factory=dict)
    _last_seen: list[int] = field(init=False, factory=list)
    _no_samples: list[bool] = field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self._last_seen = [0] * len(self.gpus)
        self._no_samples = [False] * len(self.gpus)

    def shares(self, pids: Collection[int]) -> list[float | None]:
        """Return each GPU's share taken by ``pids`` since the last call (None: unknown)."""
        tracked = frozenset(int(p) for p in pids)
        out: list[float | None] = []
        for i, gpu in enumerate(self.gpus):
            share, method = self._utilisation(i, gpu, tracked)
            if share is None:
                share, method = self._running(gpu, tracked)
            if method:
                self.methods[method] = self.methods.get(method, 0) + 1
            out.append(share)
        return out

    def _utilisation(self, i: int, gpu: Gpu, tracked: frozenset[int]) -> tuple[float | None, str]:
        if self._no_samples[i]:
            return None, ""
        nvml: Any = self.nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(gpu.handle, self._last_seen[i])
        except nvml.NVMLError as err:
            code = getattr(err, "value", None)
            if code in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_FUNCTION_NOT_FOUND):
                self._no_samples[i] = True
                _logger.info("%s gives no per-process utilisation (NVML: %s); its processes' memory splits it",
                             gpu.label, err)
            elif code != nvml.NVML_ERROR_NOT_FOUND:
                _logger.debug("nvmlDeviceGetProcessUtilization on %s failed: %s", gpu.label, err)
            return None, ""
        except AttributeError:  # bindings older than the function
            self._no_samples[i] = True
            return None, ""
        sm: dict[int, int] = {}
        other: dict[int, int] = {}
        for sample in samples:
            pid = int(sample.pid)
            self._last_seen[i] = max(self._last_seen[i], int(sample.timeStamp))
            sm[pid] = sm.get(pid, 0) + int(sample.smUtil)
            other[pid] = other.get(pid, 0) + int(sample.memUtil) + int(sample.encUtil) + int(sample.decUtil)
        for weights in (sm, other):
            total = sum(weights.values())
            if total > 0:
                return min(sum(v for p, v in weights.items() if p in tracked) / total, 1.0), UTILISATION
        return None, ""

    def _running(self, gpu: Gpu, tracked: frozenset[int]) -> tuple[float | None, str]:
        nvml: Any = self.nvml
        memory: dict[int, int | None] = {}
        answered = False
        queries = [getattr(nvml, name, None) for name in (
            "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses")]
        for query in queries:
            if query is None:
                continue
            try:
                processes = query(gpu.handle)
            except nvml.NVMLError as err:
                _logger.debug("%s on %s failed: %s", getattr(query, "__name__", "query"), gpu.label, err)
                continue
            answered = True
            for p in processes:
                pid = int(p.pid)
                used = getattr(p, "usedGpuMemory", None)
                if pid in memory and memory[pid] is not None and used is not None:
                    memory[pid] = max(memory[pid] or 0, int(used))  # a process with both contexts counts once
                else:
                    memory[pid] = None if used is None else int(used)
        if not answered:
            return None, ""
        if not memory:
            return 0.0, IDLE
        if all(v is not None for v in memory.values()):
            total = sum(v or 0 for v in memory.values())
            if total > 0:
                return sum(v or 0 for p, v in memory.items() if p in tracked) / total, MEMORY
        return sum(1 for p in memory if p in tracked) / len(memory), EQUAL
