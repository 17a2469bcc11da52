"""A stand-in for the ``pynvml`` module (nvidia-ml-py 12 and 13) that simulates NVIDIA GPUs.

It implements the subset of the NVML bindings that carbonkit's ``nvml`` plugin calls, with the
real module's names, argument names, return types and units, and its error classes:

- ``NVMLError(value)`` returns an instance of the subclass for that code (``NVMLError_NotSupported``,
  ``NVMLError_GpuIsLost``...), with ``.value`` holding the code and ``str()`` giving NVML's text;
  the subclasses are generated from the ``NVML_ERROR_*`` constants, as the real module does.
- Names and UUIDs are ``str``, as current nvidia-ml-py releases return them (they decode the
  C strings); ``legacy_bytes=True`` returns ``bytes``, as older releases did.
- ``nvmlDeviceGetTotalEnergyConsumption`` returns integer millijoules since "driver load";
  ``nvmlDeviceGetPowerUsage`` returns integer milliwatts; both raise ``NVMLError_NotSupported``
  where the GPU has no such sensor (pre-Volta GPUs have no energy counter).
- ``nvmlDeviceGetPowerManagementLimitConstraints`` returns ``[minLimit, maxLimit]``, a list of
  two integers in milliwatts, as nvidia-ml-py builds it from the C call's two ``unsigned int``
  outputs; it raises ``NVMLError_NotSupported`` where the GPU has no power management (NVML
  API reference: "For Kepler or newer fully supported devices", NVML_ERROR_NOT_SUPPORTED "if
  the device does not support this feature").
- ``nvmlInit`` is reference counted and ``nvmlShutdown`` without a matching init raises
  ``NVMLError_Uninitialized``; every device call outside an init raises it too.
- A lost GPU (``FakeGpu.lost = True``) raises ``NVMLError_GpuIsLost`` from every device call.

Time is simulated: :meth:`FakePynvml.advance` moves the fake clock and integrates each GPU's
power into its energy counter (Simpson's rule per step, exact for power varying up to cubically
within a step). Nothing here touches real hardware.

Usage::

    fake = FakePynvml([FakeGpu(name="NVIDIA H100 80GB HBM3", power_w=300.0)])
    sources = NvmlSource.discover(config, nvml=fake, environ={})
    fake.advance(1.0)

``tests/plugins/test_nvml.py`` checks this module against the installed ``pynvml`` (constants,
error classes, argument names).
"""

from __future__ import annotations

import math
import string
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = [
    "FakeGpu",
    "FakeHandle",
    "FakeMigHandle",
    "FakeProcessInfo",
    "FakeProcessUtilizationSample",
    "FakePynvml",
    "NVMLError",
    "NVMLLibraryMismatchError",
]

# Return codes, as in NVML's nvml.h (and nvidia-ml-py's NVML_ERROR_* constants).
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

#: What NVML's process records hold in gpuInstanceId/computeInstanceId outside MIG mode.
NVML_VALUE_NOT_AVAILABLE_UINT = 0xFFFFFFFF

# NVML's own descriptions (nvmlErrorString) of the codes the bindings know without a library.
_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
    NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
    NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    NVML_ERROR_MEMORY: "Insufficient Memory",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Base of the NVML errors; ``NVMLError(code)`` builds the subclass for ``code``."""

    _by_code: dict[int, type[NVMLError]] = {}
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._by_code.get(value, NVMLError)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:  # the real class compares codes (and is unhashable)
        return self.value == other.value  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


class NVMLLibraryMismatchError(Exception):
    """Raised by the real bindings' unversioned calls when the driver lacks the versioned symbol."""


def _error_class_name(constant: str) -> str:
    # NVML_ERROR_GPU_IS_LOST -> NVMLError_GpuIsLost: the naming nvidia-ml-py generates.
    words = constant.removeprefix("NVML_ERROR_").split("_")
    return "NVMLError_" + "".join(string.capwords(w) for w in words)


def _make_error_classes() -> dict[str, type[NVMLError]]:
    classes: dict[str, type[NVMLError]] = {}
    for constant, code in sorted(globals().items()):
        if not constant.startswith("NVML_ERROR_"):
            continue

        def new(cls: type[NVMLError], *args: Any, _code: int = code) -> NVMLError:
            return NVMLError.__new__(cls, _code)

        cls = type(_error_class_name(constant), (NVMLError,), {"__new__": new})
        cls.__module__ = __name__
        NVMLError._by_code[code] = cls
        classes[cls.__name__] = cls
    return classes


_ERROR_CLASSES = _make_error_classes()
globals().update(_ERROR_CLASSES)


