"""carbonkit plugin ``nvml``: the energy of NVIDIA GPUs, read from the driver through NVML.

Source: the NVIDIA Management Library (NVML, ``libnvidia-ml.so.1``, installed with the NVIDIA
driver), called through the ``nvidia-ml-py`` bindings (imported as ``pynvml``). Reference:
https://docs.nvidia.com/deploy/nvml-api/

Units and terms:

- ``nvmlDeviceGetTotalEnergyConsumption``: the GPU board's energy counter, integer millijoules
  since the driver was last loaded (Volta and newer GPUs). Source ``nvml:energy``, kind
  ``"energy"``: joules per GPU since the source was created.
- ``nvmlDeviceGetPowerUsage``: board power in integer milliwatts (GPU and its memory; a one-second
  average on Ampere (except GA100) and newer GPUs, instantaneous on older ones). Read only for
  GPUs whose energy counter answers Not Supported. Source ``nvml:power``, kind ``"power"``: watts per GPU,
  which the tracker integrates.

Both sources have component ``"gpu"`` and method ``"measured"``, and declare ``max_power_w``,
the most power any of their GPUs can draw: :data:`MAX_POWER_MARGIN` times the GPU's largest
settable power limit (``nvmlDeviceGetPowerManagementLimitConstraints``, milliwatts), else
:data:`DEFAULT_MAX_POWER_W`. Which GPUs are read follows
``CUDA_VISIBLE_DEVICES`` as CUDA reads it (see ``_select``); the option ``nvml.process_gpus``
(or ``CARBONKIT_NVML_PROCESS_GPUS=1``) keeps only the GPUs the tracked process tree runs on.
The NVML module is injected (``nvml=``), so tests run against a stand-in module.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field
from attrs.validators import in_

from carbonkit import ConfigError, MeasurementError, Unavailable, hookimpl

from ._processes import ProcessGpus
from ._select import Gpu, list_gpus, select
from ._shares import GpuShares

if TYPE_CHECKING:
    from carbonkit import Config

__all__ = [
    "DEFAULT_MAX_POWER_W",
    "GPUS_OPTION",
    "GPUS_VARIABLE",
    "MAX_POWER_MARGIN",
    "PLUGIN",
    "PROCESS_GPUS_OPTION",
    "PROCESS_GPUS_VARIABLE",
    "Gpu",
    "NvmlSource",
    "job_gpus",
    "register_power_sources",
]

_logger = logging.getLogger(__name__)

#: The entry-point name, used in source names and ``Unavailable`` notes.
PLUGIN = "nvml"
#: The ``config.options`` key of the process filter, and its environment variable.
PROCESS_GPUS_OPTION = "nvml.process_gpus"
PROCESS_GPUS_VARIABLE = "CARBONKIT_NVML_PROCESS_GPUS"
#: The ``config.options`` key of the GPUs to measure instead of ``CUDA_VISIBLE_DEVICES``, and its variable.
GPUS_OPTION = "nvml.gpus"
GPUS_VARIABLE = "CARBONKIT_NVML_GPUS"

#: A GPU's ceiling is this many times its largest settable power limit: boards draw above their
#: limit for milliseconds (transients), and readings older than Ampere are instantaneous.
MAX_POWER_MARGIN = 1.5
#: The ceiling of a GPU whose power limits NVML cannot give: more than twice the largest power
#: limit of current data-centre GPUs (about 1,000 W to 1,400 W per Blackwell GPU).
DEFAULT_MAX_POWER_W = 3000.0

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _gpu_tuple(value: Iterable[Gpu]) -> tuple[Gpu, ...]:
    return tuple(value)


@define(kw_only=True)
class NvmlSource:
    """The energy (``kind="energy"``) or power (``kind="power"``) of some NVIDIA GPUs.

    Build them with :meth:`discover`, which picks the GPUs and the kind each one supports.
    A source holds one NVML initialisation, released by :meth:`close`.

    :param kind: ``"energy"``: read the energy counters, return joules since the source was
        created; ``"power"``: read power, return watts.
    :param gpus: The GPUs to read, in the order of :meth:`devices`.
    :param nvml: The NVML module: ``pynvml``, or a stand-in with the same functions.
    :param processes: The process filter shared by the sources of one discovery, or None to
        count every GPU.
    :param baseline_mj: For ``kind="energy"``, each GPU's counter when the source is created
        (read now when not given).

    ``max_power_w`` (set at creation) is the largest of the GPUs' ceilings, and
    ``gpu_max_power_w`` each GPU's, in the order of :meth:`devices`.
    """

    component: ClassVar[str] = "gpu"
    method: ClassVar[str] = "measured"

    kind: str = field(validator=in_(("energy", "power")))
    gpus: tuple[Gpu, ...] = field(converter=_gpu_tuple)
    nvml: ModuleType = field(repr=False)
    processes: ProcessGpus | None = field(default=None, repr=False)
    baseline_mj: Sequence[int] | None = field(default=None, repr=False)
    attribution: str = field(default="machine", repr=False)
    _shares: GpuShares | None = field(init=False, default=None, repr=False)
    max_power_w: float = field(init=False, default=DEFAULT_MAX_POWER_W)
    gpu_max_power_w: tuple[float, ...] = field(init=False, default=(), repr=False)
    _last_mj: list[int] = field(init=False, factory=list, repr=False)
    _joules: list[float] = field(init=False, factory=list, repr=False)
    _lost: list[bool] = field(init=False, factory=list, repr=False)
    _reset_warned: list[bool] = field(init=False, factory=list, repr=False)
    _closed: bool = field(init=False, default=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.gpus:
            raise ValueError("NvmlSource needs at least one GPU")
        self.nvml.nvmlInit()  # this source's own reference; NVML counts them
        try:
            if self.kind == "energy":
                if self.baseline_mj is None:
                    self.baseline_mj = [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(g.handle)) for g in self.gpus]
                if len(self.baseline_mj) != len(self.gpus):
                    raise ValueError(f"baseline_mj has {len(self.baseline_mj)} values for {len(self.gpus)} GPUs")
                self._last_mj = [int(v) for v in self.baseline_mj]
            self.gpu_max_power_w = tuple(self._ceiling(gpu) for gpu in self.gpus)
            self.max_power_w = max(self.gpu_max_power_w)
        except BaseException:
            self.nvml.nvmlShutdown()
            raise
        self._joules = [0.0] * len(self.gpus)
        self._lost = [False] * len(self.gpus)
        self._reset_warned = [False] * len(self.gpus)

    @property
    def name(self) -> str:
        """``"nvml:energy"`` or ``"nvml:power"``."""
        return f"{PLUGIN}:{self.kind}"

    def devices(self) -> list[str]:
        """Return one label per GPU: ``"gpu<NVML index> <name> (<UUID prefix>)"``."""
        return [g.label for g in self.gpus]

    def read(self) -> list[float]:
        """Return joules since creation (energy) or watts (power), one value per GPU.

        A GPU that stops answering keeps its last energy (or reads 0 W) with one warning;
        when every GPU of the source has stopped answering, raise :class:`MeasurementError`.
        """
        if self._closed:
            raise MeasurementError(f"{self.name} is closed")
        counted = None if self.processes is None else self.processes.active()
        if self.kind == "energy":
            return self._read_energy(counted)
        return self._read_power(counted)

    @property
    def info(self) -> dict[str, str]:
        """How the figure is obtained (shown in the report's component details)."""
        out: dict[str, str] = {}
        if self.attribution != "machine":
            out["process share"] = (
                "nvmlDeviceGetProcessUtilization SM samples, else the memory of the running processes, "
                "else an equal split among them"
            )
        return out

    def process_shares(self, pids: Collection[int]) -> list[float | None]:
        """Return each GPU's share taken by ``pids`` (the tracked processes) since the last call.

        Called by the tracker right after :meth:`read` with ``attribution="process"`` or
        ``"cgroup"``; see :mod:`carbonkit_nvml._shares` for the method and its fallbacks.
        None for a GPU means NVML cannot say (the tracker then charges it whole).
        """
        if self._closed:
            raise MeasurementError(f"{self.name} is closed")
        if self._shares is None:
            self._shares = GpuShares(nvml=self.nvml, gpus=self.gpus)
        return self._shares.shares(pids)

    def close(self) -> None:
        """Release this source's NVML initialisation (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        if self.processes is not None:
            self.processes.finish()
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError as err:
            _logger.debug("nvmlShutdown failed while closing %s: %s", self.name, err)

    @classmethod
    def discover(
        cls,
        config: Config,
        *,
        nvml: ModuleType | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> list[NvmlSource | Unavailable]:
        """Return the sources for this machine's NVIDIA GPUs, or a note saying why there are none.

        Up to two sources: ``nvml:energy`` for the GPUs with an energy counter and ``nvml:power``
        for the others. NVML is initialised for the probe and shut down before returning; each
        source holds its own initialisation.

        :param config: The tracker configuration (``options``, ``pid``).
        :param nvml: The NVML module; default: ``pynvml``, imported here.
        :param environ: The environment (``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER``,
            ``CARBONKIT_NVML_PROCESS_GPUS``); default ``os.environ``.
        :param clock: Monotonic seconds, for the process filter's re-checks.
        :raises ConfigError: when ``nvml.process_gpus`` has a value that is not a boolean, or
            ``config.pid`` is not a running process while it is on.
        """
        env = os.environ if environ is None else environ
        process_gpus = _process_gpus(config, env)
        if nvml is None:
            if "pynvml" not in sys.modules and not _driver_present():
                # Importing the bindings costs ~80 ms of every run's start; without a driver NVML
                # cannot work, so say so without paying it.
                return [
                    _unavailable(
                        "no NVIDIA driver on this machine (none of " + ", ".join(DRIVER_PATHS) + " exists)",
                        "nothing to do on a machine without an NVIDIA GPU",
                    )
                ]
            try:
                import pynvml
            except ImportError as exc:
                return [
                    _unavailable(
                        f"the NVML bindings cannot be imported ({exc})",
                        "install nvidia-ml-py (pip install carbonkit-nvml brings it)",
                    )
                ]
            nvml = pynvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            return [_init_failed(nvml, err)]
        try:
            return cls._discover(config, nvml=nvml, environ=env, clock=clock, process_gpus=process_gpus)
        finally:
            try:
                nvml.nvmlShutdown()
            except nvml.NVMLError as err:
                _logger.debug("nvmlShutdown after the probe failed: %s", err)

    @classmethod
    def _discover(
        cls,
        config: Config,
        *,
        nvml: ModuleType,
        environ: Mapping[str, str],
        clock: Callable[[], float],
        process_gpus: bool,
    ) -> list[NvmlSource | Unavailable]:
        try:
            gpus, unreadable = list_gpus(nvml)
        except nvml.NVMLError as err:
            return [_unavailable(f"NVML cannot count the GPUs (NVML: {err})", "check that nvidia-smi works", warn=True)]
        if not gpus and not unreadable:
            return [_unavailable("NVML is installed but finds no NVIDIA GPU", "nothing to do on a machine without one")]
        choice, why = job_gpus(config, environ, len(gpus) + len(unreadable))
        if choice is not None:
            _logger.info("GPUs measured: %s (%s)", choice or "all", why)
            environ = {k: v for k, v in environ.items() if k != "CUDA_VISIBLE_DEVICES"}
            if choice:
                environ["CUDA_VISIBLE_DEVICES"] = choice
        selection = select(gpus, unreadable, nvml, environ)
        for message in selection.warnings:
            _logger.warning(message)
        if not selection.gpus:
            return [_unavailable(selection.reason or "no readable GPU", selection.hint, warn=selection.warn)]

        energy: list[Gpu] = []
        baseline: list[int] = []
        power: list[Gpu] = []
        unmeasurable: list[str] = []
        for gpu in selection.gpus:
            try:
                baseline.append(int(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)))
                energy.append(gpu)
                continue
            except nvml.NVMLError as err:
                if err.value not in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_FUNCTION_NOT_FOUND):
                    unmeasurable.append(f"{gpu.label} (energy counter: NVML: {err})")
                    continue
            try:
                nvml.nvmlDeviceGetPowerUsage(gpu.handle)
            except nvml.NVMLError as err:
                unmeasurable.append(f"{gpu.label} (no energy counter; power: NVML: {err})")
                continue
            _logger.info("%s has no energy counter (pre-Volta GPU?); its power is read instead", gpu.label)
            power.append(gpu)
        if not energy and not power:
            return [
                _unavailable(
                    "no selected GPU reports its energy or its power: " + "; ".join(unmeasurable),
                    "NVML answers Not Supported on some consumer and virtual GPUs; use an estimating "
                    "plugin for them",
                    warn=True,
                )
            ]
        if unmeasurable:
            _logger.warning("these GPUs cannot be measured and are not counted: %s", "; ".join(unmeasurable))

        processes = None
        if process_gpus:
            processes = ProcessGpus(nvml=nvml, root_pid=config.pid, gpus=[*energy, *power], clock=clock)
        sources: list[NvmlSource | Unavailable] = []
        try:
            split = config.attribution
            if energy:
                sources.append(cls(kind="energy", gpus=energy, nvml=nvml, processes=processes, baseline_mj=baseline,
                                   attribution=split))
            if power:
                sources.append(cls(kind="power", gpus=power, nvml=nvml, processes=processes, attribution=split))
        except BaseException:
            for source in sources:
                source.close()  # type: ignore[union-attr]
            raise
        return sources

    def _ceiling(self, gpu: Gpu) -> float:
        """The most power ``gpu`` can draw, in watts (see :data:`MAX_POWER_MARGIN`)."""
        try:
            _, max_mw = self.nvml.nvmlDeviceGetPowerManagementLimitConstraints(gpu.handle)
        except self.nvml.NVMLError as err:
            _logger.debug("%s: no power limits from NVML (%s); ceiling %.0f W", gpu.label, err, DEFAULT_MAX_POWER_W)
            return DEFAULT_MAX_POWER_W
        if not isinstance(max_mw, int) or max_mw <= 0:
            _logger.debug(
                "%s: NVML gives a maximum power limit of %r mW; ceiling %.0f W", gpu.label, max_mw, DEFAULT_MAX_POWER_W
            )
            return DEFAULT_MAX_POWER_W
        return MAX_POWER_MARGIN * max_mw / 1000.0

    # -- reading --------------------------------------------------------------------------

    def _read_energy(self, counted: frozenset[str] | None) -> list[float]:
        for i, gpu in enumerate(self.gpus):
            if self._lost[i]:
                continue
            try:
                now_mj = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            except self.nvml.NVMLError as err:
                self._lose(i, err, "its energy so far is kept")
                continue
            delta_mj = now_mj - self._last_mj[i]
            self._last_mj[i] = now_mj
            if delta_mj < 0:
                self._counter_went_back(i, delta_mj)
                continue
            if counted is None or gpu.uuid in counted:
                self._joules[i] += delta_mj / 1000.0
        return list(self._joules)

    def _read_power(self, counted: frozenset[str] | None) -> list[float]:
        watts = [0.0] * len(self.gpus)
        for i, gpu in enumerate(self.gpus):
            if self._lost[i]:
                continue
            try:
                milliwatts = self.nvml.nvmlDeviceGetPowerUsage(gpu.handle)
            except self.nvml.NVMLError as err:
                self._lose(i, err, "it reads 0 W from now on")
                continue
            if counted is None or gpu.uuid in counted:
                watts[i] = milliwatts / 1000.0
        return watts

    def _lose(self, i: int, err: Exception, outcome: str) -> None:
        self._lost[i] = True
        gpu = self.gpus[i]
        if all(self._lost):
            lost = ", ".join(g.label for g in self.gpus)
            raise MeasurementError(f"{self.name}: NVML no longer answers for {lost} (NVML: {err})") from err
        _logger.warning("%s: NVML no longer answers for %s (NVML: %s); %s", self.name, gpu.label, err, outcome)

    def _counter_went_back(self, i: int, delta_mj: int) -> None:
        # The counter only resets when the driver is reloaded; the energy of the interval in
        # which that happened is unknown, so it counts as 0 and counting resumes from the new value.
        log = _logger.debug if self._reset_warned[i] else _logger.warning
        self._reset_warned[i] = True
        log(
            "%s: the energy counter of %s went back by %.3f J (driver reloaded?); counting resumes from "
            "its new value, and the energy of this sampling interval is not counted",
            self.name,
            self.gpus[i].label,
            -delta_mj / 1000.0,
        )


def job_gpus(config: Config, environ: Mapping[str, str], count: int) -> tuple[str | None, str]:
    """The GPUs to measure instead of ``CUDA_VISIBLE_DEVICES``: ``(list, why)``, ``""`` for every
    GPU NVML lists, None to follow ``CUDA_VISIBLE_DEVICES``.

    ``nvml.gpus`` (``CARBONKIT_NVML_GPUS``): ``all``, or a list written like
    ``CUDA_VISIBLE_DEVICES`` (NVML indices or UUIDs). Unset, in a Slurm step of several tasks
    measured for the whole machine (``attribution="machine"``): the step's GPUs on this node
    (``SLURM_STEP_GPUS``, else ``SLURM_JOB_GPUS``), because with ``--gpus-per-task`` or
    ``--gpu-bind`` each task's ``CUDA_VISIBLE_DEVICES`` names only its own GPU while the
    process that measures the host must count every GPU the job holds there. Slurm gives global
    GPU ids; when NVML sees exactly as many GPUs as the step holds (devices constrained by
    cgroups), they are all the step's and all are measured.

    :raises ConfigError: when ``nvml.gpus`` is set but empty or not text.
    """
    if GPUS_OPTION in config.options:
        value: Any = config.options[GPUS_OPTION]
        where = f"config.options[{GPUS_OPTION!r}]"
    else:
        value = environ.get(GPUS_VARIABLE)
        where = GPUS_VARIABLE
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}={value!r} is not valid: expected 'all' or a list of GPU indices or UUIDs "
                              "written like CUDA_VISIBLE_DEVICES ('0,1' or 'GPU-...')")
        text_value = value.strip()
        return ("" if text_value.lower() == "all" else text_value), where
    tasks = (environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or "").strip()
    slurm = (environ.get("SLURM_STEP_GPUS") or environ.get("SLURM_JOB_GPUS") or "").strip()
    if config.attribution != "machine" or not slurm or not tasks.isdigit() or int(tasks) < 2:
        return None, ""
    ids = [x.strip() for x in slurm.split(",") if x.strip()]
    if len(ids) == count:
        return "", f"the {count} GPUs NVML sees are the Slurm step's ({slurm})"
    return ",".join(ids), f"the Slurm step's GPUs on this node ({slurm})"


def _process_gpus(config: Config, environ: Mapping[str, str]) -> bool:
    """Read the process-filter option: ``config.options`` first, then the environment.

    Unset, it is off: with ``attribution="process"`` or ``"cgroup"`` each GPU is split by the
    tracked processes' share of it (a GPU they never use is charged 0), and the machine figure
    keeps every selected GPU's energy.
    """
    if PROCESS_GPUS_OPTION in config.options:
        value: Any = config.options[PROCESS_GPUS_OPTION]
        where = f"config.options[{PROCESS_GPUS_OPTION!r}]"
    else:
        value = environ.get(PROCESS_GPUS_VARIABLE)
        where = PROCESS_GPUS_VARIABLE
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where}={value!r} is not valid: expected a boolean (1/0, true/false, yes/no, on/off)")


def _unavailable(reason: str, hint: str, *, warn: bool = False) -> Unavailable:
    return Unavailable(plugin=PLUGIN, reason=reason, hint=hint, warn=warn)


def _init_failed(nvml: ModuleType, err: Exception) -> Unavailable:
    """Say why ``nvmlInit`` failed, in the user's terms."""
    code = getattr(err, "value", None)
    known: dict[Any, tuple[str, str, bool]] = {
        getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", 12): (
            "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not installed",
            "nothing to do on a machine without an NVIDIA GPU; otherwise install the NVIDIA driver, "
            "or run the container with GPU access (--gpus)",
            False,
        ),
        getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", 9): (
            "the NVIDIA driver is installed but not loaded (no GPU, or the kernel module failed to load)",
            "check that nvidia-smi works",
            False,
        ),
        getattr(nvml, "NVML_ERROR_NO_PERMISSION", 4): (
            "no permission to use the NVIDIA driver",
            "check the permissions of /dev/nvidia*, or run the container with GPU access (--gpus)",
            True,
        ),
        getattr(nvml, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", 18): (
            "the NVML library and the loaded NVIDIA kernel driver have different versions "
            "(driver updated without a reboot)",
            "reboot, or reload the nvidia kernel modules",
            True,
        ),
    }
    reason, hint, warn = known.get(code, (f"nvmlInit failed (NVML: {err})", "check that nvidia-smi works", True))
    return _unavailable(reason, hint, warn=warn)


#: What an NVIDIA driver leaves on Linux: the control device and its /proc entry (bare metal,
#: containers with the NVIDIA runtime), or the paravirtual GPU device of WSL 2.
DRIVER_PATHS = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg")


def _driver_present() -> bool:
    """False only where we know NVML cannot work: Linux with no trace of the NVIDIA driver."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in DRIVER_PATHS)


@hookimpl
def register_power_sources(config: Config) -> list[NvmlSource | Unavailable]:
    return NvmlSource.discover(config)
