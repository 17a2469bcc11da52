"""The GPUs the tracked process tree runs on (the ``nvml.process_gpus`` option).

A GPU counts once NVML lists a process of the tree (``config.pid`` and its descendants, found
with psutil) among the compute or graphics processes running on it, or on one of the MIG
devices named in ``CUDA_VISIBLE_DEVICES``. Once counted, it stays counted until the run ends.
The tree is re-checked every ``recheck_s`` seconds, from the sampler thread, until every
selected GPU counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from attrs import define, field

from carbonkit import ConfigError

from ._select import Gpu

_logger = logging.getLogger(__name__)

#: Seconds between two looks at which GPUs the tracked process tree uses.
RECHECK_S = 5.0
#: Seconds without the tree on any selected GPU before one warning says so.
WARN_AFTER_S = 60.0


def _gpu_tuple(value: Iterable[Gpu]) -> tuple[Gpu, ...]:
    return tuple(value)


@define(kw_only=True)
class ProcessGpus:
    """Which of ``gpus`` the process tree rooted at ``root_pid`` has used so far.

    :param nvml: The NVML module (``pynvml`` or a stand-in), initialised by the caller.
    :param root_pid: The root of the tracked process tree (``config.pid``).
    :param gpus: The selected GPUs.
    :param clock: Monotonic seconds (injected by tests).
    :param recheck_s: Seconds between two checks while some GPU does not count yet.
    :param warn_after_s: Seconds without the tree on any GPU before one warning.
    :raises ConfigError: when ``root_pid`` is not a running process.
    """

    nvml: ModuleType
    root_pid: int
    gpus: tuple[Gpu, ...] = field(converter=_gpu_tuple)
    clock: Callable[[], float] = time.monotonic
    recheck_s: float = RECHECK_S
    warn_after_s: float = WARN_AFTER_S
    _active: set[str] = field(init=False, factory=set)
    _disabled: bool = field(init=False, default=False)
    _warned: bool = field(init=False, default=False)
    _started: float = field(init=False, default=0.0)
    _last_check: float = field(init=False, default=0.0)
    _psutil: Any = field(init=False, default=None)
    _errors: tuple[type[BaseException], ...] = field(init=False, default=())

    def __attrs_post_init__(self) -> None:
        self._errors = (self.nvml.NVMLError,) + tuple(
            cls for cls in [getattr(self.nvml, "NVMLLibraryMismatchError", None)] if isinstance(cls, type)
        )
        try:
            import psutil
        except ImportError:
            _logger.warning(
                "nvml.process_gpus: psutil is not installed, so only pid %d itself is matched, not its "
                "child processes (pip install psutil)",
                self.root_pid,
            )
        else:
            if not psutil.pid_exists(self.root_pid):
                raise ConfigError(
                    f"config.pid={self.root_pid!r} is not a running process; nvml.process_gpus needs the "
                    "pid of the tracked process tree's root"
                )
            self._psutil = psutil
        self._started = self._last_check = self.clock()
        if not self._check():
            self._disabled = True
            self._active = {g.uuid for g in self.gpus}
            _logger.warning(
                "nvml.process_gpus: NVML cannot list the processes running on %s, so every selected GPU "
                "is measured",
                ", ".join(g.label for g in self.gpus),
            )

    def active(self) -> frozenset[str]:
        """Return the UUIDs of the GPUs that count now, re-checking when one is due."""
        if self._disabled or len(self._active) == len(self.gpus):
            return frozenset(self._active)
        now = self.clock()
        if now - self._last_check >= self.recheck_s:
            self._last_check = now
            self._check()
        if not self._active and not self._warned and now - self._started >= self.warn_after_s:
            self._warn_unseen(f"after {now - self._started:.0f} s", "counts as 0 until it is")
        return frozenset(self._active)

    def finish(self) -> None:
        """Warn once, at the end of a run, when the process tree was never seen on a GPU."""
        if not self._active and not self._warned:
            self._warn_unseen("during the run", "was counted as 0")

    def _warn_unseen(self, when: str, outcome: str) -> None:
        self._warned = True
        _logger.warning(
            "nvml.process_gpus: the tracked process tree (pid %d) was not seen on any selected GPU %s "
            "(%s), so their energy %s. In a container NVML reports host process ids, which never match "
            "(run it with --pid=host); turn nvml.process_gpus off to measure every selected GPU",
            self.root_pid,
            when,
            ", ".join(g.label for g in self.gpus),
            outcome,
        )

    def _tree(self) -> set[int]:
        if self._psutil is None:
            return {self.root_pid}
        try:
            children = self._psutil.Process(self.root_pid).children(recursive=True)
        except self._psutil.Error:
            return {self.root_pid}
        return {self.root_pid, *(child.pid for child in children)}

    def _check(self) -> bool:
        """Mark the GPUs the tree runs on; return whether NVML answered any process query."""
        pids = self._tree()
        answered = False
        queries = (self.nvml.nvmlDeviceGetComputeRunningProcesses, self.nvml.nvmlDeviceGetGraphicsRunningProcesses)
        for gpu in self.gpus:
            if gpu.uuid in self._active:
                continue
            for handle in (gpu.handle, *gpu.mig_handles):
                for query in queries:
                    try:
                        processes = query(handle)
                    except self._errors as err:
                        _logger.debug("%s on %s failed: %s", query.__name__, gpu.label, err)
                        continue
                    answered = True
                    if any(getattr(p, "pid", None) in pids for p in processes):
                        self._active.add(gpu.uuid)
            if gpu.uuid in self._active:
                _logger.info("nvml.process_gpus: the tracked process tree runs on %s; it counts from now", gpu.label)
        return answered