@dataclass
class FakeProcessInfo:
    """One entry of ``nvmlDeviceGet*RunningProcesses``: the attributes nvidia-ml-py gives."""

    pid: int
    usedGpuMemory: int | None = 1 << 30
    gpuInstanceId: int = NVML_VALUE_NOT_AVAILABLE_UINT
    computeInstanceId: int = NVML_VALUE_NOT_AVAILABLE_UINT


@dataclass
class FakeProcessUtilizationSample:
    """One entry of ``nvmlDeviceGetProcessUtilization``: a ``c_nvmlProcessUtilizationSample_t``
    (nvml.h: ``unsigned int pid; unsigned long long timeStamp; unsigned int smUtil, memUtil,
    encUtil, decUtil``), the CPU timestamp in microseconds and utilisation in percent."""

    pid: int
    timeStamp: int
    smUtil: int
    memUtil: int
    encUtil: int
    decUtil: int


@dataclass
class FakeGpu:
    """One simulated GPU.

    :param name: As ``nvidia-smi`` shows it.
    :param uuid: ``GPU-`` followed by a UUID; a random one when empty.
    :param power_w: Board power in watts: a constant, or a function of the fake time (seconds).
    :param energy_counter: Whether ``nvmlDeviceGetTotalEnergyConsumption`` works (Volta and newer).
    :param power_sensor: Whether ``nvmlDeviceGetPowerUsage`` works.
    :param energy_mj: The energy counter's value now (millijoules since the driver loaded).
    :param mig_capable: Whether ``nvmlDeviceGetMigMode`` is supported (A100, H100...).
    :param mig_enabled: Whether MIG mode is on; then ``mig_uuids`` name its MIG devices.
    :param compute_pids: Processes with a compute context on the whole GPU.
    :param graphics_pids: Processes with a graphics context.
    :param mig_pids: Processes on each MIG device, by MIG UUID.
    :param processes_supported: Whether the running-process queries work.
    :param lost: Whether the GPU has fallen off the bus (every device call raises GpuIsLost).
    :param compute_capability: As ``nvmlDeviceGetCudaComputeCapability`` returns it.
    :param power_limits_mw: ``(minLimit, maxLimit)`` of the power management limit, milliwatts
        (H100 SXM5: 200 W to 700 W), or None when the GPU does not support power management.
    :param process_util: Each process's utilisation now, ``pid: (smUtil, memUtil, encUtil,
        decUtil)`` in percent; :meth:`FakePynvml.advance` records one sample per process with a
        non-zero value every ``util_period_s`` (nvml.h: one sample "per process running, that had
        some non-zero utilization during the last sample period").
    :param util_supported: Whether ``nvmlDeviceGetProcessUtilization`` works (Maxwell and newer;
        never on a GPU in MIG mode).
    :param used_memory: ``usedGpuMemory`` in bytes of each running process, by pid (default
        1 GiB); None for a pid models NVML's "not available" (Windows WDDM, some containers).
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = ""
    power_w: float | Callable[[float], float] = 100.0
    energy_counter: bool = True
    power_sensor: bool = True
    energy_mj: float = 86_400_000_000.0
    mig_capable: bool = False
    mig_enabled: bool = False
    mig_uuids: tuple[str, ...] = ()
    compute_pids: list[int] = field(default_factory=list)
    graphics_pids: list[int] = field(default_factory=list)
    mig_pids: dict[str, list[int]] = field(default_factory=dict)
    processes_supported: bool = True
    lost: bool = False
    compute_capability: tuple[int, int] = (9, 0)
    power_limits_mw: tuple[int, int] | None = (200_000, 700_000)
    process_util: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    util_supported: bool = True
    used_memory: dict[int, int | None] = field(default_factory=dict)
    util_samples: list[FakeProcessUtilizationSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.uuid:
            self.uuid = f"GPU-{uuid_module.uuid4()}"

    def power_at(self, t_s: float) -> float:
        """Board power in watts at fake time ``t_s``."""
        return float(self.power_w(t_s)) if callable(self.power_w) else float(self.power_w)


class FakeHandle:
    """An opaque device handle (the real one is a ctypes pointer, ``c_nvmlDevice_t``)."""

    __slots__ = ("gpu", "index")

    def __init__(self, gpu: FakeGpu, index: int) -> None:
        self.gpu = gpu
        self.index = index

    def __repr__(self) -> str:
        return f"<FakeHandle gpu{self.index}>"


class FakeMigHandle:
    """A MIG device handle: one slice of a parent GPU."""

    __slots__ = ("parent", "uuid")

    def __init__(self, parent: FakeHandle, uuid: str) -> None:
        self.parent = parent
        self.uuid = uuid

    def __repr__(self) -> str:
        return f"<FakeMigHandle {self.uuid} of gpu{self.parent.index}>"


class FakePynvml(ModuleType):
    """A module object that answers like ``pynvml`` for the simulated ``gpus``.

    :param gpus: The GPUs, in NVML index order (PCI bus order on a real machine).
    :param library: False: ``nvmlInit`` raises ``NVMLError_LibraryNotFound`` (no driver installed).
    :param init_error: An ``NVML_ERROR_*`` code ``nvmlInit`` raises (e.g. driver not loaded).
    :param legacy_bytes: Return names and UUIDs as ``bytes``, as older nvidia-ml-py releases did.
    :param driver_version: What ``nvmlSystemGetDriverVersion`` returns.

    ``calls`` counts the calls of each function; ``init_count`` is NVML's reference count;
    ``time_s`` is the fake clock, moved by :meth:`advance`.
    """

    NVMLError = NVMLError
    NVMLLibraryMismatchError = NVMLLibraryMismatchError

    def __init__(
        self,
        gpus: Sequence[FakeGpu] = (),
        *,
        library: bool = True,
        init_error: int | None = None,
        legacy_bytes: bool = False,
        driver_version: str = "550.54.15",
        util_period_s: float = 1.0 / 6.0,
        epoch_us: int = 1_764_633_600_000_000,
    ) -> None:
        super().__init__("pynvml", "Simulated NVIDIA Management Library bindings (tests only).")
        self.gpus = list(gpus)
        self.library = library
        self.init_error = init_error
        self.legacy_bytes = legacy_bytes
        self.driver_version = driver_version
        self.init_count = 0
        self.time_s = 0.0
        self.util_period_s = util_period_s
        self.epoch_us = epoch_us  # the CPU clock, in microseconds, at fake time 0
        self._next_util_s = util_period_s
        self.calls: Counter[str] = Counter()
        self._handles = [FakeHandle(gpu, i) for i, gpu in enumerate(self.gpus)]
        self._mig_handles = {
            mig: FakeMigHandle(handle, mig) for handle in self._handles for mig in handle.gpu.mig_uuids
        }

    # -- simulation -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake clock by ``seconds`` and add each running GPU's energy to its counter."""
        if seconds < 0:
            raise ValueError(f"cannot go back in time: seconds={seconds!r}")
        t0, t1 = self.time_s, self.time_s + seconds
        for gpu in self.gpus:
            if gpu.lost:
                continue
            mean_w = (gpu.power_at(t0) + 4.0 * gpu.power_at((t0 + t1) / 2.0) + gpu.power_at(t1)) / 6.0
            gpu.energy_mj += mean_w * seconds * 1000.0
        while self._next_util_s <= t1:
            stamp = self.epoch_us + round(self._next_util_s * 1e6)
            for gpu in self.gpus:
                for pid, (sm, mem, enc, dec) in gpu.process_util.items():
                    if sm or mem or enc or dec:
                        gpu.util_samples.append(FakeProcessUtilizationSample(pid, stamp, sm, mem, enc, dec))
                del gpu.util_samples[:-1000]  # the driver keeps a bounded buffer of recent samples
            self._next_util_s += self.util_period_s
        self.time_s = t1

    def true_energy_j(self, gpu: FakeGpu, start_s: float, end_s: float, steps: int = 10_000) -> float:
        """The exact energy ``gpu`` used between two fake times (fine Simpson integration)."""
        if steps % 2:
            steps += 1
        h = (end_s - start_s) / steps
        total = gpu.power_at(start_s) + gpu.power_at(end_s)
        total += sum((4 if k % 2 else 2) * gpu.power_at(start_s + k * h) for k in range(1, steps))
        return total * h / 3.0

    # -- helpers --------------------------------------------------------------------------

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.init_count == 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: object) -> tuple[FakeHandle, FakeGpu]:
        if isinstance(handle, FakeMigHandle):
            handle = handle.parent
        if not isinstance(handle, FakeHandle) or handle not in self._handles:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        if handle.gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return handle, handle.gpu

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.legacy_bytes else value

    # -- library --------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if not self.library:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._call("nvmlSystemGetDriverVersion")
        return self._text(self.driver_version)

    # -- devices --------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._call("nvmlDeviceGetHandleByIndex")
        if not isinstance(index, int) or not 0 <= index < len(self._handles):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        handle = self._handles[index]
        if handle.gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return handle

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeHandle | FakeMigHandle:
        self._call("nvmlDeviceGetHandleByUUID")
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for handle in self._handles:
            if handle.gpu.uuid == text:
                return handle
        if text in self._mig_handles and self._mig_handles[text].parent.gpu.mig_enabled:
            return self._mig_handles[text]
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: object) -> FakeHandle:
        self._call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if not isinstance(migDevice, FakeMigHandle):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        self._gpu(migDevice)
        return migDevice.parent

    def nvmlDeviceGetIndex(self, handle: object) -> int:
        self._call("nvmlDeviceGetIndex")
        return self._gpu(handle)[0].index

    def nvmlDeviceGetUUID(self, handle: object) -> str | bytes:
        self._call("nvmlDeviceGetUUID")
        _, gpu = self._gpu(handle)
        return self._text(handle.uuid if isinstance(handle, FakeMigHandle) else gpu.uuid)

    def nvmlDeviceGetName(self, handle: object) -> str | bytes:
        self._call("nvmlDeviceGetName")
        _, gpu = self._gpu(handle)
        return self._text(f"{gpu.name} MIG 1g.10gb" if isinstance(handle, FakeMigHandle) else gpu.name)

    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> tuple[int, int]:
        self._call("nvmlDeviceGetCudaComputeCapability")
        return self._gpu(handle)[1].compute_capability

    def nvmlDeviceGetMigMode(self, device: object) -> list[int]:
        self._call("nvmlDeviceGetMigMode")
        _, gpu = self._gpu(device)
        if isinstance(device, FakeMigHandle) or not gpu.mig_capable:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        mode = NVML_DEVICE_MIG_ENABLE if gpu.mig_enabled else NVML_DEVICE_MIG_DISABLE
        return [mode, mode]  # [current, pending]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        self._call("nvmlDeviceGetTotalEnergyConsumption")
        _, gpu = self._gpu(handle)
        if isinstance(handle, FakeMigHandle) or not gpu.energy_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(math.floor(gpu.energy_mj))

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        self._call("nvmlDeviceGetPowerUsage")
        _, gpu = self._gpu(handle)
        if isinstance(handle, FakeMigHandle) or not gpu.power_sensor:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(round(gpu.power_at(self.time_s) * 1000.0))

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: object) -> list[int]:
        self._call("nvmlDeviceGetPowerManagementLimitConstraints")
        _, gpu = self._gpu(handle)
        if isinstance(handle, FakeMigHandle) or gpu.power_limits_mw is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        low, high = gpu.power_limits_mw
        return [low, high]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[FakeProcessInfo]:
        self._call("nvmlDeviceGetComputeRunningProcesses")
        return self._processes(handle, graphics=False)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: object) -> list[FakeProcessInfo]:
        self._call("nvmlDeviceGetGraphicsRunningProcesses")
        return self._processes(handle, graphics=True)

    def nvmlDeviceGetProcessUtilization(self, handle: object, timeStamp: int) -> list[FakeProcessUtilizationSample]:
        """The samples newer than ``timeStamp`` (nvml.h's ``lastSeenTimeStamp``), as nvidia-ml-py
        returns them: a list of structures. nvml.h: ``NVML_ERROR_NOT_FOUND`` "if sample entries
        are not found", ``NVML_ERROR_NOT_SUPPORTED`` "if the device does not support this
        feature" (and on MIG-enabled GPUs)."""
        self._call("nvmlDeviceGetProcessUtilization")
        _, gpu = self._gpu(handle)
        if isinstance(handle, FakeMigHandle) or not gpu.util_supported or gpu.mig_enabled:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        found = [sample for sample in gpu.util_samples if sample.timeStamp > timeStamp]
        if not found:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return found

    def _processes(self, handle: object, *, graphics: bool) -> list[FakeProcessInfo]:
        _, gpu = self._gpu(handle)
        if not gpu.processes_supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if isinstance(handle, FakeMigHandle):
            return [] if graphics else [FakeProcessInfo(pid, gpuInstanceId=1, computeInstanceId=0)
                                        for pid in gpu.mig_pids.get(handle.uuid, ())]
        pids = list(gpu.graphics_pids if graphics else gpu.compute_pids)
        # On the parent of a MIG GPU, NVML aggregates every slice's processes for a caller with
        # enough privileges (NVML docs, nvmlDeviceGetComputeRunningProcesses); modelled as such.
        if not graphics:
            pids += [pid for slice_pids in gpu.mig_pids.values() for pid in slice_pids]
        return [FakeProcessInfo(pid, usedGpuMemory=gpu.used_memory.get(pid, 1 << 30)) for pid in pids]


for _name, _cls in _ERROR_CLASSES.items():
    setattr(FakePynvml, _name, _cls)
for _name, _value in list(globals().items()):
    if _name.startswith(("NVML_ERROR_", "NVML_DEVICE_MIG_", "NVML_SUCCESS")):
        setattr(FakePynvml, _name, _value)
